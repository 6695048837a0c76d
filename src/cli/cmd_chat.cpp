// medforge chat: talk to a local checkpoint (LLaVA-style with images, or a plain causal LM) in the
// terminal. One-shot with --prompt, interactive otherwise. See docs/chat.md.
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include <fmt/core.h>

#include "cli/commands.h"
#include "core/log.h"
#include "io/image.h"
#include "model/engine.h"

namespace mf::cli {

int run_chat(int argc, char** argv) {
    CLI::App app{
        "Chat with a local model (Hugging Face checkpoint folder: HuatuoGPT-Vision / LLaVA-1.5 /\n"
        "llava-hf / Qwen2 / LLaMA). Images go in front of the first message (or where the text\n"
        "says <image>). With --prompt: answer once and exit; without: interactive (empty line or\n"
        "Ctrl-D ends, /reset starts over). The reply streams to stdout; timing goes to stderr.",
        argv[0]};
    std::string model_dir, prompt, system, chat_format, dtype_s;
    std::vector<std::string> images, stops;
    model::SamplingParams sp;
    sp.max_tokens = 512;
    int threads = 0;
    bool stats = false;
    app.add_option("--model", model_dir, "checkpoint folder (config.json, safetensors, tokenizer)")
        ->required();
    app.add_option("--image", images, "image file (repeat for several)");
    app.add_option("--prompt", prompt, "the question; omit for an interactive session");
    app.add_option("--system", system, "system prompt (formats that have one)");
    app.add_option("--max-tokens", sp.max_tokens, "most tokens to generate per reply")
        ->check(CLI::Range(1, 1 << 20));
    app.add_option("--temperature", sp.temperature, "0 = greedy (default)")
        ->check(CLI::Range(0.0, 100.0));
    app.add_option("--top-k", sp.top_k, "keep the k most likely tokens (0 = off)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--top-p", sp.top_p, "nucleus sampling mass (1 = off)")
        ->check(CLI::Range(0.0, 1.0));
    app.add_option("--repetition-penalty", sp.repetition_penalty, "CTRL-style penalty (1 = off)")
        ->check(CLI::Range(0.01, 100.0));
    app.add_option("--seed", sp.seed, "sampling seed (same seed, same text)");
    app.add_option("--stop", stops, "stop string (repeatable)");
    app.add_option("--chat-format", chat_format,
                   "override the chat template: huatuo, chatml, llama3, llama2, plain");
    app.add_option("--dtype", dtype_s, "compute dtype: f32 or bf16 (default: the checkpoint's)");
    app.add_option("--threads", threads, "CPU threads (default: all)");
    app.add_flag("--stats", stats, "print prompt size, prefill and decode speed to stderr");
    if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
    sp.stop = stops;

    model::EngineOptions eo;
    eo.threads = threads;
    eo.chat_format = chat_format;
    if (!dtype_s.empty()) {
        auto d = model::parse_compute_dtype(dtype_s);
        if (!d.ok()) return fail(d.status(), "chat");
        eo.dtype = *d;
    }
    auto engine = model::Engine::load(model_dir, eo);
    if (!engine.ok()) return fail(engine.status(), "chat");
    std::vector<io::Image> imgs;
    for (const auto& f : images) {
        auto im = io::decode_image_file(f);
        if (im.error != io::ImageError::kOk)
            return fail(Status::invalid_argument(
                            fmt::format("{}: cannot use this image: {}", f, im.detail)),
                        "chat");
        imgs.push_back(std::move(im.image));
    }
    const std::atomic<bool>* cancel = install_cancel_handler();
    auto on_delta = [cancel](std::string_view d) {
        std::fwrite(d.data(), 1, d.size(), stdout);
        std::fflush(stdout);
        return !cancel->load();
    };
    std::vector<io::ChatMessage> conv;
    if (!system.empty()) conv.push_back({"system", system});
    auto turn = [&](const std::string& text, const std::vector<io::Image>& ims) -> int {
        conv.push_back({"user", text});
        auto r = (*engine)->chat(conv, ims, sp, on_delta);
        std::fputc('\n', stdout);
        std::fflush(stdout);
        if (!r.ok()) {
            conv.pop_back();
            return fail(r.status(), "chat");
        }
        conv.push_back({"assistant", r->text});
        if (stats) {
            double dec = r->tokens.size() > 1
                             ? (r->tokens.size() - 1) / std::max(1e-9, r->decode_seconds)
                             : 0;
            std::fprintf(stderr,
                         "[%lld prompt positions, prefill %.2f s (%.0f tok/s), %zu tokens at %.1f "
                         "tok/s, finish: %s]\n",
                         static_cast<long long>(r->prompt_tokens), r->prefill_seconds,
                         r->prompt_tokens / std::max(1e-9, r->prefill_seconds), r->tokens.size(),
                         dec, r->finish_reason.c_str());
        }
        return kExitOk;
    };
    if (!prompt.empty()) return turn(prompt, imgs);

    bool tty = isatty(STDIN_FILENO);
    bool first = true;
    std::string line;
    while (true) {
        if (tty) {
            std::fputs(first && !imgs.empty() ? "you (with image)> " : "you> ", stdout);
            std::fflush(stdout);
        }
        if (!std::getline(std::cin, line) || line.empty()) break;
        if (line == "/reset") {
            conv.clear();
            if (!system.empty()) conv.push_back({"system", system});
            first = true;
            continue;
        }
        // The images stay with the first user turn; every turn re-renders the conversation.
        if (int rc = turn(line, imgs); rc != kExitOk && !tty) return rc;
        first = false;
    }
    return kExitOk;
}

}  // namespace mf::cli
