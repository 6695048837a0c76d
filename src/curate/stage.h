// The stage framework every curation stage runs on.
//
// A stage reads records and writes two streams into its output directory:
//   samples.jsonl  kept samples (Sample JSONL, kept lines copied byte for byte where possible)
//   rejects.jsonl  one Reject per dropped record, with reason code, detail, file:line and the
//                  record itself, so nothing is lost
//   stats.json     counts (input, kept, rejected per reason), bytes, seconds, throughput
// and `input == kept + rejected` always holds.
//
// Sharding: with --shard i/N a process handles only the records whose key (the sample id) hashes
// to i (xxh64 % N), and writes into <out>/shards/<i>-of-<N>/ the same three files plus
// samples.order / rejects.order (the record's ordinal in the full input, one per line).
// merge_shards() interleaves the shard outputs back into input order, so a merged run is byte
// for byte the same as a single-process run (stats.json differs only in timings).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "curate/sample.h"
#include "io/file.h"

namespace mf::curate {

namespace fs = std::filesystem;

struct ShardSpec {
    uint32_t index = 0;
    uint32_t count = 1;

    bool sharded() const { return count > 1; }
    bool owns(std::string_view key) const;
    std::string dir_name() const;   // "0002-of-0004"
    std::string to_string() const;  // "2/4"
};

// Parses "i/N" (0 <= i < N). Also accepts "slurm" / "env": i and N from SLURM_ARRAY_TASK_ID and
// SLURM_ARRAY_TASK_COUNT, or JOB_COMPLETION_INDEX (Kubernetes indexed jobs) with MF_SHARD_COUNT.
Result<ShardSpec> parse_shard(std::string_view text);

struct Reject {
    std::string id;            // sample id, or "" when the record could not be parsed
    std::string stage;         // stage name that rejected it
    std::string reason;        // stable reason code (snake_case), counted in stats
    std::string detail;        // human explanation, naming the field / file / what to do
    std::string duplicate_of;  // dedup: id of the kept sample this one duplicates
    std::string file;          // input file
    int64_t line = 0;          // 1-based input line (0 when not line-based)
    std::string record_json;   // the record as JSON (a sample object, or a JSON string of raw text)
};
std::string reject_to_json(const Reject& r);

// A filter's decision on one sample.
struct Verdict {
    bool keep = true;
    std::string reason;  // required when !keep
    std::string detail;
    std::string duplicate_of;

    static Verdict kept() { return {}; }
    static Verdict drop(std::string reason, std::string detail = {}) {
        Verdict v;
        v.keep = false;
        v.reason = std::move(reason);
        v.detail = std::move(detail);
        return v;
    }
};

struct StageStats {
    std::string stage;
    std::string shard = "0/1";
    uint64_t input = 0;
    uint64_t kept = 0;
    uint64_t rejected = 0;
    std::map<std::string, uint64_t> reasons;  // reason code -> count
    uint64_t bytes_in = 0;
    double seconds = 0;
    nlohmann::json extra = nlohmann::json::object();  // stage-specific figures

    void count_reject(const std::string& reason) {
        ++rejected;
        ++reasons[reason];
    }
    // Adds counts of `o` (for merging shards / workers). Extra objects: numbers are summed.
    void merge(const StageStats& o);
    nlohmann::json to_json() const;
    static Result<StageStats> from_json(const nlohmann::json& j);
};

Result<StageStats> load_stats(const fs::path& stats_json);

// Writes the outputs of one stage (one shard of it). Records must arrive in increasing ordinal.
class StageWriter {
  public:
    Status open(const fs::path& out_dir, const ShardSpec& shard, std::string stage);
    void keep(uint64_t ordinal, std::string_view sample_json);
    void reject(uint64_t ordinal, Reject r);
    // Writes stats.json (after setting counts it tracked itself) and closes the files.
    Status finish(StageStats& stats);

    // Where this writer's files go (out_dir or out_dir/shards/<i>-of-<N>).
    const fs::path& dir() const { return dir_; }
    uint64_t n_kept() const { return n_kept_; }
    uint64_t n_rejected() const { return n_rejected_; }
    const std::map<std::string, uint64_t>& reasons() const { return reasons_; }

  private:
    fs::path dir_;
    std::string stage_;
    bool sharded_ = false;
    io::OutFile samples_, rejects_, samples_order_, rejects_order_;
    uint64_t n_kept_ = 0, n_rejected_ = 0;
    std::map<std::string, uint64_t> reasons_;
};

// Merges <out_dir>/shards/*-of-N/ into <out_dir>/{samples,rejects}.jsonl and stats.json.
// Fails (naming the missing shard) unless all N shards are present and finished.
Status merge_shards(const fs::path& out_dir);

// The input file of a stage: `path` itself when it is a file, else path/samples.jsonl.
Result<fs::path> stage_input(const fs::path& path);

// ---- map stages: one decision per sample, independent of the others (filters) ----

// Called on worker threads; must be thread-safe. worker_idx < n_threads, for per-worker state.
using SampleFn = std::function<Verdict(const Sample& sample, size_t worker_idx)>;

struct MapStageOptions {
    std::string stage;  // name for stats, rejects and the data card
    fs::path input;     // Sample JSONL file or a stage directory
    fs::path out_dir;
    ShardSpec shard;
    size_t n_threads = 0;      // 0 = all cores
    size_t batch_size = 4096;  // records per parallel batch
    bool progress = true;
};

// Streams the input in batches, applies `fn` in parallel, writes kept lines verbatim and
// rejects in input order. Malformed lines are rejected with reason "bad_record" naming
// file:line and the problem. Returns the stats it wrote.
Result<StageStats> run_map_stage(const MapStageOptions& opt, const SampleFn& fn);

}  // namespace mf::curate
