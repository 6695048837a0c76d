// Training data for `medforge train`: LLaVA / PubMedVision conversation records (JSON array or
// JSONL: {"id", "image": str | [str], "conversations": [{"from": "human"|"gpt", "value"}]}) turned
// into token ids + labels with the target model's chat template, and length-grouped batches whose
// images are decoded and preprocessed on worker threads.
//
// Labels: the template's training mask (assistant content + end of turn) decides which tokens
// are learned; everything else is kIgnore. Each sample is checked token by token (the segment
// tokenization must equal the tokenization of the whole rendered string, and every assistant
// reply must be covered by labels), so LLaVA's silent "tokenization mismatch -> loss 0" cannot
// happen: a mismatch is an error naming the sample (file:line).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "io/chat_template.h"
#include "io/tokenizer.h"
#include "model/image_processor.h"

namespace mf {
class ThreadPool;
}

namespace mf::train {

namespace fs = std::filesystem;

inline constexpr int64_t kIgnore = -100;

// One conversation record as read from the file.
struct Record {
    std::string id;
    std::string where;  // "file:line" (JSONL line, or "file:#k" for the k-th element of an array)
    std::vector<std::string> images;
    std::vector<io::ChatMessage> messages;  // roles "user" / "assistant" (and "system")
};

struct Reject {
    std::string where, id, reason;
};

// Reads a .json (array) or .jsonl file. Malformed records go to `rejects` with the reason; the
// error is only for an unreadable file or a file that is neither JSON array nor JSONL.
Result<std::vector<Record>> read_records(const fs::path& file, std::vector<Reject>& rejects);

struct TokenizeOptions {
    int64_t max_length = 2048;  // positions after image expansion; longer samples are truncated
    int64_t image_tokens = 0;   // embeddings per image (0: text-only model)
    // LLaVA pretraining ("plain"): the user turn is replaced by the image markers alone.
    bool plain_user_is_images = true;
};

// A tokenized sample. ids hold model::kImageMarker (-200) once per image; labels are aligned
// with ids (kIgnore on non-trained tokens and on image markers).
struct Sample {
    std::string id, where;
    std::vector<int64_t> ids, labels;
    std::vector<fs::path> images;  // resolved paths, one per marker, in order
    int64_t length = 0;            // positions after image expansion
    int64_t trained_tokens = 0;
    bool truncated = false;
};

// Turns a record into a Sample. Data problems (no assistant turn, images missing on disk, marker
// count != image count, nothing left to learn after truncation) return InvalidArgument, which
// the caller sends to the rejects file; a tokenization mismatch returns FailedPrecondition and
// must stop the run.
Result<Sample> tokenize_record(const Record& r, const io::Tokenizer& tok,
                               const io::ChatTemplate& tmpl, const fs::path& image_dir,
                               const TokenizeOptions& opt);

// Reads + tokenizes every record of `file`, sending bad ones to `rejects`. Stops on a
// tokenization mismatch (the error names the sample).
Result<std::vector<Sample>> load_samples(const fs::path& file, const io::Tokenizer& tok,
                                         const io::ChatTemplate& tmpl, const fs::path& image_dir,
                                         const TokenizeOptions& opt, std::vector<Reject>& rejects);

Status write_rejects(const fs::path& path, const std::vector<Reject>& rejects);

// The order of the samples for an epoch: a seeded shuffle cut into global batches of
// `global_batch`; each global batch is sorted by length (longest first) so the micro-batches cut
// from it pad little (LLaVA's length grouping). Deterministic in (n, lengths, seed, epoch).
std::vector<std::vector<size_t>> epoch_batches(const std::vector<int64_t>& lengths,
                                               size_t global_batch, uint64_t seed, int64_t epoch);

// The micro-batch `micro` (0 .. accum-1) of rank `rank` in a global batch: the global batch is
// cut into world*accum contiguous slices of near-equal size; slice (micro * world + rank).
std::vector<size_t> micro_slice(const std::vector<size_t>& global, int world, int rank, int accum,
                                int micro);

// A micro-batch ready for the model.
struct Batch {
    std::vector<const Sample*> samples;
    torch::Tensor pixels;  // [N images, 3, S, S] float32, in sample order (undefined: none)
    std::vector<int64_t> n_images;  // per sample
};

// Decodes + preprocesses the images of `samples` on `pool` (may be null).
Result<Batch> make_batch(const std::vector<const Sample*>& samples,
                         const model::ImageProcessorConfig& improc, int64_t image_size,
                         ThreadPool* pool);

}  // namespace mf::train
