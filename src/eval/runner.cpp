// run_eval: requests, cache, scoring.
#include "eval/runner.h"

#include <chrono>
#include <cmath>
#include <ctime>
#include <map>
#include <set>

#include "core/hash.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/text.h"
#include "io/file.h"

namespace mf::eval {

using nlohmann::json;

// ---- cache ----

ResponseCache::~ResponseCache() {
    if (db_) sqlite3_close(db_);
}

Status ResponseCache::open(const fs::path& path, bool read_only) {
    int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
        std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
        return Status::io_error("cache " + path.string() + ": " + msg);
    }
    sqlite3_busy_timeout(db_, 30000);
    if (read_only) return Status::ok_status();
    const char* ddl =
        "PRAGMA journal_mode=WAL;"
        "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, item_id TEXT, model TEXT,"
        " protocol TEXT, content TEXT, finish_reason TEXT, created INTEGER);";
    char* err = nullptr;
    if (sqlite3_exec(db_, ddl, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err ? err : "?";
        sqlite3_free(err);
        return Status::io_error("cache " + path.string() + ": " + msg);
    }
    return Status::ok_status();
}

std::optional<std::string> ResponseCache::get(const std::string& key) {
    if (!db_) return std::nullopt;
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, "SELECT content FROM responses WHERE key = ?", -1, &st, nullptr) !=
        SQLITE_OK) {
        return std::nullopt;
    }
    sqlite3_bind_text(st, 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
    std::optional<std::string> out;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char* t = sqlite3_column_text(st, 0);
        int n = sqlite3_column_bytes(st, 0);
        out = std::string(reinterpret_cast<const char*>(t), static_cast<size_t>(n));
    }
    sqlite3_finalize(st);
    return out;
}

Status ResponseCache::put(const std::string& key, const std::string& item_id,
                          const std::string& model, const std::string& protocol,
                          const std::string& content, const std::string& finish_reason) {
    sqlite3_stmt* st = nullptr;
    const char* sql =
        "INSERT OR REPLACE INTO responses (key, item_id, model, protocol, content, finish_reason,"
        " created) VALUES (?, ?, ?, ?, ?, ?, ?)";
    if (sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) != SQLITE_OK) {
        return Status::io_error(std::string("cache: ") + sqlite3_errmsg(db_));
    }
    auto bind = [&](int i, const std::string& s) {
        sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    };
    bind(1, key);
    bind(2, item_id);
    bind(3, model);
    bind(4, protocol);
    bind(5, content);
    bind(6, finish_reason);
    sqlite3_bind_int64(st, 7, static_cast<int64_t>(std::time(nullptr)));
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return Status::io_error(std::string("cache: ") + sqlite3_errmsg(db_));
    return Status::ok_status();
}

int64_t ResponseCache::size() {
    sqlite3_stmt* st = nullptr;
    int64_t n = 0;
    if (sqlite3_prepare_v2(db_, "SELECT COUNT(*) FROM responses", -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return n;
}

// ---- requests ----

namespace {

std::string mime_of(const fs::path& p) {
    std::string e = text::ascii_lower(p.extension().string());
    if (e == ".png") return "image/png";
    if (e == ".gif") return "image/gif";
    if (e == ".webp") return "image/webp";
    if (e == ".bmp") return "image/bmp";
    return "image/jpeg";
}

std::string iso_now() {
    std::time_t t = std::time(nullptr);
    char buf[32];
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

// scheme://host[:port] without user info, path or query.
std::string endpoint_host(const std::string& url) {
    std::string u = url;
    auto scheme = u.find("://");
    std::string prefix;
    if (scheme != std::string::npos) {
        prefix = u.substr(0, scheme + 3);
        u = u.substr(scheme + 3);
    }
    auto slash = u.find_first_of("/?#");
    if (slash != std::string::npos) u = u.substr(0, slash);
    auto at = u.rfind('@');
    if (at != std::string::npos) u = u.substr(at + 1);
    return prefix + u;
}

}  // namespace

std::string protocol_hash(const RunParams& p) {
    json d = {{"template", kPromptTemplate},
              {"instruction", kInstruction},
              {"temperature", p.decoding.temperature},
              {"top_p", p.decoding.top_p},
              {"max_tokens", p.decoding.max_tokens},
              {"seed", p.decoding.seed},
              {"images", p.no_images ? "none" : "data_url_before_text"}};
    return sha256_hex(d.dump());
}

Result<RunSummary> run_eval(const RunParams& params, llm::LlmClient& client,
                            const std::atomic<bool>* cancel) {
    MF_ASSIGN_OR_RETURN(Dataset ds, load_benchmark(params.benchmark, params.data, params.load));
    // --limit then --shard.
    if (params.limit >= 0 && static_cast<size_t>(params.limit) < ds.items.size()) {
        ds.items.resize(static_cast<size_t>(params.limit));
    }
    if (params.shard.count > 1) {
        std::vector<EvalItem> mine;
        for (auto& it : ds.items)
            if (params.shard.owns(it.id)) mine.push_back(std::move(it));
        ds.items = std::move(mine);
    }
    MF_RETURN_IF_ERROR(io::ensure_dir(params.out));
    ResponseCache cache;
    MF_RETURN_IF_ERROR(cache.open(params.out / "cache.sqlite"));
    std::vector<std::unique_ptr<ResponseCache>> extra;
    for (const auto& p : params.reuse_caches) {
        fs::path f = fs::is_directory(p) ? p / "cache.sqlite" : p;
        if (!fs::exists(f))
            return Status::not_found("--reuse-cache " + f.string() + ": no such file");
        auto c = std::make_unique<ResponseCache>();
        MF_RETURN_IF_ERROR(c->open(f, true));
        extra.push_back(std::move(c));
    }
    const std::string phash = protocol_hash(params);
    fs::path image_dir = params.images.empty() ? params.data.parent_path() : params.images;

    RunSummary sum;
    sum.items = static_cast<int64_t>(ds.items.size());
    std::vector<std::optional<std::string>> responses(ds.items.size());
    std::vector<std::string> keys(ds.items.size());
    std::vector<llm::ChatRequest> requests;
    std::vector<size_t> req_item;
    std::vector<std::string> errors(ds.items.size());
    for (size_t i = 0; i < ds.items.size(); ++i) {
        const auto& it = ds.items[i];
        std::string prompt = build_prompt(it);
        keys[i] = sha256_hex(ds.benchmark + ":" + it.id + "\n" + params.model + "\n" + phash +
                             "\n" + sha256_hex(prompt));
        if (auto hit = cache.get(keys[i])) {
            responses[i] = *hit;
            sum.cached++;
            continue;
        }
        bool found = false;
        for (auto& c : extra) {
            if (auto hit = c->get(keys[i])) {
                responses[i] = *hit;
                MF_RETURN_IF_ERROR(cache.put(keys[i], it.id, params.model, phash, *hit, "cached"));
                sum.cached++;
                found = true;
                break;
            }
        }
        if (found) continue;
        llm::ChatRequest req;
        req.model = params.model;
        req.temperature = params.decoding.temperature;
        req.top_p = params.decoding.top_p;
        req.max_tokens = params.decoding.max_tokens;
        req.seed = params.decoding.seed;
        req.user_tag = it.id;
        llm::ChatMessage msg;
        msg.role = "user";
        bool missing = false;
        if (!params.no_images) {
            for (const auto& im : it.images) {
                // IMAGES/name, else DATA_DIR/name, else DATA_DIR/images/name.
                fs::path f = fs::path(im).is_absolute() ? fs::path(im) : image_dir / im;
                if (!fs::path(im).is_absolute() && params.images.empty() && !fs::exists(f) &&
                    fs::exists(image_dir / "images" / im)) {
                    f = image_dir / "images" / im;
                }
                auto bytes = io::read_file(f);
                if (!bytes.ok()) {
                    errors[i] = "image_missing: " + f.string();
                    missing = true;
                    break;
                }
                llm::ContentPart part;
                part.kind = llm::ContentPart::Kind::kImageUrl;
                part.image_url = "data:" + mime_of(f) + ";base64," + llm::base64_encode(*bytes);
                msg.content.push_back(std::move(part));
            }
        }
        if (missing) {
            sum.missing_images++;
            continue;
        }
        llm::ContentPart tp;
        tp.text = prompt;
        msg.content.push_back(std::move(tp));
        req.messages.push_back(std::move(msg));
        requests.push_back(std::move(req));
        req_item.push_back(i);
    }
    if (sum.missing_images > 0) {
        std::string first;
        for (auto& e : errors)
            if (!e.empty() && first.empty()) first = e;
        log::warn(
            "{} items skipped: image file missing (first: {}); pass --images DIR or "
            "--no-images",
            sum.missing_images, first);
    }
    if (!requests.empty()) {
        Progress progress("eval " + ds.benchmark, requests.size(), "requests");
        Status cache_status = Status::ok_status();
        Status st = client.run_batch(
            requests,
            [&](size_t k, Result<llm::ChatResponse> r) {
                size_t i = req_item[k];
                progress.add(1);
                if (!r.ok()) {
                    errors[i] = r.status().to_string();
                    sum.failed++;
                    return;
                }
                responses[i] = r->content;
                sum.sent++;
                Status ps = cache.put(keys[i], ds.items[i].id, params.model, phash, r->content,
                                      r->finish_reason);
                if (!ps.ok() && cache_status.ok()) cache_status = ps;
            },
            cancel);
        progress.finish();
        MF_RETURN_IF_ERROR(st);
        MF_RETURN_IF_ERROR(cache_status);
    }

    // Protocol card.
    json files = json::array();
    for (const auto& f : ds.files) {
        auto bytes = io::read_file(f);
        files.push_back({{"path", f.filename().string()},
                         {"sha256", bytes.ok() ? sha256_hex(*bytes) : std::string("unreadable")}});
    }
    int64_t n_closed = 0, n_open = 0;
    for (const auto& it : ds.items)
        (it.closed ? n_closed : n_open)++;
    json card = {
        {"benchmark", ds.benchmark},
        {"subset_kind", ds.subset_kind},
        {"prompt_template", kPromptTemplate},
        {"instruction", kInstruction},
        {"prompt_template_sha256", sha256_hex(kPromptTemplate)},
        {"protocol_sha256", phash},
        {"yes_no_options",
         "closed yes/no questions: options [\"yes\", \"no\"] (A = yes, B = no); "
         "other closed and open questions are scored as open items"},
        {"data_files", files},
        {"items",
         {{"total", ds.items.size()},
          {"closed", n_closed},
          {"open", n_open},
          {"skipped", ds.skipped},
          {"missing_images", sum.missing_images},
          {"failed_requests", sum.failed}}},
        {"extractor", extractor_name(params.extractor)},
        {"decoding",
         {{"temperature", params.decoding.temperature},
          {"top_p", params.decoding.top_p < 0 ? json(nullptr) : json(params.decoding.top_p)},
          {"max_tokens", params.decoding.max_tokens},
          {"seed", params.decoding.seed < 0 ? json(nullptr) : json(params.decoding.seed)},
          {"note",
           "chat template applied by the endpoint; paper also used "
           "repetition_penalty 1.2 (not part of the OpenAI API)"}}},
        {"images", params.no_images ? "none (text only)" : "data URLs before the prompt"},
        {"model", params.model},
        {"endpoint_host", endpoint_host(params.endpoint)},
        {"shard", std::to_string(params.shard.index) + "/" + std::to_string(params.shard.count)},
        {"limit", params.limit},
        {"medforge_version", params.medforge_version},
        {"date", iso_now()},
        {"bootstrap", {{"resamples", params.bootstrap_resamples}, {"seed", params.bootstrap_seed}}},
    };
    sum.results = score_run(ds, responses, params, card);
    // Per-item errors for the record.
    for (size_t i = 0; i < ds.items.size(); ++i) {
        if (!errors[i].empty()) sum.results["items"][i]["error"] = errors[i];
    }
    sum.results["run"] = {{"sent", sum.sent}, {"cached", sum.cached}, {"failed", sum.failed}};
    MF_RETURN_IF_ERROR(write_reports(sum.results, params.out));
    return sum;
}

namespace {

json stat_block(const std::vector<double>& v, const RunParams& p, uint64_t salt) {
    double mean = 0;
    for (double x : v)
        mean += x;
    if (!v.empty()) mean /= static_cast<double>(v.size());
    Interval ci = bootstrap_mean_ci(v, p.bootstrap_resamples, p.bootstrap_seed + salt);
    return {{"n", v.size()}, {"mean", mean}, {"ci95", {ci.lo, ci.hi}}};
}

}  // namespace

json score_run(const Dataset& ds, const std::vector<std::optional<std::string>>& responses,
               const RunParams& params, const json& card) {
    json items = json::array();
    std::map<std::string, std::vector<double>> acc_by, acc_group, em_by, rec_by, f1_by, bleu_by;
    std::vector<double> acc_all, em_all, rec_all, f1_all, bleu_all;
    std::vector<int> group;
    std::map<std::string, int> group_id;
    std::map<std::string, int64_t> methods;
    for (size_t i = 0; i < ds.items.size(); ++i) {
        const auto& it = ds.items[i];
        json r = {{"id", it.id}, {"subset", it.subset}, {"closed", it.closed}};
        const std::string resp = responses[i].value_or("");
        r["response"] = responses[i] ? json(resp) : json(nullptr);
        if (it.closed) {
            Extraction ex = extract(params.extractor, resp, it.options);
            bool correct =
                responses[i].has_value() && it.answer_index >= 0 && ex.index == it.answer_index;
            r["answer"] = it.answer_index >= 0 ? std::string(1, kLetters[it.answer_index]) : "?";
            r["predicted"] = ex.letter;
            r["method"] = ex.method;
            r["correct"] = correct;
            methods[ex.method]++;
            double v = correct ? 1.0 : 0.0;
            acc_all.push_back(v);
            acc_by[it.subset].push_back(v);
            if (!it.group.empty()) acc_group[it.group].push_back(v);
            auto [g, inserted] = group_id.emplace(it.subset, static_cast<int>(group_id.size()));
            group.push_back(g->second);
        } else {
            OpenScores s = score_open(resp, it.answer_text);
            r["reference"] = it.answer_text;
            r["exact"] = s.exact;
            r["recall"] = s.recall;
            r["f1"] = s.f1;
            r["bleu1"] = s.bleu1;
            em_all.push_back(s.exact);
            rec_all.push_back(s.recall);
            f1_all.push_back(s.f1);
            bleu_all.push_back(s.bleu1);
            em_by[it.subset].push_back(s.exact);
            rec_by[it.subset].push_back(s.recall);
            f1_by[it.subset].push_back(s.f1);
            bleu_by[it.subset].push_back(s.bleu1);
        }
        items.push_back(std::move(r));
    }
    json closed = json::object();
    closed["micro"] = stat_block(acc_all, params, 0);
    closed["correct"] = std::count(acc_all.begin(), acc_all.end(), 1.0);
    json subsets = json::array();
    double macro = 0;
    uint64_t salt = 1;
    for (auto& [name, v] : acc_by) {
        json b = stat_block(v, params, salt++);
        b["name"] = name;
        b["correct"] = std::count(v.begin(), v.end(), 1.0);
        macro += b["mean"].get<double>();
        subsets.push_back(std::move(b));
    }
    if (!acc_by.empty()) macro /= static_cast<double>(acc_by.size());
    Interval mci =
        bootstrap_macro_ci(acc_all, group, params.bootstrap_resamples, params.bootstrap_seed + 999);
    closed["macro"] = {{"mean", macro}, {"subsets", acc_by.size()}, {"ci95", {mci.lo, mci.hi}}};
    closed["subsets"] = std::move(subsets);
    if (!acc_group.empty()) {  // huatuo-bundle: per source benchmark, as the official scorer
        json groups = json::array();
        for (auto& [name, v] : acc_group) {
            json b = stat_block(v, params, salt++);
            b["name"] = name;
            b["correct"] = std::count(v.begin(), v.end(), 1.0);
            groups.push_back(std::move(b));
        }
        closed["groups"] = std::move(groups);
    }
    closed["extraction_methods"] = methods;
    json open = json::object();
    if (!em_all.empty()) {
        open["exact"] = stat_block(em_all, params, 101);
        open["recall"] = stat_block(rec_all, params, 102);
        open["f1"] = stat_block(f1_all, params, 103);
        open["bleu1"] = stat_block(bleu_all, params, 104);
        json os = json::array();
        for (auto& [name, v] : em_by) {
            auto mean = [](const std::vector<double>& x) {
                double s = 0;
                for (double y : x)
                    s += y;
                return x.empty() ? 0.0 : s / static_cast<double>(x.size());
            };
            os.push_back({{"name", name},
                          {"n", v.size()},
                          {"exact", mean(v)},
                          {"recall", mean(rec_by[name])},
                          {"f1", mean(f1_by[name])},
                          {"bleu1", mean(bleu_by[name])}});
        }
        open["subsets"] = std::move(os);
    }
    return {{"protocol_card", card}, {"closed", closed}, {"open", open}, {"items", items}};
}

}  // namespace mf::eval
