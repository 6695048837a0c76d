// The LLaVA-1.5 / CLIP image processor: RGB8 image -> normalised CHW float tensor [3, H, W].
//
// Steps (each matches the Python reference bit for bit, see docs/image_processor.md):
//   1. pad to square (LLaVA-1.5 image_aspect_ratio "pad", HuatuoGPT-Vision; optional): the image
//      pasted centred ((side - w) / 2, (side - h) / 2) on a square filled with
//      int(image_mean * 255) per channel (CLIP: 122, 116, 104);
//   2. resize the shortest edge to `shortest_edge` (the long edge to int(s * long / short)) with
//      Pillow's Image.resize algorithm (separable convolution, antialiased when reducing, 8-bit
//      fixed point, horizontal pass then vertical pass, uint8 after each): same uint8 output;
//   3. center crop to crop_height x crop_width (zero-padded when the image is smaller);
//   4. rescale (uint8 * rescale_factor in double, then float) and normalise ((x - mean) / std in
//      float), channels first.
// Plain C++ (no torch): the model code turns the vector into a tensor.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <vector>

#include "core/status.h"
#include "io/image.h"

namespace mf {
class ThreadPool;
}

namespace mf::model {

// Pillow's resampling filters, numbered as PIL.Image.Resampling (the `resample` field of a
// preprocessor_config.json). NEAREST (0) is not supported.
enum class ResampleFilter { kLanczos = 1, kBilinear = 2, kBicubic = 3, kBox = 4, kHamming = 5 };

struct ImageProcessorConfig {
    bool pad_to_square = true;  // LLaVA-1.5 "pad"; false = llava-hf's LlavaProcessor default
    bool do_resize = true;
    int shortest_edge = 336;
    ResampleFilter resample = ResampleFilter::kBicubic;
    bool do_center_crop = true;
    int crop_height = 336;
    int crop_width = 336;
    bool do_rescale = true;
    double rescale_factor = 1.0 / 255.0;
    bool do_normalize = true;
    std::array<double, 3> image_mean = {0.48145466, 0.4578275, 0.40821073};  // CLIP
    std::array<double, 3> image_std = {0.26862954, 0.26130258, 0.27577711};  // CLIP

    // LLaVA-1.5 / HuatuoGPT-Vision (CLIP ViT-L/14-336, pad to square).
    static ImageProcessorConfig llava15();
    // llava-hf/llava-1.5-*-hf through transformers' LlavaProcessor: the same, without the pad.
    static ImageProcessorConfig llava_hf();

    // tuple(int(x * 255) for x in image_mean): the pad colour.
    std::array<uint8_t, 3> pad_color() const;
    // Output size [3, out_height(), out_width()] (after the crop, or the resize when no crop).
    // Without a center crop the size depends on the image: use output_size(w, h).
    std::array<int, 2> output_size(int width, int height) const;  // {width, height}
    // Checks the fields (sizes > 0, std != 0, ...). Errors name the field.
    Status validate() const;
};

// Reads <dir>/preprocessor_config.json (or the file itself when `path` is a file): image_mean,
// image_std, crop_size (int or {height, width}), size (int, {shortest_edge} or
// {height, width} with height == width), resample, rescale_factor, do_resize, do_center_crop,
// do_rescale, do_normalize, do_pad. Missing fields keep the llava_hf() defaults. Padding: do_pad
// when present, else "image_aspect_ratio": "pad" in <dir>/config.json (LLaVA-1.5 checkpoints),
// else no pad.
Result<ImageProcessorConfig> load_image_processor_config(const std::filesystem::path& path);

// ---- the steps (public for tests and for callers that want the uint8 image) ------------------

// Step 1. Returns a copy when the image is already square.
io::Image pad_to_square(const io::Image& in, std::array<uint8_t, 3> color);

// transformers' get_resize_output_image_size(default_to_square=False): {width, height}.
std::array<int, 2> shortest_edge_size(int width, int height, int shortest_edge);

// Pillow's Image.resize(size, resample) for RGB, bit-exact. Errors on empty input or size <= 0.
Result<io::Image> resize_like_pil(const io::Image& in, int out_w, int out_h,
                                  ResampleFilter filter = ResampleFilter::kBicubic);

// Steps 1-3 on uint8: the image the model sees before normalisation.
Result<io::Image> preprocess_uint8(const io::Image& in, const ImageProcessorConfig& cfg);

// ---- the whole pipeline ----------------------------------------------------------------------

// [3, H, W] floats, channels first. Errors on an empty image or an invalid config.
Result<std::vector<float>> preprocess(const io::Image& in, const ImageProcessorConfig& cfg);

// Decodes any format io::decode_image_file reads, then preprocess().
Result<std::vector<float>> preprocess_file(const std::filesystem::path& path,
                                           const ImageProcessorConfig& cfg);

// [N, 3, H, W] for N images of the same output size (a center crop makes them so), on the pool
// (nullptr: the calling thread). The first failing image's error, with its index.
Result<std::vector<float>> preprocess_batch(const std::vector<io::Image>& images,
                                            const ImageProcessorConfig& cfg,
                                            ThreadPool* pool = nullptr);
Result<std::vector<float>> preprocess_files(const std::vector<std::filesystem::path>& paths,
                                            const ImageProcessorConfig& cfg,
                                            ThreadPool* pool = nullptr);

}  // namespace mf::model
