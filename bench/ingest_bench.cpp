// Ingest throughput on a generated corpus (captions ~400 bytes), against a baseline measured in
// the same run: reading the same file line by line and parsing each line with simdjson (the least
// any JSONL reader must do). Counters: bytes/s and items/s; the ratio to the baseline is what to
// compare across machines. Corpus size: MF_BENCH_RECORDS (default 100000).
#include <benchmark/benchmark.h>
#include <simdjson.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "curate/ingest.h"
#include "io/line_reader.h"

namespace {

namespace fs = std::filesystem;

size_t n_records() {
    const char* e = std::getenv("MF_BENCH_RECORDS");
    return e ? std::strtoull(e, nullptr, 10) : 100000;
}

fs::path bench_dir() {
    static fs::path dir = [] {
        fs::path d = fs::temp_directory_path() / ("mf_ingest_bench_" + std::to_string(::getpid()));
        fs::create_directories(d);
        return d;
    }();
    return dir;
}

std::string caption(std::mt19937& rng) {
    static const char* kWords[] = {"axial",
                                   "contrast-enhanced",
                                   "computed",
                                   "tomography",
                                   "of",
                                   "the",
                                   "abdomen",
                                   "shows",
                                   "a",
                                   "cystic",
                                   "lesion",
                                   "in",
                                   "left",
                                   "kidney",
                                   "with",
                                   "thin",
                                   "septa",
                                   "arrow",
                                   "MRI",
                                   "T2-weighted",
                                   "hyperintense",
                                   "signal",
                                   "patient",
                                   "follow-up"};
    std::string c;
    while (c.size() < 400) {
        if (!c.empty()) c += ' ';
        c += kWords[rng() % (sizeof(kWords) / sizeof(kWords[0]))];
    }
    return c;
}

// Sample JSONL and PMC-OA JSONL files of n records.
const fs::path& corpus(bool pmc_oa) {
    static fs::path paths[2];
    fs::path& p = paths[pmc_oa];
    if (!p.empty()) return p;
    p = bench_dir() / (pmc_oa ? "pmc_oa.jsonl" : "samples.jsonl");
    std::ofstream f(p, std::ios::binary);
    std::mt19937 rng(42);
    for (size_t i = 0; i < n_records(); ++i) {
        std::string id = std::to_string(i);
        if (pmc_oa) {
            f << "{\"image\":\"PMC" << id << "_F1.jpg\",\"caption\":\"" << caption(rng) << "\"}\n";
        } else {
            f << "{\"id\":\"gen:" << id << "\",\"images\":[\"img/" << id << ".png\"],\"caption\":\""
              << caption(rng) << "\",\"mentions\":[]}\n";
        }
    }
    return p;
}

void set_counters(benchmark::State& state, const fs::path& p) {
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * fs::file_size(p)));
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n_records()));
}

void BM_Baseline_LinesPlusSimdjson(benchmark::State& state) {
    const fs::path& p = corpus(false);
    simdjson::dom::parser parser;
    for (auto _ : state) {
        mf::io::LineReader r;
        if (!r.open(p).ok()) state.SkipWithError("open");
        std::string_view line;
        size_t n = 0;
        while (r.next(&line)) {
            simdjson::padded_string ps(line);
            simdjson::dom::element e;
            n += parser.parse(ps).get(e) == simdjson::SUCCESS;
        }
        benchmark::DoNotOptimize(n);
    }
    set_counters(state, p);
}

void run(benchmark::State& state, const char* format, bool pmc_oa) {
    const fs::path& p = corpus(pmc_oa);
    for (auto _ : state) {
        mf::curate::IngestRunOptions o;
        o.format = format;
        o.input = p;
        o.out_dir = bench_dir() / (std::string("out_") + format);
        o.progress = false;
        o.adapter.threads = static_cast<size_t>(state.range(0));
        auto st = mf::curate::run_ingest(o);
        if (!st.ok()) state.SkipWithError(st.status().to_string().c_str());
    }
    set_counters(state, p);
}

void BM_Ingest_Jsonl(benchmark::State& state) {
    run(state, "jsonl", false);
}
void BM_Ingest_PmcOa(benchmark::State& state) {
    run(state, "pmc-oa", true);
}

BENCHMARK(BM_Baseline_LinesPlusSimdjson)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Ingest_Jsonl)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Ingest_PmcOa)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    std::error_code ec;
    fs::remove_all(bench_dir(), ec);
    return 0;
}
