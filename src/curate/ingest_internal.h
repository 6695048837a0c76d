// Helpers shared by the ingest adapters (ingest_*.cpp) and their tests. Not part of the public
// API: callers use ingest.h.
#pragma once

#include <filesystem>
#include <initializer_list>
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

// Resolves image references of one input file against a base folder (absolute, normal).
// Absolute references are normalised as they are; a relative one is tried as base/<sub>/<ref>
// for each sub in the caller's list ("" = base itself), in order, and the first file that exists
// wins; when none exists the first candidate is returned. Subfolders that do not exist are never
// tried, and a single remaining candidate is returned without touching the disk. Thread-safe.
class ImageLocator {
  public:
    // `subdirs`: every subfolder name locate() may be asked for (checked for existence once).
    ImageLocator(const fs::path& base, const std::vector<std::string>& subdirs);
    std::string locate(std::string_view ref, std::initializer_list<std::string_view> subdirs) const;
    const std::string& base() const { return base_; }

  private:
    std::string join(std::string_view sub, std::string_view ref) const;

    std::string base_;  // without a trailing '/', except for the root
    std::vector<std::string> present_;
};

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
