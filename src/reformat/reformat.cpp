#include "reformat/reformat.h"

#include <fmt/core.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_set>

#include "core/hash.h"
#include "core/log.h"
#include "core/text.h"
#include "core/thread_pool.h"
#include "io/file.h"
#include "io/image.h"
#include "io/line_reader.h"
#include "reformat/ledger.h"

namespace mf::reformat {

namespace {

using ojson = nlohmann::ordered_json;

constexpr const char* kStage = "reformat";

// One input record after the scan.
struct Item {
    bool rejected = false;
    curate::Reject reject;
    std::string key;   // model methods
    std::string line;  // native-caption: the sample line
};

curate::Reject make_reject(const curate::Sample* s, std::string reason, std::string detail,
                           const fs::path& file, int64_t line, std::string_view record) {
    curate::Reject r;
    r.id = s ? s->id : "";
    r.stage = kStage;
    r.reason = std::move(reason);
    r.detail = std::move(detail);
    r.file = file.string();
    r.line = line;
    r.record_json = s ? std::string(record) : text::json_quote(record);
    return r;
}

double cost_of(int64_t prompt, int64_t completion, const ReformatOptions& o) {
    return prompt * o.price_in / 1e6 + completion * o.price_out / 1e6;
}

std::string ext_lower(const fs::path& p) {
    return text::ascii_lower(p.extension().string());
}

Status place_image(const fs::path& src, const fs::path& dst, ImageMode mode) {
    std::error_code ec;
    if (mode == ImageMode::kNone) return {};
    if (fs::exists(fs::symlink_status(dst, ec))) {
        if (mode != ImageMode::kCopy) return {};
        if (fs::file_size(dst, ec) == fs::file_size(src, ec) && !ec) return {};
    }
    fs::path tmp = dst;
    tmp += ".tmp";
    fs::remove(tmp, ec);
    ec.clear();
    switch (mode) {
        case ImageMode::kCopy:
            fs::copy_file(src, tmp, ec);
            break;
        case ImageMode::kHardLink:
            fs::create_hard_link(src, tmp, ec);
            break;
        case ImageMode::kSymLink:
            fs::create_symlink(io::absolute_normal(src), tmp, ec);
            break;
        case ImageMode::kNone:
            break;
    }
    if (ec)
        return Status::io_error(fmt::format("cannot place image {} at {}: {}", src.string(),
                                            dst.string(), ec.message()));
    fs::rename(tmp, dst, ec);
    if (ec)
        return Status::io_error(fmt::format("cannot rename {}: {}", tmp.string(), ec.message()));
    return {};
}

std::string human_turn(std::string_view question, size_t n_images, bool image_tokens) {
    std::string out;
    if (image_tokens)
        for (size_t i = 0; i < n_images; ++i)
            out += "<image>\n";
    out += question;
    return out;
}

ojson make_record(const std::string& id, const std::vector<std::string>& images,
                  const std::string& human, const std::string& gpt, const curate::Sample& s,
                  const ReformatOptions& o, const std::string& model, const std::string& scenario) {
    ojson r;
    r["id"] = id;
    r["image"] = images;
    r["conversations"] = ojson::array(
        {ojson{{"from", "human"}, {"value", human}}, ojson{{"from", "gpt"}, {"value", gpt}}});
    r["sample_id"] = s.id;
    r["method"] = std::string(method_name(o.method));
    r["model"] = model;
    r["prompt_version"] = std::string(prompt_version(o.method));
    r["scenario"] = scenario.empty() ? ojson(nullptr) : ojson(scenario);
    r["licence"] = s.lineage.licence;
    r["source"] = s.lineage.source;
    r["article"] = s.lineage.article;
    r["figure"] = s.lineage.figure;
    return r;
}

// Writes a JSON array of records one per line ("[\n" r ",\n" r "\n]\n") and optionally JSONL.
class RecordWriter {
  public:
    Status open(const fs::path& json_path, const fs::path& jsonl_path) {
        MF_RETURN_IF_ERROR(json_.open(json_path));
        if (!jsonl_path.empty()) MF_RETURN_IF_ERROR(jsonl_.open(jsonl_path));
        json_.write("[");
        return {};
    }
    void add(const ojson& r) {
        std::string line = r.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        json_.write(n_++ ? ",\n" : "\n");
        json_.write(line);
        if (jsonl_.is_open()) jsonl_.write_line(line);
    }
    Status close() {
        json_.write(n_ ? "\n]\n" : "]\n");
        MF_RETURN_IF_ERROR(json_.close());
        if (jsonl_.is_open()) MF_RETURN_IF_ERROR(jsonl_.close());
        return {};
    }
    uint64_t count() const { return n_; }

  private:
    io::OutFile json_, jsonl_;
    uint64_t n_ = 0;
};

// Reads the input, rejects what cannot be asked, and (model methods) registers every request in
// the ledger. Items are in input order.
Result<std::vector<Item>> scan_input(const ReformatOptions& o, const fs::path& input,
                                     Ledger* ledger) {
    io::LineReader lines;
    MF_RETURN_IF_ERROR(lines.open(input));
    std::vector<Item> items;
    std::unordered_set<std::string> ids;
    std::string_view line;
    const bool model = method_uses_model(o.method);
    size_t in_txn = 0;
    if (ledger) MF_RETURN_IF_ERROR(ledger->begin());
    while (lines.next(&line)) {
        Item it;
        const int64_t ln = static_cast<int64_t>(lines.line_no());
        auto parsed = curate::sample_from_json(line);
        if (!parsed.ok()) {
            it.rejected = true;
            it.reject =
                make_reject(nullptr, "bad_record",
                            fmt::format("{}:{}: {}", input.string(), ln, parsed.status().message()),
                            input, ln, line);
            items.push_back(std::move(it));
            continue;
        }
        const curate::Sample& s = *parsed;
        auto reject = [&](std::string reason, std::string detail) {
            it.rejected = true;
            it.reject = make_reject(&s, std::move(reason), std::move(detail), input, ln, line);
        };
        if (!ids.insert(s.id).second) {
            reject("duplicate_id", fmt::format("{}:{}: id '{}' appears earlier in the input; "
                                               "give every sample a distinct id",
                                               input.string(), ln, s.id));
        } else if (method_sends_images(o.method) && s.images.empty()) {
            reject("no_images", fmt::format("{}:{}: the sample has no images; method {} needs "
                                            "at least one",
                                            input.string(), ln, method_name(o.method)));
        } else if (!method_sends_images(o.method) && text::trim(s.caption).empty()) {
            reject("empty_caption",
                   fmt::format("{}:{}: the caption is empty; method {} builds on the caption",
                               input.string(), ln, method_name(o.method)));
        }
        std::vector<std::string> hashes;
        if (!it.rejected) {
            for (size_t k = 0; k < s.images.size(); ++k) {
                auto bytes = io::read_file(s.images[k]);
                if (!bytes.ok()) {
                    reject("image_missing",
                           fmt::format("{}:{}: images[{}] {}: {}", input.string(), ln, k,
                                       s.images[k], bytes.status().message()));
                    break;
                }
                hashes.push_back(sha256_hex(*bytes));
            }
        }
        if (!it.rejected) {
            if (model) {
                LedgerRow row;
                row.sample_id = s.id;
                row.method = std::string(method_name(o.method));
                row.model = o.prompt.model;
                row.prompt_version = std::string(prompt_version(o.method));
                row.key =
                    request_key(row.sample_id, row.method, row.model, row.prompt_version, hashes);
                row.sample_json = std::string(line);
                MF_ASSIGN_OR_RETURN(bool added, ledger->add(row));
                (void)added;
                it.key = row.key;
                if (++in_txn == 2000) {
                    MF_RETURN_IF_ERROR(ledger->commit());
                    MF_RETURN_IF_ERROR(ledger->begin());
                    in_txn = 0;
                }
            } else {
                it.line = std::string(line);
            }
        }
        items.push_back(std::move(it));
    }
    if (ledger) MF_RETURN_IF_ERROR(ledger->commit());
    MF_RETURN_IF_ERROR(lines.status());
    return items;
}

std::string request_summary(const llm::ChatRequest& req, const LedgerRow& row, size_t scenario,
                            const curate::Sample& s) {
    ojson j;
    j["model"] = req.model;
    j["method"] = row.method;
    j["prompt_version"] = row.prompt_version;
    j["scenario"] = std::string(scenarios()[scenario].key);
    j["attempt"] = row.attempts + 1;
    j["temperature"] = req.temperature;
    j["max_tokens"] = req.max_tokens;
    j["images"] = s.images;
    std::string text;
    for (const auto& m : req.messages)
        for (const auto& p : m.content)
            if (p.kind == llm::ContentPart::Kind::kText) text += p.text;
    j["text"] = text;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

struct RunCounters {
    int64_t http = 0;
    int64_t done = 0, reasked = 0, failed = 0;
    int64_t verify_flagged = 0, verify_reasked = 0;
};

// The verifier's verdict on one generated reply.
struct VerifyOutcome {
    std::string reason;  // verifier:<kind of the first contradiction>, "" when clean
    std::string detail;  // every contradiction, by field
    bool flagged() const { return !reason.empty(); }
};

VerifyOutcome verify_generated(const curate::Sample& s, const Generated& g,
                               const VerifyOptions& kinds) {
    VerifyOutcome v;
    const std::string source = verify_source_text(s);
    const std::pair<const char*, const std::string*> fields[] = {
        {"image_description", &g.description}, {"answer", &g.answer}};
    for (const auto& [name, text] : fields) {
        if (text->empty()) continue;
        auto cs = verify_answer(source, *text, kinds);
        if (cs.empty()) continue;
        if (v.reason.empty())
            v.reason = "verifier:" + std::string(contradiction_kind_name(cs.front().kind));
        if (!v.detail.empty()) v.detail += "; ";
        v.detail += fmt::format("\"{}\": {}", name, describe_contradictions(cs));
    }
    return v;
}

// Sends every pending request of the ledger, recording each reply. Returns Cancelled when asked
// to stop.
Status request_phase(const ReformatOptions& o, Ledger& ledger, llm::LlmClient& client,
                     RunCounters* counters) {
    std::atomic<bool> stop{false};
    std::atomic<bool> watcher_done{false};
    std::thread watcher([&] {
        while (!watcher_done.load()) {
            if (o.cancel && o.cancel->load()) stop.store(true);
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    });
    struct Joiner {
        std::atomic<bool>& flag;
        std::thread& t;
        ~Joiner() {
            flag.store(true);
            t.join();
        }
    } joiner{watcher_done, watcher};

    const ImageUrlFn image_url = o.image_url ? o.image_url : [&](const fs::path& p) {
        return llm::image_data_url(p, o.image_max_side, o.image_quality);
    };
    ThreadPool pool(o.threads);
    auto t0 = std::chrono::steady_clock::now();
    auto last_log = t0;
    while (!stop.load()) {
        MF_ASSIGN_OR_RETURN(std::vector<LedgerRow> rows,
                            ledger.next_pending(std::max<size_t>(o.batch, 1)));
        if (rows.empty()) break;
        std::vector<llm::ChatRequest> reqs;
        std::vector<const LedgerRow*> req_rows;
        std::vector<const curate::Sample*> req_samples;
        std::vector<std::string> summaries, scenario_keys, keys;
        std::vector<curate::Sample> samples(rows.size());
        for (size_t i = 0; i < rows.size(); ++i) {
            auto sample = curate::sample_from_json(rows[i].sample_json);
            if (!sample.ok()) return sample.status().with_context("ledger row " + rows[i].key);
            samples[i] = std::move(sample).value();
        }
        // Image encoding (decode, resize, JPEG) is the costly part: on all cores.
        std::vector<std::vector<std::string>> all_urls(rows.size());
        std::vector<Status> img_status(rows.size());
        if (method_sends_images(o.method)) {
            pool.parallel_for(rows.size(), [&](size_t, size_t b, size_t e) {
                for (size_t i = b; i < e; ++i) {
                    for (const auto& p : samples[i].images) {
                        auto url = image_url(p);
                        if (!url.ok()) {
                            img_status[i] = url.status().with_context(p);
                            break;
                        }
                        all_urls[i].push_back(std::move(url).value());
                    }
                }
            });
        }
        for (size_t ri = 0; ri < rows.size(); ++ri) {
            const LedgerRow& row = rows[ri];
            const curate::Sample* sample = &samples[ri];
            const std::vector<std::string>& urls = all_urls[ri];
            const Status& img_st = img_status[ri];
            if (!img_st.ok()) {
                Attempt a;
                a.http_attempts = 0;
                MF_RETURN_IF_ERROR(
                    ledger.record_failed(row.key, a, "image_unreadable", img_st.message(), false));
                ++counters->failed;
                continue;
            }
            const size_t scenario = pick_scenario(sample->id, o.prompt.seed);
            std::string reask = row.attempts > 0 ? row.last_error : "";
            if (row.attempts > 0 && reask.empty()) {
                // A re-ask whose request then failed in transport (and was reset for this run)
                // lost its error from the row: take it from the last re-asked attempt.
                MF_ASSIGN_OR_RETURN(auto tries, ledger.attempts(row.key));
                for (const auto& t : tries) {
                    if (t.outcome != "reask") continue;
                    size_t colon = t.error.find(": ");
                    reask = colon == std::string::npos ? t.error : t.error.substr(colon + 2);
                }
            }
            llm::ChatRequest req = build_request(*sample, o.method, o.prompt, urls, reask);
            summaries.push_back(request_summary(req, row, scenario, *sample));
            scenario_keys.emplace_back(scenarios()[scenario].key);
            keys.push_back(row.key);
            reqs.push_back(std::move(req));
            req_rows.push_back(&row);
            req_samples.push_back(sample);
        }
        if (reqs.empty()) continue;
        MF_RETURN_IF_ERROR(ledger.mark_in_flight(keys));
        Status cb_status;
        size_t progressed = 0, transport_failed = 0;
        std::string last_transport_error;
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
                    ++counters->failed;
                    ++counters->http;
                    ++progressed;
                    ++transport_failed;
                    last_transport_error = res.status().to_string();
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
            a.cost = cost_of(a.prompt_tokens, a.completion_tokens, o);
            counters->http += r.attempts;
            ++progressed;
            ValidationParams vp = o.validation;
            vp.need_qa = method_has_instruction(o.method);
            Generated g;
            ValidationError err;
            bool valid = validate_reply(r.content, vp, &g, &err);
            if (valid && o.verify && method_verified(o.method)) {
                VerifyOutcome v = verify_generated(*req_samples[i], g, o.verify_kinds);
                if (v.flagged()) {
                    ++counters->verify_flagged;
                    // Verifier re-asks already spent on this row (only looked up when flagged).
                    int spent = 0;
                    auto prior = ledger.attempts(row.key);
                    if (!prior.ok()) {
                        cb_status = prior.status();
                        return;
                    }
                    for (const auto& p : *prior)
                        if (p.outcome == "reask" && p.error.rfind("verifier:", 0) == 0) ++spent;
                    if (spent < o.verify_reasks) {
                        st = ledger.record_reask(
                            row.key, a, v.reason,
                            fmt::format("it contradicts the reference: {}. Correct these points "
                                        "and keep every statement consistent with the reference",
                                        v.detail));
                        ++counters->reasked;
                        ++counters->verify_reasked;
                    } else {
                        st = ledger.record_failed(
                            row.key, a, v.reason,
                            fmt::format("{} (still contradicting after {} re-ask{})", v.detail,
                                        spent, spent == 1 ? "" : "s"),
                            true);
                        ++counters->failed;
                    }
                    if (!st.ok()) cb_status = st;
                    return;
                }
            }
            if (valid) {
                ojson out{{"description", g.description},
                          {"question", g.question},
                          {"answer", g.answer},
                          {"scenario", scenario_keys[i]}};
                st = ledger.record_done(row.key, a, out.dump());
                ++counters->done;
            } else {
                if (r.finish_reason == "length")
                    err.detail += " (the reply was cut off at max_tokens; raise --max-tokens)";
                if (row.attempts + 1 <= o.max_reasks) {
                    st = ledger.record_reask(row.key, a, err.reason, err.detail);
                    ++counters->reasked;
                } else {
                    st = ledger.record_failed(
                        row.key, a, err.reason,
                        fmt::format("{} (after {} replies)", err.detail, row.attempts + 1), true);
                    ++counters->failed;
                }
            }
            if (!st.ok()) cb_status = st;
        };
        Status batch_st = client.run_batch(reqs, done, &stop);
        MF_RETURN_IF_ERROR(cb_status);
        if (!batch_st.ok() && batch_st.code() != StatusCode::kCancelled) {
            MF_ASSIGN_OR_RETURN(int reset, ledger.reset_in_flight());
            (void)reset;
            return batch_st.with_context("LLM client");
        }
        // Anything the client left without a callback goes back to pending.
        MF_ASSIGN_OR_RETURN(int stray, ledger.reset_in_flight());
        (void)stray;
        if (progressed == 0 && !stop.load())
            return Status::internal("LLM client finished a batch without answering any request");
        // The endpoint has not answered once in this run: stop instead of failing every sample.
        if (transport_failed == reqs.size() && counters->done + counters->reasked == 0 &&
            counters->failed == static_cast<int64_t>(transport_failed) && !stop.load()) {
            return Status::unavailable(fmt::format(
                "all {} requests of the first batch failed and none was answered (last: {}); "
                "check --endpoint, --model and the API key. Nothing was paid; re-run to retry",
                reqs.size(), last_transport_error));
        }
        auto now = std::chrono::steady_clock::now();
        if (o.progress && now - last_log > std::chrono::seconds(5)) {
            last_log = now;
            log::info("reformat: {} done, {} re-asked, {} failed, {} HTTP requests ({:.1f}/s)",
                      counters->done, counters->reasked, counters->failed, counters->http,
                      counters->http / std::chrono::duration<double>(now - t0).count());
        }
    }
    if (stop.load()) {
        MF_ASSIGN_OR_RETURN(int reset, ledger.reset_in_flight());
        (void)reset;
        return Status::cancelled(fmt::format(
            "reformat stopped: {} answers recorded this run; the ledger is consistent, re-run "
            "the same command to resume",
            counters->done));
    }
    return {};
}

// Regenerates every output file from the ledger (model methods) or the input (native-caption).
Result<curate::StageStats> write_outputs(const ReformatOptions& o, const std::vector<Item>& items,
                                         Ledger* ledger, const RunCounters& counters,
                                         double seconds) {
    const fs::path partial = o.out_dir / ".partial";
    std::error_code ec;
    fs::remove_all(partial, ec);
    MF_RETURN_IF_ERROR(io::ensure_dir(partial));
    const fs::path images_dir = o.out_dir / "images";
    if (o.image_mode != ImageMode::kNone) MF_RETURN_IF_ERROR(io::ensure_dir(images_dir));

    curate::StageWriter writer;
    MF_RETURN_IF_ERROR(writer.open(partial, {}, kStage));
    RecordWriter align, instr;
    MF_RETURN_IF_ERROR(align.open(partial / "alignment_vqa.json",
                                  o.jsonl ? partial / "alignment_vqa.jsonl" : fs::path()));
    const bool has_instr = method_has_instruction(o.method);
    if (has_instr)
        MF_RETURN_IF_ERROR(instr.open(partial / "instruction_vqa.json",
                                      o.jsonl ? partial / "instruction_vqa.jsonl" : fs::path()));

    int64_t replies = 0, http = 0, prompt_tokens = 0, completion_tokens = 0, images = 0;
    double cost = 0;
    std::map<std::string, uint64_t> failures;
    int64_t verify_reasked = 0, verify_fixed = 0, verify_rejected = 0;
    for (size_t ord = 0; ord < items.size(); ++ord) {
        const Item& it = items[ord];
        if (it.rejected) {
            writer.reject(ord, it.reject);
            continue;
        }
        std::string sample_json;
        std::string model = o.prompt.model;
        Generated g;
        std::string scenario;
        if (ledger) {
            MF_ASSIGN_OR_RETURN(std::optional<LedgerRow> row, ledger->get(it.key));
            if (!row) return Status::internal("ledger lost row " + it.key);
            replies += row->attempts;
            http += row->http_attempts;
            prompt_tokens += row->prompt_tokens;
            completion_tokens += row->completion_tokens;
            cost += row->cost;
            sample_json = row->sample_json;
            if (row->attempts > 1) {
                MF_ASSIGN_OR_RETURN(auto tries, ledger->attempts(row->key));
                bool verifier_reask = false;
                for (const auto& t : tries)
                    if (t.outcome == "reask" && t.error.rfind("verifier:", 0) == 0)
                        verifier_reask = true;
                if (verifier_reask) {
                    ++verify_reasked;
                    if (row->state == RowState::kDone) ++verify_fixed;
                }
            }
            if (row->state == RowState::kFailed && row->reason.rfind("verifier:", 0) == 0)
                ++verify_rejected;
            if (row->state == RowState::kFailed) {
                auto s = curate::sample_from_json(row->sample_json);
                curate::Reject r = make_reject(s.ok() ? &*s : nullptr, row->reason, row->detail,
                                               s.ok() ? s->lineage.file : "",
                                               s.ok() ? s->lineage.line : 0, row->sample_json);
                if (!row->content.empty()) r.detail += "; last reply: " + row->content;
                writer.reject(ord, std::move(r));
                ++failures[row->reason];
                continue;
            }
            if (row->state != RowState::kDone)
                return Status::internal(fmt::format("ledger row {} is {} at output time", row->key,
                                                    row_state_name(row->state)));
            nlohmann::json out = nlohmann::json::parse(row->output_json, nullptr, false);
            if (out.is_discarded()) return Status::corruption("ledger row " + row->key);
            g.description = out.value("description", "");
            g.question = out.value("question", "");
            g.answer = out.value("answer", "");
            scenario = out.value("scenario", "");
        } else {
            sample_json = it.line;
            model = "none";
        }
        MF_ASSIGN_OR_RETURN(curate::Sample s, curate::sample_from_json(sample_json));
        if (!ledger) g.description = std::string(text::trim(s.caption));
        std::vector<std::string> rel;
        for (size_t k = 0; k < s.images.size(); ++k) {
            if (o.image_mode == ImageMode::kNone) {
                rel.push_back(s.images[k]);
                continue;
            }
            std::string name = output_image_name(s.id, k, s.images[k]);
            MF_RETURN_IF_ERROR(place_image(s.images[k], images_dir / name, o.image_mode));
            rel.push_back("images/" + name);
            ++images;
        }
        const size_t n = s.images.size();
        align.add(make_record(
            s.id + "#alignment", rel,
            human_turn(pick_describe_question(s.id, n, o.prompt.seed), n, o.image_tokens),
            g.description, s, o, model, scenario));
        if (has_instr)
            instr.add(make_record(s.id + "#instruction", rel,
                                  human_turn(g.question, n, o.image_tokens), g.answer, s, o, model,
                                  scenario));
        writer.keep(ord, sample_json);
    }
    MF_RETURN_IF_ERROR(align.close());
    if (has_instr) MF_RETURN_IF_ERROR(instr.close());

    curate::StageStats st;
    st.input = items.size();
    st.seconds = seconds;
    st.extra["method"] = std::string(method_name(o.method));
    st.extra["model"] = ledger ? o.prompt.model : "none";
    st.extra["prompt_version"] = std::string(prompt_version(o.method));
    st.extra["alignment_vqa"] = align.count();
    st.extra["instruction_vqa"] = instr.count();
    st.extra["images"] = images;
    st.extra["requests"] = {{"replies", replies},
                            {"http", http},
                            {"http_this_run", counters.http},
                            {"reasked_this_run", counters.reasked}};
    st.extra["tokens"] = {{"prompt", prompt_tokens}, {"completion", completion_tokens}};
    st.extra["cost"] = cost;
    st.extra["price_per_million"] = {{"prompt", o.price_in}, {"completion", o.price_out}};
    st.extra["failures"] = failures;
    st.extra["verify"] = {{"enabled", ledger != nullptr && o.verify && method_verified(o.method)},
                          {"reasked", verify_reasked},
                          {"fixed_by_reask", verify_fixed},
                          {"rejected", verify_rejected},
                          {"flagged_this_run", counters.verify_flagged},
                          {"reasked_this_run", counters.verify_reasked}};
    MF_RETURN_IF_ERROR(writer.finish(st));

    // Move each finished file into place; stats.json last.
    std::vector<std::string> names = {"samples.jsonl", "rejects.jsonl", "alignment_vqa.json"};
    if (has_instr) names.push_back("instruction_vqa.json");
    if (o.jsonl) {
        names.push_back("alignment_vqa.jsonl");
        if (has_instr) names.push_back("instruction_vqa.jsonl");
    }
    if (!has_instr) {
        fs::remove(o.out_dir / "instruction_vqa.json", ec);
        fs::remove(o.out_dir / "instruction_vqa.jsonl", ec);
    }
    names.push_back("stats.json");
    // Fault injection for the kill tests: MF_REFORMAT_FAULT_PAUSE_MS pauses after the first file
    // is moved into place, so a test can SIGKILL the process in the middle of the output step.
    const char* pause_ms = std::getenv("MF_REFORMAT_FAULT_PAUSE_MS");
    for (size_t i = 0; i < names.size(); ++i) {
        const auto& n = names[i];
        fs::rename(partial / n, o.out_dir / n, ec);
        if (ec)
            return Status::io_error(
                fmt::format("cannot move {} into {}: {}", n, o.out_dir.string(), ec.message()));
        if (i == 0 && pause_ms)
            std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(pause_ms)));
    }
    fs::remove_all(partial, ec);
    return st;
}

}  // namespace

bool method_verified(Method m) {
    return m == Method::kMllmUnblinded || m == Method::kLlmText;
}

std::string verify_source_text(const curate::Sample& s) {
    std::string out(text::trim(s.caption));
    for (const auto& m : s.mentions) {
        out += '\n';
        out += text::trim(m);
    }
    return out;
}

int64_t image_tokens_estimate(int width, int height, int max_side) {
    if (width <= 0 || height <= 0) return 765;
    double w = width, h = height;
    if (max_side > 0 && std::max(w, h) > max_side) {
        double s = max_side / std::max(w, h);
        w *= s;
        h *= s;
    }
    if (std::max(w, h) > 2048) {
        double s = 2048 / std::max(w, h);
        w *= s;
        h *= s;
    }
    if (std::min(w, h) > 768) {
        double s = 768 / std::min(w, h);
        w *= s;
        h *= s;
    }
    int64_t tiles = static_cast<int64_t>(std::ceil(w / 512) * std::ceil(h / 512));
    return 85 + 170 * tiles;
}

std::string output_image_name(std::string_view sample_id, size_t k, const fs::path& source) {
    std::string safe;
    for (char c : sample_id) {
        unsigned char u = static_cast<unsigned char>(c);
        safe += (std::isalnum(u) || c == '-' || c == '.') ? c : '_';
        if (safe.size() >= 80) break;
    }
    std::string ext = ext_lower(source);
    if (ext.empty() || ext.size() > 6) ext = ".img";
    return fmt::format("{}-{:08x}_{}{}", safe, xxh64(sample_id) & 0xffffffffULL, k, ext);
}

Result<ReformatResult> run_reformat(const ReformatOptions& o, llm::LlmClient* client) {
    auto t0 = std::chrono::steady_clock::now();
    const bool model = method_uses_model(o.method);
    if (model && !client)
        return Status::invalid_argument(fmt::format(
            "method {} needs a model endpoint (--endpoint, --model)", method_name(o.method)));
    if (model && o.prompt.model.empty())
        return Status::invalid_argument("--model is required for method " +
                                        std::string(method_name(o.method)));
    MF_ASSIGN_OR_RETURN(fs::path input, curate::stage_input(o.input));
    MF_RETURN_IF_ERROR(io::ensure_dir(o.out_dir));
    std::unique_ptr<Ledger> ledger;
    if (model) {
        MF_ASSIGN_OR_RETURN(ledger, Ledger::open(o.out_dir / "ledger.sqlite"));
        MF_ASSIGN_OR_RETURN(int reset, ledger->reset_in_flight());
        if (reset > 0)
            log::info(
                "reformat: {} requests were in flight when the last run stopped; asking "
                "again",
                reset);
        MF_ASSIGN_OR_RETURN(int retried, ledger->reset_failed({"request_failed"}));
        if (retried > 0) log::info("reformat: retrying {} requests that failed before", retried);
    }
    MF_ASSIGN_OR_RETURN(std::vector<Item> items, scan_input(o, input, ledger.get()));
    RunCounters counters;
    if (model) MF_RETURN_IF_ERROR(request_phase(o, *ledger, *client, &counters));
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    MF_ASSIGN_OR_RETURN(curate::StageStats st,
                        write_outputs(o, items, ledger.get(), counters, seconds));
    ReformatResult r;
    r.stats = std::move(st);
    r.http_requests_this_run = counters.http;
    return r;
}

Result<DryRunEstimate> estimate_reformat(const ReformatOptions& o) {
    MF_ASSIGN_OR_RETURN(fs::path input, curate::stage_input(o.input));
    std::unique_ptr<Ledger> ledger;
    if (method_uses_model(o.method) && fs::exists(o.out_dir / "ledger.sqlite")) {
        MF_ASSIGN_OR_RETURN(ledger, Ledger::open(o.out_dir / "ledger.sqlite", true));
    }
    io::LineReader lines;
    MF_RETURN_IF_ERROR(lines.open(input));
    DryRunEstimate e;
    std::unordered_set<std::string> ids;
    std::string_view line;
    while (lines.next(&line)) {
        ++e.samples;
        auto s = curate::sample_from_json(line);
        if (!s.ok() || !ids.insert(s->id).second ||
            (method_sends_images(o.method) && s->images.empty()) ||
            (!method_sends_images(o.method) && text::trim(s->caption).empty())) {
            ++e.rejected;
            continue;
        }
        if (!method_uses_model(o.method)) continue;
        std::vector<std::string> hashes;
        std::vector<io::ImageInfo> infos;
        bool missing = false;
        for (const auto& p : s->images) {
            auto bytes = io::read_file(p);
            if (!bytes.ok()) {
                missing = true;
                break;
            }
            hashes.push_back(sha256_hex(*bytes));
            infos.push_back(io::probe_image_bytes(*bytes).info);
        }
        if (missing) {
            ++e.rejected;
            continue;
        }
        if (ledger) {
            std::string key = request_key(s->id, method_name(o.method), o.prompt.model,
                                          prompt_version(o.method), hashes);
            MF_ASSIGN_OR_RETURN(auto row, ledger->get(key));
            if (row && (row->state == RowState::kDone || row->state == RowState::kFailed)) {
                if (row->state == RowState::kDone || row->reason != "request_failed") {
                    ++e.already_done;
                    continue;
                }
            }
        }
        ++e.requests;
        std::string text = build_prompt_text(*s, o.method, pick_scenario(s->id, o.prompt.seed));
        e.prompt_tokens += static_cast<int64_t>(text.size() + 3) / 4 + 8;
        if (method_sends_images(o.method)) {
            for (const auto& info : infos) {
                ++e.images;
                e.prompt_tokens += image_tokens_estimate(info.width, info.height, o.image_max_side);
            }
        }
    }
    MF_RETURN_IF_ERROR(lines.status());
    e.max_completion_tokens = e.requests * std::max(o.prompt.max_tokens, 0);
    e.cost_prompt = e.prompt_tokens * o.price_in / 1e6;
    e.cost_max = e.cost_prompt + e.max_completion_tokens * o.price_out / 1e6;
    return e;
}

std::string format_estimate(const DryRunEstimate& e) {
    return fmt::format(
        "dry run: {} samples, {} rejected before any request, {} already answered in the "
        "ledger\n"
        "requests to send: {} ({} images)\n"
        "estimated prompt tokens: {}\n"
        "completion tokens: at most {} (max_tokens per request)\n"
        "estimated cost: {:.4f} for prompts, at most {:.4f} in total (re-asks not counted)\n",
        e.samples, e.rejected, e.already_done, e.requests, e.images, e.prompt_tokens,
        e.max_completion_tokens, e.cost_prompt, e.cost_max);
}

}  // namespace mf::reformat
