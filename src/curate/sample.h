// Sample: one medical figure with its context, the unit every curation stage reads and writes.
// Serialised as one JSON object per line (Sample JSONL, documented in
// docs/formats/sample_jsonl.md):
//
//   {"id":"jats:PMC1234567:F2","images":["/abs/path/fig2a.jpg","/abs/path/fig2b.jpg"],
//    "caption":"...","mentions":["..."],
//    "lineage":{"source":"jats","article":"PMC1234567","figure":"F2","licence":"CC BY 4.0",
//               "file":"/abs/path/article.xml","line":0},
//    "meta":{...}}
//
// `images` keeps the figure's order. `meta` is an optional free-form object carried through
// every stage unchanged (adapter-specific extras such as the label or the DOI).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace mf::curate {

struct Lineage {
    std::string source;   // ingest format: jats, medicat, llava-med, pmc-oa, pubmedvision, jsonl
    std::string article;  // article id (PMCID, PMID, DOI or the source's own key)
    std::string figure;   // figure id within the article (e.g. the <fig id>)
    std::string licence;  // licence text or URL when the source states one, else empty
    std::string file;     // input file the sample came from
    int64_t line = 0;     // 1-based line (JSONL inputs) or record index; 0 when not meaningful

    bool operator==(const Lineage& o) const = default;
};

struct Sample {
    std::string id;
    std::vector<std::string> images;  // ordered image paths (absolute after ingest)
    std::string caption;
    std::vector<std::string> mentions;  // inline-mention sentences
    Lineage lineage;
    std::string meta_json;  // raw JSON object text, or empty

    bool operator==(const Sample& o) const = default;
};

// One line of Sample JSONL (no trailing newline). Keys in the fixed order above.
std::string sample_to_json(const Sample& s);

// Parses one Sample JSONL line. Errors name the field ("field 'images': expected an array of
// strings") so the caller can prefix file:line.
Result<Sample> sample_from_json(std::string_view line);

// The text used for term counting and near-dup: caption (+ mentions when asked), space-joined.
std::string sample_context(const Sample& s, bool with_mentions);

}  // namespace mf::curate
