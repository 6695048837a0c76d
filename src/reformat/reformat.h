// The reformat stage: Sample JSONL → PubMedVision-compatible Alignment VQA and Instruction-Tuning
// VQA, one model request per sample, exactly once (see ledger.h), resumable.
//
// OUT/ after a finished run:
//   ledger.sqlite             every request, its raw reply, tokens and cost (the source of truth)
//   alignment_vqa.json        [{"id","image":[...],"conversations":[human, gpt], lineage...}]
//   instruction_vqa.json      same shape; absent records for native-caption (no instruction VQA)
//   *.jsonl                   the same records one per line (with `jsonl`)
//   images/                   the images of kept samples, copied or linked, stable names
//   samples.jsonl             the kept input samples, rejects.jsonl, stats.json (StageStats with
//                             requests, tokens, cost and failures by reason in "extra")
// The output files are regenerated from the ledger at the end of every run and each is replaced
// atomically (written aside, then renamed), so a run killed at any moment leaves either the
// previous complete files or none, and the next run writes them whole.
//
// Every input record ends in exactly one of the outputs (a kept sample yields its VQA records) or
// in rejects.jsonl: kept + rejected == input.
//
// Reject reasons: bad_record, duplicate_id, no_images, image_missing, image_unreadable,
// empty_caption, request_failed (the request failed after the client's retries), and the
// validation codes of validate.h (no_json, bad_json, missing_field, empty_field, too_short,
// too_long, mentions_reference) once the re-asks are used up, and verifier:<kind> (laterality,
// negation, number_unit, modality, sequence, anatomy: the generated text contradicts the
// sample's caption + mentions, see verify.h) once the verifier's re-ask is used up.
//
// The answer verifier (on by default, `verify`): a reply that validates is checked against the
// sample's caption + mentions (description and answer). A flagged reply is recorded (it was
// paid for) and asked again once (`verify_reasks`) with the contradictions named; a reply still
// flagged after that rejects the sample. The re-ask goes through the ledger like a validation
// re-ask (its own attempt row, outcome "reask", error "verifier:<kind>: ..."), so a resumed run
// neither repeats nor re-pays it. Methods that do not give the model the caption
// (mllm-image-only) and native-caption (the caption itself) are not verified.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <string>

#include "core/status.h"
#include "curate/stage.h"
#include "llm/client.h"
#include "reformat/prompts.h"
#include "reformat/validate.h"
#include "reformat/verify.h"

namespace mf::reformat {

namespace fs = std::filesystem;

enum class ImageMode { kCopy, kHardLink, kSymLink, kNone };

// Turns an image file into the URL sent in the request (a base64 data URL by default).
using ImageUrlFn = std::function<Result<std::string>(const fs::path& image)>;

struct ReformatOptions {
    fs::path input;  // Sample JSONL file or a stage directory (its samples.jsonl)
    fs::path out_dir;
    Method method = Method::kMllmUnblinded;
    PromptOptions prompt;  // model, temperature, max_tokens, json_mode, seed
    int max_reasks = 2;    // invalid replies asked again at most this many times
    ValidationParams validation;
    bool verify = true;     // the answer verifier (verify.h); --no-verify turns it off
    int verify_reasks = 1;  // replies flagged by the verifier asked again at most this often
    VerifyOptions verify_kinds;
    bool image_tokens = false;  // "<image>\n" per image at the start of the human turn
    ImageMode image_mode = ImageMode::kCopy;
    bool jsonl = false;         // also write alignment_vqa.jsonl / instruction_vqa.jsonl
    double price_in = 0;        // currency per 1M prompt tokens
    double price_out = 0;       // currency per 1M completion tokens
    int image_max_side = 1024;  // the request's images are re-encoded to fit this
    int image_quality = 90;
    size_t batch = 64;     // requests handed to the client at a time
    size_t threads = 0;    // image-encoding threads (0 = all cores)
    ImageUrlFn image_url;  // empty: llm::image_data_url(path, image_max_side, image_quality)
    const std::atomic<bool>* cancel = nullptr;
    bool progress = true;
};

struct ReformatResult {
    curate::StageStats stats;
    int64_t http_requests_this_run = 0;
};

// True when the method's replies are checked by the answer verifier (mllm-unblinded, llm-text).
bool method_verified(Method m);

// The source text the verifier checks a sample's generated text against: the caption, then
// each mention on its own line.
std::string verify_source_text(const curate::Sample& s);

// Runs the stage. `client` may be null for native-caption. Returns Cancelled when `cancel` was
// set (the ledger is consistent: nothing is in_flight; re-run to resume; no outputs written).
Result<ReformatResult> run_reformat(const ReformatOptions& opt, llm::LlmClient* client);

struct DryRunEstimate {
    int64_t samples = 0;                // input records
    int64_t rejected = 0;               // records that would be rejected before any request
    int64_t already_done = 0;           // answers already in the ledger (not asked again)
    int64_t requests = 0;               // requests to send (first asks; re-asks not counted)
    int64_t images = 0;                 // images in those requests
    int64_t prompt_tokens = 0;          // estimated
    int64_t max_completion_tokens = 0;  // requests * max_tokens (upper bound)
    double cost_prompt = 0;             // prompt_tokens * price_in / 1e6
    double cost_max = 0;                // + max_completion_tokens * price_out / 1e6
};
// Counts what run_reformat would send, without sending anything (reads the ledger if present).
Result<DryRunEstimate> estimate_reformat(const ReformatOptions& opt);
std::string format_estimate(const DryRunEstimate& e);

// Prompt tokens of an image per OpenAI's tile rule (high detail) after fitting into max_side.
int64_t image_tokens_estimate(int width, int height, int max_side);

// The stable file name (under OUT/images/) of image k of a sample.
std::string output_image_name(std::string_view sample_id, size_t k, const fs::path& source);

}  // namespace mf::reformat
