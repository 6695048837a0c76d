// `medforge verify`: runs the answer verifier (verify.h) over an existing VQA file.
//
// Input (--in):
//   * a reformat output directory: its alignment_vqa.json(l) and instruction_vqa.json(l), each
//     record joined to its sample (caption + mentions) by "sample_id" through the directory's
//     samples.jsonl (or --samples);
//   * a PubMedVision-style file (.json array or .jsonl) of {"id", "conversations":[{from,
//     value}], ...}: the source is the record's own "fig_caption"/"caption" + "in_text_mention"/
//     "mentions" (LLaVA-Med instruct data carries them), else the sample joined by "sample_id"
//     (or by "id" up to a '#') from --samples;
//   * a Sample JSONL file (records with "caption" and "mentions" and no "conversations"): each
//     caption is checked against its own mentions, a consistency check of the source data.
// Every "gpt"/"assistant" turn of a record is checked against the source.
//
// Output (--out DIR):
//   flagged.jsonl  one line per flagged record: {"id", "sample_id", "file", "flags":[{"turn",
//                  "kind", "detail", "source":{"begin","end","text"}, "answer":{...}}],
//                  "record": <the record>}
//   passed.jsonl   the records with no flag, as they were
//   stats.json     records, answers checked, records without a source, flagged records and
//                  answers, the flag rate (of records and of answers) overall and per kind
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "core/status.h"
#include "reformat/verify.h"

namespace mf::reformat {

struct VerifyRunOptions {
    std::filesystem::path input;    // file or reformat output directory
    std::filesystem::path samples;  // Sample JSONL to join by sample id (optional)
    std::filesystem::path out_dir;
    VerifyOptions kinds;
};

struct VerifyRunStats {
    int64_t records = 0;    // records read
    int64_t no_source = 0;  // records whose source text could not be found (not checked)
    int64_t answers = 0;    // turns checked
    int64_t records_flagged = 0;
    int64_t answers_flagged = 0;
    int64_t by_kind[kContradictionKinds] = {};  // answers with at least one flag of the kind
    nlohmann::ordered_json to_json() const;
};

Result<VerifyRunStats> run_verify(const VerifyRunOptions& opt);

// Parses "laterality,negation" into kinds (others off); "" or "all" = every kind.
Result<VerifyOptions> parse_verify_kinds(std::string_view list);

}  // namespace mf::reformat
