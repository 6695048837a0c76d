#include "reformat/verify_run.h"

#include <fmt/core.h>

#include <chrono>
#include <unordered_map>

#include "core/log.h"
#include "core/text.h"
#include "curate/sample.h"
#include "io/file.h"
#include "io/line_reader.h"
#include "reformat/reformat.h"

namespace mf::reformat {

namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;
using json = nlohmann::json;

// Calls fn(record, line) for every record of a .json array (or object) or a .jsonl file.
template <typename Fn>
Status for_each_record(const fs::path& path, Fn&& fn) {
    std::string ext = text::ascii_lower(path.extension().string());
    if (ext == ".json") {
        MF_ASSIGN_OR_RETURN(std::string body, io::read_file(path));
        json j = json::parse(body, nullptr, false);
        if (j.is_discarded())
            return Status::invalid_argument(fmt::format(
                "{}: not valid JSON (give a .json array or a .jsonl file)", path.string()));
        if (j.is_object()) {
            MF_RETURN_IF_ERROR(fn(j, int64_t{1}));
            return {};
        }
        if (!j.is_array())
            return Status::invalid_argument(
                fmt::format("{}: expected a JSON array of records", path.string()));
        int64_t k = 0;
        for (const auto& r : j)
            MF_RETURN_IF_ERROR(fn(r, ++k));
        return {};
    }
    io::LineReader lines;
    MF_RETURN_IF_ERROR(lines.open(path));
    std::string_view line;
    while (lines.next(&line)) {
        if (text::trim(line).empty()) continue;
        json r = json::parse(line.begin(), line.end(), nullptr, false);
        if (r.is_discarded() || !r.is_object())
            return Status::invalid_argument(
                fmt::format("{}:{}: not a JSON object (one record per line expected)",
                            path.string(), lines.line_no()));
        MF_RETURN_IF_ERROR(fn(r, static_cast<int64_t>(lines.line_no())));
    }
    return lines.status();
}

std::string string_of(const json& r, const char* key) {
    auto it = r.find(key);
    return it != r.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Mentions as strings or as {"tokens"|"sentence"|"text": "..."} objects.
std::vector<std::string> mention_list(const json& r, const char* key) {
    std::vector<std::string> out;
    auto it = r.find(key);
    if (it == r.end() || !it->is_array()) return out;
    for (const auto& m : *it) {
        if (m.is_string()) {
            out.push_back(m.get<std::string>());
        } else if (m.is_object()) {
            for (const char* k : {"tokens", "sentence", "text"}) {
                std::string s = string_of(m, k);
                if (!s.empty()) {
                    out.push_back(s);
                    break;
                }
            }
        }
    }
    return out;
}

std::string join_source(std::string caption, const std::vector<std::string>& mentions) {
    curate::Sample s;
    s.caption = std::move(caption);
    s.mentions = mentions;
    return verify_source_text(s);
}

ojson evidence_json(const Evidence& e) {
    return ojson{{"begin", e.begin}, {"end", e.end}, {"text", e.text}};
}

// The source text of every sample of a Sample JSONL, by id.
Status load_samples(const fs::path& path, std::unordered_map<std::string, std::string>* out) {
    io::LineReader lines;
    MF_RETURN_IF_ERROR(lines.open(path));
    std::string_view line;
    while (lines.next(&line)) {
        if (text::trim(line).empty()) continue;
        auto s = curate::sample_from_json(line);
        if (!s.ok())
            return s.status().with_context(fmt::format("{}:{}", path.string(), lines.line_no()));
        (*out)[s->id] = verify_source_text(*s);
    }
    return lines.status();
}

}  // namespace

ojson VerifyRunStats::to_json() const {
    ojson j;
    j["records"] = records;
    j["records_without_source"] = no_source;
    j["answers_checked"] = answers;
    j["records_flagged"] = records_flagged;
    j["answers_flagged"] = answers_flagged;
    const int64_t checked_records = records - no_source;
    j["record_flag_rate"] = checked_records ? double(records_flagged) / checked_records : 0.0;
    j["answer_flag_rate"] = answers ? double(answers_flagged) / answers : 0.0;
    ojson k = ojson::object();
    for (int i = 0; i < kContradictionKinds; ++i) {
        k[std::string(contradiction_kind_name(static_cast<ContradictionKind>(i)))] = {
            {"answers", by_kind[i]}, {"rate", answers ? double(by_kind[i]) / answers : 0.0}};
    }
    j["by_kind"] = std::move(k);
    return j;
}

Result<VerifyOptions> parse_verify_kinds(std::string_view list) {
    VerifyOptions o;
    std::string l = text::ascii_lower(text::trim(list));
    if (l.empty() || l == "all") return o;
    for (bool& b : o.kinds)
        b = false;
    for (std::string_view part : text::split(l, ',')) {
        part = text::trim(part);
        bool found = false;
        for (int i = 0; i < kContradictionKinds; ++i) {
            if (part == contradiction_kind_name(static_cast<ContradictionKind>(i))) {
                o.kinds[i] = true;
                found = true;
            }
        }
        if (!found)
            return Status::invalid_argument(fmt::format(
                "unknown verifier kind '{}'; use laterality, negation, number_unit, modality, "
                "sequence, anatomy (comma-separated) or all",
                part));
    }
    return o;
}

Result<VerifyRunStats> run_verify(const VerifyRunOptions& o) {
    std::vector<fs::path> files;
    fs::path samples = o.samples;
    std::error_code ec;
    if (fs::is_directory(o.input, ec)) {
        for (const char* base : {"alignment_vqa", "instruction_vqa"}) {
            fs::path jl = o.input / (std::string(base) + ".jsonl");
            fs::path js = o.input / (std::string(base) + ".json");
            if (fs::exists(jl))
                files.push_back(jl);
            else if (fs::exists(js))
                files.push_back(js);
        }
        if (files.empty())
            return Status::not_found(fmt::format(
                "{}: no alignment_vqa.json(l) or instruction_vqa.json(l); give a reformat output "
                "directory or a VQA file",
                o.input.string()));
        if (samples.empty()) samples = o.input / "samples.jsonl";
    } else if (fs::exists(o.input, ec)) {
        files.push_back(o.input);
        if (samples.empty() && fs::exists(o.input.parent_path() / "samples.jsonl"))
            samples = o.input.parent_path() / "samples.jsonl";
    } else {
        return Status::not_found(
            fmt::format("--in {}: no such file or directory", o.input.string()));
    }
    std::unordered_map<std::string, std::string> by_id;
    if (!samples.empty()) {
        if (!fs::exists(samples))
            return Status::not_found(fmt::format("--samples {}: no such file", samples.string()));
        MF_RETURN_IF_ERROR(load_samples(samples, &by_id));
    }

    MF_RETURN_IF_ERROR(io::ensure_dir(o.out_dir));
    io::OutFile flagged, passed;
    MF_RETURN_IF_ERROR(flagged.open(o.out_dir / "flagged.jsonl"));
    MF_RETURN_IF_ERROR(passed.open(o.out_dir / "passed.jsonl"));
    VerifyRunStats st;
    auto t0 = std::chrono::steady_clock::now();
    for (const fs::path& file : files) {
        Status s = for_each_record(file, [&](const json& r, int64_t line) -> Status {
            ++st.records;
            std::string id = string_of(r, "id");
            if (id.empty()) id = string_of(r, "pair_id");
            std::string sample_id = string_of(r, "sample_id");
            // The source text and the answers to check.
            std::string source;
            std::vector<std::string> answers;
            const bool has_conv = r.contains("conversations") && r["conversations"].is_array();
            if (has_conv) {
                for (const auto& t : r["conversations"]) {
                    if (!t.is_object()) continue;
                    std::string from = string_of(t, "from");
                    if (from.empty()) from = string_of(t, "role");
                    if (from == "gpt" || from == "assistant") {
                        std::string v = string_of(t, "value");
                        if (v.empty()) v = string_of(t, "content");
                        answers.push_back(std::move(v));
                    }
                }
                if (r.contains("fig_caption"))
                    source = join_source(string_of(r, "fig_caption"),
                                         mention_list(r, "in_text_mention"));
                else if (r.contains("caption"))
                    source = join_source(string_of(r, "caption"), mention_list(r, "mentions"));
                if (source.empty()) {
                    std::string key = sample_id;
                    if (key.empty()) key = id.substr(0, id.find('#'));
                    auto it = by_id.find(key);
                    if (it == by_id.end()) it = by_id.find(id);
                    if (it != by_id.end()) source = it->second;
                    if (sample_id.empty()) sample_id = key;
                }
            } else if (r.contains("caption")) {
                // A Sample record: its caption against its own mentions.
                std::vector<std::string> ms = mention_list(r, "mentions");
                std::string joined;
                for (const auto& m : ms)
                    joined += (joined.empty() ? "" : "\n") + m;
                source = joined;
                answers.push_back(string_of(r, "caption"));
                sample_id = id;
            }
            if (text::trim(source).empty() || answers.empty()) {
                ++st.no_source;
                if (st.no_source > 3) return {};
                if (!has_conv && r.contains("caption"))
                    log::debug(
                        "verify: {}:{}: sample '{}' has no mentions to check its caption "
                        "against",
                        file.string(), line, id);
                else
                    log::warn(
                        "verify: {}:{}: record '{}' has no source text to check against "
                        "(no caption/mentions and no sample with id '{}'; give --samples)",
                        file.string(), line, id, sample_id);
                return {};
            }
            ojson flags = ojson::array();
            bool kind_seen[kContradictionKinds] = {};
            for (size_t k = 0; k < answers.size(); ++k) {
                ++st.answers;
                auto cs = verify_answer(source, answers[k], o.kinds);
                if (cs.empty()) continue;
                ++st.answers_flagged;
                bool turn_kind[kContradictionKinds] = {};
                for (const auto& c : cs) {
                    int ki = static_cast<int>(c.kind);
                    if (!turn_kind[ki]) ++st.by_kind[ki];
                    turn_kind[ki] = kind_seen[ki] = true;
                    flags.push_back(ojson{{"turn", k},
                                          {"kind", std::string(contradiction_kind_name(c.kind))},
                                          {"detail", c.detail},
                                          {"source", evidence_json(c.source)},
                                          {"answer", evidence_json(c.answer)}});
                }
            }
            if (flags.empty()) {
                passed.write_line(r.dump(-1, ' ', false, json::error_handler_t::replace));
                return {};
            }
            ++st.records_flagged;
            ojson out;
            out["id"] = id;
            out["sample_id"] = sample_id;
            out["file"] = file.string();
            out["line"] = line;
            out["flags"] = std::move(flags);
            out["source"] = source;
            out["record"] = r;
            flagged.write_line(out.dump(-1, ' ', false, json::error_handler_t::replace));
            return {};
        });
        MF_RETURN_IF_ERROR(s);
    }
    MF_RETURN_IF_ERROR(flagged.close());
    MF_RETURN_IF_ERROR(passed.close());
    ojson stats;
    stats["stage"] = "verify";
    stats["input"] = o.input.string();
    stats["samples"] = samples.string();
    ojson j = st.to_json();
    for (auto it = j.begin(); it != j.end(); ++it)
        stats[it.key()] = it.value();
    stats["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    MF_RETURN_IF_ERROR(io::write_file_atomic(o.out_dir / "stats.json", stats.dump(2) + "\n"));
    return st;
}

}  // namespace mf::reformat
