// medforge model <subcommand>: checkpoint tools. A dispatcher over a table of subcommands, one
// function each (parsing and printing only; the work is in src/model/).
//   convert   convert another checkpoint format to a Hugging Face checkpoint (llama2.c for now)
#include <fmt/core.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/commands.h"
#include "core/log.h"
#include "model/llama2c.h"

namespace mf::cli {

namespace {

namespace fs = std::filesystem;

// medforge model convert --from llama2c --input F --tokenizer T --out DIR
int model_convert(int argc, char** argv) {
    CLI::App app{
        "Convert a checkpoint to the Hugging Face layout (config.json, model.safetensors,\n"
        "tokenizer.json, tokenizer_config.json, special_tokens_map.json, generation_config.json).\n"
        "--from llama2c: Karpathy's llama2.c model.bin (legacy export) + tokenizer.bin ->\n"
        "LlamaForCausalLM (fp32; wq/wk rows permuted from interleaved to rotate_half RoPE).\n"
        "See docs/model.md.",
        argv[0]};
    std::string from, input, tokenizer, out;
    bool force = false;
    app.add_option("--from", from, "source format")->required()->check(CLI::IsMember({"llama2c"}));
    app.add_option("--input", input, "source checkpoint file (llama2c: model .bin)")->required();
    app.add_option("--tokenizer", tokenizer, "source tokenizer file (llama2c: tokenizer .bin)");
    app.add_option("-o,--out", out, "output folder (created)")->required();
    app.add_flag("--force", force,
                 "replace the checkpoint files in an output folder that has them");
    CommonOptions common;
    add_common_options(app, common, false);
    if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
    apply_common_options(common);

    if (tokenizer.empty()) {
        fail(Status::invalid_argument("--from llama2c needs --tokenizer (the tokenizer .bin of the "
                                      "model, e.g. tokenizer.bin or tok512.bin from llama2.c)"),
             "model convert");
        return kExitUsage;
    }
    if (!force && (fs::exists(fs::path(out) / "config.json") ||
                   fs::exists(fs::path(out) / "model.safetensors")))
        return fail(Status::failed_precondition(fmt::format(
                        "{} already holds a checkpoint: pass --force to replace it", out)),
                    "model convert");
    model::llama2c::ConvertReport rep;
    Status st = model::llama2c::convert_to_hf(input, tokenizer, out, &rep);
    if (!st.ok()) return fail(st, "model convert");
    const auto& c = rep.config;
    log::info(
        "llama2c -> HF LLaMA: dim {}, hidden {}, layers {}, heads {}/{} kv, vocab {}, seq_len {}, "
        "{} classifier; {} tensors, {} parameters, {} merges",
        c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len,
        c.shared_classifier ? "tied" : "separate", rep.n_tensors, rep.n_params, rep.n_merges);
    std::string files;
    for (const auto& f : rep.files)
        files += (files.empty() ? "" : ", ") + f;
    log::info("wrote {}: {}", out, files);
    return kExitOk;
}

struct Subcommand {
    const char* name;
    const char* summary;
    int (*run)(int argc, char** argv);  // argv[0] is "medforge model <name>"
};

constexpr std::array kSubcommands = {
    Subcommand{"convert", "convert a llama2.c checkpoint to a Hugging Face LLaMA checkpoint",
               model_convert},
};

void print_model_help(std::FILE* to) {
    std::string o =
        "Checkpoint tools.\n\nusage: medforge model <subcommand> [options]   (medforge model "
        "<subcommand> --help)\n\nsubcommands:\n";
    for (const auto& s : kSubcommands)
        o += fmt::format("  {:<10} {}\n", s.name, s.summary);
    o += "\ndocs: docs/model.md\n";
    std::fputs(o.c_str(), to);
}

}  // namespace

int run_model(int argc, char** argv) {
    if (argc < 2) {
        print_model_help(stderr);
        return kExitUsage;
    }
    std::string_view sub = argv[1];
    if (sub == "--help" || sub == "-h" || sub == "help") {
        print_model_help(stdout);
        return kExitOk;
    }
    for (const auto& s : kSubcommands) {
        if (sub == s.name) {
            std::string name = std::string(argv[0]) + " " + s.name;
            argv[1] = name.data();
            return s.run(argc - 1, argv + 1);
        }
    }
    std::fprintf(stderr, "medforge model: unknown subcommand '%s'\n", argv[1]);
    print_model_help(stderr);
    return kExitUsage;
}

}  // namespace mf::cli
