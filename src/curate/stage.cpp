#include "curate/stage.h"

#include <fmt/core.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <future>
#include <memory>
#include <optional>
#include <vector>

#include "core/hash.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/text.h"
#include "core/thread_pool.h"
#include "io/line_reader.h"

namespace mf::curate {

bool ShardSpec::owns(std::string_view key) const {
    if (count <= 1) return true;
    return xxh64(key) % count == index;
}

std::string ShardSpec::dir_name() const {
    return fmt::format("{:04d}-of-{:04d}", index, count);
}
std::string ShardSpec::to_string() const {
    return fmt::format("{}/{}", index, count);
}

namespace {

bool parse_u32(std::string_view s, uint32_t* out) {
    s = text::trim(s);
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
    return ec == std::errc() && p == s.data() + s.size();
}

const char* env(const char* name) {
    const char* v = std::getenv(name);
    return (v && *v) ? v : nullptr;
}

}  // namespace

Result<ShardSpec> parse_shard(std::string_view textv) {
    ShardSpec s;
    if (textv == "slurm" || textv == "env") {
        const char* idx = env("SLURM_ARRAY_TASK_ID");
        const char* cnt = env("SLURM_ARRAY_TASK_COUNT");
        if (!idx) {
            idx = env("JOB_COMPLETION_INDEX");
            cnt = env("MF_SHARD_COUNT");
        }
        if (!idx || !cnt) {
            return Status::invalid_argument(
                "--shard " + std::string(textv) +
                ": set SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT (sbatch --array=0-N), or "
                "JOB_COMPLETION_INDEX and MF_SHARD_COUNT");
        }
        uint32_t first = 0;
        if (const char* min = env("SLURM_ARRAY_TASK_MIN")) parse_u32(min, &first);
        if (!parse_u32(idx, &s.index) || !parse_u32(cnt, &s.count))
            return Status::invalid_argument("--shard env: shard index/count are not integers");
        s.index -= std::min(first, s.index);
    } else {
        auto slash = textv.find('/');
        if (slash == std::string_view::npos || !parse_u32(textv.substr(0, slash), &s.index) ||
            !parse_u32(textv.substr(slash + 1), &s.count)) {
            return Status::invalid_argument("--shard '" + std::string(textv) +
                                            "': expected i/N, e.g. 0/4, or 'slurm'");
        }
    }
    if (s.count == 0 || s.index >= s.count) {
        return Status::invalid_argument("--shard " + s.to_string() +
                                        ": need 0 <= i < N (shards are numbered from 0)");
    }
    return s;
}

std::string reject_to_json(const Reject& r) {
    using text::append_json_string;
    std::string o = "{\"id\":";
    append_json_string(o, r.id);
    o += ",\"stage\":";
    append_json_string(o, r.stage);
    o += ",\"reason\":";
    append_json_string(o, r.reason);
    o += ",\"detail\":";
    append_json_string(o, r.detail);
    if (!r.duplicate_of.empty()) {
        o += ",\"duplicate_of\":";
        append_json_string(o, r.duplicate_of);
    }
    o += ",\"file\":";
    append_json_string(o, r.file);
    o += ",\"line\":" + std::to_string(r.line);
    o += ",\"record\":";
    o += r.record_json.empty() ? "null" : r.record_json;
    o += '}';
    return o;
}

void StageStats::merge(const StageStats& o) {
    input += o.input;
    kept += o.kept;
    rejected += o.rejected;
    for (const auto& [k, v] : o.reasons)
        reasons[k] += v;
    bytes_in += o.bytes_in;
    seconds = std::max(seconds, o.seconds);
    for (auto it = o.extra.begin(); it != o.extra.end(); ++it) {
        if (it->is_number_integer() && extra.contains(it.key()) &&
            extra[it.key()].is_number_integer())
            extra[it.key()] = extra[it.key()].get<int64_t>() + it->get<int64_t>();
        else if (it->is_number() && extra.contains(it.key()) && extra[it.key()].is_number())
            extra[it.key()] = extra[it.key()].get<double>() + it->get<double>();
        else if (!extra.contains(it.key()))
            extra[it.key()] = *it;
    }
}

nlohmann::json StageStats::to_json() const {
    nlohmann::json j;
    j["stage"] = stage;
    j["shard"] = shard;
    j["input"] = input;
    j["kept"] = kept;
    j["rejected"] = rejected;
    j["reasons"] = reasons;
    j["bytes_in"] = bytes_in;
    j["seconds"] = seconds;
    j["samples_per_s"] = seconds > 0 ? input / seconds : 0.0;
    j["mb_per_s"] = seconds > 0 ? bytes_in / seconds / 1e6 : 0.0;
    j["extra"] = extra;
    return j;
}

Result<StageStats> StageStats::from_json(const nlohmann::json& j) {
    StageStats s;
    try {
        s.stage = j.at("stage").get<std::string>();
        s.shard = j.value("shard", "0/1");
        s.input = j.at("input").get<uint64_t>();
        s.kept = j.at("kept").get<uint64_t>();
        s.rejected = j.at("rejected").get<uint64_t>();
        s.reasons = j.value("reasons", std::map<std::string, uint64_t>{});
        s.bytes_in = j.value("bytes_in", uint64_t{0});
        s.seconds = j.value("seconds", 0.0);
        if (j.contains("extra")) s.extra = j["extra"];
    } catch (const std::exception& e) {
        return Status::corruption(std::string("stats.json: ") + e.what());
    }
    return s;
}

Result<StageStats> load_stats(const fs::path& path) {
    MF_ASSIGN_OR_RETURN(std::string content, io::read_file(path));
    auto j = nlohmann::json::parse(content, nullptr, false);
    if (j.is_discarded()) return Status::corruption(path.string() + ": not valid JSON");
    auto r = StageStats::from_json(j);
    if (!r.ok()) return r.status().with_context(path.string());
    return r;
}

Status StageWriter::open(const fs::path& out_dir, const ShardSpec& shard, std::string stage) {
    stage_ = std::move(stage);
    sharded_ = shard.sharded();
    dir_ = sharded_ ? out_dir / "shards" / shard.dir_name() : out_dir;
    MF_RETURN_IF_ERROR(io::ensure_dir(dir_));
    // A stale stats.json would make a half-written shard look finished to merge_shards().
    std::error_code ec;
    fs::remove(dir_ / "stats.json", ec);
    MF_RETURN_IF_ERROR(samples_.open(dir_ / "samples.jsonl"));
    MF_RETURN_IF_ERROR(rejects_.open(dir_ / "rejects.jsonl"));
    if (sharded_) {
        MF_RETURN_IF_ERROR(samples_order_.open(dir_ / "samples.order"));
        MF_RETURN_IF_ERROR(rejects_order_.open(dir_ / "rejects.order"));
    }
    return {};
}

void StageWriter::keep(uint64_t ordinal, std::string_view sample_json) {
    samples_.write_line(sample_json);
    if (sharded_) samples_order_.write_line(std::to_string(ordinal));
    ++n_kept_;
}

void StageWriter::reject(uint64_t ordinal, Reject r) {
    if (r.stage.empty()) r.stage = stage_;
    rejects_.write_line(reject_to_json(r));
    if (sharded_) rejects_order_.write_line(std::to_string(ordinal));
    ++n_rejected_;
    ++reasons_[r.reason];
}

Status StageWriter::finish(StageStats& stats) {
    stats.stage = stage_;
    stats.kept = n_kept_;
    stats.rejected = n_rejected_;
    stats.reasons = reasons_;
    MF_CHECK(stats.input == stats.kept + stats.rejected,
             "stage %s: input %llu != kept %llu + rejected %llu", stage_.c_str(),
             (unsigned long long)stats.input, (unsigned long long)stats.kept,
             (unsigned long long)stats.rejected);
    MF_RETURN_IF_ERROR(samples_.close());
    MF_RETURN_IF_ERROR(rejects_.close());
    MF_RETURN_IF_ERROR(samples_order_.close());
    MF_RETURN_IF_ERROR(rejects_order_.close());
    // stats.json last: its presence marks the shard as complete.
    return io::write_file_atomic(dir_ / "stats.json", stats.to_json().dump(2) + "\n");
}

namespace {

// k-way merge of (jsonl, order) pairs by ordinal into one file.
Status merge_stream(const std::vector<fs::path>& shard_dirs, const std::string& base,
                    const fs::path& out_path) {
    struct Src {
        io::LineReader lines, order;
        std::string_view line;
        uint64_t ord = 0;
        bool live = false;
    };
    std::vector<std::unique_ptr<Src>> srcs;
    auto advance = [](Src& s) -> Status {
        std::string_view o;
        bool a = s.lines.next(&s.line);
        bool b = s.order.next(&o);
        if (a != b) {
            return Status::corruption(
                s.lines.path().string() +
                ": line count differs from its .order file; re-run the shard");
        }
        s.live = a;
        if (a) {
            auto [p, ec] = std::from_chars(o.data(), o.data() + o.size(), s.ord);
            if (ec != std::errc())
                return Status::corruption(s.order.path().string() + ": bad ordinal");
        }
        return {};
    };
    for (const auto& d : shard_dirs) {
        auto s = std::make_unique<Src>();
        MF_RETURN_IF_ERROR(s->lines.open(d / (base + ".jsonl")));
        MF_RETURN_IF_ERROR(s->order.open(d / (base + ".order")));
        MF_RETURN_IF_ERROR(advance(*s));
        srcs.push_back(std::move(s));
    }
    io::OutFile out;
    MF_RETURN_IF_ERROR(out.open(out_path));
    for (;;) {
        Src* best = nullptr;
        for (auto& s : srcs)
            if (s->live && (!best || s->ord < best->ord)) best = s.get();
        if (!best) break;
        out.write_line(best->line);
        MF_RETURN_IF_ERROR(advance(*best));
    }
    return out.close();
}

}  // namespace

Status merge_shards(const fs::path& out_dir) {
    fs::path shards = out_dir / "shards";
    std::error_code ec;
    if (!fs::is_directory(shards, ec))
        return Status::not_found(shards.string() +
                                 ": no shard outputs; run the stage with --shard i/N first");
    std::vector<fs::path> dirs;
    uint32_t n = 0;
    for (const auto& e : fs::directory_iterator(shards, ec)) {
        if (!e.is_directory()) continue;
        std::string name = e.path().filename().string();
        auto of = name.find("-of-");
        uint32_t idx = 0, cnt = 0;
        if (of == std::string::npos || !parse_u32(std::string_view(name).substr(0, of), &idx) ||
            !parse_u32(std::string_view(name).substr(of + 4), &cnt))
            continue;
        if (n != 0 && cnt != n) {
            return Status::failed_precondition(shards.string() + ": shards of different counts (" +
                                               std::to_string(n) + " and " + std::to_string(cnt) +
                                               "); remove the stale ones");
        }
        n = cnt;
        dirs.push_back(e.path());
    }
    if (n == 0) return Status::not_found(shards.string() + ": no shard directories");
    std::sort(dirs.begin(), dirs.end());
    StageStats total;
    for (uint32_t i = 0; i < n; ++i) {
        ShardSpec s{i, n};
        fs::path d = shards / s.dir_name();
        if (!fs::exists(d / "stats.json")) {
            return Status::failed_precondition("shard " + s.to_string() +
                                               " is missing or unfinished (" + d.string() +
                                               "/stats.json); run it, then merge again");
        }
        MF_ASSIGN_OR_RETURN(StageStats st, load_stats(d / "stats.json"));
        if (i == 0) total.stage = st.stage;
        total.merge(st);
    }
    dirs.clear();
    for (uint32_t i = 0; i < n; ++i)
        dirs.push_back(shards / ShardSpec{i, n}.dir_name());
    MF_RETURN_IF_ERROR(merge_stream(dirs, "samples", out_dir / "samples.jsonl"));
    MF_RETURN_IF_ERROR(merge_stream(dirs, "rejects", out_dir / "rejects.jsonl"));
    total.shard = "merged " + std::to_string(n);
    return io::write_file_atomic(out_dir / "stats.json", total.to_json().dump(2) + "\n");
}

Result<fs::path> stage_input(const fs::path& path) {
    std::error_code ec;
    if (fs::is_regular_file(path, ec)) return path;
    if (fs::is_directory(path, ec)) {
        fs::path p = path / "samples.jsonl";
        if (fs::is_regular_file(p, ec)) return p;
        if (fs::is_directory(path / "shards", ec))
            return Status::failed_precondition(path.string() +
                                               " holds shard outputs but no samples.jsonl; run "
                                               "`medforge merge " +
                                               path.string() + "` first");
        return Status::not_found(path.string() + ": no samples.jsonl in this directory");
    }
    return Status::not_found(path.string() + ": no such file or directory");
}

Result<StageStats> run_map_stage(const MapStageOptions& opt, const SampleFn& fn) {
    MF_ASSIGN_OR_RETURN(fs::path input, stage_input(opt.input));
    io::LineReader reader;
    MF_RETURN_IF_ERROR(reader.open(input));
    StageWriter writer;
    MF_RETURN_IF_ERROR(writer.open(opt.out_dir, opt.shard, opt.stage));
    ThreadPool pool(opt.n_threads);
    Progress progress(opt.stage, reader.file_size(), "bytes");

    struct Item {
        std::string line;
        uint64_t line_no = 0;
        bool mine = false;
        Sample sample;
        Status parse;
        Verdict verdict;
    };
    // Two batches: while the pool parses and filters one, this thread writes the previous one
    // and reads the next one into the same buffer (reading and writing are serial; overlapping
    // them with the parallel work keeps the cores busy).
    struct Batch {
        std::vector<Item> items;
        size_t n = 0;
        uint64_t bytes = 0;  // input bytes consumed, for the progress display
    };
    Batch batches[2];
    for (auto& b : batches)
        b.items.resize(std::max<size_t>(1, opt.batch_size));
    StageStats stats;
    stats.shard = opt.shard.to_string();
    const std::string file = input.string();
    uint64_t ordinal = 0;
    bool more = true;

    auto read_batch = [&](Batch& batch) -> Status {
        batch.n = 0;
        uint64_t bytes_before = reader.bytes_read();
        std::string_view line;
        while (batch.n < batch.items.size() && (more = reader.next(&line))) {
            if (text::trim(line).empty()) continue;  // blank lines are not records
            Item& it = batch.items[batch.n++];
            it.line.assign(line);
            it.line_no = reader.line_no();
        }
        batch.bytes = reader.bytes_read() - bytes_before;
        return reader.status();
    };
    auto process_batch = [&](Batch& batch) {
        pool.parallel_for(
            batch.n,
            [&](size_t worker, size_t b, size_t e) {
                for (size_t i = b; i < e; ++i) {
                    Item& it = batch.items[i];
                    auto r = sample_from_json(it.line);
                    if (!r.ok()) {
                        it.parse = r.status();
                        // Unparseable records go to the shard of their position.
                        it.mine = opt.shard.owns(file + ":" + std::to_string(it.line_no));
                        continue;
                    }
                    it.parse = Status();
                    it.sample = std::move(r).value();
                    it.mine = opt.shard.owns(it.sample.id);
                    if (it.mine) it.verdict = fn(it.sample, worker);
                }
            },
            64);
    };
    auto write_batch = [&](Batch& batch) {
        for (size_t i = 0; i < batch.n; ++i) {
            Item& it = batch.items[i];
            uint64_t ord = ordinal++;
            if (!it.mine) continue;
            ++stats.input;
            stats.bytes_in += it.line.size() + 1;
            if (!it.parse.ok()) {
                Reject r;
                r.reason = "bad_record";
                r.detail = fmt::format("{}:{}: {}", file, it.line_no, it.parse.message());
                r.file = file;
                r.line = static_cast<int64_t>(it.line_no);
                r.record_json = text::valid_utf8(it.line)
                                    ? text::json_quote(it.line)
                                    : text::json_quote(text::sanitize_utf8(it.line));
                writer.reject(ord, std::move(r));
            } else if (it.verdict.keep) {
                writer.keep(ord, it.line);
            } else {
                Reject r;
                r.id = it.sample.id;
                r.reason = it.verdict.reason;
                r.detail = it.verdict.detail;
                r.duplicate_of = it.verdict.duplicate_of;
                r.file = file;
                r.line = static_cast<int64_t>(it.line_no);
                r.record_json = it.line;
                writer.reject(ord, std::move(r));
            }
        }
        progress.add(batch.bytes);
        batch.n = 0;
        batch.bytes = 0;
    };

    MF_RETURN_IF_ERROR(read_batch(batches[0]));
    int cur = 0;
    while (batches[cur].n > 0) {
        Batch& now = batches[cur];
        Batch& other = batches[1 - cur];
        auto done = std::async(std::launch::async, [&] { process_batch(now); });
        write_batch(other);  // the previous batch (empty on the first round)
        Status st = more ? read_batch(other) : Status();
        done.get();
        if (!st.ok()) return st;
        cur = 1 - cur;
        if (batches[cur].n == 0) {
            write_batch(batches[1 - cur]);
            break;
        }
    }
    progress.finish();
    stats.seconds = progress.elapsed_s();
    MF_RETURN_IF_ERROR(writer.finish(stats));
    return stats;
}

}  // namespace mf::curate
