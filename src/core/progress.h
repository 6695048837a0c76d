// Progress display for long work: count, rate and ETA, redrawn in place on a terminal at most
// ten times a second. Quiet when stderr is not a terminal or when CI / MF_NO_PROGRESS is set
// (logs and CI stay clean); the caller logs a one-line summary at the end instead.
//
// Thread-safe: add() may be called from worker threads (atomics; drawing takes a try-lock).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace mf {

class Progress {
  public:
    // total = 0 means unknown (no ETA, no percentage). unit names the counted thing ("samples").
    Progress(std::string label, uint64_t total, std::string unit);
    ~Progress();
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;

    void add(uint64_t n, uint64_t bytes = 0);
    void set_total(uint64_t total) { total_.store(total); }
    // Clears the line on a terminal. Idempotent.
    void finish();

    uint64_t count() const { return count_.load(); }
    double elapsed_s() const;

    // Whether progress is drawn at all in this process (TTY and not CI).
    static bool interactive();
    // Formats "1.2k", "3.4M" and durations "1h02m", "3m05s", "12s".
    static std::string human_count(double v);
    static std::string human_duration(double seconds);

  private:
    void draw(bool final);

    std::string label_;
    std::string unit_;
    std::atomic<uint64_t> total_;
    std::atomic<uint64_t> count_{0};
    std::atomic<uint64_t> bytes_{0};
    std::chrono::steady_clock::time_point start_;
    std::atomic<int64_t> last_draw_ns_{0};
    std::mutex draw_mu_;
    bool enabled_;
    bool finished_ = false;
};

}  // namespace mf
