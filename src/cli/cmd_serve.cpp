// medforge serve: an OpenAI-compatible HTTP server over a local checkpoint (continuous batching).
// See docs/serve.md.
#include <fmt/core.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "cli/commands.h"
#include "core/log.h"
#include "model/weights.h"
#include "serve/server.h"

namespace mf::cli {

int run_serve(int argc, char** argv) {
    CLI::App app{
        "Serve a local checkpoint over an OpenAI-compatible API: POST /v1/chat/completions\n"
        "(text + images as base64 data URLs, streaming, json_object), GET /v1/models, /health,\n"
        "/metrics (Prometheus). Concurrent requests are decoded together (continuous batching).\n"
        "SIGTERM / Ctrl-C: stop accepting, finish the requests in flight, exit. See docs/serve.md.",
        argv[0]};
    serve::ServeOptions o;
    std::string model_dir, dtype_s, chat_format, image_dir, api_key_env;
    int threads = 0;
    app.add_option("--model", model_dir, "checkpoint folder (config.json, safetensors, tokenizer)")
        ->required();
    app.add_option("--host", o.host, "address to listen on (default 127.0.0.1; 0.0.0.0 = all)");
    app.add_option("--port", o.port, "TCP port (default 8000; 0 = any free port)")
        ->check(CLI::Range(0, 65535));
    app.add_option("--api-key", o.api_key, "require 'Authorization: Bearer KEY' on /v1/*");
    app.add_option("--api-key-env", api_key_env, "read the API key from this environment variable");
    app.add_option("--served-model-name", o.served_model_name,
                   "model id to report (default: folder name)");
    app.add_option("--max-queue", o.max_queue,
                   "requests waiting for a slot before 429 (default 64)")
        ->check(CLI::Range(1, 1 << 20));
    app.add_option("--max-batch", o.max_batch, "sequences decoded together (default 8)")
        ->check(CLI::Range(1, 1024));
    app.add_option("--max-prefill-tokens", o.max_prefill_tokens,
                   "prompt positions of waiting requests prefilled together in one forward "
                   "(default 4096; 1 = one request per forward)")
        ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
    app.add_option("--prefix-cache-mb", o.prefix_cache_bytes,
                   "keys/values of prompt prefixes kept for later requests that start the same way "
                   "(default 256; 0 = off)")
        ->transform([](std::string s) { return std::to_string(std::stoull(s) << 20); });
    app.add_option("--max-tokens-default", o.default_max_tokens,
                   "max_tokens when a request gives none (default 1024, capped by the context)")
        ->check(CLI::Range(1, 1 << 20));
    app.add_option("--max-images", o.images.max_images, "images per request before 422 (default 8)")
        ->check(CLI::Range(0, 1024));
    app.add_option("--max-body-mb", o.max_body_bytes,
                   "request body limit in MiB (default 32) -> 413")
        ->transform([](std::string s) { return std::to_string(std::stoull(s) << 20); });
    app.add_option("--allow-image-dir", image_dir,
                   "allow image_url file paths / file:// under this folder");
    app.add_flag("--allow-remote-images", o.images.allow_remote,
                 "allow http(s) image URLs (fetched by the server)");
    app.add_option("--read-timeout", o.read_timeout_s,
                   "seconds before a stalled client is dropped (default 30)")
        ->check(CLI::Range(1, 3600));
    app.add_option("--http-threads", o.http_threads, "HTTP worker threads (default 64)")
        ->check(CLI::Range(4, 4096));
    app.add_option("--json-retries", o.json_retries,
                   "extra attempts when a json_object reply is not JSON (default 2)")
        ->check(CLI::Range(0, 10));
    app.add_option("--chat-format", chat_format,
                   "override the chat template: huatuo, chatml, llama3, llama2, plain");
    app.add_option("--dtype", dtype_s, "compute dtype: f32 or bf16 (default: the checkpoint's)");
    app.add_option("--threads", threads, "CPU threads for the model (default: all)");
    if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
    if (!api_key_env.empty()) {
        const char* v = std::getenv(api_key_env.c_str());
        if (!v || !*v) {
            std::fprintf(stderr, "medforge serve: --api-key-env %s: the variable is not set\n",
                         api_key_env.c_str());
            return kExitUsage;
        }
        o.api_key = v;
    }
    o.images.allow_dir = image_dir;
    model::EngineOptions eo;
    eo.threads = threads;
    eo.chat_format = chat_format;
    if (!dtype_s.empty()) {
        auto d = model::parse_compute_dtype(dtype_s);
        if (!d.ok()) return fail(d.status(), "serve");
        eo.dtype = *d;
    }
    const std::atomic<bool>* stop = install_cancel_handler();
    serve::Server server(o);
    if (auto st = server.start(model_dir, eo); !st.ok()) return fail(st, "serve");
    log::info("listening on http://{}:{} (loading {})", o.host, server.port(), model_dir);
    // Load in the background (503 meanwhile); a failed load ends the process.
    while (!server.ready() && !stop->load()) {
        if (!server.load_error().ok()) {
            server.shutdown();
            return fail(server.load_error(), "serve");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (server.ready()) log::info("model ready; serving http://{}:{}/v1", o.host, server.port());
    while (!stop->load())
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    log::info("stopping: finishing the requests in flight");
    server.shutdown();
    log::info("stopped");
    return kExitOk;
}

}  // namespace mf::cli
