#include "cli/commands.h"

#include <fmt/core.h>

#include <array>
#include <csignal>
#include <cstdio>

#include "core/log.h"

namespace mf::cli {

namespace {
std::atomic<bool> g_cancel{false};
extern "C" void on_cancel_signal(int) {
    g_cancel.store(true);
}
}  // namespace

const std::atomic<bool>* install_cancel_handler() {
    struct sigaction sa {};
    sa.sa_handler = on_cancel_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    return &g_cancel;
}

int run_ingest(int argc, char** argv);
int run_filter(int argc, char** argv);
int run_dedup(int argc, char** argv);
int run_merge(int argc, char** argv);
int run_build(int argc, char** argv);
int run_classifier(int argc, char** argv);
int run_lexicon(int argc, char** argv);
int run_card(int argc, char** argv);
int run_reformat(int argc, char** argv);
int run_eval(int argc, char** argv);
int run_decontam(int argc, char** argv);
int run_chat(int argc, char** argv);
int run_judge(int argc, char** argv);
int run_model(int argc, char** argv);
int run_verify(int argc, char** argv);
int run_serve(int argc, char** argv);
int run_train(int argc, char** argv);

namespace {
// Keep in pipeline order; `medforge help` prints it as is.
constexpr std::array kCommands = {
    Command{"build", "run the whole data pipeline (ingest -> filter -> dedup) from one config file",
            run_build},
    Command{"ingest",
            "read PMC JATS / MedICaT / LLaVA-Med / PMC-OA / PubMedVision / JSONL into Sample JSONL",
            run_ingest},
    Command{"filter", "keep samples with enough medical terms and good medical images", run_filter},
    Command{"dedup", "drop exact and near-duplicate samples (hashes, MinHash-LSH, embeddings)",
            run_dedup},
    Command{"reformat",
            "turn samples into Alignment + Instruction-Tuning VQA with an (M)LLM, exactly once",
            run_reformat},
    Command{"verify",
            "flag generated answers that contradict their caption (side, negation, numbers, "
            "modality)",
            run_verify},
    Command{"decontam",
            "drop samples whose images or text overlap eval benchmarks (pHash/dHash, n-grams)",
            run_decontam},
    Command{"eval",
            "score a model on medical VQA benchmarks (VQA-RAD, SLAKE, PathVQA, PMC-VQA, ...)",
            run_eval},
    Command{"judge",
            "score VQA data of several construction methods with an MLLM judge (1-5, 4 criteria)",
            run_judge},
    Command{"train", "train a LLaVA-style model: align (projector) then instruct (projector + LLM)",
            run_train},
    Command{"chat",
            "chat with a local model (LLaVA / HuatuoGPT-Vision / Qwen2 / LLaMA), with images",
            run_chat},
    Command{"serve", "OpenAI-compatible HTTP server over a local model (continuous batching)",
            run_serve},
    Command{"model",
            "checkpoint tools: init (tiny HF checkpoints), inspect, convert (llama2.c -> HF)",
            run_model},
    Command{"merge", "join the outputs of a stage run as --shard i/N into one output", run_merge},
    Command{"card", "write the data card (funnel of every stage) for a pipeline output", run_card},
    Command{"lexicon", "build or inspect a medical lexicon (word lists, MeSH, UMLS SPECIALIST)",
            run_lexicon},
    Command{"classifier", "train / evaluate the medical-image classifier on labelled folders",
            run_classifier},
};
}  // namespace

std::span<const Command> commands() {
    return kCommands;
}

const Command* find_command(std::string_view name) {
    for (const auto& c : kCommands)
        if (name == c.name) return &c;
    return nullptr;
}

void print_help() {
    std::string out =
        "medforge - medical multimodal data, models and evaluation in one native toolchain\n\n"
        "usage: medforge <command> [options]     (medforge <command> --help for its options)\n\n"
        "commands:\n";
    for (const auto& c : kCommands)
        out += fmt::format("  {:<12} {}\n", c.name, c.summary);
    out += "  help         show this list\n\ndocs: docs/README.md\n";
    std::fputs(out.c_str(), stdout);
}

void add_common_options(CLI::App& app, CommonOptions& opt, bool with_shard) {
    app.add_option("-j,--threads", opt.threads, "worker threads (0 = all cores)")
        ->check(CLI::NonNegativeNumber);
    if (with_shard) {
        app.add_option(
            "--shard", opt.shard,
            "process only shard i of N (by a stable hash of the sample id), e.g. 0/4; "
            "'slurm' reads SLURM_ARRAY_TASK_ID/COUNT. Join shards with `medforge merge`");
    }
    app.add_flag("-q,--quiet", opt.quiet, "only print errors");
    app.add_flag("-v,--verbose", opt.verbose, "print debug messages");
}

void apply_common_options(const CommonOptions& opt) {
    if (opt.quiet) log::set_level(log::Level::kError);
    if (opt.verbose) log::set_level(log::Level::kDebug);
}

int parse_args(CLI::App& app, int argc, char** argv) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int code = app.exit(e);
        return code == 0 ? kExitOk : kExitUsage;
    }
    return -1;
}

int fail(const Status& st, std::string_view context) {
    if (context.empty())
        log::error("{}", st.to_string());
    else
        log::error("{}: {}", context, st.to_string());
    return kExitFailed;
}

void print_stage_summary(const curate::StageStats& s, const std::string& out_dir) {
    log::info("{}: {} in, {} kept, {} rejected in {:.2f}s ({:.0f} samples/s, {:.1f} MB/s) -> {}",
              s.stage, s.input, s.kept, s.rejected, s.seconds,
              s.seconds > 0 ? s.input / s.seconds : 0.0,
              s.seconds > 0 ? s.bytes_in / s.seconds / 1e6 : 0.0, out_dir);
    for (const auto& [reason, n] : s.reasons)
        log::info("  rejected {:>8}  {}", n, reason);
}

}  // namespace mf::cli
