// MLLM-as-judge: the paper's expert evaluation of data-construction methods (paper-spec §6),
// automated. Several VQA files holding the same samples built by different methods
// (native-caption, llm-text, mllm-image-only, mllm-unblinded, ...) are matched by sample id; a
// seeded random sample of N ids present in every file is scored by a judge model, one answer per
// request, on accuracy, relevance, completeness and usefulness (1-5, with a one-line reason each).
//
// Blinding: the judge sees the image(s), the source caption and mentions (the ground truth), the
// question and one answer. The method label and the file name are never sent; the requests go
// out in a seeded random order over all (sample, method) pairs.
//
// Exactly once: every request is a row of OUT/ledger.sqlite (ledger.h), keyed by (sample id,
// judge slot + method label, model, prompt version + SHA-256 of the prompt text, image hashes).
// A killed run resumes and never pays twice for a recorded score. An invalid reply (no JSON, a
// missing criterion, a score outside 1-5, an empty reason) is asked again once with the error
// quoted, then recorded as failed (reason code invalid_scores).
//
// OUT/ after a run:
//   ledger.sqlite   every request and raw reply (the source of truth)
//   items.jsonl     one line per (judge, sample, method): scores, reasons, state
//   report.json     per judge, method and criterion: mean, bootstrap 95% CI, n; agreement
//   report.md       the same as tables
//   report.html     self-contained: grouped bar chart (inline SVG, like the paper's Fig. 5) and
//                   the tables, per-item table with the reasons
// Documentation: docs/judge.md.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "llm/client.h"

namespace mf::reformat {

namespace fs = std::filesystem;

// The four criteria in report order.
inline constexpr std::array<const char*, 4> kJudgeCriteria = {"accuracy", "relevance",
                                                              "completeness", "usefulness"};
inline constexpr const char* kJudgePromptVersion = "judge-v1";

// One answer to score.
struct JudgeItem {
    std::string id;     // sample id (the match key across files)
    std::string label;  // method label (never sent to the judge)
    std::string question;
    std::string answer;
    std::vector<fs::path> images;  // resolved image paths
    std::string caption;           // ground truth
    std::vector<std::string> mentions;
};

// One VQA file read: records by sample id, in file order.
struct JudgeFile {
    fs::path path;
    std::string label;
    std::vector<std::string> ids;            // every record's id, in file order
    std::unordered_set<std::string> id_set;  // the same ids
    std::map<std::string, JudgeItem> items;  // the kept ones; caption/mentions not filled
};

// Reads a PubMedVision/LLaVA JSON array or a JSONL file (detected from the first non-blank
// character). JSONL and arrays with one record per line (the reformat writer's layout) are
// streamed; other array layouts are parsed as one document. `keep` (when given) limits the
// items stored to those ids (all ids are still listed and checked for duplicates). Each record
// needs "conversations" with a human and a gpt turn (the last gpt turn is the answer); the match
// key is "sample_id" when present, else "id" without a trailing
// "#alignment"/"#instruction". Image paths ("image": a string or a list) are resolved against
// images_dir, then the file's directory (absolute paths as they are). The label is `label` when
// non-empty, else the records' common "method" field, else the file name without extension.
// Errors name file:line (JSON: the line of the parse error or of the record).
Result<JudgeFile> read_judge_file(const fs::path& path, const fs::path& images_dir,
                                  const std::string& label = "",
                                  const std::unordered_set<std::string>* keep = nullptr);

// The ids shared by every file, sorted, then a seeded shuffle, the first n of them (n == 0 or
// more than there are: all). Deterministic across platforms (own Fisher-Yates on splitmix64).
std::vector<std::string> sample_common_ids(const std::vector<JudgeFile>& files, size_t n,
                                           uint64_t seed);
// Seeded Fisher-Yates shuffle (splitmix64; portable).
template <typename T>
void seeded_shuffle(std::vector<T>& v, uint64_t seed);

struct JudgeScores {
    std::array<int, 4> score{};
    std::array<std::string, 4> reason;
};

// Parses a judge reply: one JSON object (code fences and text around it allowed) with, for each
// criterion, {"score": 1..5 (an integer), "reason": "non-empty"} (a bare number is accepted as
// the score with an empty reason refused). Errors: InvalidArgument "invalid_scores: <what is
// wrong>" naming the criterion, quoted back to the judge in the re-ask.
Result<JudgeScores> parse_judge_reply(std::string_view reply);

// The rubric (system message) and the user text of a request.
std::string judge_system_prompt();
std::string judge_user_text(const JudgeItem& item);

// The request: system rubric; user: images, then judge_user_text. A re-ask appends the previous
// reply (assistant) and a user message quoting `error`.
llm::ChatRequest build_judge_request(const JudgeItem& item, const std::vector<std::string>& urls,
                                     const std::string& model, const std::string& prev_reply,
                                     const std::string& error);

// Cohen's kappa with quadratic weights over categories lo..hi: 1 - sum(w*O)/sum(w*E), w_ij =
// (i-j)^2/(hi-lo)^2, E from the marginals. NaN when the pairs are empty, a value is outside
// lo..hi, or the expected disagreement is 0 (both raters constant and equal).
double quadratic_weighted_kappa(const std::vector<int>& a, const std::vector<int>& b, int lo = 1,
                                int hi = 5);

using JudgeImageUrlFn = std::function<Result<std::string>(const fs::path& image)>;

struct JudgeOptions {
    std::vector<fs::path> data;       // VQA files (one per method)
    std::vector<std::string> labels;  // empty, or one per data file
    std::vector<fs::path> samples;    // Sample JSONL with the ground truth; empty: samples.jsonl
                                      // beside each data file
    fs::path images_dir;
    fs::path out_dir;
    size_t sample = 90;  // ids to score (0 = all shared ids)
    uint64_t seed = 1;
    std::string model;   // judge 1
    std::string model2;  // judge 2 (with a second client)
    double temperature = 0;
    int max_tokens = 1024;
    bool json_mode = false;
    int max_reasks = 1;
    int image_max_side = 1024;
    int image_quality = 90;
    size_t batch = 64;
    int bootstrap_resamples = 1000;
    uint64_t bootstrap_seed = 1234;
    JudgeImageUrlFn image_url;  // empty: llm::image_data_url(path, image_max_side, image_quality)
    const std::atomic<bool>* cancel = nullptr;
    bool progress = true;
};

struct JudgeRun {
    nlohmann::json report;  // what report.json holds
    int64_t http_requests_this_run = 0;
};

// Reads and matches the files, registers the requests, asks what is not recorded yet (judge2
// may be null), and writes the outputs. Returns Cancelled when `cancel` was set (the ledger is
// consistent; re-run to resume; no report written).
Result<JudgeRun> run_judge(const JudgeOptions& opt, llm::LlmClient* judge1,
                           llm::LlmClient* judge2 = nullptr);

// Report rendering from report.json's content.
std::string judge_report_markdown(const nlohmann::json& report);
std::string judge_report_html(const nlohmann::json& report);

// ---- template definition ----
uint64_t judge_splitmix64(uint64_t& state);
template <typename T>
void seeded_shuffle(std::vector<T>& v, uint64_t seed) {
    uint64_t st = seed;
    for (size_t i = v.size(); i > 1; --i) {
        size_t j = static_cast<size_t>(judge_splitmix64(st) % i);
        std::swap(v[i - 1], v[j]);
    }
}

}  // namespace mf::reformat
