#include "support/fake_openai.h"

#include <httplib.h>

#include <strings.h>
#include <sys/socket.h>
#include <algorithm>
#include <chrono>
#include <condition_variable>

namespace mf::test {

using nlohmann::json;

namespace {

int64_t rough_tokens(size_t chars) {
    return std::max<int64_t>(1, static_cast<int64_t>((chars + 3) / 4));
}

json error_json(const std::string& message, const std::string& type) {
    return json{
        {"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}}}};
}

}  // namespace

FakeReply FakeReply::text(std::string content) {
    FakeReply r;
    r.content = std::move(content);
    return r;
}

FakeReply FakeReply::error(int status, std::string message, std::string type) {
    FakeReply r;
    r.status = status;
    r.body = error_json(message, type).dump();
    return r;
}

FakeReply FakeReply::raw(int status, std::string body, std::string content_type) {
    FakeReply r;
    r.status = status;
    r.body = std::move(body);
    r.content_type = std::move(content_type);
    return r;
}

FakeReply FakeReply::drop() {
    FakeReply r;
    r.drop_connection = true;
    return r;
}

std::string RecordedRequest::header(const std::string& name) const {
    for (const auto& [k, v] : headers) {
        if (strcasecmp(k.c_str(), name.c_str()) == 0) return v;
    }
    return "";
}

struct FakeOpenAi::State {
    mutable std::mutex mu;
    std::condition_variable stop_cv;
    bool stopping = false;
    Handler handler;
    std::vector<RecordedRequest> requests;
    int calls = 0;
    int in_flight = 0;
    int max_in_flight = 0;
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();

    double now_s() const {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
};

FakeOpenAi::FakeOpenAi(Handler handler, int threads)
    : state_(std::make_shared<State>()), threads_(threads) {
    state_->handler = handler ? std::move(handler)
                              : answer_with([](const std::string& t) { return "echo: " + t; });
}

FakeOpenAi::~FakeOpenAi() {
    stop();
}

void FakeOpenAi::set_handler(Handler handler) {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->handler = std::move(handler);
}

std::string FakeOpenAi::base_url() const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + "/v1";
}

int FakeOpenAi::calls() const {
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->calls;
}

std::vector<RecordedRequest> FakeOpenAi::requests() const {
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->requests;
}

int FakeOpenAi::max_in_flight() const {
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->max_in_flight;
}

void FakeOpenAi::reset_records() {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->requests.clear();
    state_->calls = 0;
    state_->max_in_flight = 0;
}

Status FakeOpenAi::start(int port) {
    tls_ = false;
    return start_with(std::make_unique<httplib::Server>(), port);
}

Status FakeOpenAi::start_tls(const std::string& cert_pem_path, const std::string& key_pem_path,
                             int port) {
    auto svr = std::make_unique<httplib::SSLServer>(cert_pem_path.c_str(), key_pem_path.c_str());
    if (!svr->is_valid()) {
        return Status::invalid_argument("fake OpenAI server: cannot load TLS certificate " +
                                        cert_pem_path + " / key " + key_pem_path);
    }
    tls_ = true;
    return start_with(std::move(svr), port);
}

Status FakeOpenAi::start_with(std::unique_ptr<httplib::Server> server, int port) {
    if (server_) return Status::failed_precondition("fake OpenAI server already started");
    server_ = std::move(server);
    auto& svr = *server_;
    const int nthreads = threads_;
    svr.new_task_queue = [nthreads] { return new httplib::ThreadPool(nthreads); };
    svr.set_keep_alive_max_count(100000);
    svr.set_tcp_nodelay(true);  // else Nagle + delayed ACK stall kept-alive replies by 40 ms
    // stop() waits for idle keep-alive connections to time out: keep it short.
    svr.set_keep_alive_timeout(1);
    svr.set_payload_max_length(512u << 20);
    {
        std::lock_guard<std::mutex> lock(state_->mu);
        state_->stopping = false;
    }
    std::shared_ptr<State> st = state_;

    auto chat = [st](const httplib::Request& req, httplib::Response& res) {
        RecordedRequest rec;
        rec.method = req.method;
        rec.path = req.path;
        {
            std::string q;
            for (const auto& [k, v] : req.params) {
                if (!q.empty()) q += '&';
                q += k + "=" + v;
            }
            rec.query = q;
        }
        for (const auto& [k, v] : req.headers)
            rec.headers.emplace(k, v);
        rec.raw_body = req.body;
        rec.body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
        if (rec.body.is_discarded()) rec.body = nullptr;
        rec.remote_port = req.remote_port;

        Handler handler;
        size_t slot;
        {
            std::lock_guard<std::mutex> lock(st->mu);
            rec.call_index = st->calls++;
            rec.t_start_s = st->now_s();
            st->in_flight++;
            st->max_in_flight = std::max(st->max_in_flight, st->in_flight);
            handler = st->handler;
            slot = st->requests.size();
            st->requests.push_back(rec);
        }

        FakeReply reply;
        if (rec.body.is_null() || !rec.body.is_object()) {
            reply =
                FakeReply::error(400, "request body is not a JSON object", "invalid_request_error");
        } else {
            try {
                reply = handler(rec.body, rec.call_index);
            } catch (const std::exception& e) {
                reply = FakeReply::error(500, std::string("fake handler threw: ") + e.what());
            }
        }

        if (reply.delay_ms > 0) {
            std::unique_lock<std::mutex> lock(st->mu);
            st->stop_cv.wait_for(lock, std::chrono::milliseconds(reply.delay_ms),
                                 [&] { return st->stopping; });
        }

        {
            std::lock_guard<std::mutex> lock(st->mu);
            st->in_flight--;
            st->requests[slot].t_end_s = st->now_s();
        }

        res.status = reply.status;
        for (const auto& [k, v] : reply.headers)
            res.set_header(k.c_str(), v);
        if (reply.drop_connection) {
            // Headers announce a body the provider never writes: httplib closes the socket.
            res.set_content_provider(1000, "application/json",
                                     [](size_t, size_t, httplib::DataSink&) { return false; });
            return;
        }
        if (!reply.body.empty() || reply.status != 200) {
            res.set_content(reply.body, reply.content_type.c_str());
            return;
        }
        const std::string model =
            !reply.model.empty() ? reply.model : rec.body.value("model", std::string("fake"));
        const int64_t pt = reply.prompt_tokens >= 0 ? reply.prompt_tokens
                                                    : rough_tokens(request_text(rec.body).size());
        const int64_t ct = reply.completion_tokens >= 0 ? reply.completion_tokens
                                                        : rough_tokens(reply.content.size());
        json out = {
            {"id", "chatcmpl-fake-" + std::to_string(rec.call_index)},
            {"object", "chat.completion"},
            {"created", 1700000000},
            {"model", model},
            {"choices",
             json::array({{{"index", 0},
                           {"message", {{"role", "assistant"}, {"content", reply.content}}},
                           {"finish_reason", reply.finish_reason}}})},
            {"usage",
             {{"prompt_tokens", pt}, {"completion_tokens", ct}, {"total_tokens", pt + ct}}},
        };
        res.set_content(out.dump(), "application/json");
    };
    svr.Post("/v1/chat/completions", chat);
    svr.Post("/chat/completions", chat);
    svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
        if (res.status == 404) {
            res.set_content(
                error_json("no route for " + req.method + " " + req.path, "invalid_request_error")
                    .dump(),
                "application/json");
        }
    });

    // cpp-httplib 0.11 listens with a backlog of 5: 64 clients connecting at once overflow it
    // and the kernel drops SYNs (1 s, 3 s, 7 s... retransmit stalls). Remember the listening
    // socket and listen() again with a deep backlog after binding.
    auto listen_fd = std::make_shared<std::atomic<int>>(-1);
    svr.set_socket_options([listen_fd](int sock) {
        httplib::default_socket_options(sock);
        int expected = -1;
        listen_fd->compare_exchange_strong(expected, static_cast<int>(sock));
    });
    if (port == 0) {
        port_ = svr.bind_to_any_port("127.0.0.1");
    } else {
        port_ = svr.bind_to_port("127.0.0.1", port) ? port : -1;
    }
    if (port_ <= 0) {
        server_.reset();
        return Status::unavailable("fake OpenAI server: cannot bind 127.0.0.1:" +
                                   std::to_string(port));
    }
    if (listen_fd->load() >= 0) ::listen(listen_fd->load(), 1024);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    for (int i = 0; i < 2000 && !server_->is_running(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return Status::ok_status();
}

void FakeOpenAi::stop() {
    if (!server_) return;
    {
        std::lock_guard<std::mutex> lock(state_->mu);
        state_->stopping = true;
    }
    state_->stop_cv.notify_all();
    server_->stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
}

FakeOpenAi::Handler FakeOpenAi::answer_with(
    std::function<std::string(const std::string& text)> answer) {
    return [answer = std::move(answer)](const json& request, int) {
        return FakeReply::text(answer(request_text(request)));
    };
}

std::string FakeOpenAi::request_text(const json& request) {
    std::string out;
    auto add = [&](const std::string& s) {
        if (!out.empty()) out += '\n';
        out += s;
    };
    if (!request.is_object() || !request.contains("messages")) return out;
    for (const auto& m : request["messages"]) {
        if (!m.is_object() || !m.contains("content")) continue;
        const auto& c = m["content"];
        if (c.is_string()) {
            add(c.get<std::string>());
        } else if (c.is_array()) {
            for (const auto& p : c) {
                if (p.is_object() && p.value("type", "") == "text" && p.contains("text") &&
                    p["text"].is_string()) {
                    add(p["text"].get<std::string>());
                }
            }
        }
    }
    return out;
}

std::vector<std::string> FakeOpenAi::image_urls(const json& request) {
    std::vector<std::string> out;
    if (!request.is_object() || !request.contains("messages")) return out;
    for (const auto& m : request["messages"]) {
        if (!m.is_object() || !m.contains("content") || !m["content"].is_array()) continue;
        for (const auto& p : m["content"]) {
            if (p.is_object() && p.value("type", "") == "image_url" && p.contains("image_url")) {
                const auto& iu = p["image_url"];
                if (iu.is_object() && iu.contains("url") && iu["url"].is_string()) {
                    out.push_back(iu["url"].get<std::string>());
                } else if (iu.is_string()) {
                    out.push_back(iu.get<std::string>());
                }
            }
        }
    }
    return out;
}

int FakeOpenAi::image_count(const json& request) {
    return static_cast<int>(image_urls(request).size());
}

}  // namespace mf::test
