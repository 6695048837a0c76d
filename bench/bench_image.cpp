// Image probing and decoding throughput on the real files of ../shared/data (vqa_rad JPEGs,
// medicat and MMMU PNGs), looped. Each figure is in images/s (items_per_second), measured in the
// same run as its naive baseline:
//   Probe/*          probe_image_file: reads only the header (first 16 KB at most)
//   NaiveProbe/*     read the whole file, then stbi_info_from_memory
//   Decode/*         decode_image_file (libturbojpeg for JPEG, stb for PNG)
//   NaiveDecode/*    read the whole file, then stbi_load_from_memory (stb for every format)
//   DecodeResize/*   decode_image_file + resize_image to 336x336 (Catmull-Rom, linear)
// Arg: 0 = JPEG set (203 files), 1 = PNG set (40 files). One iteration is one pass over the
// set. ->Threads(2) runs two threads, each over the whole set; images/s is their sum.
#include <benchmark/benchmark.h>
#include <stb/stb_image.h>

#include <atomic>
#include <filesystem>

#include "io/file.h"
#include "io/image.h"

namespace fs = std::filesystem;

namespace {

const std::vector<fs::path>& files(int set) {
    static const std::vector<fs::path> jpeg = [] {
        fs::path d = fs::path(MF_SOURCE_DIR) / ".." / "shared" / "data";
        auto r = mf::io::list_files(d / "vqa_rad/images", {".jpg"});
        return r.ok() ? *r : std::vector<fs::path>{};
    }();
    static const std::vector<fs::path> png = [] {
        fs::path d = fs::path(MF_SOURCE_DIR) / ".." / "shared" / "data";
        std::vector<fs::path> out;
        for (const char* sub : {"medicat_sample/figures", "mmmu/images"}) {
            auto r = mf::io::list_files(d / sub, {".png"});
            if (r.ok()) out.insert(out.end(), r->begin(), r->end());
        }
        return out;
    }();
    return set == 0 ? jpeg : png;
}

template <typename Fn>
void loop(benchmark::State& state, Fn fn) {
    const auto& fl = files(int(state.range(0)));
    if (fl.empty()) {
        state.SkipWithError("no files under ../shared/data");
        return;
    }
    // One iteration = one pass over every file, so each figure covers the same images.
    size_t bytes = 0;
    for (auto _ : state) {
        for (const fs::path& f : fl) {
            if (!fn(f, bytes)) {
                state.SkipWithError(("failed on " + f.string()).c_str());
                return;
            }
        }
    }
    state.SetItemsProcessed(int64_t(state.iterations() * fl.size()));
    state.SetBytesProcessed(int64_t(bytes));
}

void Probe(benchmark::State& state) {
    loop(state, [](const fs::path& f, size_t&) {
        auto p = mf::io::probe_image_file(f);
        benchmark::DoNotOptimize(p.info.width);
        return p.ok();
    });
}

void NaiveProbe(benchmark::State& state) {
    loop(state, [](const fs::path& f, size_t& bytes) {
        auto b = mf::io::read_file(f);
        if (!b.ok()) return false;
        bytes += b->size();
        int w, h, c;
        return stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(b->data()), int(b->size()),
                                     &w, &h, &c) == 1;
    });
}

void Decode(benchmark::State& state) {
    loop(state, [](const fs::path& f, size_t& bytes) {
        auto d = mf::io::decode_image_file(f);
        bytes += d.image.pixels.size();
        return d.ok();
    });
}

void NaiveDecode(benchmark::State& state) {
    loop(state, [](const fs::path& f, size_t& bytes) {
        auto b = mf::io::read_file(f);
        if (!b.ok()) return false;
        int w, h, c;
        stbi_uc* px = stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(b->data()),
                                            int(b->size()), &w, &h, &c, 3);
        if (!px) return false;
        bytes += size_t(w) * h * 3;
        stbi_image_free(px);
        return true;
    });
}

void DecodeResize(benchmark::State& state) {
    loop(state, [](const fs::path& f, size_t& bytes) {
        auto d = mf::io::decode_image_file(f);
        if (!d.ok()) return false;
        auto r = mf::io::resize_image(d.image, 336, 336);
        bytes += r.pixels.size();
        return !r.pixels.empty();
    });
}

}  // namespace

BENCHMARK(Probe)->Arg(0)->Arg(1)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(NaiveProbe)->Arg(0)->Arg(1)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(Decode)->Arg(0)->Arg(1)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(NaiveDecode)->Arg(0)->Arg(1)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(DecodeResize)->Arg(0)->Arg(1)->Threads(1)->UseRealTime();

BENCHMARK_MAIN();
