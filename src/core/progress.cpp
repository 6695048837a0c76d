#include "core/progress.h"

#include <fmt/core.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace mf {

bool Progress::interactive() {
    static const bool value = [] {
        if (std::getenv("CI") != nullptr || std::getenv("MF_NO_PROGRESS") != nullptr) return false;
        return isatty(STDERR_FILENO) == 1;
    }();
    return value;
}

std::string Progress::human_count(double v) {
    if (v >= 1e9) return fmt::format("{:.1f}G", v / 1e9);
    if (v >= 1e6) return fmt::format("{:.1f}M", v / 1e6);
    if (v >= 1e4) return fmt::format("{:.1f}k", v / 1e3);
    if (v >= 100) return fmt::format("{:.0f}", v);
    return fmt::format("{:.3g}", v);
}

std::string Progress::human_duration(double s) {
    if (s < 0 || s > 1e8) return "?";
    auto total = static_cast<int64_t>(s + 0.5);
    int64_t h = total / 3600, m = (total % 3600) / 60, sec = total % 60;
    if (h > 0) return fmt::format("{}h{:02d}m", h, m);
    if (m > 0) return fmt::format("{}m{:02d}s", m, sec);
    return fmt::format("{}s", sec);
}

Progress::Progress(std::string label, uint64_t total, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      start_(std::chrono::steady_clock::now()),
      enabled_(interactive()) {}

Progress::~Progress() {
    finish();
}

double Progress::elapsed_s() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::add(uint64_t n, uint64_t bytes) {
    count_.fetch_add(n, std::memory_order_relaxed);
    if (bytes) bytes_.fetch_add(bytes, std::memory_order_relaxed);
    if (!enabled_) return;
    int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now() - start_)
                      .count();
    int64_t last = last_draw_ns_.load(std::memory_order_relaxed);
    if (now - last < 100'000'000) return;
    if (!last_draw_ns_.compare_exchange_strong(last, now)) return;
    draw(false);
}

void Progress::draw(bool final) {
    std::unique_lock lock(draw_mu_, std::try_to_lock);
    if (!lock.owns_lock() && !final) return;
    if (!final && finished_) return;
    double el = elapsed_s();
    double n = static_cast<double>(count_.load());
    double rate = el > 0 ? n / el : 0;
    uint64_t total = total_.load();
    const bool bytes = unit_ == "bytes";  // counted in bytes: show MB and MB/s
    auto amount = [&](double v) {
        return bytes ? fmt::format("{:.1f} MB", v / 1e6) : human_count(v) + " " + unit_;
    };
    std::string line = fmt::format("\r\033[K{}: {}", label_, amount(n));
    if (total > 0) line += fmt::format(" / {} ({:.0f}%)", amount(double(total)), 100.0 * n / total);
    line += bytes ? fmt::format("  {:.1f} MB/s", rate / 1e6)
                  : fmt::format("  {} {}/s", human_count(rate), unit_);
    uint64_t b = bytes_.load();
    if (b > 0 && el > 0) line += fmt::format("  {:.1f} MB/s", b / el / 1e6);
    if (total > 0 && rate > 0 && n < total) line += "  ETA " + human_duration((total - n) / rate);
    if (final) line = "\r\033[K";
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
}

void Progress::finish() {
    if (finished_) return;
    if (enabled_) draw(true);
    finished_ = true;
}

}  // namespace mf
