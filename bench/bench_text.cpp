// Text-path benchmark: ingest (Sample JSONL parse) + text filter, end to end through
// run_map_stage, and the term matcher alone, against baselines measured in the same run.
//
//   bench_text [--n 1000000] [--threads 2] [--lexicon FILE] [--dir DIR] [--keep] [--no-baselines]
//
// The corpus is generated (deterministic seed): N Sample JSONL lines with ~400-byte captions
// mixing lexicon terms, common English words, numbers and punctuation. See bench/README.md.
#include <fmt/core.h>

#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/log.h"
#include "curate/lexicon.h"
#include "curate/stage.h"
#include "curate/term_matcher.h"
#include "curate/text_filter.h"
#include "io/file.h"

namespace fs = std::filesystem;
using namespace mf;
using namespace mf::curate;

namespace {

double cpu_s(clockid_t clk) {
    timespec ts;
    clock_gettime(clk, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
double thread_cpu() {
    return cpu_s(CLOCK_THREAD_CPUTIME_ID);
}
double process_cpu() {
    return cpu_s(CLOCK_PROCESS_CPUTIME_ID);
}

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

const char* kCommon[] = {
    "the",   "of",       "and",     "in",      "a",      "with",      "to",        "was",
    "is",    "for",      "on",      "at",      "by",     "from",      "showing",   "shows",
    "after", "before",   "patient", "image",   "figure", "arrow",     "arrows",    "left",
    "right", "upper",    "lower",   "view",    "large",  "small",     "case",      "year",
    "old",   "man",      "woman",   "which",   "were",   "this",      "that",      "panel",
    "scale", "bar",      "months",  "days",    "follow", "up",        "compared",  "normal",
    "area",  "size",     "white",   "black",   "red",    "seen",      "also",      "there",
    "no",    "evidence", "during",  "between", "within", "both",      "side",      "region",
    "level", "line",     "signal",  "high",    "low",    "increased", "decreased", "marked",
    "note",  "top",      "bottom",  "center",  "part"};

Result<Lexicon> bench_lexicon(const std::string& path) {
    if (!path.empty()) return Lexicon::load(path);
    fs::path def = default_lexicon_path();
    if (fs::exists(def)) return Lexicon::load(def);
    LexiconBuildOptions opt;
    fs::path dic = "/usr/share/hunspell/en_med_glut.dic";
    if (!fs::exists(dic))
        dic = fs::path(MF_SOURCE_DIR) / "../shared/data/vocab/hunspell_en_med_glut.dic";
    opt.sources.push_back({LexiconFormat::kHunspell, dic, true});
    if (fs::exists("/usr/share/dict/american-english"))
        opt.stop_lists.push_back("/usr/share/dict/american-english");
    fs::path common = fs::path(MF_SOURCE_DIR) / "share/medforge/lexicon/medical_common_en.txt";
    if (fs::exists(common)) opt.sources.push_back({LexiconFormat::kWords, common, false});
    return build_lexicon(opt);
}

std::string make_caption(std::mt19937_64& rng, const std::vector<std::string>& terms) {
    std::string c;
    int n_terms_target = 1 + static_cast<int>(rng() % 10);  // 1..10 term mentions
    c += fmt::format("Figure {}. ", 1 + rng() % 9);
    while (c.size() < 400) {
        uint64_t r = rng() % 100;
        if (r < 12 && n_terms_target > 0) {
            const std::string& t = terms[rng() % terms.size()];
            size_t at = c.size();
            c += t;
            if (rng() % 4 == 0)
                c[at] = static_cast<char>(std::toupper(static_cast<unsigned char>(c[at])));
            if (rng() % 5 == 0) c += 's';
            --n_terms_target;
        } else if (r < 17) {
            c += std::to_string(rng() % 100);
            c += (rng() % 2) ? " mm" : "%";
        } else {
            c += kCommon[rng() % (sizeof(kCommon) / sizeof(kCommon[0]))];
        }
        uint64_t p = rng() % 20;
        c += p == 0 ? ". " : p == 1 ? ", " : p == 2 ? " (" : p == 3 ? ") " : " ";
    }
    return c;
}

// The "Python-style" baseline, written without needless allocations: lower-case the text, split
// on non-alphanumerics, look up every 1-, 2- and 3-gram in a hash set of the terms (heterogeneous
// lookup, one reused key buffer), count distinct hits. No plurals, no hyphen rules.
struct SvHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
struct SetLookupBaseline {
    std::unordered_set<std::string, SvHash, std::equal_to<>> terms;
    explicit SetLookupBaseline(const Lexicon& lex) {
        for (const auto& t : lex.terms())
            terms.insert(canonical_term_key(t));
    }
    size_t count(std::string_view text) const {
        thread_local std::string low, key;
        thread_local std::vector<std::pair<size_t, size_t>> toks;
        thread_local std::vector<const std::string*> found;
        low.assign(text);
        for (char& ch : low)
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        toks.clear();
        found.clear();
        size_t i = 0, n = low.size();
        while (i < n) {
            while (i < n && !(std::isalnum(static_cast<unsigned char>(low[i])) ||
                              static_cast<unsigned char>(low[i]) >= 0x80))
                ++i;
            size_t b = i;
            while (i < n && (std::isalnum(static_cast<unsigned char>(low[i])) ||
                             static_cast<unsigned char>(low[i]) >= 0x80))
                ++i;
            if (i > b) toks.emplace_back(b, i - b);
        }
        for (size_t t = 0; t < toks.size(); ++t) {
            key.clear();
            for (size_t k = 0; k < 3 && t + k < toks.size(); ++k) {
                if (k) key += ' ';
                key.append(low, toks[t + k].first, toks[t + k].second);
                auto it = terms.find(std::string_view(key));
                if (it != terms.end() && std::find(found.begin(), found.end(), &*it) == found.end())
                    found.push_back(&*it);
            }
        }
        return found.size();
    }
};

}  // namespace

int main(int argc, char** argv) {
    size_t n = 1000000, threads = 2;
    std::string lexicon_path, dir;
    bool keep = false, baselines = true;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
        if (a == "--n")
            n = std::strtoull(next().c_str(), nullptr, 10);
        else if (a == "--threads")
            threads = std::strtoull(next().c_str(), nullptr, 10);
        else if (a == "--lexicon")
            lexicon_path = next();
        else if (a == "--dir")
            dir = next();
        else if (a == "--keep")
            keep = true;
        else if (a == "--no-baselines")
            baselines = false;
        else {
            fmt::print(stderr,
                       "usage: bench_text [--n N] [--threads T] [--lexicon FILE] [--dir DIR] "
                       "[--keep] [--no-baselines]\n");
            return 2;
        }
    }
    log::set_level(log::Level::kError);
    auto lex = bench_lexicon(lexicon_path);
    if (!lex.ok()) {
        fmt::print(stderr, "bench_text: {}\n", lex.status().to_string());
        return 1;
    }
    if (dir.empty())
        dir =
            (fs::temp_directory_path() / fmt::format("medforge_bench_text_{}", getpid())).string();
    fs::create_directories(dir);
    fs::path corpus = fs::path(dir) / "corpus.jsonl";

    // Term mix: single-word terms and multi-word ones, deterministic.
    std::vector<std::string> all(lex->terms().begin(), lex->terms().end());
    std::mt19937_64 rng(42);
    std::vector<std::string> pick;
    for (int i = 0; i < 3000; ++i)
        pick.push_back(all[rng() % all.size()]);

    double t0 = now_s();
    std::vector<std::string> captions;
    {
        io::OutFile out;
        if (!out.open(corpus).ok()) return 1;
        for (size_t i = 0; i < n; ++i) {
            Sample s;
            s.id = fmt::format("bench:PMC{}:F{}", 1000000 + i / 3, 1 + i % 3);
            s.images = {fmt::format("/data/pmc/PMC{}/fig{}.jpg", 1000000 + i / 3, 1 + i % 3)};
            s.caption = make_caption(rng, pick);
            s.lineage = {"jsonl",
                         fmt::format("PMC{}", 1000000 + i / 3),
                         fmt::format("F{}", 1 + i % 3),
                         "CC BY 4.0",
                         "/data/pmc/bench.jsonl",
                         static_cast<int64_t>(i + 1)};
            out.write_line(sample_to_json(s));
            if (captions.size() < 200000) captions.push_back(std::move(s.caption));
        }
        if (!out.close().ok()) return 1;
    }
    double gen_s = now_s() - t0;
    uint64_t corpus_bytes = fs::file_size(corpus);
    size_t cap_bytes = 0;
    for (const auto& c : captions)
        cap_bytes += c.size();

    t0 = thread_cpu();
    TextFilter filter({}, *lex);
    double build_s = thread_cpu() - t0;
    const TermMatcher& m = filter.matcher();

    fmt::print(
        "bench_text: {} samples, {:.1f} MB corpus (avg line {:.0f} B, caption {:.0f} B), "
        "lexicon {} terms / {} patterns (matcher built in {:.2f}s), corpus made in {:.1f}s, "
        "{} threads\n",
        n, corpus_bytes / 1e6, double(corpus_bytes) / n, double(cap_bytes) / captions.size(),
        lex->size(), m.n_patterns(), build_s, gen_s, threads);

    // 1) End to end: read + parse (sample_from_json) + text filter + write, run_map_stage.
    MapStageOptions opt;
    opt.stage = "filter_text";
    opt.input = corpus;
    opt.n_threads = threads;
    opt.progress = false;
    opt.out_dir = fs::path(dir) / "out_parse_only";
    double c0 = process_cpu();
    auto parse_only = run_map_stage(opt, [](const Sample&, size_t) { return Verdict::kept(); });
    double parse_cpu = process_cpu() - c0;
    opt.out_dir = fs::path(dir) / "out_filter";
    c0 = process_cpu();
    auto e2e = run_map_stage(opt, [&](const Sample& s, size_t) { return filter.apply(s); });
    double e2e_cpu = process_cpu() - c0;
    if (!parse_only.ok() || !e2e.ok()) {
        fmt::print(stderr, "bench_text: run_map_stage failed\n");
        return 1;
    }

    // 2) Matcher alone (1 thread) on captions in memory.
    size_t total = 0;
    t0 = thread_cpu();
    std::vector<uint32_t> found;
    for (const auto& c : captions) {
        found.clear();
        m.find_terms(c, found);
        total += found.size();
    }
    double match_s = thread_cpu() - t0;

    // 2b) Tokenizer alone (the floor of the matcher's cost).
    struct Count : TokenSink {
        size_t n = 0;
        void token(std::string_view, bool, bool) override { ++n; }
    } counter;
    t0 = thread_cpu();
    for (const auto& c : captions)
        tokenize(c, counter);
    double tok_s = thread_cpu() - t0;

    // 3) Baselines on a subset (same captions): set lookup of 1..3-grams, and the naive matcher.
    SetLookupBaseline base(*lex);
    size_t nb = std::min<size_t>(captions.size(), baselines ? 50000 : 1), base_bytes = 0,
           base_total = 0;
    t0 = thread_cpu();
    for (size_t i = 0; i < nb; ++i) {
        base_total += base.count(captions[i]);
        base_bytes += captions[i].size();
    }
    double base_s = thread_cpu() - t0;
    NaiveTermMatcher naive(*lex);
    size_t nn = std::min<size_t>(captions.size(), baselines ? 100 : 1), naive_bytes = 0;
    t0 = thread_cpu();
    for (size_t i = 0; i < nn; ++i) {
        naive.find_terms(captions[i]);
        naive_bytes += captions[i].size();
    }
    double naive_s = thread_cpu() - t0;

    // The machine may be shared: single-thread rows use thread CPU time; the run_map_stage rows
    // give wall-clock figures and, in brackets, the figure per `threads` CPU-seconds (what the
    // stage reaches on that many otherwise idle cores).
    double base_mb = base_bytes / base_s / 1e6;
    auto row = [&](const char* what, double mb_s, double items_s, const char* unit) {
        fmt::print("  {:<50} {:>8.1f} MB/s {:>11.0f} {}/s  x{:.1f}\n", what, mb_s, items_s, unit,
                   mb_s / base_mb);
    };
    auto stage_row = [&](const char* what, const StageStats& st, double cpu) {
        double eff = cpu / threads;  // seconds on `threads` fully available cores
        fmt::print(
            "  {:<50} {:>8.1f} MB/s {:>11.0f} samples/s  [CPU-time based: {:.1f} MB/s, "
            "{:.0f} samples/s]\n",
            what, st.bytes_in / st.seconds / 1e6, st.input / st.seconds, st.bytes_in / eff / 1e6,
            st.input / eff);
    };
    fmt::print("\n  {:<50} {:>13} {:>17}  {}\n", "measure", "throughput", "rate", "vs baseline");
    stage_row("end to end: parse + text filter (run_map_stage)", *e2e, e2e_cpu);
    stage_row("parse only (run_map_stage, keep all)", *parse_only, parse_cpu);
    row("TermMatcher alone, 1 thread (caption bytes)", cap_bytes / match_s / 1e6,
        captions.size() / match_s, "captions");
    row("tokenizer alone, 1 thread", cap_bytes / tok_s / 1e6, captions.size() / tok_s, "captions");
    row("baseline: tokenise + 1..3-gram set lookup, 1 thread", base_mb, nb / base_s, "captions");
    row("baseline: NaiveTermMatcher (per-pattern search)", naive_bytes / naive_s / 1e6,
        nn / naive_s, "captions");
    fmt::print(
        "\n  kept {} / {} ({} too_few_terms); avg distinct terms per caption {:.2f} "
        "(baseline, no plurals: {:.2f})\n",
        e2e->kept, e2e->input, e2e->reasons["too_few_terms"], double(total) / captions.size(),
        double(base_total) / nb);
    if (!keep) fs::remove_all(dir);
    return 0;
}
