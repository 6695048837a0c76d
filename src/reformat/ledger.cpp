#include "reformat/ledger.h"

#include <fmt/core.h>
#include <sqlite3.h>

#include <chrono>

#include "core/hash.h"

namespace mf::reformat {

namespace {

double now_s() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// A prepared statement, finalised on destruction.
class Stmt {
  public:
    Stmt(sqlite3* db, const char* sql) : db_(db) {
        rc_ = sqlite3_prepare_v2(db, sql, -1, &st_, nullptr);
    }
    ~Stmt() { sqlite3_finalize(st_); }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;

    Status prepared() const {
        if (rc_ == SQLITE_OK) return {};
        return Status::internal(std::string("ledger: prepare: ") + sqlite3_errmsg(db_));
    }
    Stmt& bind(int i, std::string_view s) {
        sqlite3_bind_text(st_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
        return *this;
    }
    Stmt& bind(int i, int64_t v) {
        sqlite3_bind_int64(st_, i, v);
        return *this;
    }
    Stmt& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
    Stmt& bind(int i, double v) {
        sqlite3_bind_double(st_, i, v);
        return *this;
    }
    // SQLITE_ROW → true, SQLITE_DONE → false, else error in *st.
    bool step(Status* st) {
        int rc = sqlite3_step(st_);
        if (rc == SQLITE_ROW) return true;
        if (rc != SQLITE_DONE)
            *st = Status::io_error(std::string("ledger: ") + sqlite3_errmsg(db_));
        return false;
    }
    Status run() {
        Status st;
        while (step(&st)) {
        }
        return st;
    }
    std::string text(int col) const {
        const unsigned char* p = sqlite3_column_text(st_, col);
        return p ? std::string(reinterpret_cast<const char*>(p),
                               static_cast<size_t>(sqlite3_column_bytes(st_, col)))
                 : std::string();
    }
    int64_t i64(int col) const { return sqlite3_column_int64(st_, col); }
    double f64(int col) const { return sqlite3_column_double(st_, col); }

  private:
    sqlite3* db_;
    sqlite3_stmt* st_ = nullptr;
    int rc_ = SQLITE_OK;
};

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT);
CREATE TABLE IF NOT EXISTS requests(
  key TEXT PRIMARY KEY,
  sample_id TEXT NOT NULL,
  method TEXT NOT NULL, model TEXT NOT NULL, prompt_version TEXT NOT NULL,
  sample_json TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  http_attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '',
  request_summary TEXT NOT NULL DEFAULT '',
  response_raw TEXT NOT NULL DEFAULT '',
  content TEXT NOT NULL DEFAULT '',
  output_json TEXT NOT NULL DEFAULT '',
  prompt_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  cost REAL NOT NULL DEFAULT 0,
  updated_at REAL NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS requests_state ON requests(state);
CREATE TABLE IF NOT EXISTS attempts(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL, paid INTEGER NOT NULL, outcome TEXT NOT NULL, error TEXT NOT NULL,
  request_summary TEXT NOT NULL, response_raw TEXT NOT NULL,
  prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, cost REAL NOT NULL,
  http_attempts INTEGER NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS attempts_key ON attempts(key);
INSERT OR IGNORE INTO meta(k, v) VALUES('schema', 'medforge-ledger-1');
)sql";

RowState parse_state(const std::string& s) {
    if (s == "in_flight") return RowState::kInFlight;
    if (s == "done") return RowState::kDone;
    if (s == "failed") return RowState::kFailed;
    return RowState::kPending;
}

constexpr const char* kRowColumns =
    "key, sample_id, method, model, prompt_version, sample_json, state, attempts, "
    "http_attempts, last_error, reason, detail, request_summary, response_raw, content, "
    "output_json, prompt_tokens, completion_tokens, cost";

LedgerRow read_row(const Stmt& s) {
    LedgerRow r;
    r.key = s.text(0);
    r.sample_id = s.text(1);
    r.method = s.text(2);
    r.model = s.text(3);
    r.prompt_version = s.text(4);
    r.sample_json = s.text(5);
    r.state = parse_state(s.text(6));
    r.attempts = static_cast<int>(s.i64(7));
    r.http_attempts = static_cast<int>(s.i64(8));
    r.last_error = s.text(9);
    r.reason = s.text(10);
    r.detail = s.text(11);
    r.request_summary = s.text(12);
    r.response_raw = s.text(13);
    r.content = s.text(14);
    r.output_json = s.text(15);
    r.prompt_tokens = s.i64(16);
    r.completion_tokens = s.i64(17);
    r.cost = s.f64(18);
    return r;
}

}  // namespace

std::string_view row_state_name(RowState s) {
    switch (s) {
        case RowState::kPending:
            return "pending";
        case RowState::kInFlight:
            return "in_flight";
        case RowState::kDone:
            return "done";
        case RowState::kFailed:
            return "failed";
    }
    return "?";
}

std::string request_key(std::string_view sample_id, std::string_view method, std::string_view model,
                        std::string_view prompt_version,
                        const std::vector<std::string>& image_sha256) {
    // Length-prefixed fields, so no two different tuples serialise alike.
    std::string buf;
    auto add = [&](std::string_view f) {
        buf += std::to_string(f.size());
        buf += ':';
        buf += f;
        buf += '|';
    };
    add("medforge-request-v1");
    add(sample_id);
    add(method);
    add(model);
    add(prompt_version);
    for (const auto& h : image_sha256)
        add(h);
    return sha256_hex(buf);
}

Ledger::~Ledger() {
    if (db_) sqlite3_close(db_);
}

Status Ledger::exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string m = err ? err : "unknown error";
        sqlite3_free(err);
        return Status::io_error(fmt::format("ledger {}: {}", path_, m));
    }
    return {};
}

Result<std::unique_ptr<Ledger>> Ledger::open(const std::filesystem::path& path, bool read_only) {
    auto l = std::unique_ptr<Ledger>(new Ledger());
    l->path_ = path.string();
    int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (sqlite3_open_v2(l->path_.c_str(), &l->db_, flags, nullptr) != SQLITE_OK) {
        std::string m = l->db_ ? sqlite3_errmsg(l->db_) : "out of memory";
        return Status::io_error(fmt::format("ledger {}: cannot open: {}", l->path_, m));
    }
    sqlite3_busy_timeout(l->db_, 10000);
    if (!read_only) {
        MF_RETURN_IF_ERROR(l->exec("PRAGMA journal_mode=WAL"));
        MF_RETURN_IF_ERROR(l->exec("PRAGMA synchronous=FULL"));
        MF_RETURN_IF_ERROR(l->exec(kSchema));
    }
    return l;
}

Status Ledger::begin() {
    return exec("BEGIN IMMEDIATE");
}
Status Ledger::commit() {
    return exec("COMMIT");
}

Result<bool> Ledger::add(const LedgerRow& r) {
    Stmt s(db_,
           "INSERT OR IGNORE INTO requests(key, sample_id, method, model, prompt_version, "
           "sample_json, state, updated_at) VALUES(?,?,?,?,?,?,'pending',?)");
    MF_RETURN_IF_ERROR(s.prepared());
    s.bind(1, r.key).bind(2, r.sample_id).bind(3, r.method).bind(4, r.model);
    s.bind(5, r.prompt_version).bind(6, r.sample_json).bind(7, now_s());
    MF_RETURN_IF_ERROR(s.run());
    return sqlite3_changes(db_) > 0;
}

Result<int> Ledger::reset_in_flight() {
    MF_RETURN_IF_ERROR(exec("UPDATE requests SET state='pending' WHERE state='in_flight'"));
    return sqlite3_changes(db_);
}

Result<int> Ledger::reset_failed(const std::vector<std::string>& reasons) {
    int n = 0;
    for (const auto& reason : reasons) {
        Stmt s(db_,
               "UPDATE requests SET state='pending', reason='', detail='' WHERE state='failed' "
               "AND reason=?");
        MF_RETURN_IF_ERROR(s.prepared());
        s.bind(1, reason);
        MF_RETURN_IF_ERROR(s.run());
        n += sqlite3_changes(db_);
    }
    return n;
}

Result<std::vector<LedgerRow>> Ledger::next_pending(size_t limit) {
    std::string sql = fmt::format(
        "SELECT {} FROM requests WHERE state='pending' ORDER BY rowid LIMIT ?", kRowColumns);
    Stmt s(db_, sql.c_str());
    MF_RETURN_IF_ERROR(s.prepared());
    s.bind(1, static_cast<int64_t>(limit));
    std::vector<LedgerRow> out;
    Status st;
    while (s.step(&st))
        out.push_back(read_row(s));
    MF_RETURN_IF_ERROR(st);
    return out;
}

Status Ledger::mark_in_flight(const std::vector<std::string>& keys) {
    MF_RETURN_IF_ERROR(begin());
    for (const auto& k : keys) {
        Stmt s(db_, "UPDATE requests SET state='in_flight', updated_at=? WHERE key=?");
        MF_RETURN_IF_ERROR(s.prepared());
        s.bind(1, now_s()).bind(2, k);
        MF_RETURN_IF_ERROR(s.run());
    }
    return commit();
}

Status Ledger::mark_pending(const std::string& key) {
    Stmt s(db_,
           "UPDATE requests SET state='pending', updated_at=? WHERE key=? AND "
           "state='in_flight'");
    MF_RETURN_IF_ERROR(s.prepared());
    s.bind(1, now_s()).bind(2, key);
    return s.run();
}

Status Ledger::add_attempt(const std::string& key, int paid, const Attempt& a, const char* outcome,
                           const std::string& error) {
    Stmt s(db_,
           "INSERT INTO attempts(key, paid, outcome, error, request_summary, response_raw, "
           "prompt_tokens, completion_tokens, cost, http_attempts, at) "
           "VALUES(?,?,?,?,?,?,?,?,?,?,?)");
    MF_RETURN_IF_ERROR(s.prepared());
    s.bind(1, key).bind(2, paid).bind(3, std::string_view(outcome)).bind(4, error);
    s.bind(5, a.request_summary).bind(6, a.response_raw).bind(7, a.prompt_tokens);
    s.bind(8, a.completion_tokens).bind(9, a.cost).bind(10, a.http_attempts).bind(11, now_s());
    return s.run();
}

namespace {
// The common UPDATE of a reply: counters, raw texts, state.
constexpr const char* kRecordSql =
    "UPDATE requests SET state=?, attempts=attempts+?, http_attempts=http_attempts+?, "
    "last_error=?, reason=?, detail=?, request_summary=?, response_raw=?, content=?, "
    "output_json=?, prompt_tokens=prompt_tokens+?, completion_tokens=completion_tokens+?, "
    "cost=cost+?, updated_at=? WHERE key=?";
}  // namespace

Status Ledger::record_done(const std::string& key, const Attempt& a,
                           const std::string& output_json) {
    MF_RETURN_IF_ERROR(begin());
    MF_RETURN_IF_ERROR(add_attempt(key, 1, a, "done", ""));
    Stmt s(db_, kRecordSql);
    MF_RETURN_IF_ERROR(s.prepared());
    s.bind(1, "done").bind(2, 1).bind(3, a.http_attempts).bind(4, "").bind(5, "").bind(6, "");
    s.bind(7, a.request_summary).bind(8, a.response_raw).bind(9, a.content).bind(10, output_json);
    s.bind(11, a.prompt_tokens).bind(12, a.completion_tokens).bind(13, a.cost);
    s.bind(14, now_s()).bind(15, key);
    MF_RETURN_IF_ERROR(s.run());
    return commit();
}

Status Ledger::record_reask(const std::string& key, const Attempt& a, const std::string& reason,
                            const std::string& detail) {
    MF_RETURN_IF_ERROR(begin());
    MF_RETURN_IF_ERROR(add_attempt(key, 1, a, "reask", reason + ": " + detail));
    Stmt s(db_, kRecordSql);
    MF_RETURN_IF_ERROR(s.prepared());
    s.bind(1, "pending").bind(2, 1).bind(3, a.http_attempts).bind(4, detail).bind(5, reason);
    s.bind(6, detail).bind(7, a.request_summary).bind(8, a.response_raw).bind(9, a.content);
    s.bind(10, "").bind(11, a.prompt_tokens).bind(12, a.completion_tokens).bind(13, a.cost);
    s.bind(14, now_s()).bind(15, key);
    MF_RETURN_IF_ERROR(s.run());
    return commit();
}

Status Ledger::record_failed(const std::string& key, const Attempt& a, const std::string& reason,
                             const std::string& detail, bool paid) {
    MF_RETURN_IF_ERROR(begin());
    MF_RETURN_IF_ERROR(add_attempt(key, paid ? 1 : 0, a, "failed", reason + ": " + detail));
    Stmt s(db_, kRecordSql);
    MF_RETURN_IF_ERROR(s.prepared());
    s.bind(1, "failed").bind(2, paid ? 1 : 0).bind(3, a.http_attempts).bind(4, "");
    s.bind(5, reason).bind(6, detail).bind(7, a.request_summary).bind(8, a.response_raw);
    s.bind(9, a.content).bind(10, "").bind(11, a.prompt_tokens).bind(12, a.completion_tokens);
    s.bind(13, a.cost).bind(14, now_s()).bind(15, key);
    MF_RETURN_IF_ERROR(s.run());
    return commit();
}

Result<std::optional<LedgerRow>> Ledger::get(const std::string& key) {
    std::string sql = fmt::format("SELECT {} FROM requests WHERE key=?", kRowColumns);
    Stmt s(db_, sql.c_str());
    MF_RETURN_IF_ERROR(s.prepared());
    s.bind(1, key);
    Status st;
    if (s.step(&st)) return std::optional<LedgerRow>(read_row(s));
    MF_RETURN_IF_ERROR(st);
    return std::optional<LedgerRow>();
}

Result<std::map<std::string, int64_t>> Ledger::count_by_state() {
    Stmt s(db_, "SELECT state, COUNT(*) FROM requests GROUP BY state");
    MF_RETURN_IF_ERROR(s.prepared());
    std::map<std::string, int64_t> out;
    Status st;
    while (s.step(&st))
        out[s.text(0)] = s.i64(1);
    MF_RETURN_IF_ERROR(st);
    return out;
}

Result<std::vector<Ledger::AttemptRow>> Ledger::attempts(const std::string& key) {
    Stmt s(db_, "SELECT outcome, error, response_raw FROM attempts WHERE key=? ORDER BY id");
    MF_RETURN_IF_ERROR(s.prepared());
    s.bind(1, key);
    std::vector<AttemptRow> out;
    Status st;
    while (s.step(&st)) {
        AttemptRow a;
        a.n = static_cast<int>(out.size()) + 1;
        a.outcome = s.text(0);
        a.error = s.text(1);
        a.response_raw = s.text(2);
        out.push_back(std::move(a));
    }
    MF_RETURN_IF_ERROR(st);
    return out;
}

}  // namespace mf::reformat
