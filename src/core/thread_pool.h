// A fixed pool of worker threads with a FIFO queue, and parallel_for over an index range.
// Workers keep their own state; results are combined by the caller (see curate/stage.h).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <future>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

namespace mf {

class ThreadPool {
  public:
    // n_threads = 0 means std::thread::hardware_concurrency().
    explicit ThreadPool(size_t n_threads = 0);
    ~ThreadPool();  // finishes queued work, then joins
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    size_t size() const { return workers_.size(); }

    template <typename F>
    auto submit(F&& f) -> std::future<decltype(f())> {
        using R = decltype(f());
        auto task = std::make_shared<std::packaged_task<R()>>(std::forward<F>(f));
        std::future<R> fut = task->get_future();
        {
            std::lock_guard lock(mu_);
            queue_.emplace([task] { (*task)(); });
        }
        cv_.notify_one();
        return fut;
    }

    // Calls fn(worker_idx, begin, end) on contiguous chunks of [0, n) across the pool and waits.
    // worker_idx < size() identifies per-worker state. Runs inline when n is small or size()==1.
    void parallel_for(size_t n,
                      const std::function<void(size_t worker_idx, size_t begin, size_t end)>& fn,
                      size_t min_chunk = 1);

    static size_t default_threads();

  private:
    void worker_loop();

    std::vector<std::thread> workers_;
    std::queue<std::function<void()>> queue_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
};

}  // namespace mf
