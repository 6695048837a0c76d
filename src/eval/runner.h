// Running a benchmark against an OpenAI-compatible endpoint: cached, resumable, shardable.
//
// run_eval() loads the benchmark, builds one chat request per item (images first as data URLs,
// then the §9.2 prompt), sends only the items whose response is not in the SQLite cache, scores
// every item with the chosen extractor and writes results.json, results.md and report.html into
// params.out. The cache key is SHA-256(item id, model, protocol hash, prompt), so a re-run with
// the same protocol sends nothing, and changing the extractor re-scores without re-asking.
#pragma once

#include <sqlite3.h>
#include <atomic>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/eval.h"
#include "llm/client.h"

namespace mf::eval {

struct Decoding {
    double temperature = 0.2;  // paper: do_sample=True, temperature 0.2 (§9.3)
    double top_p = -1;         // < 0: not sent
    int max_tokens = 256;      // paper: max_new_tokens 256
    int64_t seed = 42;         // paper: set_seed(42); < 0: not sent
};

struct RunParams {
    std::string benchmark;
    fs::path data;
    fs::path images;         // "" = the data file's directory
    bool no_images = false;  // text-only requests (recorded in the card)
    std::string endpoint;    // base URL, e.g. http://127.0.0.1:8000/v1
    std::string model;
    fs::path out;
    Extractor extractor = Extractor::kRobust;
    int64_t limit = -1;  // first N items (before sharding); < 0 = all
    Decoding decoding;
    Shard shard;
    std::vector<fs::path> reuse_caches;  // extra (read-only) caches, e.g. other shards' outputs
    LoadOptions load;
    int bootstrap_resamples = 1000;
    uint64_t bootstrap_seed = 1234;
    std::string medforge_version = "dev";
};

struct RunSummary {
    int64_t items = 0;
    int64_t sent = 0;    // requests sent in this run
    int64_t cached = 0;  // responses taken from a cache
    int64_t failed = 0;  // requests that failed (scored wrong; re-run retries them)
    int64_t missing_images = 0;
    nlohmann::json results;  // the results.json document
};

// SQLite (WAL) response cache.
class ResponseCache {
  public:
    ResponseCache() = default;
    ~ResponseCache();
    ResponseCache(const ResponseCache&) = delete;
    ResponseCache& operator=(const ResponseCache&) = delete;
    Status open(const fs::path& path, bool read_only = false);
    std::optional<std::string> get(const std::string& key);
    Status put(const std::string& key, const std::string& item_id, const std::string& model,
               const std::string& protocol, const std::string& content,
               const std::string& finish_reason);
    int64_t size();

  private:
    sqlite3* db_ = nullptr;
};

// The protocol hash: SHA-256 over the prompt template, instruction, decoding and image mode.
std::string protocol_hash(const RunParams& p);

// Runs the evaluation with `client` (tests inject a client; the CLI makes an HTTP one).
Result<RunSummary> run_eval(const RunParams& params, llm::LlmClient& client,
                            const std::atomic<bool>* cancel = nullptr);

// Scores responses (already obtained) into the results document. `responses[i]` belongs to
// ds.items[i]; nullopt = no response (failed request, scored wrong).
nlohmann::json score_run(const Dataset& ds,
                         const std::vector<std::optional<std::string>>& responses,
                         const RunParams& params, const nlohmann::json& card);

// Writes results.json, results.md and report.html into dir.
Status write_reports(const nlohmann::json& results, const fs::path& dir);
std::string results_markdown(const nlohmann::json& results);
std::string results_html(const nlohmann::json& results);

// ---- compare ----

// The paper's published tables (paper-spec §9.5): table name -> model -> column -> value (%).
struct PaperTable {
    std::string name;       // "Table 2 (medical VQA)"
    std::string benchmark;  // which benchmark's runs it compares with ("" = several)
    std::vector<std::string> columns;
    std::vector<std::pair<std::string, std::vector<double>>> rows;  // NaN = not reported
};
const std::vector<PaperTable>& paper_tables();

// Reads <dir>/results.json for each run and writes the side-by-side Markdown (and HTML).
Result<std::string> compare_markdown(const std::vector<fs::path>& run_dirs, bool with_paper);
Result<std::string> compare_html(const std::vector<fs::path>& run_dirs, bool with_paper);

}  // namespace mf::eval
