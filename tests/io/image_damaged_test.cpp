// Robustness on damaged real files: every real JPEG/PNG of ../shared/data cut at random points
// and with random bytes overwritten must give a reason code (never crash, hang or report OK for
// a cut file), and the probe must agree with decode whenever decode succeeds.
#include <gtest/gtest.h>

#include <random>

#include "io/file.h"
#include "io/image.h"
#include "test_util.h"

namespace mf::io {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> real_files() {
    std::vector<fs::path> out;
    fs::path data = mf::test::shared_data();
    for (const char* sub : {"vqa_rad/images", "medicat_sample/figures", "mmmu/images"}) {
        auto r = list_files(data / sub, {".jpg", ".png"});
        if (r.ok()) out.insert(out.end(), r->begin(), r->end());
    }
    return out;
}

TEST(ImageDamaged, CutFilesAreTruncatedOrCorrupt) {
    auto files = real_files();
    if (files.empty()) GTEST_SKIP();
    std::mt19937 rng(42);
    size_t truncated = 0, total = 0;
    for (size_t i = 0; i < files.size(); i += 3) {
        auto bytes = read_file(files[i]);
        ASSERT_TRUE(bytes.ok());
        for (int k = 0; k < 3; ++k) {
            size_t cut = 1 + rng() % (bytes->size() - 1);
            auto d = decode_image_bytes(std::string_view(*bytes).substr(0, cut));
            ++total;
            EXPECT_NE(d.error, ImageError::kOk) << files[i] << " cut at " << cut;
            EXPECT_TRUE(d.error == ImageError::kTruncated || d.error == ImageError::kCorrupt)
                << files[i] << " cut at " << cut << ": " << image_error_reason(d.error) << " "
                << d.detail;
            truncated += d.error == ImageError::kTruncated;
        }
    }
    // Nearly every random cut lands in the pixel data, which must read as truncated.
    EXPECT_GE(double(truncated), 0.9 * double(total));
}

TEST(ImageDamaged, OverwrittenBytesNeverCrash) {
    auto files = real_files();
    if (files.empty()) GTEST_SKIP();
    std::mt19937 rng(7);
    for (size_t i = 0; i < files.size(); i += 4) {
        auto bytes = read_file(files[i]);
        ASSERT_TRUE(bytes.ok());
        for (int k = 0; k < 3; ++k) {
            std::string b = *bytes;
            int flips = 1 + int(rng() % 20);
            for (int f = 0; f < flips; ++f)
                b[rng() % std::min<size_t>(b.size(), 4096)] = char(rng());
            auto p = probe_image_bytes(b);
            auto d = decode_image_bytes(b);
            if (d.ok()) {
                EXPECT_TRUE(p.ok());
                EXPECT_EQ(d.image.pixels.size(), size_t(d.image.width) * d.image.height * 3);
            } else {
                EXPECT_FALSE(d.detail.empty());
            }
        }
    }
}

}  // namespace
}  // namespace mf::io
