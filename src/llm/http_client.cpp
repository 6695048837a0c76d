// The libcurl client: a multi-interface event loop on the calling thread with keep-alive
// connection reuse, a concurrency limit, token buckets, retries with full-jitter backoff and
// Retry-After, per-request timeouts and cancellation.
#include <curl/curl.h>
#include <strings.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <mutex>
#include <queue>
#include <unordered_map>

#include "core/log.h"
#include "llm/client.h"
#include "llm/http_util.h"

namespace mf::llm {

namespace detail {

double parse_retry_after(std::string_view value, std::time_t now) {
    std::string v(value);
    while (!v.empty() &&
           (v.back() == ' ' || v.back() == '\t' || v.back() == '\r' || v.back() == '\n')) {
        v.pop_back();
    }
    size_t b = v.find_first_not_of(" \t");
    if (b == std::string::npos) return -1;
    v = v.substr(b);
    bool numeric = true;
    int dots = 0;
    for (char c : v) {
        if (c == '.') {
            ++dots;
        } else if (c < '0' || c > '9') {
            numeric = false;
        }
    }
    if (numeric && dots <= 1 && v != ".") return std::strtod(v.c_str(), nullptr);
    const time_t t = curl_getdate(v.c_str(), nullptr);
    if (t == -1) return -1;
    return std::max(0.0, std::difftime(t, now));
}

double backoff_delay(int retry, double initial_s, double max_s, std::mt19937_64& rng) {
    const double cap = std::min(max_s, initial_s * std::pow(2.0, std::max(0, retry - 1)));
    if (cap <= 0) return 0;
    std::uniform_real_distribution<double> dist(0.0, cap);
    return dist(rng);
}

bool retryable_http_status(int status) {
    return status == 408 || status == 409 || status == 429 || (status >= 500 && status <= 599);
}

void TokenBucket::refill(double now_s) {
    if (now_s > last_) {
        level_ = std::min(capacity_, level_ + (now_s - last_) * rate_);
        last_ = now_s;
    }
}

double TokenBucket::wait_s(double need, double now_s) {
    if (!enabled()) return 0;
    refill(now_s);
    const double want = std::min(need, capacity_);
    if (level_ >= want) return 0;
    return (want - level_) / rate_;
}

void TokenBucket::take(double need, double now_s) {
    if (!enabled()) return;
    refill(now_s);
    level_ -= need;
}

std::string redact(std::string text, const std::string& secret) {
    if (secret.size() < 4) return text;
    size_t pos = 0;
    while ((pos = text.find(secret, pos)) != std::string::npos) {
        text.replace(pos, secret.size(), "[redacted]");
        pos += 10;
    }
    return text;
}

}  // namespace detail

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool retryable_curl_code(CURLcode c) {
    switch (c) {
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_CONNECT:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_GOT_NOTHING:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_PARTIAL_FILE:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
            return true;
        default:
            return false;
    }
}

StatusCode code_for_http(int status) {
    if (status == 429) return StatusCode::kResourceExhausted;
    if (status == 400 || status == 413 || status == 422) return StatusCode::kInvalidArgument;
    if (status == 401 || status == 403) return StatusCode::kFailedPrecondition;
    if (status == 404) return StatusCode::kNotFound;
    return StatusCode::kUnavailable;
}

// The server's error message from an error body, or a snippet of the body.
std::string server_message(const std::string& body) {
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("error")) {
        const auto& e = j["error"];
        if (e.is_string()) return e.get<std::string>();
        if (e.is_object() && e.contains("message") && e["message"].is_string()) {
            return e["message"].get<std::string>();
        }
    }
    if (!j.is_discarded() && j.is_object() && j.contains("message") && j["message"].is_string()) {
        return j["message"].get<std::string>();
    }
    std::string s = body.size() > 300 ? body.substr(0, 300) + "..." : body;
    for (char& c : s) {
        if (c == '\n' || c == '\r') c = ' ';
    }
    return s.empty() ? "(empty body)" : s;
}

struct RequestState {
    std::string body;  // built at first send, freed when finished
    int attempts = 0;
    bool finished = false;
    int64_t tokens = 0;
    Clock::time_point first_start;
};

struct Transfer {
    CURL* easy = nullptr;
    size_t index = 0;
    std::string response;
    double retry_after_s = -1;
    char errbuf[CURL_ERROR_SIZE] = {0};
};

size_t write_cb(char* ptr, size_t size, size_t nmemb, void* userdata) {
    auto* t = static_cast<Transfer*>(userdata);
    // A chat completion is kilobytes; anything past 256 MiB is a broken server.
    if (t->response.size() + size * nmemb > (size_t(256) << 20)) return 0;
    t->response.append(ptr, size * nmemb);
    return size * nmemb;
}

size_t header_cb(char* buffer, size_t size, size_t nitems, void* userdata) {
    auto* t = static_cast<Transfer*>(userdata);
    const size_t n = size * nitems;
    std::string_view line(buffer, n);
    if (line.rfind("HTTP/", 0) == 0) {
        t->retry_after_s = -1;  // a new response (after 100 Continue or a redirect)
        return n;
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return n;
    const std::string name(line.substr(0, colon));
    const std::string_view value = line.substr(colon + 1);
    if (strcasecmp(name.c_str(), "retry-after-ms") == 0) {
        const double ms = detail::parse_retry_after(value, std::time(nullptr));
        if (ms >= 0) t->retry_after_s = ms / 1000.0;
    } else if (strcasecmp(name.c_str(), "retry-after") == 0 && t->retry_after_s < 0) {
        t->retry_after_s = detail::parse_retry_after(value, std::time(nullptr));
    }
    return n;
}

class CurlClient final : public LlmClient {
  public:
    explicit CurlClient(ClientOptions o) : opt_(std::move(o)), rng_(opt_.seed) {
        std::string base = opt_.base_url;
        while (!base.empty() && base.back() == '/')
            base.pop_back();
        display_url_ = base + "/chat/completions";
        url_ = display_url_;
        https_ = base.rfind("https://", 0) == 0;
        std::string q = opt_.extra_query;
        while (!q.empty() && (q.front() == '?' || q.front() == '&'))
            q.erase(q.begin());
        if (!q.empty()) url_ += (url_.find('?') == std::string::npos ? "?" : "&") + q;

        headers_ = curl_slist_append(headers_, "Content-Type: application/json");
        headers_ = curl_slist_append(headers_, "Accept: application/json");
        headers_ = curl_slist_append(headers_, "Expect:");
        if (!opt_.api_key.empty()) {
            const std::string h = opt_.api_key_header.empty()
                                      ? "Authorization: Bearer " + opt_.api_key
                                      : opt_.api_key_header + ": " + opt_.api_key;
            headers_ = curl_slist_append(headers_, h.c_str());
        }
        const double burst = std::max(1e-3, opt_.rate_burst_s);
        if (opt_.requests_per_minute > 0) {
            const double r = opt_.requests_per_minute / 60.0;
            rpm_ = detail::TokenBucket(r, std::max(1.0, r * burst), 0);
        }
        if (opt_.tokens_per_minute > 0) {
            const double r = opt_.tokens_per_minute / 60.0;
            tpm_ = detail::TokenBucket(r, std::max(1.0, r * burst), 0);
        }
        multi_ = curl_multi_init();
        curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS, long(opt_.max_concurrency));
        curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, long(opt_.max_concurrency + 4));
        curl_multi_setopt(multi_, CURLMOPT_PIPELINING, long(CURLPIPE_MULTIPLEX));
    }

    ~CurlClient() override {
        for (CURL* e : pool_)
            curl_easy_cleanup(e);
        if (multi_) curl_multi_cleanup(multi_);
        curl_slist_free_all(headers_);
    }

    Status run_batch(const std::vector<ChatRequest>& requests, const Completion& done,
                     const std::atomic<bool>* cancel) override;

  private:
    std::string label(const std::vector<ChatRequest>& reqs, size_t i) const {
        return reqs[i].user_tag.empty() ? "request #" + std::to_string(i) : reqs[i].user_tag;
    }
    CURL* take_easy() {
        if (!pool_.empty()) {
            CURL* e = pool_.back();
            pool_.pop_back();
            curl_easy_reset(e);
            return e;
        }
        return curl_easy_init();
    }
    void give_easy(CURL* e) { pool_.push_back(e); }

    ClientOptions opt_;
    std::mt19937_64 rng_;
    std::string url_;
    std::string display_url_;
    bool https_ = false;
    curl_slist* headers_ = nullptr;
    CURLM* multi_ = nullptr;
    std::vector<CURL*> pool_;
    Clock::time_point epoch_ = Clock::now();
    detail::TokenBucket rpm_, tpm_;
};

Status CurlClient::run_batch(const std::vector<ChatRequest>& requests, const Completion& done,
                             const std::atomic<bool>* cancel) {
    const size_t n = requests.size();
    if (n == 0) return Status::ok_status();
    const Clock::time_point t0 = epoch_;  // bucket times are seconds since the client's birth
    std::vector<RequestState> st(n);
    std::deque<size_t> ready;
    for (size_t i = 0; i < n; ++i)
        ready.push_back(i);
    using Due = std::pair<double, size_t>;  // (time since t0, index)
    std::priority_queue<Due, std::vector<Due>, std::greater<>> retry_at;
    std::unordered_map<CURL*, std::unique_ptr<Transfer>> active;
    size_t finished = 0;

    // The buckets belong to the client: limits hold across batches and complete() calls.
    detail::TokenBucket& rpm = rpm_;
    detail::TokenBucket& tpm = tpm_;

    auto finish = [&](size_t i, Result<ChatResponse> r) {
        st[i].finished = true;
        std::string().swap(st[i].body);
        ++finished;
        if (!r.ok()) {
            r = Status(r.status().code(), detail::redact(r.status().message(), opt_.api_key));
        }
        if (done) done(i, std::move(r));
    };

    auto start = [&](size_t i) {
        RequestState& s = st[i];
        if (s.attempts == 0) {
            s.body = request_body(requests[i]);
            s.first_start = Clock::now();
        }
        s.attempts++;
        auto t = std::make_unique<Transfer>();
        t->index = i;
        CURL* e = take_easy();
        t->easy = e;
        curl_easy_setopt(e, CURLOPT_URL, url_.c_str());
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, s.body.data());
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(s.body.size()));
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers_);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, long(std::max(1.0, opt_.timeout_s * 1000)));
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                         long(std::max(1.0, opt_.connect_timeout_s * 1000)));
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        if (!opt_.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, opt_.ca_file.c_str());
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
        curl_easy_setopt(e, CURLOPT_USERAGENT, "medforge/0.1");
        // HTTP/2 over TLS: prefer multiplexing on an existing connection. Not for plain http,
        // where curl would hold every new request until the first response arrives.
        if (https_) curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
        curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
        curl_multi_add_handle(multi_, e);
        active.emplace(e, std::move(t));
    };

    // Decides a finished attempt: success, retry later, or final failure.
    auto on_done = [&](Transfer& t, CURLcode cc) {
        const size_t i = t.index;
        RequestState& s = st[i];
        long http = 0;
        curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &http);
        bool retry = false;
        Status err;
        if (cc != CURLE_OK) {
            std::string what = t.errbuf[0] ? t.errbuf : curl_easy_strerror(cc);
            if (cc == CURLE_OPERATION_TIMEDOUT) {
                what = "timed out (timeout " + fmt::format("{:g}", opt_.timeout_s) + " s): " + what;
            }
            err = Status::unavailable("connection error to " + display_url_ + ": " + what);
            retry = retryable_curl_code(cc);
        } else if (http >= 200 && http < 300) {
            Result<ChatResponse> r = parse_response(t.response);
            if (r.ok()) {
                r->http_status = static_cast<int>(http);
                r->attempts = s.attempts;
                r->latency_s = seconds_since(s.first_start);
                finish(i, std::move(r));
                return;
            }
            finish(i, r.status().with_context(label(requests, i) + ": HTTP " +
                                              std::to_string(http) + " from " + display_url_));
            return;
        } else {
            err = Status(code_for_http(int(http)), "HTTP " + std::to_string(http) + " from " +
                                                       display_url_ + ": " +
                                                       server_message(t.response));
            retry = detail::retryable_http_status(int(http));
        }
        if (retry && s.attempts <= opt_.max_retries) {
            double delay = t.retry_after_s >= 0
                               ? std::min(t.retry_after_s, opt_.backoff_max_s)
                               : detail::backoff_delay(s.attempts, opt_.backoff_initial_s,
                                                       opt_.backoff_max_s, rng_);
            log::debug("{}: {} (attempt {}/{}), retrying in {:.2f} s", label(requests, i),
                       detail::redact(err.message(), opt_.api_key), s.attempts,
                       opt_.max_retries + 1, delay);
            retry_at.emplace(seconds_since(t0) + delay, i);
            return;
        }
        const std::string after =
            s.attempts == 1 ? "" : " (after " + std::to_string(s.attempts) + " attempts)";
        finish(i, Status(err.code(), label(requests, i) + ": " + err.message() + after));
    };

    auto abort_all = [&]() {
        for (auto& [e, t] : active) {
            // Removing a transfer mid-flight closes its connection (curl never reuses it).
            curl_multi_remove_handle(multi_, e);
            curl_easy_cleanup(e);
        }
        active.clear();
        for (size_t i = 0; i < n; ++i) {
            if (!st[i].finished) {
                finish(i, Status::cancelled(label(requests, i) + ": cancelled before it finished"));
            }
        }
    };

    while (finished < n) {
        if (cancel && cancel->load()) {
            abort_all();
            return Status::cancelled("batch cancelled: " + std::to_string(n) + " requests");
        }
        double now = seconds_since(t0);
        while (!retry_at.empty() && retry_at.top().first <= now) {
            ready.push_front(retry_at.top().second);
            retry_at.pop();
        }
        double wait_s = 0.05;  // the cancel flag is checked at least this often
        while (active.size() < static_cast<size_t>(opt_.max_concurrency) && !ready.empty()) {
            const size_t i = ready.front();
            if (st[i].tokens == 0) st[i].tokens = estimate_request_tokens(requests[i]);
            now = seconds_since(t0);
            const double w = std::max(rpm.wait_s(1, now), tpm.wait_s(double(st[i].tokens), now));
            if (w > 0) {
                wait_s = std::min(wait_s, w);
                break;
            }
            rpm.take(1, now);
            tpm.take(double(st[i].tokens), now);
            ready.pop_front();
            start(i);
        }
        if (!retry_at.empty()) {
            wait_s = std::min(wait_s, std::max(0.0, retry_at.top().first - seconds_since(t0)));
        }
        int running = 0;
        CURLMcode mc = curl_multi_perform(multi_, &running);
        if (mc != CURLM_OK) {
            abort_all();
            return Status::internal(std::string("curl_multi_perform: ") + curl_multi_strerror(mc));
        }
        bool any_done = false;
        int left = 0;
        while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
            if (msg->msg != CURLMSG_DONE) continue;
            CURL* e = msg->easy_handle;
            const CURLcode cc = msg->data.result;
            curl_multi_remove_handle(multi_, e);
            auto it = active.find(e);
            if (it == active.end()) continue;
            std::unique_ptr<Transfer> t = std::move(it->second);
            active.erase(it);
            on_done(*t, cc);
            give_easy(e);
            any_done = true;
        }
        if (finished >= n) break;
        if (any_done) continue;  // start the next requests right away
        const int wait_ms = static_cast<int>(std::ceil(wait_s * 1000));
        curl_multi_poll(multi_, nullptr, 0, std::max(0, wait_ms), nullptr);
    }
    return Status::ok_status();
}

std::once_flag g_curl_once;

}  // namespace

Result<std::unique_ptr<LlmClient>> make_http_client(const ClientOptions& options) {
    if (options.base_url.rfind("http://", 0) != 0 && options.base_url.rfind("https://", 0) != 0) {
        return Status::invalid_argument("LLM endpoint base_url \"" + options.base_url +
                                        "\" must start with http:// or https:// (it is the part "
                                        "before /chat/completions, e.g. "
                                        "https://api.openai.com/v1)");
    }
    if (options.max_concurrency < 1) {
        return Status::invalid_argument("max_concurrency must be >= 1");
    }
    if (options.max_retries < 0) return Status::invalid_argument("max_retries must be >= 0");
    if (options.timeout_s <= 0) return Status::invalid_argument("timeout_s must be > 0");
    std::call_once(g_curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    return std::unique_ptr<LlmClient>(std::make_unique<CurlClient>(options));
}

}  // namespace mf::llm
