#include "reformat/decontam.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <map>
#include <mutex>
#include <set>

#include "core/log.h"
#include "core/thread_pool.h"
#include "eval/eval.h"
#include "io/file.h"
#include "io/phash.h"

namespace mf::reformat {

Result<AgainstSpec> parse_against(std::string_view spec) {
    auto bad = [&](std::string why) {
        return Status::invalid_argument(
            fmt::format("--against '{}': {}; expected <benchmark>:<path>[:<images dir>] with "
                        "benchmark one of: {}",
                        spec, why, fmt::join(eval::benchmark_names(), ", ")));
    };
    std::vector<std::string> parts;
    size_t start = 0;
    while (true) {
        size_t c = spec.find(':', start);
        parts.emplace_back(spec.substr(start, c == std::string_view::npos ? c : c - start));
        if (c == std::string_view::npos) break;
        start = c + 1;
    }
    if (parts.size() < 2 || parts.size() > 3) return bad("wrong number of ':'-separated fields");
    AgainstSpec a;
    a.benchmark = parts[0];
    const auto& names = eval::benchmark_names();
    if (std::find(names.begin(), names.end(), a.benchmark) == names.end())
        return bad(fmt::format("unknown benchmark '{}'", a.benchmark));
    if (parts[1].empty()) return bad("empty path");
    a.path = parts[1];
    std::error_code ec;
    if (!fs::exists(a.path, ec)) return bad(fmt::format("'{}' does not exist", parts[1]));
    if (parts.size() == 3) {
        if (parts[2].empty()) return bad("empty images dir");
        a.images_dir = parts[2];
        if (!fs::is_directory(a.images_dir, ec))
            return bad(fmt::format("images dir '{}' is not a directory", parts[2]));
    } else {
        fs::path guess = a.path.parent_path() / "images";
        if (fs::is_directory(guess, ec)) a.images_dir = guess;
    }
    return a;
}

std::string normalize_for_overlap(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    bool space = true;  // suppress leading spaces
    for (char ch : s) {
        unsigned char c = static_cast<unsigned char>(ch);
        bool sep = c < 0x80 && !std::isalnum(c);
        if (sep) {
            if (!space) out.push_back(' ');
            space = true;
        } else {
            out.push_back(c < 0x80 ? static_cast<char>(std::tolower(c)) : ch);
            space = false;
        }
    }
    if (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

std::vector<std::string> overlap_words(std::string_view s) {
    std::vector<std::string> words;
    std::string n = normalize_for_overlap(s);
    size_t start = 0;
    while (start < n.size()) {
        size_t e = n.find(' ', start);
        if (e == std::string::npos) e = n.size();
        words.emplace_back(n.substr(start, e - start));
        start = e + 1;
    }
    return words;
}

namespace {

const std::vector<double> kBenchCrops = {0.0, 0.05, 0.10};

std::string join_words(const std::vector<std::string>& w, size_t b, size_t e) {
    std::string s;
    for (size_t i = b; i < e; ++i) {
        if (i > b) s.push_back(' ');
        s += w[i];
    }
    return s;
}

}  // namespace

Result<BenchmarkIndex> load_benchmark_index(const std::vector<AgainstSpec>& specs,
                                            const DecontamParams& p, size_t n_threads) {
    BenchmarkIndex idx;
    struct Pending {
        std::string benchmark, item_id, file;
    };
    std::vector<Pending> pending;
    std::set<std::string> seen_files;
    for (const AgainstSpec& a : specs) {
        eval::LoadOptions lo;
        lo.all_questions = true;
        lo.include_open = true;
        MF_ASSIGN_OR_RETURN(eval::Dataset ds, eval::load_benchmark(a.benchmark, a.path, lo));
        size_t n_img = 0, n_q = 0;
        std::set<std::string> seen_q;
        for (const eval::EvalItem& it : ds.items) {
            if (p.check_text && !it.question.empty()) {
                BenchQuestion q{a.benchmark, it.id, it.question, overlap_words(it.question)};
                std::string key = join_words(q.words, 0, q.words.size());
                if (!q.words.empty() && seen_q.insert(key).second) {
                    idx.questions.push_back(std::move(q));
                    ++n_q;
                }
            }
            if (!p.check_images || a.images_dir.empty()) continue;
            for (const std::string& img : it.images) {
                fs::path f = fs::path(img).is_absolute() ? fs::path(img) : a.images_dir / img;
                std::string fs_str = f.lexically_normal().string();
                if (!seen_files.insert(fs_str).second) continue;
                pending.push_back({a.benchmark, it.id, fs_str});
                ++n_img;
            }
        }
        idx.summary.push_back(fmt::format("{}: {} items, {} distinct images, {} distinct questions",
                                          a.benchmark, ds.items.size(), n_img, n_q));
    }
    std::vector<std::vector<io::PerceptualHash>> hashes(pending.size());
    std::vector<std::string> errors(pending.size());
    ThreadPool pool(n_threads);
    pool.parallel_for(pending.size(), [&](size_t, size_t b, size_t e) {
        for (size_t i = b; i < e; ++i) {
            io::DecodeResult d = io::decode_image_file(pending[i].file);
            if (!d.ok()) {
                errors[i] = fmt::format("{}: {}: {}", pending[i].file,
                                        io::image_error_reason(d.error), d.detail);
                continue;
            }
            hashes[i] = io::hash_with_crops(d.image, kBenchCrops);
        }
    });
    for (size_t i = 0; i < pending.size(); ++i) {
        if (!errors[i].empty()) {
            idx.unreadable.push_back(errors[i]);
            continue;
        }
        for (size_t c = 0; c < hashes[i].size(); ++c)
            idx.images.push_back({pending[i].benchmark, pending[i].item_id, pending[i].file,
                                  hashes[i][c].phash, hashes[i][c].dhash, kBenchCrops[c]});
    }
    return idx;
}

DecontamIndex::DecontamIndex(BenchmarkIndex bench, DecontamParams p)
    : bench_(std::move(bench)), p_(p) {
    const size_t n = static_cast<size_t>(std::max(1, p_.ngram));
    for (size_t qi = 0; qi < bench_.questions.size(); ++qi) {
        const auto& w = bench_.questions[qi].words;
        exact_.emplace(join_words(w, 0, w.size()), qi);
        if (w.size() >= n) {
            for (size_t i = 0; i + n <= w.size(); ++i)
                ngrams_.emplace_back(join_words(w, i, i + n), qi);
        } else if (static_cast<int>(w.size()) >= p_.min_question_words) {
            short_questions_.push_back(qi);
        }
    }
    std::sort(ngrams_.begin(), ngrams_.end());
}

std::vector<Overlap> DecontamIndex::image_overlaps(const curate::Sample& s, const fs::path& base,
                                                   int* unreadable_images) const {
    std::vector<Overlap> out;
    if (!p_.check_images || bench_.images.empty()) return out;
    for (const std::string& img : s.images) {
        fs::path f = fs::path(img).is_absolute() ? fs::path(img) : base / img;
        io::HashResult h = io::hash_image_file(f);
        if (!h.ok()) {
            if (unreadable_images) ++*unreadable_images;
            continue;
        }
        const BenchImage* best = nullptr;
        int best_p = 65, best_d = 65;
        for (const BenchImage& b : bench_.images) {
            int dp = io::hamming_distance(h.hash.phash, b.phash);
            if (dp > p_.phash_threshold) continue;
            int dd = io::hamming_distance(h.hash.dhash, b.dhash);
            if (dd > p_.dhash_threshold) continue;
            if (dp + dd < best_p + best_d) {
                best = &b;
                best_p = dp;
                best_d = dd;
            }
        }
        if (best) {
            Overlap o;
            o.kind = "image";
            o.benchmark = best->benchmark;
            o.item_id = best->item_id;
            o.bench_file = best->file;
            o.bench_crop = best->crop;
            o.sample_file = img;
            o.phash_distance = best_p;
            o.dhash_distance = best_d;
            out.push_back(std::move(o));
        }
    }
    return out;
}

std::vector<Overlap> DecontamIndex::text_overlaps(const curate::Sample& s) const {
    std::vector<Overlap> out;
    if (!p_.check_text || bench_.questions.empty()) return out;
    std::vector<std::string> w = overlap_words(curate::sample_context(s, true));
    std::set<size_t> hit;
    auto add = [&](size_t qi, std::string shared) {
        if (!hit.insert(qi).second) return;
        const BenchQuestion& q = bench_.questions[qi];
        Overlap o;
        o.kind = "text";
        o.benchmark = q.benchmark;
        o.item_id = q.item_id;
        o.shared_text = std::move(shared);
        out.push_back(std::move(o));
    };
    const size_t n = static_cast<size_t>(std::max(1, p_.ngram));
    for (size_t i = 0; i + n <= w.size() && !ngrams_.empty(); ++i) {
        std::string g = join_words(w, i, i + n);
        auto it = std::lower_bound(ngrams_.begin(), ngrams_.end(), std::make_pair(g, size_t{0}));
        for (; it != ngrams_.end() && it->first == g; ++it)
            add(it->second, g);
    }
    // Exact normalised match of the caption or a mention with any question, whatever its length.
    auto exact = [&](std::string_view t) {
        std::string n = normalize_for_overlap(t);
        if (n.empty()) return;
        auto it = exact_.find(n);
        if (it != exact_.end()) add(it->second, n);
    };
    exact(s.caption);
    for (const auto& m : s.mentions)
        exact(m);
    if (!short_questions_.empty()) {
        std::string text = " " + join_words(w, 0, w.size()) + " ";
        for (size_t qi : short_questions_) {
            const auto& qw = bench_.questions[qi].words;
            std::string q = " " + join_words(qw, 0, qw.size()) + " ";
            if (text.find(q) != std::string::npos) add(qi, q.substr(1, q.size() - 2));
        }
    }
    return out;
}

namespace {

std::string overlap_detail(const Overlap& o) {
    if (o.kind == "image")
        return fmt::format(
            "image '{}' matches {} item {} image '{}'{} (pHash distance {}, dHash distance {}); "
            "drop it or pass --no-images / raise the thresholds if this is a false positive",
            o.sample_file, o.benchmark, o.item_id, o.bench_file,
            o.bench_crop > 0 ? fmt::format(" cropped {:.0f}%", o.bench_crop * 100) : "",
            o.phash_distance, o.dhash_distance);
    return fmt::format("caption/mentions share \"{}\" with {} item {} question", o.shared_text,
                       o.benchmark, o.item_id);
}

nlohmann::json overlap_json(const std::string& id, const Overlap& o) {
    nlohmann::json j = {
        {"sample", id}, {"kind", o.kind}, {"benchmark", o.benchmark}, {"item", o.item_id}};
    if (o.kind == "image") {
        j["sample_image"] = o.sample_file;
        j["benchmark_image"] = o.bench_file;
        j["phash_distance"] = o.phash_distance;
        j["dhash_distance"] = o.dhash_distance;
        j["benchmark_crop"] = o.bench_crop;
    } else {
        j["shared_text"] = o.shared_text;
    }
    return j;
}

std::string md_cell(std::string s) {
    for (char& c : s)
        if (c == '|' || c == '\n') c = ' ';
    return s;
}

}  // namespace

Result<curate::StageStats> run_decontam(const DecontamOptions& opt) {
    if (opt.against.empty())
        return Status::invalid_argument("decontam: give at least one --against benchmark");
    MF_ASSIGN_OR_RETURN(fs::path input, curate::stage_input(opt.input));
    MF_ASSIGN_OR_RETURN(BenchmarkIndex bench,
                        load_benchmark_index(opt.against, opt.params, opt.n_threads));
    for (const std::string& s : bench.summary)
        log::info("decontam: {}", s);
    for (const std::string& u : bench.unreadable)
        log::warn("decontam: benchmark image not hashed: {}", u);
    const DecontamIndex index(std::move(bench), opt.params);
    const fs::path base = input.parent_path();

    std::mutex mu;
    std::vector<std::pair<std::string, Overlap>> found;
    std::atomic<int64_t> unreadable{0};
    curate::MapStageOptions mo;
    mo.stage = "decontam";
    mo.input = input;
    mo.out_dir = opt.out_dir;
    mo.shard = opt.shard;
    mo.n_threads = opt.n_threads;
    mo.batch_size = 256;
    mo.progress = opt.progress;
    auto fn = [&](const curate::Sample& s, size_t) -> curate::Verdict {
        int bad = 0;
        std::vector<Overlap> img = index.image_overlaps(s, base, &bad);
        std::vector<Overlap> txt = index.text_overlaps(s);
        if (bad) unreadable += bad;
        if (img.empty() && txt.empty()) return curate::Verdict::kept();
        curate::Verdict v =
            img.empty() ? curate::Verdict::drop("contaminated_text", overlap_detail(txt[0]))
                        : curate::Verdict::drop("contaminated_image", overlap_detail(img[0]));
        size_t more = img.size() + txt.size() - 1;
        if (more) v.detail += fmt::format(" (+{} more overlaps in overlap_report.json)", more);
        std::lock_guard lock(mu);
        for (auto& o : img)
            found.emplace_back(s.id, std::move(o));
        for (auto& o : txt)
            found.emplace_back(s.id, std::move(o));
        return v;
    };
    MF_ASSIGN_OR_RETURN(curate::StageStats stats, curate::run_map_stage(mo, fn));
    std::stable_sort(found.begin(), found.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });

    // Report + extra stats, next to the stage's files.
    const fs::path dir =
        opt.shard.sharded() ? opt.out_dir / "shards" / opt.shard.dir_name() : opt.out_dir;
    std::map<std::string, std::map<std::string, int64_t>> per_bench;  // benchmark -> kind -> n
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& [id, o] : found) {
        ++per_bench[o.benchmark][o.kind];
        arr.push_back(overlap_json(id, o));
    }
    const auto& b = index.bench();
    nlohmann::json extra = {
        {"benchmarks", b.summary},
        {"benchmark_image_hashes", b.images.size()},
        {"benchmark_crops", kBenchCrops},
        {"benchmark_images_unreadable", b.unreadable.size()},
        {"benchmark_questions", b.questions.size()},
        {"sample_images_unreadable", unreadable.load()},
        {"overlaps", found.size()},
        {"overlaps_by_benchmark", per_bench},
        {"phash_threshold", opt.params.phash_threshold},
        {"dhash_threshold", opt.params.dhash_threshold},
        {"ngram", opt.params.ngram},
        {"min_question_words", opt.params.min_question_words},
    };
    stats.extra = extra;
    MF_RETURN_IF_ERROR(io::write_file_atomic(dir / "stats.json", stats.to_json().dump(2) + "\n"));
    nlohmann::json report = {{"input", input.string()},
                             {"benchmarks", b.summary},
                             {"unreadable_benchmark_images", b.unreadable},
                             {"params", extra},
                             {"overlaps", arr}};
    MF_RETURN_IF_ERROR(io::write_file_atomic(dir / "overlap_report.json", report.dump(2) + "\n"));
    std::string md = "# Decontamination overlap report\n\n";
    md += fmt::format("Input: `{}`; {} samples, {} kept, {} rejected.\n\n", input.string(),
                      stats.input, stats.kept, stats.rejected);
    md += fmt::format(
        "Thresholds: pHash <= {}, dHash <= {}; text: {}-gram, whole question when shorter "
        "(>= {} words).\n\n",
        opt.params.phash_threshold, opt.params.dhash_threshold, opt.params.ngram,
        opt.params.min_question_words);
    md += "## Benchmarks\n\n";
    for (const auto& s : b.summary)
        md += "- " + s + "\n";
    for (const auto& [bn, kinds] : per_bench)
        for (const auto& [k, n] : kinds)
            md += fmt::format("- overlaps with {} ({}): {}\n", bn, k, n);
    md +=
        "\n## Overlaps\n\n| sample | kind | benchmark | item | evidence |\n|---|---|---|---|---|\n";
    for (const auto& [id, o] : found) {
        std::string ev = o.kind == "image"
                             ? fmt::format("`{}` ~ `{}` (pHash {}, dHash {})", o.sample_file,
                                           o.bench_file, o.phash_distance, o.dhash_distance)
                             : fmt::format("\"{}\"", o.shared_text);
        md += fmt::format("| {} | {} | {} | {} | {} |\n", md_cell(id), o.kind, o.benchmark,
                          md_cell(o.item_id), md_cell(ev));
    }
    MF_RETURN_IF_ERROR(io::write_file_atomic(dir / "overlap_report.md", md));
    return stats;
}

}  // namespace mf::reformat
