#include "core/thread_pool.h"

#include <algorithm>

namespace mf {

size_t ThreadPool::default_threads() {
    size_t n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : n;
}

ThreadPool::ThreadPool(size_t n_threads) {
    if (n_threads == 0) n_threads = default_threads();
    workers_.reserve(n_threads);
    for (size_t i = 0; i < n_threads; ++i)
        workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_)
        t.join();
}

void ThreadPool::worker_loop() {
    for (;;) {
        std::function<void()> job;
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
            if (queue_.empty()) return;
            job = std::move(queue_.front());
            queue_.pop();
        }
        job();
    }
}

void ThreadPool::parallel_for(size_t n, const std::function<void(size_t, size_t, size_t)>& fn,
                              size_t min_chunk) {
    if (n == 0) return;
    size_t workers = std::min(size(), std::max<size_t>(1, n / std::max<size_t>(1, min_chunk)));
    if (workers <= 1) {
        fn(0, 0, n);
        return;
    }
    std::vector<std::future<void>> futs;
    futs.reserve(workers);
    size_t chunk = (n + workers - 1) / workers;
    for (size_t w = 0; w < workers; ++w) {
        size_t b = w * chunk, e = std::min(n, b + chunk);
        if (b >= e) break;
        futs.push_back(submit([&fn, w, b, e] { fn(w, b, e); }));
    }
    for (auto& f : futs)
        f.get();
}

}  // namespace mf
