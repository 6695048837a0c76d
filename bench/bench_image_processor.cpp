// The LLaVA-1.5 image processor (model/image_processor.h): decode + pad + resize + crop +
// normalise to a [3, 336, 336] float tensor, in images/s (items_per_second), measured in the
// same run as two baselines:
//   Preprocess/<pad>          model::preprocess on an already decoded 1000x800 image
//   NaivePreprocess/<pad>     the same steps with a straightforward non-separable 2-D bicubic
//                             (weights recomputed per output pixel, double accumulators)
//   StbPreprocess/<pad>       the same steps with io::resize_image (stb, linear light)
//   DecodePreprocess/<pad>    decode a 1000x800 JPEG (quality 90, 4:2:0, in memory) + preprocess
//   DecodeNaive/<pad>         decode + the naive preprocess
//   VqaRad                    preprocess_files over the 203 vqa_rad JPEGs (real sizes), on a
//                             ThreadPool of 1 or 2 threads (Arg)
// <pad> = 1: LLaVA-1.5 pad to square (1000x1000 -> 336x336); 0: llava-hf (no pad:
// 1000x800 -> 420x336 -> crop).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/thread_pool.h"
#include "io/file.h"
#include "io/image.h"
#include "model/image_processor.h"

namespace fs = std::filesystem;
using mf::io::Image;
using mf::model::ImageProcessorConfig;

namespace {

fs::path data_dir() {
    return fs::path(MF_SOURCE_DIR) / ".." / "shared" / "data";
}

// A typical photo-sized JPEG: waterview.jpg (1000x667) resized to 1000x800, re-encoded.
const std::string& jpeg_1000x800() {
    static const std::string bytes = [] {
        auto d = mf::io::decode_image_file(data_dir() / "nonmedical/photos/waterview.jpg");
        if (!d.ok()) return std::string();
        return mf::io::encode_jpeg(mf::io::resize_image(d.image, 1000, 800), 90, true);
    }();
    return bytes;
}

const Image& image_1000x800() {
    static const Image img = mf::io::decode_image_bytes(jpeg_1000x800()).image;
    return img;
}

ImageProcessorConfig config(int pad) {
    return pad ? ImageProcessorConfig::llava15() : ImageProcessorConfig::llava_hf();
}

// ---- naive baseline: textbook 2-D convolution --------------------------------------------------
double cubic(double x) {
    x = std::abs(x);
    if (x < 1) return (1.5 * x - 2.5) * x * x + 1;
    if (x < 2) return ((-0.5 * x + 2.5) * x - 4) * x + 2;
    return 0;
}

// Bicubic (a = -0.5), antialiased when reducing, each output pixel a 2-D weighted sum.
Image naive_resize(const Image& in, int ow, int oh) {
    Image out{ow, oh, std::vector<uint8_t>(size_t(ow) * oh * 3)};
    const double sx = double(in.width) / ow, sy = double(in.height) / oh;
    const double fx = std::max(1.0, sx), fy = std::max(1.0, sy);
    for (int y = 0; y < oh; ++y) {
        const double cy = (y + 0.5) * sy;
        const int y0 = std::max(0, int(cy - 2 * fy + 0.5)),
                  y1 = std::min(in.height, int(cy + 2 * fy + 0.5));
        for (int x = 0; x < ow; ++x) {
            const double cx = (x + 0.5) * sx;
            const int x0 = std::max(0, int(cx - 2 * fx + 0.5));
            const int x1 = std::min(in.width, int(cx + 2 * fx + 0.5));
            double acc[3] = {0, 0, 0}, wsum = 0;
            for (int yy = y0; yy < y1; ++yy) {
                for (int xx = x0; xx < x1; ++xx) {
                    const double w = cubic((xx - cx + 0.5) / fx) * cubic((yy - cy + 0.5) / fy);
                    const uint8_t* p = &in.pixels[(size_t(yy) * in.width + xx) * 3];
                    acc[0] += w * p[0];
                    acc[1] += w * p[1];
                    acc[2] += w * p[2];
                    wsum += w;
                }
            }
            for (int c = 0; c < 3; ++c) {
                const double v = std::round(acc[c] / wsum);
                out.pixels[(size_t(y) * ow + x) * 3 + c] = uint8_t(std::clamp(v, 0.0, 255.0));
            }
        }
    }
    return out;
}

// pad -> resize (by `resize`) -> crop -> normalise, the textbook way (per-pixel float maths).
template <typename Resize>
std::vector<float> steps(const Image& in, const ImageProcessorConfig& cfg, Resize resize) {
    Image sq = cfg.pad_to_square ? mf::model::pad_to_square(in, cfg.pad_color()) : in;
    auto sz = mf::model::shortest_edge_size(sq.width, sq.height, cfg.shortest_edge);
    Image r = resize(sq, sz[0], sz[1]);
    const int cw = cfg.crop_width, ch = cfg.crop_height;
    const int left = (r.width - cw) / 2, top = (r.height - ch) / 2;
    std::vector<float> out(size_t(3) * cw * ch);
    for (int c = 0; c < 3; ++c) {
        for (int y = 0; y < ch; ++y) {
            for (int x = 0; x < cw; ++x) {
                float v = r.pixels[(size_t(y + top) * r.width + x + left) * 3 + c] / 255.0f;
                out[(size_t(c) * ch + y) * cw + x] =
                    (v - float(cfg.image_mean[c])) / float(cfg.image_std[c]);
            }
        }
    }
    return out;
}

void Preprocess(benchmark::State& state) {
    const Image& img = image_1000x800();
    const auto cfg = config(int(state.range(0)));
    for (auto _ : state) {
        auto r = mf::model::preprocess(img, cfg);
        benchmark::DoNotOptimize(r->data());
    }
    state.SetItemsProcessed(state.iterations());
}

void NaivePreprocess(benchmark::State& state) {
    const Image& img = image_1000x800();
    const auto cfg = config(int(state.range(0)));
    for (auto _ : state) {
        auto r = steps(img, cfg, naive_resize);
        benchmark::DoNotOptimize(r.data());
    }
    state.SetItemsProcessed(state.iterations());
}

void StbPreprocess(benchmark::State& state) {
    const Image& img = image_1000x800();
    const auto cfg = config(int(state.range(0)));
    for (auto _ : state) {
        auto r = steps(img, cfg, mf::io::resize_image);
        benchmark::DoNotOptimize(r.data());
    }
    state.SetItemsProcessed(state.iterations());
}

void DecodePreprocess(benchmark::State& state) {
    const std::string& jpg = jpeg_1000x800();
    const auto cfg = config(int(state.range(0)));
    for (auto _ : state) {
        auto d = mf::io::decode_image_bytes(jpg);
        auto r = mf::model::preprocess(d.image, cfg);
        benchmark::DoNotOptimize(r->data());
    }
    state.SetItemsProcessed(state.iterations());
}

void DecodeNaive(benchmark::State& state) {
    const std::string& jpg = jpeg_1000x800();
    const auto cfg = config(int(state.range(0)));
    for (auto _ : state) {
        auto d = mf::io::decode_image_bytes(jpg);
        auto r = steps(d.image, cfg, naive_resize);
        benchmark::DoNotOptimize(r.data());
    }
    state.SetItemsProcessed(state.iterations());
}

void VqaRad(benchmark::State& state) {
    auto files = mf::io::list_files(data_dir() / "vqa_rad/images", {".jpg"});
    if (!files.ok() || files->empty()) {
        state.SkipWithError("no vqa_rad images under ../shared/data");
        return;
    }
    mf::ThreadPool pool(size_t(state.range(0)));
    const auto cfg = ImageProcessorConfig::llava15();
    for (auto _ : state) {
        auto r = mf::model::preprocess_files(*files, cfg, &pool);
        if (!r.ok()) {
            state.SkipWithError(r.status().to_string().c_str());
            return;
        }
        benchmark::DoNotOptimize(r->data());
    }
    state.SetItemsProcessed(int64_t(state.iterations() * files->size()));
}

}  // namespace

BENCHMARK(Preprocess)->Arg(1)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(NaivePreprocess)->Arg(1)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(StbPreprocess)->Arg(1)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(DecodePreprocess)->Arg(1)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(DecodeNaive)->Arg(1)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(VqaRad)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
