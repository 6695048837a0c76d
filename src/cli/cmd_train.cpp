// medforge train: two-stage LLaVA training (align: projector; instruct: projector + LLM) on a
// LLaVA / PubMedVision JSON(L) file, data-parallel over processes. See docs/train.md.
#include <fmt/core.h>

#include <atomic>
#include <csignal>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "io/file.h"
#include "model/llava.h"
#include "train/trainer.h"

namespace mf::cli {

namespace {

// --config F: a JSON object whose keys are the long option names without "--" (e.g.
// {"lr": 2e-5, "global-batch": 128}); options on the command line win.
Status apply_config(const std::string& path, train::TrainOptions& o, const CLI::App& app) {
    MF_ASSIGN_OR_RETURN(std::string text, io::read_file(path));
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return Status::invalid_argument(path + ": not a JSON object of option names to values");
    auto given = [&](const char* name) {
        return app.get_option(std::string("--") + name)->count() > 0;
    };
    for (auto& [k, v] : j.items()) {
        try {
            if (given(k.c_str())) continue;
        } catch (...) {
            return Status::invalid_argument(fmt::format("{}: unknown option '{}'", path, k));
        }
        try {
            if (k == "stage")
                o.stage = v.get<std::string>();
            else if (k == "model")
                o.model = v.get<std::string>();
            else if (k == "data")
                o.data = v.get<std::string>();
            else if (k == "images")
                o.images = v.get<std::string>();
            else if (k == "out")
                o.out = v.get<std::string>();
            else if (k == "chat-format")
                o.chat_format = v.get<std::string>();
            else if (k == "max-length")
                o.max_length = v.get<int64_t>();
            else if (k == "batch-size")
                o.batch_size = v.get<int64_t>();
            else if (k == "global-batch")
                o.global_batch = v.get<int64_t>();
            else if (k == "lr")
                o.lr = v.get<double>();
            else if (k == "weight-decay")
                o.weight_decay = v.get<double>();
            else if (k == "warmup-ratio")
                o.warmup_ratio = v.get<double>();
            else if (k == "max-grad-norm")
                o.max_grad_norm = v.get<double>();
            else if (k == "epochs")
                o.epochs = v.get<int64_t>();
            else if (k == "max-steps")
                o.max_steps = v.get<int64_t>();
            else if (k == "train-vision")
                o.train_vision = v.get<bool>();
            else if (k == "train-projector")
                o.train_projector = v.get<bool>();
            else if (k == "train-lm")
                o.train_lm = v.get<bool>();
            else if (k == "dtype")
                o.compute_dtype = v.get<std::string>();
            else if (k == "grad-checkpoint")
                o.grad_checkpoint = v.get<bool>();
            else if (k == "save-every")
                o.save_every = v.get<int64_t>();
            else if (k == "keep-checkpoints")
                o.keep_checkpoints = v.get<int64_t>();
            else if (k == "save-dtype")
                o.save_dtype = v.get<std::string>();
            else if (k == "seed")
                o.seed = v.get<uint64_t>();
            else if (k == "log-every")
                o.log_every = v.get<int64_t>();
            else if (k == "workers")
                o.workers = v.get<int>();
            else if (k == "no-resume")
                o.resume = !v.get<bool>();
            else
                return Status::invalid_argument(
                    fmt::format("{}: option '{}' cannot be set here", path, k));
        } catch (const std::exception& e) {
            return Status::invalid_argument(fmt::format("{}: option '{}': {}", path, k, e.what()));
        }
    }
    return {};
}

// SIGINT / SIGTERM: stop after the current optimizer step with a resumable checkpoint (exit
// 128 + signal). SA_RESETHAND: a second signal kills as usual.
std::atomic<bool> g_stop{false};
std::atomic<int> g_stop_signal{0};
extern "C" void on_train_stop_signal(int sig) {
    g_stop_signal.store(sig);
    g_stop.store(true);
}
void install_train_stop_handler() {
    struct sigaction sa {};
    sa.sa_handler = on_train_stop_signal;
    sa.sa_flags = SA_RESETHAND | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

}  // namespace

int run_train(int argc, char** argv) {
    CLI::App app{
        "Train a LLaVA-style model in two stages (LLaVA-1.5 recipe). --stage align: vision tower\n"
        "and LLM frozen, projector trained, plain template (image -> caption). --stage instruct:\n"
        "projector + LLM trained on the model's chat template. Data: LLaVA / PubMedVision JSON or\n"
        "JSONL (medforge reformat output). Checkpoints (Hugging Face layout, loadable by "
        "`medforge\n"
        "chat`) go to <out>/checkpoint-<step>, the final model to <out>; a rerun resumes from the\n"
        "newest checkpoint. Data-parallel: start one process per rank with RANK / WORLD_SIZE /\n"
        "MASTER_ADDR / MASTER_PORT (or under srun). Ctrl-C / SIGTERM: the current step is\n"
        "finished and checkpointed, then exit 130 / 143 (rerun to resume). See docs/train.md.",
        argv[0]};
    train::TrainOptions o;
    std::string model_dir, data, images, out, config;
    bool no_resume = false;
    int threads = 0;
    std::optional<bool> tv, tp, tl;
    std::string backend;
    app.add_option("--stage", o.stage, "align | instruct")
        ->required()
        ->check(CLI::IsMember({"align", "instruct"}));
    app.add_option("--model", model_dir, "base checkpoint folder (HF layout)")->required();
    app.add_option("--data", data, "LLaVA / PubMedVision .json or .jsonl")->required();
    app.add_option(
        "--images", images,
        "folder the records' image paths are relative to (default: the data file's folder)");
    app.add_option("--out", out, "run folder (checkpoints, final model, metrics.jsonl, loss.svg)")
        ->required();
    app.add_option("--config", config, "JSON file of option values (keys = long option names)");
    app.add_option(
        "--max-steps", o.max_steps,
        "stop after this optimizer step (resumable; the schedule still spans the epochs)");
    app.add_option("--chat-format", o.chat_format,
                   "override the template: plain, huatuo, chatml, llama3, llama2");
    app.add_option("--max-length", o.max_length,
                   "positions per sample after image expansion (longer: truncated)");
    app.add_option("--batch-size", o.batch_size, "micro-batch per process");
    app.add_option(
        "--global-batch", o.global_batch,
        "samples per optimizer step over all processes (default 256 align / 128 instruct)");
    app.add_option("--lr", o.lr, "peak learning rate (default 1e-3 align / 2e-5 instruct)");
    app.add_option("--weight-decay", o.weight_decay, "AdamW weight decay (default 0)");
    app.add_option("--warmup-ratio", o.warmup_ratio,
                   "linear warmup share of the steps (default 0.03)");
    app.add_option("--max-grad-norm", o.max_grad_norm, "gradient clipping (default 1.0; 0 = off)");
    app.add_option("--epochs", o.epochs, "passes over the data (default 1)");
    app.add_option("--train-vision", tv, "override: train the vision tower (true/false)");
    app.add_option("--train-projector", tp, "override: train the projector");
    app.add_option("--train-lm", tl, "override: train the language model");
    app.add_option("--dtype", o.compute_dtype,
                   "compute dtype: f32 (default) or bf16 (autocast, f32 master weights)");
    app.add_flag("--grad-checkpoint", o.grad_checkpoint,
                 "recompute decoder layers in backward (less memory)");
    app.add_option("--save-every", o.save_every,
                   "steps between checkpoints (0 = only the final model)");
    app.add_option("--keep-checkpoints", o.keep_checkpoints, "newest checkpoints kept (default 2)");
    app.add_option("--save-dtype", o.save_dtype, "dtype of the final model: f32 or bf16");
    app.add_option("--seed", o.seed, "data order seed");
    app.add_option("--log-every", o.log_every, "print a line every N steps");
    app.add_option("--workers", o.workers, "image decoding threads (default: all)");
    app.add_option("--threads", threads, "torch threads (default: all)");
    app.add_option("--backend", backend,
                   "process-group backend: gloo (default) or nccl (CUDA libtorch builds only; "
                   "also MF_DIST_BACKEND)")
        ->check(CLI::IsMember({"gloo", "nccl"}));
    app.add_flag("--no-resume", no_resume, "start over even when <out> has checkpoints");
    app.add_flag("--quiet", o.quiet, "no progress lines");
    if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
    o.model = model_dir;
    o.data = data;
    o.images = images;
    o.out = out;
    if (!config.empty())
        if (auto st = apply_config(config, o, app); !st.ok()) return fail(st, "train");
    if (tv) o.train_vision = *tv;
    if (tp) o.train_projector = *tp;
    if (tl) o.train_lm = *tl;
    if (no_resume) o.resume = false;
    model::init_torch_threads(threads);
    auto env = train::dist_env_from_environment();
    if (!env.ok()) return fail(env.status(), "train");
    if (!backend.empty()) env->backend = backend;
    auto pg = train::make_process_group(*env);
    if (!pg.ok()) return fail(pg.status(), "train");
    install_train_stop_handler();
    o.cancel = &g_stop;
    auto r = train::run_training(o, pg->get());
    if (!r.ok()) return fail(r.status(), "train");
    if (r->interrupted) {
        int sig = g_stop_signal.load();
        if (sig == 0) sig = SIGINT;  // another rank's signal (the ranks agree on the stop)
        if ((*pg)->rank() == 0) {
            int64_t done = r->resumed_from + static_cast<int64_t>(r->steps.size());
            fmt::print(stderr,
                       "train: interrupted by {} after step {} of {}; resumable checkpoint in {}\n"
                       "train: to resume, run the same command again (same --out {})\n",
                       sig == SIGTERM  ? "SIGTERM"
                       : sig == SIGINT ? "SIGINT"
                                       : "a signal",
                       done, r->total_steps, r->checkpoint.string(), out);
        }
        return 128 + sig;
    }
    if (!o.quiet && (*pg)->rank() == 0) {
        double last = r->steps.empty() ? 0 : r->steps.back().loss;
        fmt::print(stderr, "train: {} steps run ({} of {} done), final loss {:.4f}; {}\n",
                   r->steps.size(), r->resumed_from + static_cast<int64_t>(r->steps.size()),
                   r->total_steps, last,
                   r->resumed_from + static_cast<int64_t>(r->steps.size()) >= r->total_steps
                       ? "model in " + out
                       : "checkpoint in " + out + " (rerun to resume)");
    }
    return kExitOk;
}

}  // namespace mf::cli
