// medforge model <subcommand>: checkpoint tools. A dispatcher over a table of subcommands, one
// function each (parsing and printing only; the work is in src/model/).
//   init      write a random checkpoint in the exact Hugging Face layout (tests, demos, benches)
//   inspect   print a checkpoint's architecture, parameter counts and dtypes
//   convert   convert another checkpoint format to a Hugging Face checkpoint (llama2.c for now)
#include <fmt/core.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "core/log.h"
#include "io/chat_template.h"
#include "io/safetensors.h"
#include "io/tokenizer.h"
#include "model/config.h"
#include "model/init.h"
#include "model/llama2c.h"
#include "model/text_encoder.h"

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

// medforge model init --arch A --size S --out DIR
int model_init(int argc, char** argv) {
    CLI::App app{
        "Write a random checkpoint in the exact Hugging Face layout of an architecture:\n"
        "config.json, model.safetensors, tokenizer.json + tokenizer_config.json (a byte-level BPE\n"
        "trained on a built-in corpus), generation_config.json and, for LLaVA,\n"
        "preprocessor_config.json. Loads in medforge and in transformers. See docs/model.md.",
        argv[0]};
    model::InitOptions o;
    std::string out;
    bool force = false;
    app.add_option(
           "--arch", o.arch,
           "llava-qwen2 (HuatuoGPT-Vision), llava-llama, llava-hf, qwen2, llama, clip-vision, "
           "bert, mpnet (sentence encoders)")
        ->required();
    app.add_option("--size", o.size,
                   "tiny | small (~100M) | 0.5b (Qwen2-0.5B shape) | clip-l336; bert/mpnet: tiny | "
                   "minilm | base");
    app.add_option("-o,--out", out, "output folder (created)")->required();
    app.add_option("--seed", o.seed, "random seed (same seed, same weights)");
    app.add_option("--dtype", o.dtype, "saved dtype: f32 or bf16")
        ->check(CLI::IsMember({"f32", "bf16"}));
    std::string tokenizer;
    app.add_option("--tokenizer", tokenizer,
                   "a published tokenizer.json to use instead of the small generated one "
                   "(vocab_size follows it; e.g. the real Qwen vocabulary for benchmarks)");
    app.add_flag("--random-all", o.random_all,
                 "also randomise biases and norm weights (HF starts them at 0 and 1)");
    app.add_flag("--force", force, "replace a checkpoint already in --out");
    if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
    o.out = out;
    o.tokenizer = tokenizer;
    if (!force && fs::exists(o.out / "config.json"))
        return fail(Status::failed_precondition(fmt::format(
                        "{} already holds a checkpoint: pass --force to replace it", out)),
                    "model init");
    Status st;
    if (o.arch == "bert" || o.arch == "mpnet") {
        // sentence-transformers layout (all-MiniLM-L6-v2 / all-mpnet-base-v2 names); sizes tiny,
        // minilm, base
        auto arch = model::parse_arch(o.arch);
        st = model::init_text_encoder(*arch, o.size, o.out, o.seed);
    } else {
        st = model::init_model(o);
    }
    if (!st.ok()) return fail(st, "model init");
    log::info("model init: wrote a random {} ({}) checkpoint to {}", o.arch, o.size, out);
    return kExitOk;
}

// medforge model inspect DIR [--json]
int model_inspect(int argc, char** argv) {
    CLI::App app{
        "Print a checkpoint's architecture, shapes, parameter count by part (language model,\n"
        "vision tower, projector), tensor dtypes, tokenizer and chat template. Reads headers\n"
        "only (fast even for 7B checkpoints).",
        argv[0]};
    std::string dir;
    bool as_json = false;
    app.add_option("dir", dir, "checkpoint folder")->required();
    app.add_flag("--json", as_json, "print JSON instead of text");
    if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
    auto cfg = model::load_model_config(dir);
    if (!cfg.ok()) return fail(cfg.status(), "model inspect");
    auto set = io::SafetensorsSet::open(dir);
    if (!set.ok()) return fail(set.status(), "model inspect");
    int64_t lm = 0, vision = 0, proj = 0, other = 0;
    std::map<std::string, int64_t> by_dtype;
    for (const auto& n : set->names()) {
        const io::TensorInfo* t = set->find(n);
        int64_t k = t->numel();
        by_dtype[std::string(io::dtype_name(t->dtype))] += k;
        if (n.find("vision_tower") != std::string::npos || n.rfind("vision_model.", 0) == 0)
            vision += k;
        else if (n.find("mm_projector") != std::string::npos ||
                 n.find("multi_modal_projector") != std::string::npos)
            proj += k;
        else if (n.find("position_ids") != std::string::npos ||
                 n.find("inv_freq") != std::string::npos)
            other += k;
        else
            lm += k;
    }
    std::string tok_kind = "-", chat = "-";
    int64_t tok_vocab = 0;
    if (auto tok = io::load_tokenizer(dir); tok.ok()) {
        tok_kind = std::string((*tok)->kind());
        tok_vocab = static_cast<int64_t>((*tok)->vocab_size());
    }
    if (auto t = io::detect_chat_template(dir); t.ok())
        chat = std::string(io::chat_format_name(t->format()));
    const auto& c = *cfg;
    nlohmann::json j = {{"dir", dir},
                        {"arch", std::string(model::arch_name(c.arch))},
                        {"model_type", c.model_type},
                        {"torch_dtype", c.torch_dtype},
                        {"tensors", set->size()},
                        {"parameters",
                         {{"total", lm + vision + proj + other},
                          {"language_model", lm},
                          {"vision_tower", vision},
                          {"projector", proj}}},
                        {"dtypes", by_dtype},
                        {"tokenizer", {{"kind", tok_kind}, {"vocab", tok_vocab}}},
                        {"chat_template", chat}};
    if (c.arch != model::Arch::kClipVision && c.arch != model::Arch::kBert &&
        c.arch != model::Arch::kMpnet)
        j["text"] = {{"family", c.text.family},
                     {"layers", c.text.num_hidden_layers},
                     {"hidden", c.text.hidden_size},
                     {"intermediate", c.text.intermediate_size},
                     {"heads", c.text.num_attention_heads},
                     {"kv_heads", c.text.num_key_value_heads},
                     {"head_dim", c.text.head_dim},
                     {"vocab", c.text.vocab_size},
                     {"context", c.text.max_position_embeddings},
                     {"rope_theta", c.text.rope_theta},
                     {"tied_embeddings", c.text.tie_word_embeddings}};
    if (model::is_llava(c.arch) || c.arch == model::Arch::kClipVision)
        j["vision"] = {
            {"layers", c.vision.num_hidden_layers},  {"hidden", c.vision.hidden_size},
            {"heads", c.vision.num_attention_heads}, {"image_size", c.vision.image_size},
            {"patch_size", c.vision.patch_size},     {"image_tokens", c.vision.num_patches()},
            {"select_layer", c.vision_select_layer}, {"projector", c.projector_type}};
    if (as_json) {
        std::fputs((j.dump(2) + "\n").c_str(), stdout);
        return kExitOk;
    }
    auto human = [](int64_t n) {
        if (n >= 1000000000) return fmt::format("{:.2f}B", n / 1e9);
        if (n >= 1000000) return fmt::format("{:.1f}M", n / 1e6);
        if (n >= 1000) return fmt::format("{:.1f}K", n / 1e3);
        return std::to_string(n);
    };
    std::string o = fmt::format("{}\n  architecture   {} (model_type {}, saved as {})\n", dir,
                                model::arch_name(c.arch), c.model_type, c.torch_dtype);
    o +=
        fmt::format("  parameters     {} total: language model {}, vision tower {}, projector {}\n",
                    human(lm + vision + proj + other), human(lm), human(vision), human(proj));
    std::string dts;
    for (const auto& [k, v] : by_dtype)
        dts += fmt::format("{}{} {}", dts.empty() ? "" : ", ", k, human(v));
    o += fmt::format("  tensors        {} ({})\n", set->size(), dts);
    if (j.contains("text"))
        o += fmt::format(
            "  decoder        {}: {} layers, hidden {}, MLP {}, {} heads / {} kv heads (dim {}), "
            "vocab {}, context {}, rope theta {:g}{}\n",
            c.text.family, c.text.num_hidden_layers, c.text.hidden_size, c.text.intermediate_size,
            c.text.num_attention_heads, c.text.num_key_value_heads, c.text.head_dim,
            c.text.vocab_size, c.text.max_position_embeddings, c.text.rope_theta,
            c.text.tie_word_embeddings ? ", tied embeddings" : "");
    if (j.contains("vision"))
        o += fmt::format(
            "  vision         CLIP ViT: {} layers, hidden {}, {} heads, {}px / patch {} -> {} "
            "image tokens (layer {}), projector {}\n",
            c.vision.num_hidden_layers, c.vision.hidden_size, c.vision.num_attention_heads,
            c.vision.image_size, c.vision.patch_size, c.vision.num_patches(), c.vision_select_layer,
            c.projector_type);
    o += fmt::format("  tokenizer      {} ({} ids), chat template {}\n", tok_kind, tok_vocab, chat);
    std::fputs(o.c_str(), stdout);
    return kExitOk;
}

struct Subcommand {
    const char* name;
    const char* summary;
    int (*run)(int argc, char** argv);  // argv[0] is "medforge model <name>"
};

constexpr std::array kSubcommands = {
    Subcommand{"init", "write a random checkpoint in the exact Hugging Face layout", model_init},
    Subcommand{"inspect", "architecture, parameter counts, dtypes, tokenizer of a checkpoint",
               model_inspect},
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
