// `medforge train`: two-stage LLaVA training (stage "align": projector only, plain template;
// stage "instruct": projector + LLM, the model's chat template), data-parallel over processes
// (train/dist.h), with periodic Hugging Face-layout checkpoints and exact resume. See
// docs/train.md.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/llava.h"
#include "train/data.h"
#include "train/dist.h"

namespace mf::train {

struct TrainOptions {
    std::string stage = "instruct";  // align | instruct
    fs::path model, data, images, out;
    std::string chat_format;  // override; default: plain (align) / the model's template (instruct)
    int64_t max_length = 2048;
    int64_t batch_size = 4;    // per process and micro-batch
    int64_t global_batch = 0;  // 0: 256 (align) / 128 (instruct), capped at the dataset size
    double lr = 0;             // 0: 1e-3 (align) / 2e-5 (instruct)
    double weight_decay = 0.0;
    double warmup_ratio = 0.03;
    double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_eps = 1e-8;
    double max_grad_norm = 1.0;  // <= 0: no clipping
    int64_t epochs = 1;
    int64_t max_steps =
        0;  // > 0: stop after this optimizer step (the schedule still spans `epochs`)
    // Freeze overrides (unset: the stage's default).
    std::optional<bool> train_vision, train_projector, train_lm;
    std::string compute_dtype = "f32";  // f32 | bf16 (autocast; master weights stay f32)
    bool grad_checkpoint = false;       // recompute decoder layers in backward
    int64_t save_every = 0;             // steps between checkpoints (0: only the final model)
    int64_t keep_checkpoints = 2;       // newest checkpoint-* folders kept
    bool resume = true;                 // continue from the newest checkpoint-* in `out`
    std::string save_dtype = "f32";     // dtype of the final model (checkpoints are always f32)
    uint64_t seed = 42;
    int64_t log_every = 1;
    int workers = 0;  // image decoding threads (0: hardware threads)
    bool quiet = false;
    // Graceful stop (e.g. set by a SIGINT/SIGTERM handler): once it reads true, the run finishes
    // the optimizer step in progress, writes a resumable checkpoint-<step> (the same full state as
    // the periodic ones) and returns with TrainResult::interrupted. With several processes the
    // ranks agree on the step (one all-reduce per step), so every rank stops at the same one.
    const std::atomic<bool>* cancel = nullptr;
};

// Fills the stage defaults and checks the options (errors name the option).
Status resolve_options(TrainOptions& o);

struct StepMetrics {
    int64_t step = 0;  // 1-based optimizer step
    int64_t epoch = 0;
    double loss = 0, lr = 0, grad_norm = 0;
    int64_t tokens = 0;     // trained (label) tokens in the global batch
    int64_t positions = 0;  // all positions run through the model (global batch)
    double tokens_per_s = 0, elapsed_s = 0;
};

struct TrainResult {
    std::vector<StepMetrics> steps;  // the steps run by this call (not the resumed ones)
    int64_t total_steps = 0;
    int64_t resumed_from = 0;
    size_t samples = 0, rejected = 0;
    // Stopped early by `cancel`: the checkpoint written (a rerun with the same `out` resumes).
    bool interrupted = false;
    fs::path checkpoint;
};

// Runs the training. `pg` null: a single process.
Result<TrainResult> run_training(TrainOptions o, ProcessGroup* pg = nullptr);

// ---- building blocks (public for tests and the benchmark) ------------------------------------

// Sum of the token cross-entropies of a micro-batch over its labelled positions (a scalar in the
// model's dtype, f32 at least) and, in *tokens, how many positions were labelled.
// `image_embeds_pixels`: the batch's pixels [N, 3, S, S] (undefined: no image).
torch::Tensor micro_batch_loss_sum(model::MultimodalLM& m,
                                   const std::vector<const Sample*>& samples,
                                   const torch::Tensor& pixels, int64_t* tokens,
                                   int64_t* positions = nullptr, bool grad_checkpoint = false);

// Which parameters train: sets requires_grad and returns them in a fixed order.
std::vector<torch::Tensor> set_trainable(model::MultimodalLM& m, bool vision, bool projector,
                                         bool lm);

// HF's cosine schedule with linear warmup: the learning rate of 0-based optimizer step `step`.
double cosine_lr(double base, int64_t step, int64_t warmup, int64_t total);

// The loss curve as an SVG line plot.
std::string loss_svg(const std::vector<std::pair<int64_t, double>>& points,
                     const std::string& title);

}  // namespace mf::train
