// Internals of the HTTP client shared with its tests: Retry-After parsing, backoff, token bucket.
#pragma once

#include <cstdint>
#include <ctime>
#include <random>
#include <string>
#include <string_view>

namespace mf::llm::detail {

// Seconds to wait from a Retry-After value: delta-seconds ("120", also "1.5") or an HTTP-date
// ("Wed, 21 Oct 2015 07:28:00 GMT"), relative to `now`. A date in the past gives 0. Returns -1
// when the value is neither.
double parse_retry_after(std::string_view value, std::time_t now);

// Full-jitter exponential backoff: uniform in [0, min(max_s, initial_s * 2^(retry-1))] for the
// retry-th retry (1-based).
double backoff_delay(int retry, double initial_s, double max_s, std::mt19937_64& rng);

// Whether an HTTP status is worth retrying: 408, 409, 429 and every 5xx (like OpenAI's SDKs).
bool retryable_http_status(int status);

// A token bucket: `rate_per_s` tokens per second, holding at most `capacity`. take() may drive
// the level negative (a request larger than the capacity waits for a full bucket, then its
// whole cost is charged), so the long-run rate is exact.
class TokenBucket {
  public:
    TokenBucket() = default;
    TokenBucket(double rate_per_s, double capacity, double now_s)
        : rate_(rate_per_s), capacity_(capacity), level_(capacity), last_(now_s) {}
    bool enabled() const { return rate_ > 0; }
    // Seconds until `need` may be taken (0 = now).
    double wait_s(double need, double now_s);
    void take(double need, double now_s);

  private:
    void refill(double now_s);
    double rate_ = 0;
    double capacity_ = 0;
    double level_ = 0;
    double last_ = 0;
};

// Replaces every occurrence of `secret` (when at least 4 characters) with "[redacted]".
std::string redact(std::string text, const std::string& secret);

}  // namespace mf::llm::detail
