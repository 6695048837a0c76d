// A fake OpenAI-compatible chat-completions server for tests: real HTTP on 127.0.0.1 (cpp-httplib),
// real request/response JSON, scriptable answers and faults, and a record of every request.
//
// It serves POST <base>/chat/completions where base_url() = "http://127.0.0.1:<port>/v1" (the
// client appends "/chat/completions"), and also POST /chat/completions without the /v1 prefix
// (Azure-style deployments and servers mounted at the root). Anything else gets a 404 with an
// OpenAI-style error object. A request body that is not JSON gets a 400 without calling the
// handler (the call is still recorded).
//
// Usage:
//
//     mf::test::FakeOpenAi server;                       // default: echoes the request's text
//     server.set_handler([](const nlohmann::json& req, int call) {
//         if (call == 0) return FakeReply::error(429, "slow down").retry_after("1");
//         return FakeReply::text("{\"answer\": \"yes\"}");
//     });
//     ASSERT_TRUE(server.start().ok());
//     ClientOptions o;  o.base_url = server.base_url();  o.backoff_initial_s = 0.01;
//     ... run the client ...
//     EXPECT_EQ(server.calls(), 2);
//     EXPECT_EQ(server.requests()[1].header("Authorization"), "Bearer sk-test");
//
// Answering from the prompt text (what most reformat/eval tests want):
//
//     FakeOpenAi server(FakeOpenAi::answer_with([](const std::string& text) {
//         return text.find("caption") != std::string::npos ? "..." : "...";
//     }));
//
// Faults: FakeReply::error(status, message) (OpenAI error JSON), .retry_after("2") or an
// HTTP-date, .delay_ms (the handler thread sleeps; stop() interrupts it), FakeReply::drop() (the
// response headers go out and the connection is closed before the body: a dropped connection for
// the client), FakeReply::raw(status, body) for invalid JSON or any other body.
//
// Thread-safe: the handler runs on the server's worker threads (64 by default), possibly
// concurrently; calls are numbered in arrival order from 0. Token counts in `usage` default to
// the request's text length / 4 (prompt) and the content's length / 4 (completion), at least 1.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/status.h"

namespace httplib {
class Server;
}

namespace mf::test {

struct FakeReply {
    int status = 200;
    // With status 200 and no `body`: the assistant message content of a chat-completion reply.
    std::string content;
    // When non-empty: the exact response body (then `content` is ignored).
    std::string body;
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;  // e.g. {"Retry-After", "2"}
    int delay_ms = 0;                                          // sleep before answering
    bool drop_connection = false;  // send headers, then close the connection without a body
    std::string finish_reason = "stop";
    int64_t prompt_tokens = -1;      // -1 = estimated from the request text
    int64_t completion_tokens = -1;  // -1 = estimated from `content`
    std::string model;               // "" = the request's model

    // A 200 chat completion whose message content is `content`.
    static FakeReply text(std::string content);
    // An OpenAI-style error reply: {"error":{"message":...,"type":...,"code":...}}.
    static FakeReply error(int status, std::string message, std::string type = "server_error");
    // Any status and body, sent verbatim (e.g. "not json").
    static FakeReply raw(int status, std::string body, std::string content_type = "text/plain");
    // A dropped connection.
    static FakeReply drop();

    FakeReply& retry_after(std::string value) {
        headers.emplace_back("Retry-After", std::move(value));
        return *this;
    }
    FakeReply& delay(int ms) {
        delay_ms = ms;
        return *this;
    }
    FakeReply& with_header(std::string name, std::string value) {
        headers.emplace_back(std::move(name), std::move(value));
        return *this;
    }
};

// One received request, as the server saw it.
struct RecordedRequest {
    int call_index = 0;
    std::string method;
    std::string path;   // e.g. "/v1/chat/completions"
    std::string query;  // e.g. "api-version=2024-06-01" ("" when none)
    std::multimap<std::string, std::string> headers;  // names as sent
    std::string raw_body;
    nlohmann::json body;   // null when the body is not JSON
    int remote_port = 0;   // the client's port: equal ports = a reused (keep-alive) connection
    double t_start_s = 0;  // seconds since the server started, when the request arrived
    double t_end_s = 0;    // ... and when the handler's reply was ready (after delay_ms)

    // First header value with this name (case-insensitive), "" when absent.
    std::string header(const std::string& name) const;
};

class FakeOpenAi {
  public:
    using Handler = std::function<FakeReply(const nlohmann::json& request, int call_index)>;

    // Default handler: answer_with() echoing "echo: <request text>".
    explicit FakeOpenAi(Handler handler = {}, int threads = 64);
    ~FakeOpenAi();
    FakeOpenAi(const FakeOpenAi&) = delete;
    FakeOpenAi& operator=(const FakeOpenAi&) = delete;

    // Binds 127.0.0.1:<port> (0 = a free port) and serves on a background thread.
    Status start(int port = 0);
    // The same over HTTPS with a PEM certificate and key (e.g. a self-signed one made by the
    // test); base_url() then starts with https://.
    Status start_tls(const std::string& cert_pem_path, const std::string& key_pem_path,
                     int port = 0);
    // Stops serving and joins the thread; in-progress delays are cut short. Idempotent. Idle
    // keep-alive connections still open from a client make it wait up to 1 s (the server's
    // keep-alive timeout): destroy clients first to stop at once.
    void stop();

    int port() const { return port_; }
    // "http://127.0.0.1:<port>/v1": what ClientOptions::base_url takes.
    std::string base_url() const;

    void set_handler(Handler handler);

    int calls() const;                              // requests received so far
    std::vector<RecordedRequest> requests() const;  // copies, in arrival order
    int max_in_flight() const;                      // most requests handled at the same time
    void reset_records();                           // forget requests, calls and max_in_flight

    // A handler that answers every request with answer(request_text(request)).
    static Handler answer_with(std::function<std::string(const std::string& text)> answer);
    // All text parts of all messages, joined by "\n" (string contents included).
    static std::string request_text(const nlohmann::json& request);
    // Number of image_url parts in the request.
    static int image_count(const nlohmann::json& request);
    // The image URLs in order.
    static std::vector<std::string> image_urls(const nlohmann::json& request);

  private:
    struct State;
    std::shared_ptr<State> state_;
    std::unique_ptr<httplib::Server> server_;
    std::thread thread_;
    Status start_with(std::unique_ptr<httplib::Server> server, int port);
    int port_ = 0;
    int threads_ = 64;
    bool tls_ = false;
};

}  // namespace mf::test
