// Image probing (format and size from the header, without decoding) and decoding to 8-bit RGB.
// Formats: JPEG (libturbojpeg), PNG, GIF, BMP (stb_image), WebP (libwebp), TIFF (libtiff).
// Every failure carries an ImageError code, used as the filter's reject reason.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace mf::io {

enum class ImageFormat { kUnknown, kJpeg, kPng, kGif, kWebp, kTiff, kBmp };
std::string_view image_format_name(ImageFormat f);

enum class ImageError {
    kOk,
    kMissing,      // file does not exist
    kEmpty,        // zero bytes
    kUnreadable,   // exists but cannot be read (permissions, I/O)
    kUnsupported,  // not a known image format (or a format feature we cannot decode)
    kCorrupt,      // header or data is invalid
    kTruncated,    // the file ends before the image data does
    kTooLarge,     // width*height above the limit: a decompression bomb
};
// Stable snake_case reason codes: "image_missing", "image_empty", ...
std::string_view image_error_reason(ImageError e);

struct ImageInfo {
    ImageFormat format = ImageFormat::kUnknown;
    int width = 0;
    int height = 0;
};

struct ImageLimits {
    // Same default as Pillow's MAX_IMAGE_PIXELS * 2 (decompression-bomb error threshold).
    uint64_t max_pixels = 178956970;
};

struct ProbeResult {
    ImageError error = ImageError::kOk;
    std::string detail;  // human explanation when error != kOk
    ImageInfo info;
    bool ok() const { return error == ImageError::kOk; }
};

// Reads only as much of the file as the header needs.
ProbeResult probe_image_file(const std::filesystem::path& path, const ImageLimits& limits = {});
ProbeResult probe_image_bytes(std::string_view bytes, const ImageLimits& limits = {});

// 8-bit interleaved RGB, row-major, pixels.size() == width * height * 3.
struct Image {
    int width = 0;
    int height = 0;
    std::vector<uint8_t> pixels;
};

struct DecodeResult {
    ImageError error = ImageError::kOk;
    std::string detail;
    ImageInfo info;
    Image image;
    bool ok() const { return error == ImageError::kOk; }
};

// Full decode to RGB (grey and palette expanded, alpha composited on white, first frame of
// animations). Checks the pixel limit from the header before allocating.
DecodeResult decode_image_file(const std::filesystem::path& path, const ImageLimits& limits = {});
DecodeResult decode_image_bytes(std::string_view bytes, const ImageLimits& limits = {});

// Resizes RGB to out_w x out_h the way PIL's Image.resize(BICUBIC) does (stb_image_resize with
// the Catmull-Rom filter in linear colour space, antialiased when downsampling; within 1 LSB of
// PIL, see deps.md section 5). Returns an empty image when a size is <= 0 or the input is empty.
Image resize_image(const Image& in, int out_w, int out_h);

// Encodes RGB pixels as a baseline JPEG (libturbojpeg, accurate DCT). subsample_420 = false keeps
// full chroma (4:4:4). Empty string when the image is empty or encoding fails.
std::string encode_jpeg(const Image& image, int quality = 90, bool subsample_420 = true);

}  // namespace mf::io
