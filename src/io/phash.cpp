#include "io/phash.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>

namespace mf::io {

namespace {

// ITU-R 601 luma, as PIL's convert("L").
double luma(const uint8_t* p) {
    return (p[0] * 299.0 + p[1] * 587.0 + p[2] * 114.0) / 1000.0;
}

std::vector<double> grey_resized(const Image& img, int w, int h) {
    std::vector<double> out(static_cast<size_t>(w) * h, 0.0);
    Image small = resize_image(img, w, h);
    if (small.pixels.size() != out.size() * 3) return out;
    for (size_t i = 0; i < out.size(); ++i)
        out[i] = luma(&small.pixels[i * 3]);
    return out;
}

const std::array<double, 8 * 32>& cos_table() {
    static const std::array<double, 8 * 32> table = [] {
        std::array<double, 8 * 32> t{};
        for (int u = 0; u < 8; ++u)
            for (int x = 0; x < 32; ++x)
                t[u * 32 + x] = std::cos(std::numbers::pi * (2 * x + 1) * u / 64.0);
        return t;
    }();
    return table;
}

}  // namespace

uint64_t dhash(const Image& img) {
    std::vector<double> g = grey_resized(img, 9, 8);
    uint64_t bits = 0;
    for (int y = 0; y < 8; ++y)
        for (int x = 0; x < 8; ++x)
            if (g[y * 9 + x] > g[y * 9 + x + 1]) bits |= uint64_t{1} << (y * 8 + x);
    return bits;
}

std::vector<double> phash_grey32(const Image& img) {
    return grey_resized(img, 32, 32);
}

std::vector<double> dct_lowfreq8(const std::vector<double>& g) {
    const auto& c = cos_table();
    // Rows first: tmp[y][u] = sum_x g[y][x] cos_u(x); then columns: out[v][u] = sum_y tmp cos_v(y).
    std::array<double, 32 * 8> tmp{};
    for (int y = 0; y < 32; ++y)
        for (int u = 0; u < 8; ++u) {
            double s = 0;
            for (int x = 0; x < 32; ++x)
                s += g[y * 32 + x] * c[u * 32 + x];
            tmp[y * 8 + u] = s;
        }
    std::vector<double> out(64, 0.0);
    for (int v = 0; v < 8; ++v)
        for (int u = 0; u < 8; ++u) {
            double s = 0;
            for (int y = 0; y < 32; ++y)
                s += tmp[y * 8 + u] * c[v * 32 + y];
            out[v * 8 + u] = s;
        }
    return out;
}

uint64_t phash_bits(const std::vector<double>& coeffs) {
    std::vector<double> ac(coeffs.begin() + 1, coeffs.begin() + 64);
    std::nth_element(ac.begin(), ac.begin() + 31, ac.end());
    const double median = ac[31];  // 63 values: the 32nd smallest is the median
    uint64_t bits = 0;
    for (int i = 0; i < 64; ++i)
        if (coeffs[i] > median) bits |= uint64_t{1} << i;
    return bits;
}

uint64_t phash(const Image& img) {
    return phash_bits(dct_lowfreq8(phash_grey32(img)));
}

Image crop_border(const Image& im, double frac) {
    frac = std::clamp(frac, 0.0, 0.45);
    int dx = static_cast<int>(im.width * frac), dy = static_cast<int>(im.height * frac);
    if (dx == 0 && dy == 0) return im;
    Image out{im.width - 2 * dx, im.height - 2 * dy, {}};
    out.pixels.resize(static_cast<size_t>(out.width) * out.height * 3);
    for (int y = 0; y < out.height; ++y)
        std::copy_n(&im.pixels[(static_cast<size_t>(y + dy) * im.width + dx) * 3], out.width * 3,
                    &out.pixels[static_cast<size_t>(y) * out.width * 3]);
    return out;
}

std::vector<PerceptualHash> hash_with_crops(const Image& img, const std::vector<double>& fracs) {
    std::vector<PerceptualHash> out;
    for (double f : fracs) {
        Image c = crop_border(img, f);
        out.push_back({phash(c), dhash(c)});
    }
    return out;
}

HashResult hash_image_file(const std::filesystem::path& path, const ImageLimits& limits) {
    HashResult r;
    DecodeResult d = decode_image_file(path, limits);
    if (!d.ok()) {
        r.error = d.error;
        r.detail = d.detail;
        return r;
    }
    r.hash.phash = phash(d.image);
    r.hash.dhash = dhash(d.image);
    return r;
}

}  // namespace mf::io
