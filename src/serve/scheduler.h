// The one thread that owns the model: a bounded queue of chat jobs and continuous batching.
// Jobs that arrive together are prefilled together in one packed forward
// (CausalLM::forward_prefill_packed; image embeddings come from a content-hash LRU cache) and join
// the running batch (a prompt's start that an earlier prompt shared comes from the prefix cache
// instead); every decode step runs all active sequences in one batched forward
// (CausalLM::forward_step_batched), each with its own KV cache and Sampler. A job whose client
// went away (Job::cancelled) leaves the batch at the next step, or the queue at once, and its
// KV cache is freed.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "model/engine.h"
#include "serve/api.h"
#include "serve/prefix_cache.h"

namespace mf::serve {

using Clock = std::chrono::steady_clock;

// One chat completion in flight. The HTTP thread fills the inputs and waits on `cv`; the
// scheduler publishes text deltas (streaming) and the result.
struct Job {
    // inputs
    std::vector<int64_t> ids;             // prompt ids with model::kImageMarker per image
    int64_t prompt_positions = 0;         // after image expansion
    std::vector<std::string> image_keys;  // content hash per image (embedding cache key)
    torch::Tensor pixels;                 // [N, 3, S, S] float32, or undefined
    model::SamplingParams sampling;
    bool stream = false;
    bool json_mode = false;
    int json_retries = 2;  // extra attempts when json_mode output is not a JSON object

    // outputs (under mu)
    std::mutex mu;
    std::condition_variable cv;
    std::string pending;  // streamed text not yet taken by the HTTP thread
    bool done = false;
    std::string text, finish_reason;
    int64_t completion_tokens = 0;  // over all attempts
    int64_t cached_tokens = 0;      // prompt positions restored from the prefix cache
    int attempts = 0;
    bool json_valid = true;
    std::optional<ApiError> error;
    Clock::time_point enqueued, first_token;
    bool got_first_token = false;

    std::atomic<bool> cancelled{false};  // the client went away
};

struct SchedulerOptions {
    int max_batch = 8;        // sequences decoded together
    size_t max_queue = 64;    // jobs waiting to start; more are refused (429)
    size_t image_cache = 64;  // image embeddings kept (LRU)
    // prompt positions prefilled in one packed forward (a longer prompt goes alone)
    int64_t max_prefill_tokens = 4096;
    // keys/values of prompt prefixes kept for later requests (serve/prefix_cache.h); 0 = off
    size_t prefix_cache_bytes = size_t{256} << 20;
};

struct SchedulerStats {
    int64_t decode_steps = 0;      // batched forwards
    int64_t decoded_tokens = 0;    // sum of batch sizes over steps
    int64_t prefills = 0;          // sequences prefilled
    int64_t prefill_forwards = 0;  // packed prefill forwards (prefills / this = mean group)
    int64_t cancelled = 0;         // jobs ended because their client went away
    int64_t image_cache_hits = 0, image_cache_misses = 0;
    int64_t json_retries = 0;
    double prefill_seconds = 0;  // in prefill forwards (with the logits of the last positions)
    double decode_seconds = 0;   // in decode-step forwards (with the logits)
    int64_t prefix_cached_tokens = 0;  // prompt positions restored from the prefix cache
    size_t prefix_cache_bytes = 0;     // held by the prefix cache now
};

class Scheduler {
  public:
    // `tok_mu` guards the engine's tokenizer (shared with the HTTP threads).
    Scheduler(model::Engine& engine, std::mutex& tok_mu, const SchedulerOptions& opt);
    ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // false when the queue is full (or the scheduler is stopping).
    bool submit(std::shared_ptr<Job> job);
    // Finishes every queued and running job, then stops the thread.
    void stop();
    // While held, no queued job is started (running ones go on); on release the jobs that
    // gathered are prefilled together. For tests and benchmarks of the batched prefill.
    void hold(bool on);

    size_t queue_depth() const;
    size_t active() const { return active_.load(); }
    SchedulerStats stats() const;

  private:
    struct Seq;
    void loop();
    // Prefills `jobs` (packed, in groups of at most max_prefill_tokens) and moves those that go
    // on decoding into `out`.
    void admit(std::vector<std::shared_ptr<Job>> jobs, std::vector<std::unique_ptr<Seq>>& out);
    void fail(Job& j, const std::string& message);
    bool advance(Seq& s, const float* logits, int64_t vocab);
    void finish(Seq& s, const std::string& reason);
    void emit(Seq& s, std::string_view delta);
    torch::Tensor image_embeds(Job& job);

    model::Engine& engine_;
    std::mutex& tok_mu_;
    SchedulerOptions opt_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::shared_ptr<Job>> queue_;
    bool stopping_ = false;
    bool held_ = false;
    std::atomic<size_t> active_{0};
    SchedulerStats stats_;
    // image embedding LRU: key -> [P, H]
    std::list<std::pair<std::string, torch::Tensor>> lru_;
    std::unordered_map<std::string, std::list<std::pair<std::string, torch::Tensor>>::iterator>
        lru_index_;
    PrefixCache prefix_;  // only the scheduler thread touches it
    std::thread thread_;
};

}  // namespace mf::serve
