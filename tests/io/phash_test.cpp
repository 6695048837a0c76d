// Perceptual hashes: the separable DCT against a naive 2-D DCT-II, hash construction, and
// robustness on real VQA-RAD images (resized, JPEG quality 60, 5% border crop) vs different
// images. The measured distance distributions are printed (docs/decontam.md quotes them).
#include "io/phash.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numbers>
#include <random>

#include "io/image.h"
#include "test_util.h"

namespace mf::io {
namespace {
namespace fs = std::filesystem;

// Naive reference: the full double sum for each of the 8x8 low-frequency coefficients.
std::vector<double> naive_dct8(const std::vector<double>& g) {
    std::vector<double> out(64);
    for (int v = 0; v < 8; ++v)
        for (int u = 0; u < 8; ++u) {
            double s = 0;
            for (int y = 0; y < 32; ++y)
                for (int x = 0; x < 32; ++x)
                    s += g[y * 32 + x] * std::cos(std::numbers::pi * (2 * x + 1) * u / 64.0) *
                         std::cos(std::numbers::pi * (2 * y + 1) * v / 64.0);
            out[v * 8 + u] = s;
        }
    return out;
}

// Naive hash bits: sort a copy of the 63 AC terms, take the middle one.
uint64_t naive_bits(const std::vector<double>& c) {
    std::vector<double> ac(c.begin() + 1, c.end());
    std::sort(ac.begin(), ac.end());
    uint64_t bits = 0;
    for (int i = 0; i < 64; ++i)
        if (c[i] > ac[31]) bits |= uint64_t{1} << i;
    return bits;
}

Image random_image(int w, int h, uint32_t seed) {
    std::mt19937 rng(seed);
    Image im{w, h, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3)};
    for (auto& p : im.pixels)
        p = static_cast<uint8_t>(rng() & 255);
    return im;
}

TEST(Phash, SeparableDctMatchesNaive) {
    for (uint32_t seed : {1u, 2u, 3u}) {
        std::mt19937 rng(seed);
        std::vector<double> g(1024);
        for (auto& v : g)
            v = rng() % 256;
        auto fast = dct_lowfreq8(g);
        auto ref = naive_dct8(g);
        for (int i = 0; i < 64; ++i)
            EXPECT_NEAR(fast[i], ref[i], 1e-6) << i;
        EXPECT_EQ(phash_bits(fast), naive_bits(ref));
    }
}

TEST(Phash, HashIsNaiveConstructionAndDeterministic) {
    Image im = random_image(100, 80, 7);
    uint64_t h = phash(im);
    EXPECT_EQ(h, naive_bits(naive_dct8(phash_grey32(im))));
    EXPECT_EQ(h, phash(im));
    // About half of the 63 AC bits are set by construction (strictly above the median).
    EXPECT_EQ(__builtin_popcountll(h & ~uint64_t{1}), 31);
}

TEST(Dhash, GradientDirections) {
    Image dec{90, 80, std::vector<uint8_t>(90 * 80 * 3)};
    for (int y = 0; y < 80; ++y)
        for (int x = 0; x < 90; ++x)
            for (int c = 0; c < 3; ++c)
                dec.pixels[(y * 90 + x) * 3 + c] = static_cast<uint8_t>(255 - x * 2);
    EXPECT_EQ(dhash(dec), ~uint64_t{0});  // every pixel brighter than its right neighbour
    Image inc = dec;
    for (auto& p : inc.pixels)
        p = static_cast<uint8_t>(255 - p);
    EXPECT_EQ(dhash(inc), uint64_t{0});
    EXPECT_EQ(hamming_distance(dhash(dec), dhash(inc)), 64);
}

TEST(Phash, HashImageFileReportsErrors) {
    test::TempDir dir;
    test::write_text(dir / "bad.jpg", "not an image");
    HashResult r = hash_image_file(dir / "bad.jpg");
    EXPECT_FALSE(r.ok());
    EXPECT_FALSE(hash_image_file(dir / "missing.jpg").ok());
    EXPECT_EQ(hash_image_file(dir / "missing.jpg").error, ImageError::kMissing);
}

std::string jpeg(const Image& im, int quality) {
    std::string s = encode_jpeg(im, quality, /*subsample_420=*/true);
    EXPECT_FALSE(s.empty());
    return s;
}

std::string summary(std::vector<int> v) {
    if (v.empty()) return "none";
    std::sort(v.begin(), v.end());
    return "min " + std::to_string(v.front()) + " median " + std::to_string(v[v.size() / 2]) +
           " p99 " + std::to_string(v[v.size() * 99 / 100]) + " max " + std::to_string(v.back()) +
           " (n=" + std::to_string(v.size()) + ")";
}

TEST(Phash, RobustOnVqaRadVariants) {
    fs::path dir = test::shared_data() / "vqa_rad" / "images";
    if (!fs::is_directory(dir)) GTEST_SKIP() << "no " << dir;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir))
        files.push_back(e.path());
    std::sort(files.begin(), files.end());
    files.resize(std::min<size_t>(files.size(), 24));
    // Originals indexed the way decontam indexes benchmark images: whole + 5% + 10% crops.
    const std::vector<double> crops = {0.0, 0.05, 0.10};
    std::vector<std::vector<PerceptualHash>> orig;
    std::map<std::string, std::vector<int>> pd, dd;
    for (const auto& f : files) {
        DecodeResult d = decode_image_file(f);
        ASSERT_TRUE(d.ok()) << f << ": " << d.detail;
        const Image& im = d.image;
        orig.push_back(hash_with_crops(im, crops));
        EXPECT_EQ(orig.back()[0].phash, phash(im));
        std::map<std::string, Image> variants;
        variants["resize50"] = resize_image(im, im.width / 2, im.height / 2);
        variants["resize150"] = resize_image(im, im.width * 3 / 2, im.height * 3 / 2);
        DecodeResult q60 = decode_image_bytes(jpeg(im, 60));
        ASSERT_TRUE(q60.ok());
        variants["jpeg60"] = q60.image;
        variants["crop5"] = crop_border(im, 0.05);
        variants["crop3"] = crop_border(im, 0.03);
        variants["crop8"] = crop_border(im, 0.08);
        for (const auto& [name, v] : variants) {
            PerceptualHash h{phash(v), dhash(v)};
            int p0 = hamming_distance(orig.back()[0].phash, h.phash);
            int q0 = hamming_distance(orig.back()[0].dhash, h.dhash);
            pd[name + "/whole"].push_back(p0);
            dd[name + "/whole"].push_back(q0);
            int bp = 65, bq = 65;  // best (by sum) over the indexed crops
            for (const auto& o : orig.back()) {
                int p = hamming_distance(o.phash, h.phash), q = hamming_distance(o.dhash, h.dhash);
                if (p + q < bp + bq) bp = p, bq = q;
            }
            pd[name + "/crops"].push_back(bp);
            dd[name + "/crops"].push_back(bq);
            // Default decontam thresholds: pHash <= 10 and dHash <= 16.
            EXPECT_LE(bp, 10) << f << " " << name;
            EXPECT_LE(bq, 16) << f << " " << name;
        }
    }
    std::vector<int> pdiff, ddiff;
    int both_close = 0;
    for (size_t i = 0; i < orig.size(); ++i)
        for (size_t j = 0; j < orig.size(); ++j) {
            if (i == j) continue;
            // Whole image j against every indexed crop of image i, as decontam compares.
            int bp = 65, bq = 65;
            for (const auto& o : orig[i]) {
                int p = hamming_distance(o.phash, orig[j][0].phash);
                int q = hamming_distance(o.dhash, orig[j][0].dhash);
                bp = std::min(bp, p);
                bq = std::min(bq, q);
                if (p <= 10 && q <= 16) ++both_close;
            }
            pdiff.push_back(bp);
            ddiff.push_back(bq);
        }
    for (const auto& [name, v] : pd)
        std::printf("same image %-15s pHash %s | dHash %s\n", name.c_str(), summary(v).c_str(),
                    summary(dd[name]).c_str());
    std::printf("different images (min over crops) pHash %s | dHash %s\n", summary(pdiff).c_str(),
                summary(ddiff).c_str());
    EXPECT_EQ(both_close, 0);
}

}  // namespace
}  // namespace mf::io
