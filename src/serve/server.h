// `medforge serve`: an OpenAI-compatible HTTP server (cpp-httplib) over model::Engine.
//   POST /v1/chat/completions (plain + SSE streaming), GET /v1/models, GET /health, GET /metrics.
// The HTTP threads parse, check and preprocess requests; one Scheduler thread owns the model and
// decodes all running requests together. See docs/serve.md.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "model/engine.h"
#include "serve/api.h"
#include "serve/scheduler.h"

namespace httplib {
class Server;
}

namespace mf::serve {

struct ServeOptions {
    std::string host = "127.0.0.1";
    int port = 8000;                // 0 = any free port (see Server::port())
    std::string api_key;            // empty = no authentication
    std::string served_model_name;  // default: the model folder's name
    size_t max_queue = 64;
    int max_batch = 8;
    int64_t max_prefill_tokens = 4096;  // prompt positions prefilled together in one forward
    size_t prefix_cache_bytes = size_t{256} << 20;  // prompt-prefix keys/values kept; 0 = off
    ImagePolicy images;
    size_t max_body_bytes = size_t{32} << 20;  // larger bodies get 413
    int read_timeout_s = 30;  // a client that stalls mid-request is dropped after this
    int write_timeout_s = 30;
    int http_threads = 64;
    int default_max_tokens = 1024;  // when the request gives none (capped by the context)
    size_t image_cache = 64;
    int json_retries = 2;
};

// Prometheus counters and histograms.
class Metrics {
  public:
    void request(int status, double seconds);
    void tokens(int64_t prompt, int64_t completion);
    void first_token(double seconds);
    // A request whose client went away before its answer was written (status 499 in
    // medforge_requests_total); `completion_tokens` were generated for it all the same.
    void cancelled(double seconds, int64_t completion_tokens);
    std::string render(size_t queue_depth, size_t active, const SchedulerStats& s,
                       bool ready) const;

  private:
    struct Histogram {
        std::vector<double> bounds;
        std::vector<uint64_t> counts;  // per bucket (not cumulative); last = +Inf
        double sum = 0;
        uint64_t n = 0;
        void add(double v);
        void render(std::string& out, const std::string& name, const std::string& help) const;
    };
    mutable std::mutex mu_;
    std::map<int, uint64_t> by_status_;
    int64_t prompt_tokens_ = 0, completion_tokens_ = 0;
    int64_t cancelled_ = 0, cancelled_tokens_ = 0;
    Histogram latency_{{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}, {}, 0, 0};
    Histogram ttft_{{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}, {}, 0, 0};
};

// Loads the engine; runs on the server's loading thread (see Server::start).
using EngineLoader = std::function<Result<std::unique_ptr<model::Engine>>()>;

class Server {
  public:
    explicit Server(ServeOptions opt);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds and starts serving at once (requests get 503 until the model is ready), then loads
    // the checkpoint in the background. Fails when the address cannot be bound.
    Status start(const std::filesystem::path& model_dir, const model::EngineOptions& eo);
    // The same with any loader (run on the loading thread; tests use one that waits for them).
    Status start(EngineLoader loader);
    // The same with an engine already loaded (tests, benchmarks).
    Status start(std::unique_ptr<model::Engine> engine);

    int port() const { return port_; }
    bool ready() const { return ready_.load(); }
    // Blocks until the model is loaded (true) or failed to load (false, load_error() says why).
    bool wait_ready();
    Status load_error() const;

    // Graceful stop: refuses new requests (503), finishes in-flight ones, joins the threads.
    // While the model is loading it first waits for the load to end.
    void shutdown();

  private:
    Status bind_and_listen();
    void on_engine(std::unique_ptr<model::Engine> engine);
    void routes();

    ServeOptions opt_;
    std::unique_ptr<httplib::Server> http_;
    std::thread listen_thread_, load_thread_;
    int port_ = 0;
    std::atomic<bool> ready_{false}, draining_{false}, load_failed_{false};
    mutable std::mutex state_mu_;
    std::condition_variable state_cv_;
    Status load_status_;
    std::unique_ptr<model::Engine> engine_;
    std::unique_ptr<Scheduler> scheduler_;
    std::mutex tok_mu_;
    std::string model_name_;
    Metrics metrics_;
    bool shut_ = false;
};

}  // namespace mf::serve
