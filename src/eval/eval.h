// Evaluation harness (paper-spec §9): benchmark loaders, the paper's prompt protocol, answer
// extractors (the official match_choice3 bit-exact and a robust default), open-question metrics,
// bootstrap confidence intervals, a resumable SQLite response cache and the reports.
//
// Every loader either returns items or a Status naming the file, the record and the missing or
// malformed field. Items are independent of the model: the runner (runner.h) turns them into
// chat requests for any OpenAI-compatible endpoint.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace mf::eval {

namespace fs = std::filesystem;

// One benchmark question.
struct EvalItem {
    std::string id;        // stable within the benchmark ("qid:11", "omni:ACRIMA:0001", ...)
    std::string question;  // as in the data file
    std::vector<std::string> options;  // empty for open questions
    int answer_index = -1;             // index into options; -1 = open question or unknown ("?")
    std::string answer_text;           // reference answer (open items; also closed items)
    bool closed = true;                // choice question (scored by letter) vs open (text metrics)
    std::vector<std::string> images;   // paths relative to the images dir (or absolute)
    std::string subset;                // modality / subject / question type used for breakdowns
    std::string group;                 // huatuo-bundle: the source benchmark ("VQA-RAD", ...)
    std::string source_line;           // "file:record N" for messages
};

struct Dataset {
    std::string benchmark;    // canonical name, e.g. "vqa-rad"
    std::string subset_kind;  // what `subset` means: "question_type", "modality", "subject", ...
    std::vector<EvalItem> items;
    std::vector<fs::path> files;             // data files read (hashed into the protocol card)
    std::map<std::string, int64_t> skipped;  // reason code -> count (e.g. "not_english")
};

struct LoadOptions {
    bool all_questions = false;  // SLAKE: every English question (default: English CLOSED only);
                                 // MMMU: every subject (default: Health & Medicine only)
    bool include_open = true;    // keep open items (scored with text metrics)
};

// Benchmark names accepted by load_benchmark and the CLI.
const std::vector<std::string>& benchmark_names();

// Loads `path` (a file; for omnimedvqa also a directory of per-dataset QA json files).
Result<Dataset> load_benchmark(const std::string& benchmark, const fs::path& path,
                               const LoadOptions& opt = {});

// Individual loaders (exposed for tests).
Result<Dataset> load_vqa_rad(const fs::path& path, const LoadOptions& opt);
Result<Dataset> load_slake(const fs::path& path, const LoadOptions& opt);
Result<Dataset> load_pathvqa(const fs::path& path, const LoadOptions& opt);
Result<Dataset> load_pmc_vqa(const fs::path& path, const LoadOptions& opt);
Result<Dataset> load_omnimedvqa(const fs::path& path, const LoadOptions& opt);
Result<Dataset> load_mmmu(const fs::path& path, const LoadOptions& opt);
Result<Dataset> load_huatuo_bundle(const fs::path& path, const LoadOptions& opt);

// RFC 4180 CSV: quoted fields, "" escapes, newlines inside quotes, CRLF. Rows of fields.
Result<std::vector<std::vector<std::string>>> parse_csv(std::string_view text);

// Parses an options value given as a Python/JSON string literal of a list ("['a', 'b']").
Result<std::vector<std::string>> parse_list_literal(std::string_view text);

// ---- protocol (§9.2) ----

// The benchmark instruction, verbatim from the paper's eval.py llava_prompt.
inline constexpr const char* kInstruction =
    "Answer with the option's letter from the given choices directly.";
// Template recorded in the protocol card (its SHA-256 identifies the protocol).
inline constexpr const char* kPromptTemplate =
    "{question}\\nA. {option_1}\\nB. {option_2}\\n...\\nAnswer with the option's letter from the "
    "given choices directly.";
// Letters used for options (A..N; the paper uses A..K, up to 11 options).
inline constexpr const char* kLetters = "ABCDEFGHIJKLMN";

// question + "\nA. opt" ... + "\n" + kInstruction. Open items: the question alone.
std::string build_prompt(const EvalItem& item);

// ---- answer extraction (§9.4) ----

enum class Extractor { kRobust, kOfficial };
const char* extractor_name(Extractor e);
std::optional<Extractor> parse_extractor(std::string_view name);

// Python difflib.SequenceMatcher(None, a, b).ratio() over Unicode code points, including the
// autojunk heuristic (b with >= 200 elements: elements occurring more than len(b)/100+1 times
// are "popular" and not used to seed matches).
double difflib_ratio(std::string_view a, std::string_view b);

// The official match_choice3: returns the letter exactly as the model wrote it ("b" stays "b"),
// from the regex pass or the intended fallback (option text last occurrence, then the difflib
// ratio with ties to the later option; the fallback returns an upper-case letter).
// Returns "" only when options is empty and no letter matched.
std::string match_choice3(std::string_view text, const std::vector<std::string>& options);

struct Extraction {
    int index = -1;      // option index; -1 = could not be determined (scored wrong)
    std::string letter;  // the extracted letter as the extractor returned it ("" if none)
    std::string method;  // "letter", "option_text", "yes_no", "regex", "fallback_text", ...
};

// Robust extractor: explicit letter forms ("B", "(B)", "B.", "option B", "answer is B", "**B**"),
// then the option's own text, then yes/no on word boundaries. Letters beyond the option count
// are ignored.
Extraction extract_robust(std::string_view text, const std::vector<std::string>& options);
// Official extractor: match_choice3; index = position of the returned letter in "ABC..."
// (upper case only: a lower-case letter never matches, as in the official scorer).
Extraction extract_official(std::string_view text, const std::vector<std::string>& options);
Extraction extract(Extractor e, std::string_view text, const std::vector<std::string>& options);

// ---- open-question metrics ----

// Lower-case, punctuation to spaces, articles (a, an, the) removed, whitespace collapsed.
std::string normalize_answer(std::string_view s);
std::vector<std::string> answer_tokens(std::string_view s);  // tokens of normalize_answer

struct OpenScores {
    double exact = 0;   // normalised exact match (0/1)
    double recall = 0;  // fraction of reference tokens present in the prediction (clipped counts)
    double f1 = 0;      // token F1 (SQuAD-style multiset overlap)
    double bleu1 = 0;   // clipped unigram precision x brevity penalty
};
OpenScores score_open(std::string_view prediction, std::string_view reference);

// ---- statistics ----

struct Interval {
    double lo = 0;
    double hi = 0;
};
// Percentile bootstrap 95% CI of the mean of `values` (seeded; deterministic).
Interval bootstrap_mean_ci(const std::vector<double>& values, int resamples, uint64_t seed);
// Bootstrap CI of the macro mean over groups (items resampled jointly, groups re-averaged).
Interval bootstrap_macro_ci(const std::vector<double>& values, const std::vector<int>& group,
                            int resamples, uint64_t seed);

// Shard membership: item belongs to shard index/count iff xxh64(id) % count == index.
struct Shard {
    uint32_t index = 0;
    uint32_t count = 1;
    bool owns(std::string_view id) const;
};
Result<Shard> parse_shard_spec(std::string_view text);  // "i/N"

}  // namespace mf::eval
