// Perceptual image hashes for near-duplicate image detection (benchmark decontamination).
//
//   dHash: the image is resized to 9x8 (io::resize_image, bicubic), converted to grey (ITU-R
//          601 luma) and bit (8*y + x) is set when pixel (x, y) is brighter than (x + 1, y).
//   pHash: resized to 32x32 and converted to grey; the 2-D DCT-II of the 32x32 grey block is
//          computed and its top-left 8x8 low-frequency block kept; bit (8*v + u) is set when
//          coefficient (u, v) is above the median of the 63 AC coefficients (the DC term is
//          left out of the median, so overall brightness does not move the threshold).
//
// Both are 64-bit; compare with hamming_distance. Both survive resizing and JPEG re-encoding
// with small distances; see docs/decontam.md for the distributions measured on VQA-RAD.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "io/image.h"

namespace mf::io {

struct PerceptualHash {
    uint64_t phash = 0;
    uint64_t dhash = 0;
};

uint64_t dhash(const Image& img);
uint64_t phash(const Image& img);

// Grey 32x32 block (row-major, values 0..255) that phash transforms; exposed for tests.
std::vector<double> phash_grey32(const Image& img);
// The top-left 8x8 DCT-II coefficients (row-major, [v * 8 + u]) of a 32x32 block, computed
// separably with a cosine table (unnormalised: sum f(x,y) cos(..u..) cos(..v..)).
std::vector<double> dct_lowfreq8(const std::vector<double>& grey32);
// Hash bits from 64 low-frequency coefficients (median of the 63 AC terms as threshold).
uint64_t phash_bits(const std::vector<double>& coeffs8x8);

// The image without `frac` of its width/height on each side (frac in [0, 0.45]).
Image crop_border(const Image& img, double frac);

// Hashes of the image and of its border crops: one PerceptualHash per fraction, in order.
// Decontamination indexes benchmark images at crops {0, 0.05, 0.10} so that cropped training
// copies (which move pHash by up to ~20 bits) still match one of them closely.
std::vector<PerceptualHash> hash_with_crops(const Image& img, const std::vector<double>& fracs);

inline int hamming_distance(uint64_t a, uint64_t b) {
    return __builtin_popcountll(a ^ b);
}

// Decodes `path` and hashes it. Errors carry the image reason code ("image_corrupt: ...").
struct HashResult {
    ImageError error = ImageError::kOk;
    std::string detail;
    PerceptualHash hash;
    bool ok() const { return error == ImageError::kOk; }
};
HashResult hash_image_file(const std::filesystem::path& path, const ImageLimits& limits = {});

}  // namespace mf::io
