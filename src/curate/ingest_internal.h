// Helpers shared by the ingest adapters (ingest_*.cpp) and their tests. Not part of the public
// API: callers use ingest.h.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "curate/ingest.h"

namespace mf::curate::ingest_detail {

namespace fs = std::filesystem;

// ---- sentence splitting (used for JATS mentions) ----

struct Span {
    size_t begin = 0;
    size_t end = 0;  // exclusive
};

// Splits running text into sentences. A sentence ends at '.', '!' or '?' (plus any closing
// quotes/brackets) followed by whitespace and a character that can start a sentence (upper-case
// letter, digit, opening bracket or quote, non-ASCII). No split after abbreviations (Fig., Figs.,
// e.g., i.e., et al., vs., cf., approx., Dr., No., Eq., Ref., Suppl., ...), after single-letter
// initials ("A. fumigatus"), inside decimals ("0.05") or before a lower-case word. Spans exclude
// the surrounding whitespace; empty sentences are dropped.
std::vector<Span> sentence_spans(std::string_view text);
std::vector<std::string> split_sentences(std::string_view text);

// ---- inputs, images, rejects ----

// `input` itself when it is a regular file; else the files under it (recursive) whose lower-case
// extension is in `exts`, sorted by path. NotFound when `input` does not exist or holds no such
// file.
Result<std::vector<fs::path>> input_files(const fs::path& input,
                                          const std::vector<std::string>& exts);

// The folder images are resolved against: opt.image_root when set, else the input file's folder.
fs::path image_base(const IngestOptions& opt, const fs::path& file);

// Resolves a relative image reference: absolute references are normalised as they are; relative
// ones are tried as base/<sub>/<ref> for each sub in `subdirs` ("" = base itself), in order; the
// first that exists wins; when none exists the first candidate is returned.
std::string locate_image(const fs::path& base, std::string_view ref,
                         const std::vector<std::string>& subdirs = {""});

// The first image of `images` that is not a regular file, or "" when all exist.
std::string first_missing(const std::vector<std::string>& images);

Reject make_reject(std::string reason, std::string detail, const fs::path& file, int64_t line,
                   std::string id = {}, std::string record_json = {});

// 1-based line of a byte offset in `text`.
int64_t line_of_offset(std::string_view text, size_t offset);

// ---- adapter factories ----

std::unique_ptr<Ingestor> make_jats_ingestor(const IngestOptions& opt);
// format: medicat, llava-med, pmc-oa, pubmedvision, jsonl.
std::unique_ptr<Ingestor> make_json_ingestor(std::string_view format, const IngestOptions& opt);

}  // namespace mf::curate::ingest_detail
