#include "serve/scheduler.h"

#include "core/text.h"

#include <fmt/core.h>

#include <chrono>

#include "core/log.h"

namespace mf::serve {

namespace {
// Length of `t` without a trailing UTF-8 sequence that is still incomplete (its lead byte says
// more bytes follow): such a tail is held back while streaming so that chunks split only between
// characters. Byte-level tokenizers end tokens inside characters.
size_t utf8_complete_prefix(std::string_view t) {
    const size_t n = t.size();
    for (size_t k = 1; k <= 3 && k <= n; ++k) {
        const auto c = static_cast<unsigned char>(t[n - k]);
        if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back
        size_t need = 1;
        if (c >= 0xC2 && c < 0xE0)
            need = 2;
        else if (c >= 0xE0 && c < 0xF0)
            need = 3;
        else if (c >= 0xF0 && c < 0xF5)
            need = 4;
        return need > k ? n - k : n;
    }
    return n;
}
}  // namespace

struct Scheduler::Seq {
    std::shared_ptr<Job> job;
    model::KVCache cache;
    std::optional<model::Sampler> sampler;
    std::vector<int64_t> history;
    std::vector<int32_t> tokens;
    std::string text;
    size_t emitted = 0;
    int64_t text_prefix = 0;  // prompt positions before the first image (prefix-cacheable)
    int32_t next = -1;        // the token to feed in the next step
    bool finished = false;
};

Scheduler::Scheduler(model::Engine& engine, std::mutex& tok_mu, const SchedulerOptions& opt)
    : engine_(engine), tok_mu_(tok_mu), opt_(opt), prefix_(opt.prefix_cache_bytes) {
    if (opt_.max_batch < 1) opt_.max_batch = 1;
    model::init_torch_threads();  // no-op when Engine::load already did it
    // torch's thread count can be per OS thread (OpenMP): carry the loader's to the scheduler.
    const int threads = torch::get_num_threads();
    thread_ = std::thread([this, threads] {
        torch::set_num_threads(threads);
        loop();
    });
}

Scheduler::~Scheduler() {
    stop();
}

bool Scheduler::submit(std::shared_ptr<Job> job) {
    {
        std::lock_guard lk(mu_);
        if (stopping_ || queue_.size() >= opt_.max_queue) return false;
        job->enqueued = Clock::now();
        queue_.push_back(std::move(job));
    }
    cv_.notify_one();
    return true;
}

void Scheduler::hold(bool on) {
    {
        std::lock_guard lk(mu_);
        held_ = on;
    }
    cv_.notify_all();
}

void Scheduler::stop() {
    {
        std::lock_guard lk(mu_);
        stopping_ = true;
        held_ = false;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

size_t Scheduler::queue_depth() const {
    std::lock_guard lk(mu_);
    return queue_.size();
}

SchedulerStats Scheduler::stats() const {
    std::lock_guard lk(mu_);
    return stats_;
}

torch::Tensor Scheduler::image_embeds(Job& job) {
    auto& m = engine_.model();
    std::vector<torch::Tensor> parts;
    for (size_t i = 0; i < job.image_keys.size(); ++i) {
        const std::string& key = job.image_keys[i];
        auto it = lru_index_.find(key);
        if (it != lru_index_.end()) {
            lru_.splice(lru_.begin(), lru_, it->second);
            parts.push_back(it->second->second);
            std::lock_guard lk(mu_);
            ++stats_.image_cache_hits;
            continue;
        }
        auto e = m->encode_images(job.pixels.narrow(0, static_cast<int64_t>(i), 1)).squeeze(0);
        {
            std::lock_guard lk(mu_);
            ++stats_.image_cache_misses;
        }
        if (opt_.image_cache > 0) {
            lru_.emplace_front(key, e);
            lru_index_[key] = lru_.begin();
            while (lru_.size() > opt_.image_cache) {
                lru_index_.erase(lru_.back().first);
                lru_.pop_back();
            }
        }
        parts.push_back(e);
    }
    return torch::stack(parts, 0);  // [N, P, H]
}

void Scheduler::emit(Seq& s, std::string_view delta) {
    if (delta.empty()) return;
    Job& j = *s.job;
    std::lock_guard lk(j.mu);
    if (!j.got_first_token) {
        j.got_first_token = true;
        j.first_token = Clock::now();
    }
    if (j.stream && !j.json_mode) {
        j.pending.append(delta);
        j.cv.notify_all();
    }
}

void Scheduler::finish(Seq& s, const std::string& reason) {
    s.finished = true;
    if (reason == "cancelled") {
        std::lock_guard lk(mu_);
        ++stats_.cancelled;
    }
    Job& j = *s.job;
    if (reason != "cancelled" && s.text.size() > s.emitted)
        emit(s, std::string_view(s.text).substr(s.emitted));
    bool retry = false;
    {
        std::lock_guard lk(j.mu);
        j.completion_tokens += static_cast<int64_t>(s.tokens.size());
        ++j.attempts;
        j.text = s.text;
        j.finish_reason = reason;
        if (j.json_mode && reason != "cancelled") {
            j.json_valid = is_json_object(s.text);
            retry = !j.json_valid && j.attempts <= j.json_retries;
        }
    }
    if (retry) {
        // Ask again with sampling on (a greedy retry would repeat itself), another seed; the
        // retry goes to the front of the queue (it is not a new request).
        Job& jj = *s.job;
        jj.sampling.temperature = std::max(jj.sampling.temperature, 0.8);
        jj.sampling.seed = jj.sampling.seed * 6364136223846793005ULL + 1442695040888963407ULL;
        std::lock_guard lk(mu_);
        queue_.push_front(s.job);
        ++stats_.json_retries;
        return;
    }
    std::lock_guard lk(j.mu);
    if (j.json_mode && j.stream && reason != "cancelled") j.pending = j.text;
    j.done = true;
    j.cv.notify_all();
}

void Scheduler::fail(Job& j, const std::string& message) {
    std::lock_guard lk(j.mu);
    ApiError err;
    err.status = 500;
    err.type = "server_error";
    err.message = message;
    j.error = err;
    j.done = true;
    j.cv.notify_all();
}

void Scheduler::admit(std::vector<std::shared_ptr<Job>> jobs,
                      std::vector<std::unique_ptr<Seq>>& out) {
    auto& m = engine_.model();
    // 1. per job: embeddings (images through the cache) and a KV cache
    std::vector<std::unique_ptr<Seq>> ready;
    std::vector<torch::Tensor> embeds;
    for (auto& job : jobs) {
        auto s = std::make_unique<Seq>();
        s->job = job;
        Job& j = *job;
        if (j.cancelled.load()) {
            finish(*s, "cancelled");
            continue;
        }
        try {
            torch::Tensor img;
            if (!j.image_keys.empty()) img = image_embeds(j);
            auto emb = m->embed_prompt(j.ids, img);  // [1, T, H]
            const int64_t T = emb.size(1);
            s->cache = model::KVCache::create(
                m->lm->config(), 1, T + std::max(0, j.sampling.max_tokens) + 1, m->dtype());
            s->text_prefix =
                std::find(j.ids.begin(), j.ids.end(), model::kImageMarker) - j.ids.begin();
            // a shared start comes from the prefix cache; at least the last position is run
            // (its logits give the first token)
            const int64_t P = prefix_.restore(j.ids, std::min(T - 1, s->text_prefix), s->cache);
            j.cached_tokens = P;
            embeds.push_back(P > 0 ? emb.narrow(1, P, T - P) : emb);
            ready.push_back(std::move(s));
        } catch (const std::exception& e) {
            fail(j, std::string("prefill failed: ") + e.what());
        }
    }
    // 2. packed prefill forwards over groups of consecutive jobs
    size_t at = 0;
    while (at < ready.size()) {
        size_t end = at;
        int64_t positions = 0;
        while (end < ready.size() &&
               (end == at || positions + embeds[end].size(1) <= opt_.max_prefill_tokens))
            positions += embeds[end++].size(1);
        std::vector<torch::Tensor> group(embeds.begin() + static_cast<std::ptrdiff_t>(at),
                                         embeds.begin() + static_cast<std::ptrdiff_t>(end));
        std::vector<model::KVCache*> caches;
        std::vector<int64_t> last;  // row of each sequence's last position in the packed output
        int64_t row = 0;
        for (size_t i = at; i < end; ++i) {
            caches.push_back(&ready[i]->cache);
            row += embeds[i].size(1);
            last.push_back(row - 1);
        }
        torch::Tensor logits;  // [G, V]
        const auto t0 = std::chrono::steady_clock::now();
        try {
            auto h = m->lm->forward_prefill_packed(group, caches);  // [1, N, H]
            logits = m->lm->logits(h.squeeze(0).index_select(0, torch::tensor(last))).contiguous();
        } catch (const std::exception& e) {
            for (size_t i = at; i < end; ++i)
                fail(*ready[i]->job, std::string("prefill failed: ") + e.what());
            at = end;
            continue;
        }
        int64_t restored = 0;
        for (size_t i = at; i < end; ++i) {
            Seq& s = *ready[i];
            restored += s.job->cached_tokens;
            prefix_.insert(s.job->ids, s.text_prefix, s.cache);
        }
        {
            std::lock_guard lk(mu_);
            stats_.prefix_cached_tokens += restored;
            stats_.prefix_cache_bytes = prefix_.bytes();
            stats_.prefills += static_cast<int64_t>(end - at);
            ++stats_.prefill_forwards;
            stats_.prefill_seconds +=
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        }
        const int64_t V = logits.size(1);
        const float* base = logits.data_ptr<float>();
        for (size_t i = at; i < end; ++i) {
            Seq& s = *ready[i];
            Job& j = *s.job;
            s.sampler.emplace(j.sampling);
            for (auto id : j.ids)
                if (id >= 0) s.history.push_back(id);
            if (advance(s, base + static_cast<int64_t>(i - at) * V, V))
                out.push_back(std::move(ready[i]));
        }
        at = end;
    }
}

// One generated token for `s` from its logits; mirrors model::generate's loop body. Returns
// whether the sequence goes on (s.next is then the token to feed).
bool Scheduler::advance(Seq& s, const float* logits, int64_t vocab) {
    Job& j = *s.job;
    const auto& sp = j.sampling;
    if (j.cancelled.load()) {
        finish(s, "cancelled");
        return false;
    }
    std::span<float> lv(const_cast<float*>(logits), static_cast<size_t>(vocab));
    int32_t next = s.sampler->sample(lv, s.history);
    const auto& eos = engine_.eos_ids();
    if (std::find(eos.begin(), eos.end(), next) != eos.end() && !sp.ignore_eos) {
        finish(s, "stop");
        return false;
    }
    s.tokens.push_back(next);
    s.history.push_back(next);
    std::string text;
    {
        std::lock_guard lk(tok_mu_);
        // invalid UTF-8 from byte-level tokens -> U+FFFD, exactly as model::generate does
        text = text::sanitize_utf8(engine_.tokenizer().decode(s.tokens, true));
    }
    size_t cut = std::string::npos;
    for (const auto& st : sp.stop) {
        if (st.empty()) continue;
        size_t at = text.find(st);
        if (at != std::string::npos) cut = std::min(cut, at);
    }
    if (cut != std::string::npos) {
        text.resize(cut);
        s.text = std::move(text);
        finish(s, "stop");
        return false;
    }
    size_t safe = model::stream_safe_length(text, sp.stop);
    safe = utf8_complete_prefix(std::string_view(text).substr(0, safe));
    if (safe > s.emitted) {
        emit(s, std::string_view(text).substr(s.emitted, safe - s.emitted));
        s.emitted = safe;
    }
    s.text = std::move(text);
    if (static_cast<int>(s.tokens.size()) >= sp.max_tokens) {
        finish(s, "length");
        return false;
    }
    s.next = next;
    return true;
}

void Scheduler::loop() {
    torch::NoGradGuard ng;
    auto& m = engine_.model();
    std::vector<std::unique_ptr<Seq>> active;
    while (true) {
        std::vector<std::shared_ptr<Job>> incoming, dropped;
        {
            std::unique_lock lk(mu_);
            if (active.empty())
                cv_.wait(lk, [&] { return stopping_ || (!held_ && !queue_.empty()); });
            if (active.empty() && queue_.empty() && stopping_) break;
            // jobs whose client went away leave the queue at once, without taking a slot
            for (auto it = queue_.begin(); it != queue_.end();) {
                if ((*it)->cancelled.load()) {
                    dropped.push_back(std::move(*it));
                    it = queue_.erase(it);
                } else {
                    ++it;
                }
            }
            while (!held_ && !queue_.empty() &&
                   active.size() + incoming.size() < static_cast<size_t>(opt_.max_batch)) {
                incoming.push_back(queue_.front());
                queue_.pop_front();
            }
        }
        for (auto& job : dropped) {
            Seq s;
            s.job = job;
            finish(s, "cancelled");
        }
        if (!incoming.empty()) admit(std::move(incoming), active);
        active_.store(active.size());
        if (active.empty()) continue;

        const int64_t B = static_cast<int64_t>(active.size());
        std::vector<int64_t> ids(B);
        std::vector<model::KVCache*> caches(B);
        for (int64_t b = 0; b < B; ++b) {
            ids[b] = active[b]->next;
            caches[b] = &active[b]->cache;
        }
        torch::Tensor logits;
        const auto t0 = std::chrono::steady_clock::now();
        try {
            auto x = m->lm->embed(torch::tensor(ids, torch::kInt64).view({B, 1}));  // [B, 1, H]
            torch::Tensor h = B == 1 ? m->lm->forward_hidden(x, caches[0])
                                     : m->lm->forward_step_batched(x, caches);
            logits = m->lm->logits(h.squeeze(1)).contiguous();  // [B, V]
        } catch (const std::exception& e) {
            log::error("decode step failed: {}", e.what());
            for (auto& s : active)
                fail(*s->job, std::string("decode failed: ") + e.what());
            active.clear();
            active_.store(0);
            continue;
        }
        {
            std::lock_guard lk(mu_);
            ++stats_.decode_steps;
            stats_.decoded_tokens += B;
            stats_.decode_seconds +=
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        }
        const int64_t V = logits.size(1);
        const float* base = logits.data_ptr<float>();
        std::vector<std::unique_ptr<Seq>> keep;
        keep.reserve(active.size());
        for (int64_t b = 0; b < B; ++b)
            if (advance(*active[b], base + b * V, V)) keep.push_back(std::move(active[b]));
        active = std::move(keep);
        active_.store(active.size());
    }
}

}  // namespace mf::serve
