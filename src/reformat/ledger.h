// The request ledger: an SQLite database (WAL) with one row per model request, the source of
// truth of a reformat run. Output files are regenerated from it; a killed run resumes from it.
//
// Key: request_key() = SHA-256 of (sample id, method, model, prompt version, SHA-256 of every
// image's bytes in order). Change any of them and the request is a new one.
//
// States:  pending → in_flight → done
//                              ↘ pending (a reply failed validation: re-ask with the error)
//                              ↘ failed(reason)  (re-asks used up, or the request failed)
// Every reply that arrives is recorded (raw body, content, tokens, cost) in the same transaction
// as the state change, and each transaction is committed with synchronous=FULL before the next
// request is sent for that row. So:
//   * a row that is `done` is never sent again (a recorded answer is never paid for twice);
//   * rows found `in_flight` at start (the process died while the request was out) are reset to
//     pending: their answer was never recorded, so asking again is allowed.
// "Exactly once" therefore means: at most one paid answer per key is ever recorded as done, and
// no recorded answer is paid for again. A request in flight at the moment of a SIGKILL may have
// been answered (and billed) by the server without being recorded: that is the only case in which
// the same prompt is sent twice, and it cannot be avoided by any client.
//
// Why synchronous=FULL and not NORMAL: in WAL mode NORMAL is safe against a process crash
// (SIGKILL: the WAL is in the OS page cache) but a power loss or kernel crash can lose the last
// commits, i.e. answers already paid for. FULL fsyncs the WAL at every commit; one fsync per
// model reply (which takes seconds and costs money) is negligible.
//
// Thread-safety: one Ledger per thread (the engine uses it from the thread running run_batch).
// Other processes may read the database while a run writes it (WAL).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

struct sqlite3;

namespace mf::reformat {

enum class RowState { kPending, kInFlight, kDone, kFailed };
std::string_view row_state_name(RowState s);

std::string request_key(std::string_view sample_id, std::string_view method, std::string_view model,
                        std::string_view prompt_version,
                        const std::vector<std::string>& image_sha256);

struct LedgerRow {
    std::string key;
    std::string sample_id;
    std::string method, model, prompt_version;
    std::string sample_json;  // the input sample, so the ledger alone can rebuild the outputs
    RowState state = RowState::kPending;
    int attempts = 0;             // model replies received (each one paid for)
    int http_attempts = 0;        // HTTP requests made (retries included)
    std::string last_error;       // validation error of the last reply (quoted in the re-ask)
    std::string reason, detail;   // failed rows
    std::string request_summary;  // the last request without image bytes (JSON)
    std::string response_raw;     // the last response body
    std::string content;          // the last reply's message content
    std::string output_json;      // done: {"description","question","answer"}
    int64_t prompt_tokens = 0, completion_tokens = 0;  // summed over attempts
    double cost = 0;                                   // summed over attempts
};

// One reply from the model (or one failed request).
struct Attempt {
    std::string request_summary;
    std::string response_raw;
    std::string content;
    int http_attempts = 1;
    int64_t prompt_tokens = 0, completion_tokens = 0;
    double cost = 0;
};

class Ledger {
  public:
    ~Ledger();
    Ledger(const Ledger&) = delete;
    Ledger& operator=(const Ledger&) = delete;

    // Opens (creating when absent and !read_only) the ledger at `path`.
    static Result<std::unique_ptr<Ledger>> open(const std::filesystem::path& path,
                                                bool read_only = false);

    Status begin();
    Status commit();

    // Inserts a pending row unless the key exists. Returns true when inserted.
    Result<bool> add(const LedgerRow& row);
    // in_flight → pending (the previous process died with these requests out). Returns the count.
    Result<int> reset_in_flight();
    // failed rows whose reason is one of `reasons` → pending (e.g. request_failed: nothing was
    // recorded, so a new run may try again). Returns the count.
    Result<int> reset_failed(const std::vector<std::string>& reasons);

    // Up to `limit` pending rows, oldest first.
    Result<std::vector<LedgerRow>> next_pending(size_t limit);
    Status mark_in_flight(const std::vector<std::string>& keys);
    // in_flight → pending without an attempt (cancelled before an answer).
    Status mark_pending(const std::string& key);

    // A reply arrived and validated: in_flight → done.
    Status record_done(const std::string& key, const Attempt& a, const std::string& output_json);
    // A reply arrived and failed validation: recorded; → pending with last_error = detail.
    Status record_reask(const std::string& key, const Attempt& a, const std::string& reason,
                        const std::string& detail);
    // → failed(reason). `a` may describe a reply (validation gave up) or a failed request.
    Status record_failed(const std::string& key, const Attempt& a, const std::string& reason,
                         const std::string& detail, bool paid);

    Result<std::optional<LedgerRow>> get(const std::string& key);
    Result<std::map<std::string, int64_t>> count_by_state();
    // Rows of the attempts table for a key: (attempt number, outcome, error).
    struct AttemptRow {
        int n = 0;
        std::string outcome;  // done, reask, failed
        std::string error;
        std::string response_raw;
    };
    Result<std::vector<AttemptRow>> attempts(const std::string& key);

  private:
    Ledger() = default;
    Status exec(const char* sql);
    Status add_attempt(const std::string& key, int paid, const Attempt& a, const char* outcome,
                       const std::string& error);
    sqlite3* db_ = nullptr;
    std::string path_;
};

}  // namespace mf::reformat
