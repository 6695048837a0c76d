#include "serve/server.h"

#include <httplib.h>

#include <fmt/core.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <ctime>
#include <random>

#include "core/hash.h"
#include "core/log.h"
#include "io/image.h"

namespace mf::serve {

using nlohmann::json;

// ---- metrics -----------------------------------------------------------------------------------

void Metrics::Histogram::add(double v) {
    if (counts.empty()) counts.assign(bounds.size() + 1, 0);
    size_t i = 0;
    while (i < bounds.size() && v > bounds[i])
        ++i;
    ++counts[i];
    sum += v;
    ++n;
}

void Metrics::Histogram::render(std::string& out, const std::string& name,
                                const std::string& help) const {
    out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
    uint64_t cum = 0;
    for (size_t i = 0; i < bounds.size(); ++i) {
        cum += counts.empty() ? 0 : counts[i];
        out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds[i], cum);
    }
    out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, n, name, sum,
                       name, n);
}

void Metrics::request(int status, double seconds) {
    std::lock_guard lk(mu_);
    ++by_status_[status];
    latency_.add(seconds);
}

void Metrics::tokens(int64_t prompt, int64_t completion) {
    std::lock_guard lk(mu_);
    prompt_tokens_ += prompt;
    completion_tokens_ += completion;
}

void Metrics::cancelled(double seconds, int64_t completion_tokens) {
    std::lock_guard lk(mu_);
    ++by_status_[499];
    latency_.add(seconds);
    ++cancelled_;
    cancelled_tokens_ += completion_tokens;
}

void Metrics::first_token(double seconds) {
    std::lock_guard lk(mu_);
    ttft_.add(seconds);
}

std::string Metrics::render(size_t queue_depth, size_t active, const SchedulerStats& s,
                            bool ready) const {
    std::lock_guard lk(mu_);
    std::string out;
    out +=
        "# HELP medforge_requests_total Chat-completion requests by HTTP status.\n"
        "# TYPE medforge_requests_total counter\n";
    for (const auto& [st, n] : by_status_)
        out += fmt::format("medforge_requests_total{{status=\"{}\"}} {}\n", st, n);
    out += fmt::format(
        "# HELP medforge_prompt_tokens_total Prompt positions processed (images expanded).\n"
        "# TYPE medforge_prompt_tokens_total counter\nmedforge_prompt_tokens_total {}\n"
        "# HELP medforge_completion_tokens_total Tokens generated.\n"
        "# TYPE medforge_completion_tokens_total counter\nmedforge_completion_tokens_total {}\n"
        "# HELP medforge_requests_cancelled_total Requests whose client went away before the "
        "answer (their sequence is stopped).\n"
        "# TYPE medforge_requests_cancelled_total counter\nmedforge_requests_cancelled_total {}\n"
        "# HELP medforge_cancelled_completion_tokens_total Tokens generated for cancelled "
        "requests before they were stopped.\n"
        "# TYPE medforge_cancelled_completion_tokens_total counter\n"
        "medforge_cancelled_completion_tokens_total {}\n",
        prompt_tokens_, completion_tokens_, cancelled_, cancelled_tokens_);
    latency_.render(out, "medforge_request_duration_seconds",
                    "Chat-completion latency, arrival to last byte.");
    ttft_.render(out, "medforge_time_to_first_token_seconds",
                 "Queueing + prefill until the first token.");
    out += fmt::format(
        "# HELP medforge_queue_depth Requests waiting for a batch slot.\n# TYPE "
        "medforge_queue_depth gauge\n"
        "medforge_queue_depth {}\n"
        "# HELP medforge_active_sequences Requests being decoded.\n# TYPE "
        "medforge_active_sequences gauge\n"
        "medforge_active_sequences {}\n"
        "# HELP medforge_model_ready 1 once the model is loaded.\n# TYPE medforge_model_ready "
        "gauge\n"
        "medforge_model_ready {}\n"
        "# HELP medforge_decode_steps_total Batched decode forwards.\n# TYPE "
        "medforge_decode_steps_total counter\n"
        "medforge_decode_steps_total {}\n"
        "# HELP medforge_decode_batch_tokens_total Sequences summed over decode steps (mean batch "
        "= this / steps).\n"
        "# TYPE medforge_decode_batch_tokens_total counter\nmedforge_decode_batch_tokens_total {}\n"
        "# HELP medforge_prefills_total Sequences prefilled.\n"
        "# TYPE medforge_prefills_total counter\nmedforge_prefills_total {}\n"
        "# HELP medforge_prefill_forwards_total Packed prefill forwards (several waiting requests "
        "prefilled together).\n"
        "# TYPE medforge_prefill_forwards_total counter\nmedforge_prefill_forwards_total {}\n"
        "# HELP medforge_image_cache_hits_total Image embeddings served from the cache.\n"
        "# TYPE medforge_image_cache_hits_total counter\nmedforge_image_cache_hits_total {}\n"
        "# HELP medforge_image_cache_misses_total Images encoded.\n"
        "# TYPE medforge_image_cache_misses_total counter\nmedforge_image_cache_misses_total {}\n"
        "# HELP medforge_json_retries_total json_object replies that were not JSON and were asked "
        "again.\n"
        "# TYPE medforge_json_retries_total counter\nmedforge_json_retries_total {}\n"
        "# HELP medforge_prefill_seconds_total Time in prefill forwards.\n"
        "# TYPE medforge_prefill_seconds_total counter\nmedforge_prefill_seconds_total {:.6f}\n"
        "# HELP medforge_decode_seconds_total Time in decode-step forwards.\n"
        "# TYPE medforge_decode_seconds_total counter\nmedforge_decode_seconds_total {:.6f}\n"
        "# HELP medforge_prefix_cache_hit_tokens_total Prompt positions whose keys and values came "
        "from the prefix cache (not prefilled).\n"
        "# TYPE medforge_prefix_cache_hit_tokens_total counter\n"
        "medforge_prefix_cache_hit_tokens_total {}\n"
        "# HELP medforge_prefix_cache_bytes Bytes of keys and values held by the prefix cache.\n"
        "# TYPE medforge_prefix_cache_bytes gauge\nmedforge_prefix_cache_bytes {}\n",
        queue_depth, active, ready ? 1 : 0, s.decode_steps, s.decoded_tokens, s.prefills,
        s.prefill_forwards, s.image_cache_hits, s.image_cache_misses, s.json_retries,
        s.prefill_seconds, s.decode_seconds, s.prefix_cached_tokens, s.prefix_cache_bytes);
    return out;
}

// ---- server ------------------------------------------------------------------------------------

namespace {

void send_error(httplib::Response& res, const ApiError& e) {
    res.status = e.status;
    res.set_content(error_body(e).dump(), "application/json");
}

ApiError make_error(int status, std::string type, std::string message, std::string code = {},
                    std::string param = {}) {
    ApiError e;
    e.status = status;
    e.type = std::move(type);
    e.message = std::move(message);
    e.code = std::move(code);
    e.param = std::move(param);
    return e;
}

std::string completion_id() {
    static std::atomic<uint64_t> counter{0};
    static const uint64_t salt = std::random_device{}();
    return fmt::format("chatcmpl-{:016x}", xxh64(fmt::format("{}-{}", salt, counter++)));
}

// OpenAI's usage object; prompt_tokens_details.cached_tokens = prompt positions whose keys and
// values came from the prefix cache (as OpenAI reports its own prompt caching).
json usage_json(int64_t prompt, int64_t completion, int64_t cached) {
    return json{{"prompt_tokens", prompt},
                {"completion_tokens", completion},
                {"total_tokens", prompt + completion},
                {"prompt_tokens_details", {{"cached_tokens", cached}}}};
}

// The accepted socket that carries `req`. cpp-httplib 0.11 does not hand it to handlers (later
// versions have Request::is_connection_closed), so look for the open socket whose ends are the
// request's: peer = (remote_addr, remote_port), local port = local_port. -1 when not found.
int connection_fd(const httplib::Request& req) {
    if (req.remote_port <= 0 || req.local_port <= 0) return -1;
    std::error_code ec;
    std::filesystem::directory_iterator it("/proc/self/fd", ec), end;
    for (; !ec && it != end; it.increment(ec)) {
        const auto& e = *it;
        const std::string name = e.path().filename().string();
        int fd = -1;
        if (std::from_chars(name.data(), name.data() + name.size(), fd).ec != std::errc{}) continue;
        sockaddr_storage peer{}, local{};
        socklen_t pl = sizeof peer, ll = sizeof local;
        if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) != 0) continue;
        if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0) continue;
        char ip[INET6_ADDRSTRLEN] = {};
        int peer_port = -1, local_port = -1;
        if (peer.ss_family == AF_INET && local.ss_family == AF_INET) {
            const auto& p4 = reinterpret_cast<const sockaddr_in&>(peer);
            inet_ntop(AF_INET, &p4.sin_addr, ip, sizeof ip);
            peer_port = ntohs(p4.sin_port);
            local_port = ntohs(reinterpret_cast<const sockaddr_in&>(local).sin_port);
        } else if (peer.ss_family == AF_INET6 && local.ss_family == AF_INET6) {
            const auto& p6 = reinterpret_cast<const sockaddr_in6&>(peer);
            inet_ntop(AF_INET6, &p6.sin6_addr, ip, sizeof ip);
            peer_port = ntohs(p6.sin6_port);
            local_port = ntohs(reinterpret_cast<const sockaddr_in6&>(local).sin6_port);
        } else {
            continue;
        }
        if (peer_port == req.remote_port && local_port == req.local_port && req.remote_addr == ip)
            return fd;
    }
    return -1;
}

// Whether the client closed (or reset) the connection: a peek that reads end-of-stream or fails.
// Bytes waiting (a pipelined next request) mean it is still there.
bool peer_closed(int fd) {
    if (fd < 0) return false;
    char c;
    ssize_t n;
    do {
        n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n > 0) return false;
    if (n == 0) return true;
    return errno != EAGAIN && errno != EWOULDBLOCK;
}

}  // namespace

Server::Server(ServeOptions opt) : opt_(std::move(opt)) {}

Server::~Server() {
    shutdown();
}

Status Server::bind_and_listen() {
    http_ = std::make_unique<httplib::Server>();
    const int threads = std::max(4, opt_.http_threads);
    http_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    http_->set_payload_max_length(opt_.max_body_bytes);
    http_->set_read_timeout(opt_.read_timeout_s, 0);
    http_->set_write_timeout(opt_.write_timeout_s, 0);
    http_->set_keep_alive_timeout(5);
    routes();
    // cpp-httplib listens with a backlog of 5: hundreds of clients connecting at once overflow it
    // and the kernel drops their handshakes. Keep the socket and listen again with a real backlog.
    auto listen_fd = std::make_shared<int>(-1);
    http_->set_socket_options([listen_fd](socket_t sock) {
        httplib::default_socket_options(sock);
        *listen_fd = static_cast<int>(sock);
    });
    if (opt_.port == 0) {
        port_ = http_->bind_to_any_port(opt_.host);
        if (port_ <= 0)
            return Status::unavailable(fmt::format("cannot bind {}:any port", opt_.host));
    } else {
        if (!http_->bind_to_port(opt_.host, opt_.port))
            return Status::unavailable(fmt::format(
                "cannot listen on {}:{} (in use, or not an address of this machine); pick another "
                "--port or --host",
                opt_.host, opt_.port));
        port_ = opt_.port;
    }
    if (*listen_fd >= 0) ::listen(*listen_fd, 4096);
    listen_thread_ = std::thread([this] { http_->listen_after_bind(); });
    return Status::ok_status();
}

Status Server::start(const std::filesystem::path& model_dir, const model::EngineOptions& eo) {
    return start([model_dir, eo] { return model::Engine::load(model_dir, eo); });
}

Status Server::start(EngineLoader loader) {
    MF_RETURN_IF_ERROR(bind_and_listen());
    load_thread_ = std::thread([this, loader = std::move(loader)] {
        Result<std::unique_ptr<model::Engine>> e = Status::internal("the model loader threw");
        try {
            e = loader();
        } catch (const std::exception& ex) {
            e = Status::internal(std::string("loading the model failed: ") + ex.what());
        }
        if (e.ok() && !*e) e = Status::internal("the model loader returned no engine");
        if (!e.ok()) {
            log::error("model load failed: {}", e.status().to_string());
            std::lock_guard lk(state_mu_);
            load_status_ = e.status();
            load_failed_ = true;
            state_cv_.notify_all();
            return;
        }
        on_engine(std::move(*e));
    });
    return Status::ok_status();
}

Status Server::start(std::unique_ptr<model::Engine> engine) {
    MF_RETURN_IF_ERROR(bind_and_listen());
    on_engine(std::move(engine));
    return Status::ok_status();
}

void Server::on_engine(std::unique_ptr<model::Engine> engine) {
    std::lock_guard lk(state_mu_);
    engine_ = std::move(engine);
    model_name_ = opt_.served_model_name.empty() ? engine_->model_id() : opt_.served_model_name;
    SchedulerOptions so;
    so.max_batch = opt_.max_batch;
    so.max_prefill_tokens = opt_.max_prefill_tokens;
    so.prefix_cache_bytes = opt_.prefix_cache_bytes;
    so.max_queue = opt_.max_queue;
    so.image_cache = opt_.image_cache;
    scheduler_ = std::make_unique<Scheduler>(*engine_, tok_mu_, so);
    ready_ = true;
    state_cv_.notify_all();
}

bool Server::wait_ready() {
    std::unique_lock lk(state_mu_);
    state_cv_.wait(lk, [&] { return ready_.load() || load_failed_.load(); });
    return ready_.load();
}

Status Server::load_error() const {
    std::lock_guard lk(state_mu_);
    return load_status_;
}

void Server::shutdown() {
    if (shut_) return;
    shut_ = true;
    draining_ = true;
    if (load_thread_.joinable()) load_thread_.join();
    // stop() closes the listening socket; listen() returns once the worker threads have finished
    // the requests they hold (their jobs keep decoding meanwhile).
    if (http_ && listen_thread_.joinable()) {
        // stop() is a no-op until listen_after_bind() has started running
        for (int i = 0; i < 200 && !http_->is_running(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        http_->stop();
        listen_thread_.join();
    }
    if (scheduler_) scheduler_->stop();
}

void Server::routes() {
    auto& s = *http_;
    auto authorized = [this](const httplib::Request& req, httplib::Response& res) {
        if (opt_.api_key.empty()) return true;
        std::string h = req.get_header_value("Authorization");
        std::string_view key;
        if (h.size() > 7 && (h.compare(0, 7, "Bearer ") == 0 || h.compare(0, 7, "bearer ") == 0))
            key = std::string_view(h).substr(7);
        if (keys_equal(key, opt_.api_key)) return true;
        send_error(res, make_error(401, "invalid_request_error",
                                   "missing or wrong API key (send 'Authorization: Bearer <key>')",
                                   "invalid_api_key"));
        return false;
    };

    s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return;
        if (res.status == 413)
            send_error(res, make_error(413, "invalid_request_error",
                                       "the request body is too large", "request_too_large"));
        else if (res.status == 404)
            send_error(
                res, make_error(404, "invalid_request_error",
                                fmt::format("no route {} {}", req.method, req.path), "not_found"));
        else
            send_error(res, make_error(res.status, "invalid_request_error",
                                       fmt::format("HTTP {}", res.status)));
    });
    s.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
            std::string what = "internal error";
            try {
                if (ep) std::rethrow_exception(ep);
            } catch (const std::exception& e) {
                what = e.what();
            } catch (...) {
            }
            send_error(res, make_error(500, "server_error", what));
        });

    s.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
        if (load_failed_) {
            res.status = 503;
            res.set_content(json{{"status", "error"}, {"error", load_error().to_string()}}.dump(),
                            "application/json");
        } else if (!ready_) {
            res.status = 503;
            res.set_content(R"({"status":"loading"})", "application/json");
        } else if (draining_) {
            res.status = 503;
            res.set_content(R"({"status":"shutting_down"})", "application/json");
        } else {
            res.set_content(json{{"status", "ok"}, {"model", model_name_}}.dump(),
                            "application/json");
        }
    });

    s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
        size_t q = 0, a = 0;
        SchedulerStats st;
        if (ready_) {
            q = scheduler_->queue_depth();
            a = scheduler_->active();
            st = scheduler_->stats();
        }
        res.set_content(metrics_.render(q, a, st, ready_), "text/plain; version=0.0.4");
    });

    s.Get("/v1/models", [this, authorized](const httplib::Request& req, httplib::Response& res) {
        if (!authorized(req, res)) return;
        if (!ready_) {
            send_error(res, make_error(503, "server_error", "the model is still loading",
                                       "model_loading"));
            res.set_header("Retry-After", "5");
            return;
        }
        json m = {{"id", model_name_},
                  {"object", "model"},
                  {"created", 0},
                  {"owned_by", "medforge"},
                  {"max_model_len", engine_->max_context()}};
        res.set_content(json{{"object", "list"}, {"data", json::array({m})}}.dump(),
                        "application/json");
    });

    s.Post("/v1/chat/completions", [this, authorized](const httplib::Request& req,
                                                      httplib::Response& res) {
        const auto t0 = Clock::now();
        auto fail = [&](const ApiError& e) {
            send_error(res, e);
            metrics_.request(e.status, std::chrono::duration<double>(Clock::now() - t0).count());
        };
        if (!authorized(req, res)) {
            metrics_.request(401, 0);
            return;
        }
        if (draining_) {
            fail(make_error(503, "server_error", "the server is shutting down", "shutting_down"));
            return;
        }
        if (!ready_) {
            res.set_header("Retry-After", "5");
            fail(make_error(503, "server_error",
                            load_failed_ ? "the model failed to load: " + load_error().to_string()
                                         : "the model is still loading; retry shortly",
                            "model_loading"));
            return;
        }
        ChatRequest cr;
        if (auto e = parse_chat_request(req.body, opt_.images, &cr)) {
            fail(*e);
            return;
        }
        if (!cr.model.empty() && cr.model != model_name_) {
            fail(make_error(404, "invalid_request_error",
                            fmt::format("model '{}' is not served here; this server has '{}'",
                                        cr.model, model_name_),
                            "model_not_found", "model"));
            return;
        }
        auto job = std::make_shared<Job>();
        // images: decode + preprocess here (in parallel over HTTP threads), encode in the scheduler
        std::vector<io::Image> images;
        for (const auto& ref : cr.images) {
            auto d = io::decode_image_bytes(ref.bytes);
            if (!d.ok()) {
                fail(make_error(400, "invalid_request_error",
                                fmt::format("{} is not a usable image: {}", ref.param, d.detail),
                                "invalid_image", ref.param));
                return;
            }
            images.push_back(std::move(d.image));
            job->image_keys.push_back(sha256_hex(ref.bytes));
        }
        Result<std::vector<int64_t>> ids = std::vector<int64_t>{};
        {
            std::lock_guard lk(tok_mu_);
            ids = engine_->prompt_ids(cr.messages, images.size());
        }
        if (!ids.ok()) {
            fail(make_error(400, "invalid_request_error", ids.status().message(), "", "messages"));
            return;
        }
        if (!images.empty()) {
            auto px = engine_->pixels(images);
            if (!px.ok()) {
                fail(make_error(400, "invalid_request_error", px.status().message(),
                                "invalid_image", "messages"));
                return;
            }
            job->pixels = *px;
        }
        const int64_t len = engine_->model()->expanded_length(*ids);
        const int64_t ctx = engine_->max_context();
        if (!cr.max_tokens_given)
            cr.sampling.max_tokens =
                static_cast<int>(std::min<int64_t>(opt_.default_max_tokens, ctx - len));
        if (len >= ctx || len + cr.sampling.max_tokens > ctx) {
            fail(make_error(
                422, "invalid_request_error",
                fmt::format("the prompt takes {} positions and max_tokens is {}: more than the "
                            "model's context of {}; shorten the conversation, use fewer images "
                            "or lower max_tokens",
                            len, cr.sampling.max_tokens, ctx),
                "context_length_exceeded",
                len < ctx && cr.max_tokens_given ? "max_tokens" : "messages"));
            return;
        }
        job->ids = std::move(*ids);
        job->prompt_positions = len;
        job->sampling = cr.sampling;
        job->stream = cr.stream;
        job->json_mode = cr.json_mode;
        job->json_retries = opt_.json_retries;
        // The client's socket, watched while the answer is made: when the client goes away the
        // job is cancelled (its batch slot and KV cache freed) instead of decoding on.
        const int fd = connection_fd(req);
        // Marks the job cancelled, waits until the scheduler has let it go, counts it.
        auto cancel = [this, t0, job]() {
            job->cancelled = true;
            int64_t tokens = 0;
            {
                std::unique_lock lk(job->mu);
                job->cv.wait(lk, [&] { return job->done; });
                tokens = job->completion_tokens;
            }
            metrics_.cancelled(std::chrono::duration<double>(Clock::now() - t0).count(), tokens);
        };
        if (peer_closed(fd)) {
            metrics_.cancelled(std::chrono::duration<double>(Clock::now() - t0).count(), 0);
            return;
        }
        if (!scheduler_->submit(job)) {
            res.set_header("Retry-After", "1");
            fail(make_error(
                429, "rate_limit_error",
                fmt::format("the server's queue is full ({} waiting); retry later", opt_.max_queue),
                "queue_full"));
            return;
        }
        const std::string id = completion_id();
        const int64_t created = static_cast<int64_t>(std::time(nullptr));
        const std::string model_name = model_name_;
        auto record_done = [this, t0, job]() {
            std::lock_guard lk(job->mu);
            int st = job->error ? job->error->status : 200;
            metrics_.request(st, std::chrono::duration<double>(Clock::now() - t0).count());
            if (!job->error) metrics_.tokens(job->prompt_positions, job->completion_tokens);
            if (job->got_first_token)
                metrics_.first_token(std::chrono::duration<double>(job->first_token - t0).count());
        };

        if (!cr.stream) {
            bool gone = false;
            {
                std::unique_lock lk(job->mu);
                while (!job->done && !gone)
                    if (!job->cv.wait_for(lk, std::chrono::milliseconds(50),
                                          [&] { return job->done; }))
                        gone = peer_closed(fd);
            }
            if (gone) {
                cancel();
                return;
            }
            record_done();
            if (job->error) {
                send_error(res, *job->error);
                return;
            }
            if (job->json_mode)
                res.set_header("X-Medforge-Json-Valid", job->json_valid ? "true" : "false");
            json body = {
                {"id", id},
                {"object", "chat.completion"},
                {"created", created},
                {"model", model_name},
                {"choices",
                 json::array({json{{"index", 0},
                                   {"message", {{"role", "assistant"}, {"content", job->text}}},
                                   {"logprobs", nullptr},
                                   {"finish_reason", job->finish_reason}}})},
                {"usage",
                 usage_json(job->prompt_positions, job->completion_tokens, job->cached_tokens)},
                {"system_fingerprint", nullptr}};
            res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace),
                            "application/json");
            return;
        }

        // SSE: a role chunk, content chunks, a final chunk with finish_reason + usage, [DONE].
        auto chunk = [id, created, model_name](const json& delta, const json& finish,
                                               const json* usage) {
            json c = {{"id", id},
                      {"object", "chat.completion.chunk"},
                      {"created", created},
                      {"model", model_name},
                      {"choices", json::array({json{{"index", 0},
                                                    {"delta", delta},
                                                    {"logprobs", nullptr},
                                                    {"finish_reason", finish}}})}};
            if (usage) c["usage"] = *usage;
            return "data: " + c.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
        };
        auto sent_role = std::make_shared<bool>(false);
        // Counted once: answered (record_done) or cancelled. Whatever ends the response before
        // that (a failed write, a closed socket, httplib giving up) cancels the job.
        auto counted = std::make_shared<bool>(false);
        auto cancel_once = [cancel, counted] {
            if (*counted) return;
            *counted = true;
            cancel();
        };
        res.set_header("Cache-Control", "no-cache");
        res.set_chunked_content_provider(
            "text/event-stream",
            [job, chunk, sent_role, record_done, cancel_once, counted, fd](
                size_t, httplib::DataSink& sink) {
                auto write = [&](const std::string& s) {
                    if (!sink.write(s.data(), s.size())) {
                        cancel_once();  // the client went away before the end
                        return false;
                    }
                    return true;
                };
                if (!*sent_role) {
                    *sent_role = true;
                    return write(
                        chunk(json{{"role", "assistant"}, {"content", ""}}, nullptr, nullptr));
                }
                std::string piece;
                bool done = false;
                {
                    std::unique_lock lk(job->mu);
                    job->cv.wait_for(lk, std::chrono::milliseconds(200),
                                     [&] { return job->done || !job->pending.empty(); });
                    piece.swap(job->pending);
                    done = job->done;
                }
                if (!done && (peer_closed(fd) || !sink.is_writable())) {
                    cancel_once();
                    return false;
                }
                if (!piece.empty() && !write(chunk(json{{"content", piece}}, nullptr, nullptr)))
                    return false;
                if (!done) return true;
                *counted = true;
                record_done();
                std::string tail;
                if (job->error) {
                    tail = "data: " + error_body(*job->error).dump() + "\n\n";
                } else {
                    json u = usage_json(job->prompt_positions, job->completion_tokens,
                                        job->cached_tokens);
                    tail = chunk(json::object(), job->finish_reason, &u);
                }
                tail += "data: [DONE]\n\n";
                if (!write(tail)) return false;
                sink.done();
                return true;
            },
            [cancel_once](bool) { cancel_once(); });
    });
}

}  // namespace mf::serve
