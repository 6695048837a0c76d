#include "reformat/judge.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "core/hash.h"
#include "core/log.h"
#include "core/text.h"
#include "curate/sample.h"
#include "eval/eval.h"
#include "io/file.h"
#include "io/line_reader.h"
#include "reformat/ledger.h"
#include "reformat/validate.h"

namespace mf::reformat {

using nlohmann::json;
using ojson = nlohmann::ordered_json;

uint64_t judge_splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string strip_image_tokens(std::string_view s) {
    std::string out(s);
    size_t p;
    while ((p = out.find("<image>")) != std::string::npos) {
        size_t e = p + 7;
        if (e < out.size() && out[e] == '\n') ++e;
        out.erase(p, e - p);
    }
    return std::string(text::trim(out));
}

fs::path resolve_image(const std::string& p, const fs::path& images_dir, const fs::path& data_dir) {
    fs::path path(p);
    if (path.is_absolute()) return path;
    std::error_code ec;
    if (!images_dir.empty() && fs::exists(images_dir / path, ec)) return images_dir / path;
    if (fs::exists(data_dir / path, ec)) return data_dir / path;
    return images_dir.empty() ? data_dir / path : images_dir / path;
}

// One record → item. `where` is "file:line" or "file: record k".
Result<JudgeItem> record_to_item(const json& r, const std::string& where,
                                 const fs::path& images_dir, const fs::path& data_dir,
                                 std::string* method, const std::unordered_set<std::string>* keep) {
    if (!r.is_object()) return Status::invalid_argument(where + ": expected a JSON object");
    JudgeItem it;
    if (r.contains("sample_id") && r["sample_id"].is_string()) {
        it.id = r["sample_id"].get<std::string>();
    } else if (r.contains("id") && (r["id"].is_string() || r["id"].is_number())) {
        it.id = r["id"].is_string() ? r["id"].get<std::string>() : r["id"].dump();
        for (const char* suffix : {"#alignment", "#instruction"})
            if (text::ends_with(it.id, suffix)) it.id.resize(it.id.size() - std::strlen(suffix));
    }
    if (it.id.empty())
        return Status::invalid_argument(where +
                                        ": missing \"sample_id\" or \"id\" (the key that "
                                        "matches the same sample across files)");
    const json* conv = r.contains("conversations") ? &r["conversations"] : nullptr;
    if (!conv || !conv->is_array())
        return Status::invalid_argument(where + ": missing \"conversations\" array (LLaVA format)");
    for (const auto& turn : *conv) {
        if (!turn.is_object() || !turn.contains("value") || !turn["value"].is_string())
            return Status::invalid_argument(where +
                                            ": each conversation turn needs {\"from\", \"value\"}");
        std::string from = turn.value("from", "");
        if ((from == "human" || from == "user") && it.question.empty())
            it.question = strip_image_tokens(turn["value"].get<std::string>());
        if (from == "gpt" || from == "assistant") it.answer = turn["value"].get<std::string>();
    }
    if (text::trim(it.answer).empty())
        return Status::invalid_argument(where +
                                        ": no non-empty \"gpt\" turn (the answer to judge)");
    const bool resolve = !keep || keep->count(it.id);  // paths of skipped items: not needed
    if (resolve && r.contains("image")) {
        const json& im = r["image"];
        if (im.is_string()) {
            it.images.push_back(resolve_image(im.get<std::string>(), images_dir, data_dir));
        } else if (im.is_array()) {
            for (const auto& p : im) {
                if (!p.is_string())
                    return Status::invalid_argument(where + ": \"image\" must hold strings");
                it.images.push_back(resolve_image(p.get<std::string>(), images_dir, data_dir));
            }
        } else if (!im.is_null()) {
            return Status::invalid_argument(where + ": \"image\" must be a string or a list");
        }
    }
    if (method)
        *method =
            r.contains("method") && r["method"].is_string() ? r["method"].get<std::string>() : "";
    return it;
}

std::string json_error_where(const fs::path& path, std::string_view text, size_t byte) {
    size_t end = std::min(byte, text.size());
    int64_t line = 1 + std::count(text.begin(), text.begin() + static_cast<ptrdiff_t>(end), '\n');
    return fmt::format("{}:{}", path.string(), line);
}

std::string fmt_score(double v) {
    if (std::isnan(v)) return "–";
    return fmt::format("{:.2f}", v);
}

std::string html_esc(std::string_view s) {
    std::string o;
    for (char c : s) {
        switch (c) {
            case '<':
                o += "&lt;";
                break;
            case '>':
                o += "&gt;";
                break;
            case '&':
                o += "&amp;";
                break;
            case '"':
                o += "&quot;";
                break;
            default:
                o.push_back(c);
        }
    }
    return o;
}

std::string md_cell(std::string_view s) {
    std::string o;
    for (char c : s) {
        if (c == '|')
            o += "\\|";
        else if (c == '\n')
            o += ' ';
        else
            o.push_back(c);
    }
    return o;
}

json num_or_null(double v) {
    return std::isnan(v) ? json(nullptr) : json(v);
}
double get_num(const json& j) {
    return j.is_number() ? j.get<double>() : kNaN;
}

}  // namespace

// ---------------------------------------------------------------- input

Result<JudgeFile> read_judge_file(const fs::path& path, const fs::path& images_dir,
                                  const std::string& label,
                                  const std::unordered_set<std::string>* keep) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec))
        return Status::not_found(fmt::format(
            "VQA file {} does not exist (give the alignment_vqa.json or .jsonl written by "
            "`medforge reformat`)",
            path.string()));
    JudgeFile f;
    f.path = path;
    const fs::path data_dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
    std::set<std::string> methods;
    bool any_without_method = false;
    auto add = [&](const json& rec, const std::string& where) -> Status {
        std::string method;
        MF_ASSIGN_OR_RETURN(JudgeItem it,
                            record_to_item(rec, where, images_dir, data_dir, &method, keep));
        if (method.empty())
            any_without_method = true;
        else
            methods.insert(method);
        if (!f.id_set.insert(it.id).second)
            return Status::invalid_argument(fmt::format(
                "{}: sample id '{}' appears twice in the file; give one answer per sample (use "
                "alignment_vqa.json or instruction_vqa.json, not both)",
                where, it.id));
        f.ids.push_back(it.id);
        if (!keep || keep->count(it.id)) f.items.emplace(it.id, std::move(it));
        return {};
    };
    auto reset = [&] {
        f.ids.clear();
        f.id_set.clear();
        f.items.clear();
        methods.clear();
        any_without_method = false;
    };

    // Streamed, bounded memory: JSONL, and JSON arrays with one record per line (what
    // `medforge reformat` writes). Any other JSON array layout is parsed as a whole document.
    bool whole_document = false;
    {
        io::LineReader lines;
        MF_RETURN_IF_ERROR(lines.open(path));
        std::string_view line;
        int array = -1;  // -1 unknown, 0 JSONL, 1 array open, 2 array closed
        while (lines.next(&line)) {
            std::string_view t = text::trim(line);
            if (t.empty()) continue;
            std::string where = fmt::format("{}:{}", path.string(), lines.line_no());
            if (array == -1) {
                if (t[0] == '[') {
                    if (t != "[") {
                        whole_document = true;
                        break;
                    }
                    array = 1;
                    continue;
                }
                array = 0;
            }
            if (array == 2) {
                whole_document = true;  // text after the closing bracket: let the parser say
                break;
            }
            if (array == 1) {
                if (t == "]") {
                    array = 2;
                    continue;
                }
                if (t.back() == ',') t.remove_suffix(1);
            }
            json rec = json::parse(t, nullptr, false);
            if (rec.is_discarded()) {
                if (array == 1) {
                    whole_document = true;
                    break;
                }
                return Status::invalid_argument(where +
                                                ": not valid JSON (one record per line expected)");
            }
            MF_RETURN_IF_ERROR(add(rec, where));
        }
        MF_RETURN_IF_ERROR(lines.status());
        if (array == 1) whole_document = true;  // never closed: let the parser say where
    }
    if (whole_document) {
        reset();
        MF_ASSIGN_OR_RETURN(std::string text, io::read_file(path));
        json arr;
        try {
            arr = json::parse(text);
        } catch (const json::parse_error& e) {
            return Status::invalid_argument(fmt::format(
                "{}: not valid JSON: {}", json_error_where(path, text, e.byte), e.what()));
        }
        if (!arr.is_array())
            return Status::invalid_argument(path.string() +
                                            ": expected a JSON array of records or JSONL");
        size_t k = 0;
        for (const auto& rec : arr) {
            MF_RETURN_IF_ERROR(add(rec, fmt::format("{}: record {}", path.string(), k + 1)));
            ++k;
        }
    }
    if (f.ids.empty())
        return Status::invalid_argument(fmt::format("{}: no records", path.string()));
    if (!label.empty())
        f.label = label;
    else if (methods.size() == 1 && !any_without_method)
        f.label = *methods.begin();
    else
        f.label = path.stem().string();
    return f;
}

std::vector<std::string> sample_common_ids(const std::vector<JudgeFile>& files, size_t n,
                                           uint64_t seed) {
    std::vector<std::string> ids;
    if (files.empty()) return ids;
    for (const auto& id : files[0].ids) {
        bool all = true;
        for (size_t k = 1; k < files.size() && all; ++k)
            all = files[k].id_set.count(id) > 0;
        if (all) ids.push_back(id);
    }
    std::sort(ids.begin(), ids.end());
    seeded_shuffle(ids, seed);
    if (n > 0 && n < ids.size()) ids.resize(n);
    return ids;
}

// ---------------------------------------------------------------- prompt and reply

std::string judge_system_prompt() {
    return "You are an experienced physician reviewing training data for a medical "
           "vision-language model. You are shown one medical image (or several), the text that "
           "accompanied it in the source publication (the figure caption and the sentences of the "
           "article that refer to it; this is the ground truth), a question about the image and "
           "one candidate answer. Judge only the candidate answer, against the image and the "
           "ground truth, on four criteria, each scored as an integer from 1 (very poor) to 5 "
           "(excellent):\n"
           "- accuracy: are the medical findings, anatomy, imaging modality, laterality, "
           "measurements and diagnoses it states correct and consistent with the image and the "
           "ground truth? 5 = fully accurate; 3 = mostly correct with some errors or unsupported "
           "claims; 1 = largely wrong or invented.\n"
           "- relevance: does it stay on the key features of this image and on the question, "
           "without irrelevant, generic or padded content? 5 = tightly focused on what matters; "
           "1 = mostly beside the point.\n"
           "- completeness: does it cover the key features that the image and the ground truth "
           "show (modality, body region, the main findings with their location and appearance)? "
           "5 = nothing important missing; 1 = most key features missing.\n"
           "- usefulness: how much would it help a clinician or a trainee read the image, reach "
           "a diagnosis or plan treatment? 5 = in-depth and clinically valuable; 1 = of no "
           "practical value.\n"
           "Score each criterion on its own; do not reward length for its own sake. Reply with "
           "one JSON object and nothing else, in this form:\n"
           "{\"accuracy\": {\"score\": 4, \"reason\": \"one sentence\"}, \"relevance\": "
           "{\"score\": 5, \"reason\": \"one sentence\"}, \"completeness\": {\"score\": 3, "
           "\"reason\": \"one sentence\"}, \"usefulness\": {\"score\": 4, \"reason\": \"one "
           "sentence\"}}";
}

std::string judge_user_text(const JudgeItem& item) {
    std::string t = "Ground truth from the source publication.\nCaption: ";
    t += text::trim(item.caption);
    if (!item.mentions.empty()) {
        t += "\nSentences of the article that refer to the figure:";
        for (const auto& m : item.mentions) {
            t += "\n- ";
            t += text::trim(m);
        }
    }
    t += "\n\nQuestion: ";
    t += item.question.empty() ? "Please provide a description of the given medical image."
                               : item.question;
    t += "\n\nCandidate answer:\n";
    t += text::trim(item.answer);
    t += "\n\nScore the candidate answer. Reply with the JSON object only.";
    return t;
}

llm::ChatRequest build_judge_request(const JudgeItem& item, const std::vector<std::string>& urls,
                                     const std::string& model, const std::string& prev_reply,
                                     const std::string& error) {
    llm::ChatRequest req;
    req.model = model;
    req.messages.push_back(llm::ChatMessage::text("system", judge_system_prompt()));
    llm::ChatMessage user;
    user.role = "user";
    for (const auto& u : urls)
        user.content.push_back(llm::image_url_part(u));
    user.content.push_back(llm::text_part(judge_user_text(item)));
    req.messages.push_back(std::move(user));
    if (!error.empty()) {
        req.messages.push_back(llm::ChatMessage::text("assistant", prev_reply));
        req.messages.push_back(llm::ChatMessage::text(
            "user", "Your reply could not be used: " + error +
                        ". Reply again with only the JSON object: for each of accuracy, "
                        "relevance, completeness and usefulness an object {\"score\": an integer "
                        "from 1 to 5, \"reason\": one sentence}."));
    }
    return req;
}

Result<JudgeScores> parse_judge_reply(std::string_view reply) {
    auto obj = extract_json_object(reply);
    if (!obj.ok())
        return Status::invalid_argument("invalid_scores: the reply holds no JSON object (" +
                                        obj.status().message() + ")");
    const json& j = *obj;
    if (!j.is_object())
        return Status::invalid_argument("invalid_scores: the reply is not a JSON object");
    JudgeScores s;
    for (size_t c = 0; c < kJudgeCriteria.size(); ++c) {
        const std::string name = kJudgeCriteria[c];
        const json* v = nullptr;
        for (auto it = j.begin(); it != j.end(); ++it)
            if (text::ascii_lower(it.key()) == name) v = &it.value();
        if (!v)
            return Status::invalid_argument("invalid_scores: criterion \"" + name +
                                            "\" is missing");
        if (!v->is_object() || !v->contains("score"))
            return Status::invalid_argument("invalid_scores: \"" + name +
                                            "\" must be an object {\"score\": 1-5, \"reason\": "
                                            "\"...\"}");
        const json& sc = (*v)["score"];
        double d = kNaN;
        if (sc.is_number()) {
            d = sc.get<double>();
        } else if (sc.is_string()) {
            std::string str(text::trim(sc.get<std::string>()));
            char* end = nullptr;
            d = std::strtod(str.c_str(), &end);
            if (str.empty() || (end && *end != '\0')) d = kNaN;
        }
        if (std::isnan(d) || d != std::floor(d))
            return Status::invalid_argument("invalid_scores: \"" + name +
                                            "\".score must be an integer from 1 to 5, got " +
                                            sc.dump());
        if (d < 1 || d > 5)
            return Status::invalid_argument("invalid_scores: \"" + name +
                                            "\".score is out of range (1 to 5), got " + sc.dump());
        s.score[c] = static_cast<int>(d);
        const json* reason = v->contains("reason") ? &(*v)["reason"] : nullptr;
        if (!reason || !reason->is_string() || text::trim(reason->get<std::string>()).empty())
            return Status::invalid_argument("invalid_scores: \"" + name +
                                            "\".reason must be a non-empty sentence");
        s.reason[c] = std::string(text::trim(reason->get<std::string>()));
    }
    return s;
}

double quadratic_weighted_kappa(const std::vector<int>& a, const std::vector<int>& b, int lo,
                                int hi) {
    if (a.empty() || a.size() != b.size() || hi <= lo) return kNaN;
    const int k = hi - lo + 1;
    std::vector<double> obs(static_cast<size_t>(k * k), 0.0), ha(static_cast<size_t>(k), 0.0),
        hb(static_cast<size_t>(k), 0.0);
    for (size_t i = 0; i < a.size(); ++i) {
        if (a[i] < lo || a[i] > hi || b[i] < lo || b[i] > hi) return kNaN;
        int x = a[i] - lo, y = b[i] - lo;
        obs[static_cast<size_t>(x * k + y)] += 1;
        ha[static_cast<size_t>(x)] += 1;
        hb[static_cast<size_t>(y)] += 1;
    }
    const double n = static_cast<double>(a.size());
    double num = 0, den = 0;
    for (int x = 0; x < k; ++x) {
        for (int y = 0; y < k; ++y) {
            double w = static_cast<double>((x - y) * (x - y)) / ((k - 1) * (k - 1));
            num += w * obs[static_cast<size_t>(x * k + y)];
            den += w * ha[static_cast<size_t>(x)] * hb[static_cast<size_t>(y)] / n;
        }
    }
    if (den <= 0) return kNaN;
    return 1.0 - num / den;
}

// ---------------------------------------------------------------- run

namespace {

struct Pair {
    int judge = 1;  // 1 or 2
    size_t file = 0;
    std::string id;
    std::string key;
};

json item_json(const JudgeItem& it, int judge) {
    json j;
    j["id"] = it.id;
    j["label"] = it.label;
    j["judge"] = judge;
    j["question"] = it.question;
    j["answer"] = it.answer;
    std::vector<std::string> imgs;
    for (const auto& p : it.images)
        imgs.push_back(p.string());
    j["images"] = imgs;
    j["caption"] = it.caption;
    j["mentions"] = it.mentions;
    return j;
}

JudgeItem item_from_json(const json& j) {
    JudgeItem it;
    it.id = j.value("id", "");
    it.label = j.value("label", "");
    it.question = j.value("question", "");
    it.answer = j.value("answer", "");
    for (const auto& p : j.value("images", std::vector<std::string>{}))
        it.images.emplace_back(p);
    it.caption = j.value("caption", "");
    it.mentions = j.value("mentions", std::vector<std::string>{});
    return it;
}

struct Counters {
    int64_t http = 0, done = 0, reasked = 0, failed = 0, transport_failed = 0;
};

Status ask_pending(const JudgeOptions& o, Ledger& ledger, const std::set<std::string>& run_keys,
                   llm::LlmClient* clients[2], const std::string models[2], Counters* cnt) {
    const JudgeImageUrlFn image_url = o.image_url ? o.image_url : [&](const fs::path& p) {
        return llm::image_data_url(p, o.image_max_side, o.image_quality);
    };
    auto t0 = std::chrono::steady_clock::now();
    auto last_log = t0;
    while (!(o.cancel && o.cancel->load())) {
        MF_ASSIGN_OR_RETURN(std::vector<LedgerRow> all, ledger.next_pending(size_t{1} << 30));
        std::vector<LedgerRow> rows;
        for (auto& r : all) {
            if (!run_keys.count(r.key)) continue;
            rows.push_back(std::move(r));
            if (rows.size() >= std::max<size_t>(o.batch, 1)) break;
        }
        if (rows.empty()) break;
        std::map<std::string, std::vector<std::string>> url_cache;  // image path → URL
        bool answered_any = false;
        size_t sent = 0, transport = 0;
        std::string last_transport;
        for (int slot = 0; slot < 2; ++slot) {
            std::vector<llm::ChatRequest> reqs;
            std::vector<const LedgerRow*> req_rows;
            std::vector<std::string> summaries, keys;
            for (const auto& row : rows) {
                json sj = json::parse(row.sample_json, nullptr, false);
                if (sj.is_discarded()) return Status::corruption("ledger row " + row.key);
                if (sj.value("judge", 1) != slot + 1) continue;
                JudgeItem it = item_from_json(sj);
                std::vector<std::string> urls;
                Status img_st;
                for (const auto& p : it.images) {
                    auto& cached = url_cache[p.string()];
                    if (cached.empty()) {
                        auto u = image_url(p);
                        if (!u.ok()) {
                            img_st = u.status().with_context(p.string());
                            break;
                        }
                        cached.push_back(std::move(u).value());
                    }
                    urls.push_back(cached[0]);
                }
                if (!img_st.ok()) {
                    Attempt a;
                    a.http_attempts = 0;
                    MF_RETURN_IF_ERROR(ledger.record_failed(row.key, a, "image_unreadable",
                                                            img_st.message(), false));
                    ++cnt->failed;
                    continue;
                }
                llm::ChatRequest req =
                    build_judge_request(it, urls, models[slot], row.attempts > 0 ? row.content : "",
                                        row.attempts > 0 ? row.last_error : "");
                req.temperature = o.temperature;
                req.max_tokens = o.max_tokens;
                req.json_object = o.json_mode;
                req.seed = static_cast<int64_t>(o.seed & 0x7fffffff);
                req.user_tag = "judge " + row.key.substr(0, 12);
                json summary{{"model", req.model},
                             {"judge", slot + 1},
                             {"attempt", row.attempts + 1},
                             {"images", sj["images"]},
                             {"text", judge_user_text(it)}};
                summaries.push_back(summary.dump(-1, ' ', false, json::error_handler_t::replace));
                keys.push_back(row.key);
                reqs.push_back(std::move(req));
                req_rows.push_back(&row);
            }
            if (reqs.empty()) continue;
            if (!clients[slot])
                return Status::invalid_argument(fmt::format(
                    "the ledger holds requests for judge {} but no endpoint was given for it",
                    slot + 1));
            MF_RETURN_IF_ERROR(ledger.mark_in_flight(keys));
            Status cb_status;
            auto done = [&](size_t i, Result<llm::ChatResponse> res) {
                if (!cb_status.ok()) return;
                const LedgerRow& row = *req_rows[i];
                Attempt a;
                a.request_summary = summaries[i];
                Status st;
                if (!res.ok()) {
                    if (res.status().code() == StatusCode::kCancelled) {
                        st = ledger.mark_pending(row.key);
                    } else {
                        a.http_attempts = 1;
                        st = ledger.record_failed(row.key, a, "request_failed",
                                                  res.status().to_string(), false);
                        ++cnt->failed;
                        ++cnt->http;
                        ++sent;
                        ++transport;
                        ++cnt->transport_failed;
                        last_transport = res.status().to_string();
                    }
                    if (!st.ok()) cb_status = st;
                    return;
                }
                const llm::ChatResponse& r = *res;
                a.response_raw = r.raw;
                a.content = r.content;
                a.http_attempts = r.attempts;
                a.prompt_tokens = r.usage.prompt_tokens;
                a.completion_tokens = r.usage.completion_tokens;
                cnt->http += r.attempts;
                ++sent;
                answered_any = true;
                auto scores = parse_judge_reply(r.content);
                if (scores.ok()) {
                    ojson out = ojson::object();
                    for (size_t c = 0; c < kJudgeCriteria.size(); ++c)
                        out[kJudgeCriteria[c]] = {{"score", scores->score[c]},
                                                  {"reason", scores->reason[c]}};
                    st = ledger.record_done(row.key, a, out.dump());
                    ++cnt->done;
                } else {
                    std::string err = scores.status().message();
                    if (r.finish_reason == "length")
                        err += " (the reply was cut off at max_tokens; raise --max-tokens)";
                    if (row.attempts + 1 <= o.max_reasks) {
                        st = ledger.record_reask(row.key, a, "invalid_scores", err);
                        ++cnt->reasked;
                    } else {
                        st = ledger.record_failed(
                            row.key, a, "invalid_scores",
                            fmt::format("{} (after {} replies)", err, row.attempts + 1), true);
                        ++cnt->failed;
                    }
                }
                if (!st.ok()) cb_status = st;
            };
            Status batch_st = clients[slot]->run_batch(reqs, done, o.cancel);
            MF_RETURN_IF_ERROR(cb_status);
            MF_ASSIGN_OR_RETURN(int stray, ledger.reset_in_flight());
            (void)stray;
            if (!batch_st.ok() && batch_st.code() != StatusCode::kCancelled)
                return batch_st.with_context(fmt::format("judge {} client", slot + 1));
        }
        if (!answered_any && sent > 0 && transport == sent && cnt->done + cnt->reasked == 0 &&
            !(o.cancel && o.cancel->load())) {
            return Status::unavailable(fmt::format(
                "all {} requests of the first batch failed and none was answered (last: {}); "
                "check --endpoint, --model and the API key. Nothing was paid; re-run to retry",
                sent, last_transport));
        }
        auto now = std::chrono::steady_clock::now();
        if (o.progress && now - last_log > std::chrono::seconds(5)) {
            last_log = now;
            log::info("judge: {} scored, {} re-asked, {} failed, {} HTTP requests", cnt->done,
                      cnt->reasked, cnt->failed, cnt->http);
        }
    }
    if (o.cancel && o.cancel->load()) {
        MF_ASSIGN_OR_RETURN(int reset, ledger.reset_in_flight());
        (void)reset;
        return Status::cancelled(fmt::format(
            "judge stopped: {} scores recorded this run; the ledger is consistent, re-run the "
            "same command to resume",
            cnt->done));
    }
    return {};
}

json stat_block(const std::vector<double>& v, const JudgeOptions& o, uint64_t salt) {
    json b;
    b["n"] = v.size();
    if (v.empty()) {
        b["mean"] = nullptr;
        b["ci95"] = {nullptr, nullptr};
        return b;
    }
    double sum = 0;
    for (double x : v)
        sum += x;
    b["mean"] = sum / static_cast<double>(v.size());
    eval::Interval ci = eval::bootstrap_mean_ci(v, o.bootstrap_resamples, o.bootstrap_seed + salt);
    b["ci95"] = {ci.lo, ci.hi};
    return b;
}

}  // namespace

Result<JudgeRun> run_judge(const JudgeOptions& o, llm::LlmClient* judge1, llm::LlmClient* judge2) {
    if (o.data.empty()) return Status::invalid_argument("give at least one --data FILE");
    if (!judge1 || o.model.empty())
        return Status::invalid_argument("the judge needs --endpoint URL and --model NAME");
    if ((judge2 != nullptr) != !o.model2.empty())
        return Status::invalid_argument(
            "a second judge needs both --judge2-endpoint and --judge2-model");
    if (!o.labels.empty() && o.labels.size() != o.data.size())
        return Status::invalid_argument(
            fmt::format("{} --label values for {} --data files: give one label per file, in the "
                        "same order",
                        o.labels.size(), o.data.size()));
    if (o.out_dir.empty()) return Status::invalid_argument("--out DIR is required");

    // Read and match.
    // Pass 1: ids only (bounded memory for large files); pass 2 below keeps the sampled items.
    const std::unordered_set<std::string> none;
    std::vector<JudgeFile> files;
    for (size_t k = 0; k < o.data.size(); ++k) {
        MF_ASSIGN_OR_RETURN(
            JudgeFile f,
            read_judge_file(o.data[k], o.images_dir, o.labels.empty() ? "" : o.labels[k], &none));
        for (size_t j = 0; j < files.size(); ++j)
            if (files[j].label == f.label)
                return Status::invalid_argument(fmt::format(
                    "{} and {} both have the method label '{}'; give each file its own with "
                    "--label (one per --data, in order)",
                    files[j].path.string(), f.path.string(), f.label));
        files.push_back(std::move(f));
    }
    std::vector<std::string> ids = sample_common_ids(files, o.sample, o.seed);
    if (ids.empty()) {
        std::string counts;
        for (const auto& f : files)
            counts += fmt::format("{}{} ({} ids, e.g. '{}')", counts.empty() ? "" : ", ",
                                  f.path.string(), f.ids.size(), f.ids.front());
        return Status::invalid_argument(
            "no sample id is present in every --data file: " + counts +
            ". The files must hold the same samples (matched by \"sample_id\", else \"id\")");
    }
    {
        const std::unordered_set<std::string> keep(ids.begin(), ids.end());
        for (auto& f : files) {
            MF_ASSIGN_OR_RETURN(JudgeFile full,
                                read_judge_file(f.path, o.images_dir, f.label, &keep));
            f.items = std::move(full.items);
            for (auto& [id, it] : f.items)
                it.label = f.label;
        }
    }
    if (o.sample > ids.size())
        log::warn("judge: --sample {} but only {} sample ids are shared by every file; scoring all",
                  o.sample, ids.size());

    // Ground truth.
    std::vector<fs::path> sample_files = o.samples;
    if (sample_files.empty()) {
        std::set<fs::path> seen;
        for (const auto& f : files) {
            fs::path p = (f.path.parent_path().empty() ? fs::path(".") : f.path.parent_path()) /
                         "samples.jsonl";
            std::error_code ec;
            if (fs::is_regular_file(p, ec) && seen.insert(p).second) sample_files.push_back(p);
        }
    }
    std::unordered_set<std::string> wanted(ids.begin(), ids.end());
    std::unordered_map<std::string, curate::Sample> truth;
    for (const auto& p : sample_files) {
        io::LineReader lines;
        MF_RETURN_IF_ERROR(lines.open(p));
        std::string_view line;
        while (lines.next(&line)) {
            if (text::trim(line).empty()) continue;
            auto s = curate::sample_from_json(line);
            if (!s.ok())
                return Status::invalid_argument(
                    fmt::format("{}:{}: {}", p.string(), lines.line_no(), s.status().message()));
            if (wanted.count(s->id) && !truth.count(s->id))
                truth.emplace(s->id, std::move(s).value());
        }
        MF_RETURN_IF_ERROR(lines.status());
    }
    for (const auto& id : ids) {
        if (truth.count(id)) continue;
        std::string where;
        for (const auto& p : sample_files)
            where += (where.empty() ? "" : ", ") + p.string();
        return Status::not_found(fmt::format(
            "no source caption for sample '{}' (looked in: {}); pass --samples FILE, the Sample "
            "JSONL the VQA files were built from (OUT/samples.jsonl of `medforge reformat`)",
            id, where.empty() ? "no samples.jsonl beside the --data files" : where));
    }
    for (auto& f : files) {
        for (const auto& id : ids) {
            JudgeItem& it = f.items[id];
            it.caption = truth[id].caption;
            it.mentions = truth[id].mentions;
        }
    }

    // Register the requests in a seeded random order (judge 2 in its own order).
    MF_RETURN_IF_ERROR(io::ensure_dir(o.out_dir));
    MF_ASSIGN_OR_RETURN(std::unique_ptr<Ledger> ledger, Ledger::open(o.out_dir / "ledger.sqlite"));
    MF_ASSIGN_OR_RETURN(int reset, ledger->reset_in_flight());
    if (reset > 0)
        log::info("judge: {} requests were in flight when the last run stopped; asking again",
                  reset);
    MF_ASSIGN_OR_RETURN(int retried, ledger->reset_failed({"request_failed", "image_unreadable"}));
    if (retried > 0) log::info("judge: retrying {} requests that failed before", retried);

    const std::string models[2] = {o.model, o.model2};
    std::unordered_map<std::string, std::string> image_sha;
    std::vector<Pair> pairs;
    std::set<std::string> run_keys;
    MF_RETURN_IF_ERROR(ledger->begin());
    for (int judge = 1; judge <= (judge2 ? 2 : 1); ++judge) {
        std::vector<Pair> order;
        for (const auto& id : ids)
            for (size_t k = 0; k < files.size(); ++k)
                order.push_back({judge, k, id, ""});
        seeded_shuffle(order, o.seed * 1000003ULL + static_cast<uint64_t>(judge));
        for (auto& p : order) {
            const JudgeItem& it = files[p.file].items.at(p.id);
            std::vector<std::string> hashes;
            for (const auto& img : it.images) {
                auto& h = image_sha[img.string()];
                if (h.empty()) {
                    auto bytes = io::read_file(img);
                    if (!bytes.ok())
                        return Status::not_found(fmt::format(
                            "{}: sample '{}': image {} cannot be read ({}); point --images at "
                            "the directory the \"image\" paths are relative to",
                            files[p.file].path.string(), p.id, img.string(),
                            bytes.status().message()));
                    h = sha256_hex(*bytes);
                }
                hashes.push_back(h);
            }
            LedgerRow row;
            row.sample_id = it.id;
            row.method = fmt::format("judge{}/{}", judge, it.label);
            row.model = models[judge - 1];
            row.prompt_version =
                std::string(kJudgePromptVersion) + ":" +
                sha256_hex(judge_system_prompt() + "\n" + judge_user_text(it)).substr(0, 16);
            row.key = request_key(row.sample_id, row.method, row.model, row.prompt_version, hashes);
            row.sample_json =
                item_json(it, judge).dump(-1, ' ', false, json::error_handler_t::replace);
            MF_ASSIGN_OR_RETURN(bool added, ledger->add(row));
            (void)added;
            p.key = row.key;
            run_keys.insert(row.key);
            pairs.push_back(p);
        }
    }
    MF_RETURN_IF_ERROR(ledger->commit());

    Counters cnt;
    llm::LlmClient* clients[2] = {judge1, judge2};
    MF_RETURN_IF_ERROR(ask_pending(o, *ledger, run_keys, clients, models, &cnt));

    // Outputs, from the ledger.
    std::vector<std::string> labels;
    for (const auto& f : files)
        labels.push_back(f.label);
    std::vector<std::string> sorted_ids = ids;
    std::sort(sorted_ids.begin(), sorted_ids.end());
    std::map<std::tuple<int, std::string, std::string>, const Pair*> by;
    for (const auto& p : pairs)
        by[{p.judge, files[p.file].label, p.id}] = &p;

    json report;
    json protocol;
    protocol["prompt_version"] = kJudgePromptVersion;
    protocol["system_prompt_sha256"] = sha256_hex(judge_system_prompt());
    protocol["criteria"] = kJudgeCriteria;
    protocol["scale"] = {1, 5};
    protocol["seed"] = o.seed;
    protocol["sample_requested"] = o.sample;
    protocol["samples_scored"] = ids.size();
    protocol["temperature"] = o.temperature;
    protocol["max_reasks"] = o.max_reasks;
    protocol["bootstrap"] = {{"resamples", o.bootstrap_resamples}, {"seed", o.bootstrap_seed}};
    json fj = json::array();
    for (const auto& f : files)
        fj.push_back({{"path", f.path.string()}, {"label", f.label}, {"records", f.ids.size()}});
    protocol["files"] = fj;
    report["protocol"] = protocol;
    report["methods"] = labels;

    json items = json::array();
    json judges = json::array();
    int64_t replies = 0, http = 0, ptok = 0, ctok = 0;
    // scores[judge][label][id] = 4 scores (done rows only)
    std::map<int, std::map<std::string, std::map<std::string, std::array<int, 4>>>> scores;
    const int n_judges = judge2 ? 2 : 1;
    for (int judge = 1; judge <= n_judges; ++judge) {
        json jj;
        jj["judge"] = judge;
        jj["model"] = models[judge - 1];
        json methods = json::object();
        uint64_t salt = static_cast<uint64_t>(judge) * 100;
        for (const auto& label : labels) {
            std::array<std::vector<double>, 5> vals;  // 4 criteria + overall
            int64_t failed = 0;
            std::map<std::string, int64_t> fail_reasons;
            for (const auto& id : sorted_ids) {
                const Pair* p = by.at({judge, label, id});
                MF_ASSIGN_OR_RETURN(std::optional<LedgerRow> row, ledger->get(p->key));
                if (!row) return Status::internal("ledger lost row " + p->key);
                replies += row->attempts;
                http += row->http_attempts;
                ptok += row->prompt_tokens;
                ctok += row->completion_tokens;
                json item;
                item["judge"] = judge;
                item["id"] = id;
                item["method"] = label;
                item["state"] = std::string(row_state_name(row->state));
                item["replies"] = row->attempts;
                if (row->state == RowState::kDone) {
                    json out = json::parse(row->output_json, nullptr, false);
                    if (out.is_discarded()) return Status::corruption("ledger row " + p->key);
                    std::array<int, 4> sc{};
                    json sj = json::object(), rj = json::object();
                    double sum = 0;
                    for (size_t c = 0; c < 4; ++c) {
                        sc[c] = out[kJudgeCriteria[c]]["score"].get<int>();
                        sj[kJudgeCriteria[c]] = sc[c];
                        rj[kJudgeCriteria[c]] = out[kJudgeCriteria[c]]["reason"];
                        vals[c].push_back(sc[c]);
                        sum += sc[c];
                    }
                    vals[4].push_back(sum / 4.0);
                    scores[judge][label][id] = sc;
                    item["scores"] = sj;
                    item["reasons"] = rj;
                } else {
                    ++failed;
                    ++fail_reasons[row->reason.empty() ? std::string(row_state_name(row->state))
                                                       : row->reason];
                    item["reason"] = row->reason;
                    item["detail"] = row->detail;
                }
                items.push_back(item);
            }
            json m;
            m["scored"] = vals[0].size();
            m["failed"] = failed;
            m["failures"] = fail_reasons;
            json crit = json::object();
            for (size_t c = 0; c < 4; ++c)
                crit[kJudgeCriteria[c]] = stat_block(vals[c], o, salt + c);
            crit["overall"] = stat_block(vals[4], o, salt + 4);
            m["criteria"] = crit;
            methods[label] = m;
            salt += 10;
        }
        jj["methods"] = methods;
        judges.push_back(jj);
    }
    report["judges"] = judges;

    if (n_judges == 2) {
        json ag;
        json crit = json::object();
        for (size_t c = 0; c < 4; ++c) {
            std::vector<int> a, b;
            for (const auto& label : labels)
                for (const auto& id : sorted_ids) {
                    auto& s1 = scores[1][label];
                    auto& s2 = scores[2][label];
                    auto i1 = s1.find(id);
                    auto i2 = s2.find(id);
                    if (i1 == s1.end() || i2 == s2.end()) continue;
                    a.push_back(i1->second[c]);
                    b.push_back(i2->second[c]);
                }
            int64_t exact = 0, within1 = 0;
            for (size_t i = 0; i < a.size(); ++i) {
                exact += a[i] == b[i];
                within1 += std::abs(a[i] - b[i]) <= 1;
            }
            double n = static_cast<double>(a.size());
            crit[kJudgeCriteria[c]] = {
                {"n", a.size()},
                {"kappa_quadratic", num_or_null(quadratic_weighted_kappa(a, b))},
                {"exact", a.empty() ? json(nullptr) : json(exact / n)},
                {"within_1", a.empty() ? json(nullptr) : json(within1 / n)}};
        }
        ag["models"] = {o.model, o.model2};
        ag["criteria"] = crit;
        report["agreement"] = ag;
    } else {
        report["agreement"] = nullptr;
    }
    report["requests"] = {{"replies", replies},        {"http", http},
                          {"http_this_run", cnt.http}, {"reasked_this_run", cnt.reasked},
                          {"prompt_tokens", ptok},     {"completion_tokens", ctok}};
    report["items"] = items;

    std::string items_jsonl;
    for (const auto& it : items)
        items_jsonl += it.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    MF_RETURN_IF_ERROR(io::write_file_atomic(o.out_dir / "items.jsonl", items_jsonl));
    MF_RETURN_IF_ERROR(io::write_file_atomic(
        o.out_dir / "report.json", report.dump(2, ' ', false, json::error_handler_t::replace)));
    MF_RETURN_IF_ERROR(
        io::write_file_atomic(o.out_dir / "report.md", judge_report_markdown(report)));
    MF_RETURN_IF_ERROR(io::write_file_atomic(o.out_dir / "report.html", judge_report_html(report)));
    JudgeRun run;
    run.report = std::move(report);
    run.http_requests_this_run = cnt.http;
    return run;
}

// ---------------------------------------------------------------- reports

namespace {

std::string mean_ci(const json& b) {
    if (!b["mean"].is_number()) return "–";
    return fmt::format("{} [{}, {}]", fmt_score(get_num(b["mean"])),
                       fmt_score(get_num(b["ci95"][0])), fmt_score(get_num(b["ci95"][1])));
}

std::string capital(std::string s) {
    if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
    return s;
}

const char* kPalette[] = {"#8fb8de", "#f4a582", "#a6d96a", "#b2abd2",
                          "#fdd835", "#80cbc4", "#e57373", "#bdbdbd"};

// Grouped bar chart in the style of the paper's Figure 5: one group per criterion, one bar per
// method, the mean printed on each bar, 95% CI whiskers, a 0-5 axis.
std::string svg_grouped(const json& judge, const std::vector<std::string>& labels) {
    const int W = 760, H = 380, left = 48, right = 16, top = 40, bottom = 40;
    const int plot_w = W - left - right, plot_h = H - top - bottom;
    const size_t ng = kJudgeCriteria.size(), nb = std::max<size_t>(labels.size(), 1);
    const double group_w = static_cast<double>(plot_w) / static_cast<double>(ng);
    const double bar_w = group_w * 0.8 / static_cast<double>(nb);
    auto Y = [&](double v) { return top + plot_h - plot_h * std::clamp(v, 0.0, 5.0) / 5.0; };
    std::string s = fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
        "font-family=\"sans-serif\" font-size=\"12\">\n",
        W, H);
    for (int t = 0; t <= 5; ++t) {
        double y = Y(t);
        s += fmt::format(
            "<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>"
            "<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n",
            left, y, W - right, y, left - 6, y + 4, t);
    }
    // Legend.
    double lx = left;
    for (size_t m = 0; m < labels.size(); ++m) {
        s += fmt::format(
            "<rect x=\"{:.1f}\" y=\"8\" width=\"12\" height=\"12\" fill=\"{}\"/>"
            "<text x=\"{:.1f}\" y=\"18\">{}</text>\n",
            lx, kPalette[m % 8], lx + 16, html_esc(labels[m]));
        lx += 28 + 7.0 * static_cast<double>(labels[m].size());
    }
    for (size_t g = 0; g < ng; ++g) {
        double gx = left + group_w * static_cast<double>(g) + group_w * 0.1;
        for (size_t m = 0; m < labels.size(); ++m) {
            const json& b = judge["methods"][labels[m]]["criteria"][kJudgeCriteria[g]];
            double v = get_num(b["mean"]);
            double x = gx + bar_w * static_cast<double>(m);
            if (std::isnan(v)) continue;
            s += fmt::format(
                "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" "
                "fill=\"{}\"><title>{} {}: {}</title></rect>\n",
                x, Y(v), bar_w * 0.92, Y(0) - Y(v), kPalette[m % 8], html_esc(labels[m]),
                kJudgeCriteria[g], mean_ci(b));
            double lo = get_num(b["ci95"][0]), hi = get_num(b["ci95"][1]);
            double cx = x + bar_w * 0.46;
            if (!std::isnan(lo) && !std::isnan(hi))
                s += fmt::format(
                    "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" "
                    "stroke=\"#333\"/><line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" "
                    "y2=\"{:.1f}\" stroke=\"#333\"/><line x1=\"{:.1f}\" y1=\"{:.1f}\" "
                    "x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#333\"/>\n",
                    cx, Y(lo), cx, Y(hi), cx - 3, Y(lo), cx + 3, Y(lo), cx - 3, Y(hi), cx + 3,
                    Y(hi));
            s += fmt::format(
                "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" "
                "font-size=\"11\">{:.1f}</text>\n",
                cx, std::min(Y(v), std::isnan(hi) ? Y(v) : Y(hi)) - 4, v);
        }
        s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                         left + group_w * (static_cast<double>(g) + 0.5), H - bottom + 18,
                         capital(kJudgeCriteria[g]));
    }
    s += "</svg>\n";
    return s;
}

std::vector<std::string> labels_of(const json& r) {
    return r["methods"].get<std::vector<std::string>>();
}

}  // namespace

std::string judge_report_markdown(const json& r) {
    const auto labels = labels_of(r);
    const json& p = r["protocol"];
    std::string md = "# medforge judge\n\n";
    md += fmt::format(
        "{} samples × {} methods, scored 1–5 by an MLLM judge (prompt {}, seed {}, method labels "
        "hidden, order shuffled). Means with percentile-bootstrap 95% CIs ({} resamples).\n\n",
        p["samples_scored"].get<int64_t>(), labels.size(), p["prompt_version"].get<std::string>(),
        p["seed"].get<uint64_t>(), p["bootstrap"]["resamples"].get<int>());
    md += "| method | file |\n|---|---|\n";
    for (const auto& f : p["files"])
        md += fmt::format("| {} | {} |\n", md_cell(f["label"].get<std::string>()),
                          md_cell(f["path"].get<std::string>()));
    for (const auto& j : r["judges"]) {
        md += fmt::format("\n## Judge {}: {}\n\n", j["judge"].get<int>(),
                          md_cell(j["model"].get<std::string>()));
        md +=
            "| method | scored | failed | accuracy | relevance | completeness | usefulness | "
            "overall |\n|---|---|---|---|---|---|---|---|\n";
        for (const auto& label : labels) {
            const json& m = j["methods"][label];
            md += fmt::format("| {} | {} | {} |", md_cell(label), m["scored"].get<int64_t>(),
                              m["failed"].get<int64_t>());
            for (const char* c : kJudgeCriteria)
                md += fmt::format(" {} |", mean_ci(m["criteria"][c]));
            md += fmt::format(" {} |\n", mean_ci(m["criteria"]["overall"]));
        }
    }
    if (r["agreement"].is_object()) {
        const json& a = r["agreement"];
        md += fmt::format("\n## Inter-judge agreement ({} vs {})\n\n",
                          md_cell(a["models"][0].get<std::string>()),
                          md_cell(a["models"][1].get<std::string>()));
        md +=
            "| criterion | pairs | Cohen's kappa (quadratic) | exact | within 1 |\n"
            "|---|---|---|---|---|\n";
        for (const char* c : kJudgeCriteria) {
            const json& b = a["criteria"][c];
            auto f3 = [](const json& v) {
                return v.is_number() ? fmt::format("{:.3f}", v.get<double>()) : std::string("–");
            };
            md += fmt::format("| {} | {} | {} | {} | {} |\n", c, b["n"].get<int64_t>(),
                              f3(b["kappa_quadratic"]), f3(b["exact"]), f3(b["within_1"]));
        }
    }
    md +=
        "\n## Items\n\n| judge | sample | method | accuracy | relevance | completeness | "
        "usefulness | state |\n|---|---|---|---|---|---|---|---|\n";
    for (const auto& it : r["items"]) {
        md += fmt::format("| {} | {} | {} |", it["judge"].get<int>(),
                          md_cell(it["id"].get<std::string>()),
                          md_cell(it["method"].get<std::string>()));
        for (const char* c : kJudgeCriteria)
            md += it.contains("scores") ? fmt::format(" {} |", it["scores"][c].get<int>())
                                        : std::string(" – |");
        std::string state = it["state"].get<std::string>();
        if (it.contains("reason") && it["reason"].is_string() &&
            !it["reason"].get<std::string>().empty())
            state += " (" + it["reason"].get<std::string>() + ")";
        md += fmt::format(" {} |\n", md_cell(state));
    }
    return md;
}

std::string judge_report_html(const json& r) {
    const auto labels = labels_of(r);
    std::string h =
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>medforge judge</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:64em}table{border-collapse:"
        "collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
        "th{background:#eee}td.s{text-align:center}</style></head><body>\n";
    const json& p = r["protocol"];
    h += "<h1>medforge judge</h1>\n";
    h += fmt::format(
        "<p>{} samples &times; {} methods, scored 1&ndash;5 by an MLLM judge (prompt {}, seed "
        "{}; method labels hidden, order shuffled). Bars: mean; whiskers: bootstrap 95% CI.</p>\n",
        p["samples_scored"].get<int64_t>(), labels.size(),
        html_esc(p["prompt_version"].get<std::string>()), p["seed"].get<uint64_t>());
    for (const auto& j : r["judges"]) {
        h += fmt::format("<h2>Judge {}: {}</h2>\n", j["judge"].get<int>(),
                         html_esc(j["model"].get<std::string>()));
        h += svg_grouped(j, labels);
        h += "<table><tr><th>method</th><th>scored</th><th>failed</th>";
        for (const char* c : kJudgeCriteria)
            h += fmt::format("<th>{}</th>", c);
        h += "<th>overall</th></tr>\n";
        for (const auto& label : labels) {
            const json& m = j["methods"][label];
            h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td>", html_esc(label),
                             m["scored"].get<int64_t>(), m["failed"].get<int64_t>());
            for (const char* c : kJudgeCriteria)
                h += "<td>" + mean_ci(m["criteria"][c]) + "</td>";
            h += "<td>" + mean_ci(m["criteria"]["overall"]) + "</td></tr>\n";
        }
        h += "</table>\n";
    }
    if (r["agreement"].is_object()) {
        const json& a = r["agreement"];
        h += "<h2>Inter-judge agreement</h2>\n<table><tr><th>criterion</th><th>pairs</th>"
             "<th>Cohen's kappa (quadratic)</th><th>exact</th><th>within 1</th></tr>\n";
        for (const char* c : kJudgeCriteria) {
            const json& b = a["criteria"][c];
            auto f3 = [](const json& v) {
                return v.is_number() ? fmt::format("{:.3f}", v.get<double>()) : std::string("–");
            };
            h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                             c, b["n"].get<int64_t>(), f3(b["kappa_quadratic"]), f3(b["exact"]),
                             f3(b["within_1"]));
        }
        h += "</table>\n";
    }
    h += "<h2>Items</h2>\n<p>Hover a score for the judge's reason.</p>\n<table><tr><th>judge</th>"
         "<th>sample</th><th>method</th>";
    for (const char* c : kJudgeCriteria)
        h += fmt::format("<th>{}</th>", c);
    h += "<th>state</th></tr>\n";
    for (const auto& it : r["items"]) {
        h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td>", it["judge"].get<int>(),
                         html_esc(it["id"].get<std::string>()),
                         html_esc(it["method"].get<std::string>()));
        for (const char* c : kJudgeCriteria) {
            if (it.contains("scores"))
                h += fmt::format("<td class=\"s\" title=\"{}\">{}</td>",
                                 html_esc(it["reasons"][c].get<std::string>()),
                                 it["scores"][c].get<int>());
            else
                h += "<td class=\"s\">–</td>";
        }
        std::string state = it["state"].get<std::string>();
        std::string title;
        if (it.contains("reason") && it["reason"].is_string() &&
            !it["reason"].get<std::string>().empty()) {
            state += " (" + it["reason"].get<std::string>() + ")";
            title = it.value("detail", "");
        }
        h += fmt::format("<td title=\"{}\">{}</td></tr>\n", html_esc(title), html_esc(state));
    }
    h += "</table>\n</body></html>\n";
    return h;
}

}  // namespace mf::reformat
