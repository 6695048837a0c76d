// The libcurl client against the fake OpenAI server over real HTTP on loopback.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "llm/client.h"
#include "support/fake_openai.h"
#include "test_util.h"

namespace mf::llm {
namespace {

using nlohmann::json;
using test::FakeOpenAi;
using test::FakeReply;

ClientOptions fast_options(const FakeOpenAi& server) {
    ClientOptions o;
    o.base_url = server.base_url();
    o.api_key = "sk-SECRET";
    o.backoff_initial_s = 0.01;
    o.backoff_max_s = 0.05;
    o.timeout_s = 10;
    o.max_retries = 3;
    return o;
}

ChatRequest simple(const std::string& text, const std::string& tag = "") {
    ChatRequest r;
    r.model = "fake-model";
    r.messages = {ChatMessage::text("user", text)};
    r.user_tag = tag;
    return r;
}

struct BatchResult {
    std::vector<std::optional<Result<ChatResponse>>> results;
    Status status;
};

BatchResult run(LlmClient& client, const std::vector<ChatRequest>& reqs,
                const std::atomic<bool>* cancel = nullptr) {
    BatchResult out;
    out.results.resize(reqs.size());
    out.status = client.run_batch(
        reqs,
        [&](size_t i, Result<ChatResponse> r) {
            EXPECT_FALSE(out.results[i].has_value()) << "callback twice for " << i;
            out.results[i] = std::move(r);
        },
        cancel);
    return out;
}

std::unique_ptr<LlmClient> client_for(const ClientOptions& o) {
    auto c = make_http_client(o);
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    return std::move(c).value();
}

// Every message in a result must be free of the key.
void expect_no_key(const Result<ChatResponse>& r) {
    if (!r.ok()) {
        EXPECT_EQ(r.status().to_string().find("sk-SECRET"), std::string::npos)
            << r.status().to_string();
    }
}

TEST(HttpClient, SuccessWithUsageAndHeaders) {
    FakeOpenAi server;  // echoes
    ASSERT_TRUE(server.start().ok());
    auto client = client_for(fast_options(server));
    auto r = client->complete(simple("hello there"));
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->content, "echo: hello there");
    EXPECT_EQ(r->finish_reason, "stop");
    EXPECT_EQ(r->model, "fake-model");
    EXPECT_EQ(r->http_status, 200);
    EXPECT_EQ(r->attempts, 1);
    EXPECT_GT(r->usage.prompt_tokens, 0);
    EXPECT_GT(r->usage.completion_tokens, 0);
    EXPECT_EQ(r->usage.total_tokens, r->usage.prompt_tokens + r->usage.completion_tokens);
    EXPECT_GE(r->latency_s, 0);

    auto reqs = server.requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(reqs[0].method, "POST");
    EXPECT_EQ(reqs[0].path, "/v1/chat/completions");
    EXPECT_EQ(reqs[0].header("Authorization"), "Bearer sk-SECRET");
    EXPECT_EQ(reqs[0].header("Content-Type"), "application/json");
    EXPECT_EQ(reqs[0].body["messages"][0]["content"], "hello there");
}

TEST(HttpClient, BodyShapeWithImagesResponseFormatStopSeed) {
    FakeOpenAi server([](const json& req, int) {
        return FakeReply::text(std::to_string(FakeOpenAi::image_count(req)) + " images");
    });
    ASSERT_TRUE(server.start().ok());
    auto client = client_for(fast_options(server));
    ChatRequest r;
    r.model = "gpt-4o";
    ChatMessage m;
    m.role = "user";
    m.content = {image_url_part("data:image/jpeg;base64,AAA1", "low"), text_part("caption"),
                 image_url_part("data:image/jpeg;base64,AAA2")};
    r.messages = {ChatMessage::text("system", "sys"), m};
    r.json_object = true;
    r.stop = {"END"};
    r.seed = 42;
    r.temperature = 0.2;
    r.max_tokens = 300;
    auto resp = client->complete(r);
    ASSERT_TRUE(resp.ok()) << resp.status().to_string();
    EXPECT_EQ(resp->content, "2 images");
    const json b = server.requests().at(0).body;
    EXPECT_EQ(b["model"], "gpt-4o");
    EXPECT_EQ(b["response_format"]["type"], "json_object");
    EXPECT_EQ(b["stop"], json({"END"}));
    EXPECT_EQ(b["seed"], 42);
    EXPECT_EQ(b["max_tokens"], 300);
    EXPECT_DOUBLE_EQ(b["temperature"].get<double>(), 0.2);
    EXPECT_EQ(b["messages"][0]["content"], "sys");
    EXPECT_EQ(FakeOpenAi::image_urls(b), (std::vector<std::string>{"data:image/jpeg;base64,AAA1",
                                                                   "data:image/jpeg;base64,AAA2"}));
    EXPECT_EQ(b["messages"][1]["content"][0]["image_url"]["detail"], "low");
    EXPECT_EQ(b["messages"][1]["content"][1]["text"], "caption");
}

TEST(HttpClient, RetryAfterIsHonouredThenSuccess) {
    FakeOpenAi server([](const json&, int call) {
        if (call == 0)
            return FakeReply::error(429, "rate limited", "rate_limit_error").retry_after("1");
        return FakeReply::text("ok");
    });
    ASSERT_TRUE(server.start().ok());
    ClientOptions o = fast_options(server);
    o.backoff_max_s = 5;  // Retry-After is capped by this; keep it above 1 s
    auto client = client_for(o);
    auto r = client->complete(simple("x"));
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->content, "ok");
    EXPECT_EQ(r->attempts, 2);
    auto reqs = server.requests();
    ASSERT_EQ(reqs.size(), 2u);
    EXPECT_GE(reqs[1].t_start_s - reqs[0].t_end_s, 0.95);
}

TEST(HttpClient, RetryAfterHttpDateAndCap) {
    // An HTTP date 30 s ahead, capped by backoff_max_s = 0.3: the retry comes after ~0.3 s.
    FakeOpenAi server([](const json&, int call) {
        if (call == 0) {
            char buf[64];
            std::time_t t = std::time(nullptr) + 30;
            std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", std::gmtime(&t));
            return FakeReply::error(503, "busy").retry_after(buf);
        }
        return FakeReply::text("ok");
    });
    ASSERT_TRUE(server.start().ok());
    ClientOptions o = fast_options(server);
    o.backoff_max_s = 0.3;
    auto client = client_for(o);
    auto r = client->complete(simple("x"));
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    auto reqs = server.requests();
    ASSERT_EQ(reqs.size(), 2u);
    const double gap = reqs[1].t_start_s - reqs[0].t_end_s;
    EXPECT_GE(gap, 0.25);
    EXPECT_LT(gap, 10.0);  // the 30 s date was capped
}

TEST(HttpClient, ServerErrorsUntilMaxRetriesThenLastMessage) {
    FakeOpenAi server([](const json&, int call) {
        return FakeReply::error(500, "internal failure number " + std::to_string(call));
    });
    ASSERT_TRUE(server.start().ok());
    ClientOptions o = fast_options(server);
    o.max_retries = 2;
    auto client = client_for(o);
    auto r = client->complete(simple("x", "sample-7"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
    EXPECT_EQ(server.calls(), 3);
    const std::string msg = r.status().message();
    EXPECT_NE(msg.find("internal failure number 2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("HTTP 500"), std::string::npos) << msg;
    EXPECT_NE(msg.find("sample-7"), std::string::npos) << msg;
    EXPECT_NE(msg.find("3 attempts"), std::string::npos) << msg;
    expect_no_key(r);
}

TEST(HttpClient, BadRequestIsNotRetried) {
    FakeOpenAi server([](const json&, int) {
        return FakeReply::error(400, "max_tokens is too large", "invalid_request_error");
    });
    ASSERT_TRUE(server.start().ok());
    auto client = client_for(fast_options(server));
    auto r = client->complete(simple("x"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("max_tokens is too large"), std::string::npos);
    EXPECT_EQ(server.calls(), 1);
}

TEST(HttpClient, UnauthorizedNotRetriedAndEchoedKeyRedacted) {
    // A server that echoes the credential back in its error text.
    FakeOpenAi server([](const json&, int) {
        return FakeReply::error(401, "Incorrect API key provided: sk-SECRET", "auth_error");
    });
    ASSERT_TRUE(server.start().ok());
    auto client = client_for(fast_options(server));
    auto r = client->complete(simple("x"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(server.calls(), 1);
    EXPECT_NE(r.status().message().find("[redacted]"), std::string::npos);
    expect_no_key(r);
}

TEST(HttpClient, ConnectionRefusedIsRetriedThenUnavailable) {
    int port = 0;
    {
        FakeOpenAi tmp;
        ASSERT_TRUE(tmp.start().ok());
        port = tmp.port();
    }  // stopped: nothing listens there now
    ClientOptions o;
    o.base_url = "http://127.0.0.1:" + std::to_string(port) + "/v1";
    o.api_key = "sk-SECRET";
    o.backoff_initial_s = 0.01;
    o.backoff_max_s = 0.02;
    o.max_retries = 2;
    auto client = client_for(o);
    auto r = client->complete(simple("x"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
    EXPECT_NE(r.status().message().find("3 attempts"), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("connection error"), std::string::npos);
    expect_no_key(r);
}

TEST(HttpClient, SlowServerTimesOutAndIsRetried) {
    FakeOpenAi server([](const json&, int) { return FakeReply::text("late").delay(3000); });
    ASSERT_TRUE(server.start().ok());
    ClientOptions o = fast_options(server);
    o.timeout_s = 0.3;
    o.max_retries = 1;
    auto client = client_for(o);
    const auto t0 = std::chrono::steady_clock::now();
    auto r = client->complete(simple("x"));
    const double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
    EXPECT_NE(r.status().message().find("timed out"), std::string::npos) << r.status().message();
    EXPECT_EQ(server.calls(), 2);
    EXPECT_GE(took, 0.55);  // two timeouts of 0.3 s happened
}

TEST(HttpClient, SlowServerWithinTimeoutSucceeds) {
    FakeOpenAi server([](const json&, int) { return FakeReply::text("slow but ok").delay(300); });
    ASSERT_TRUE(server.start().ok());
    ClientOptions o = fast_options(server);
    o.timeout_s = 5;
    auto client = client_for(o);
    auto r = client->complete(simple("x"));
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->content, "slow but ok");
    EXPECT_GE(r->latency_s, 0.28);
}

TEST(HttpClient, DroppedConnectionIsRetried) {
    FakeOpenAi server([](const json&, int call) {
        if (call < 2) return FakeReply::drop();
        return FakeReply::text("third time");
    });
    ASSERT_TRUE(server.start().ok());
    auto client = client_for(fast_options(server));
    auto r = client->complete(simple("x"));
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->content, "third time");
    EXPECT_EQ(r->attempts, 3);
}

TEST(HttpClient, InvalidJsonBodyIsCorruptionNotRetried) {
    FakeOpenAi server([](const json&, int) { return FakeReply::raw(200, "{not json"); });
    ASSERT_TRUE(server.start().ok());
    auto client = client_for(fast_options(server));
    auto r = client->complete(simple("x"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
    EXPECT_EQ(server.calls(), 1);
}

TEST(HttpClient, ConcurrencyLimitRespectedAndAllAnswersMatch) {
    FakeOpenAi server([](const json& req, int) {
        return FakeReply::text("re: " + FakeOpenAi::request_text(req)).delay(40);
    });
    ASSERT_TRUE(server.start().ok());
    ClientOptions o = fast_options(server);
    o.max_concurrency = 4;
    auto client = client_for(o);
    std::vector<ChatRequest> reqs;
    for (int i = 0; i < 20; ++i)
        reqs.push_back(simple("q" + std::to_string(i)));
    BatchResult br = run(*client, reqs);
    ASSERT_TRUE(br.status.ok()) << br.status.to_string();
    for (int i = 0; i < 20; ++i) {
        ASSERT_TRUE(br.results[i].has_value());
        ASSERT_TRUE(br.results[i]->ok());
        EXPECT_EQ((*br.results[i])->content, "re: q" + std::to_string(i));
    }
    EXPECT_EQ(server.calls(), 20);
    EXPECT_LE(server.max_in_flight(), 4);
    EXPECT_GE(server.max_in_flight(), 2);  // it did run concurrently
}

TEST(HttpClient, KeepAliveReusesConnections) {
    FakeOpenAi server;
    ASSERT_TRUE(server.start().ok());
    ClientOptions o = fast_options(server);
    o.max_concurrency = 1;
    auto client = client_for(o);
    std::vector<ChatRequest> reqs(10, simple("x"));
    BatchResult br = run(*client, reqs);
    ASSERT_TRUE(br.status.ok());
    auto again = client->complete(simple("y"));  // a second batch reuses it too
    ASSERT_TRUE(again.ok());
    std::set<int> ports;
    for (const auto& r : server.requests())
        ports.insert(r.remote_port);
    EXPECT_EQ(server.calls(), 11);
    EXPECT_EQ(ports.size(), 1u);
}

// Arrival times at the server are send times plus a latency; a warm-up request opens the
// connection first so that every measured request has the same (kept-alive) path.
std::vector<double> sorted_arrivals(const FakeOpenAi& server) {
    std::vector<double> t;
    for (const auto& r : server.requests())
        t.push_back(r.t_start_s);
    std::sort(t.begin(), t.end());
    return t;
}

TEST(HttpClient, RequestsPerMinuteSpacesCallsAcrossBatches) {
    FakeOpenAi server;
    ASSERT_TRUE(server.start().ok());
    ClientOptions o = fast_options(server);
    o.requests_per_minute = 600;  // 10/s
    o.rate_burst_s = 0.1;         // bucket holds 1 request
    o.max_concurrency = 8;
    auto client = client_for(o);
    ASSERT_TRUE(client->complete(simple("warm-up")).ok());
    server.reset_records();
    BatchResult br = run(*client, std::vector<ChatRequest>(5, simple("x")));
    ASSERT_TRUE(br.status.ok());
    // The limit holds across run_batch calls too (complete() is a batch of one).
    for (int i = 0; i < 2; ++i)
        ASSERT_TRUE(client->complete(simple("y")).ok());
    std::vector<double> t = sorted_arrivals(server);
    ASSERT_EQ(t.size(), 7u);
    for (size_t k = 1; k < t.size(); ++k) {
        EXPECT_GE(t[k] - t[0], 0.1 * k - 0.02) << k;  // lower bound only
    }
}

TEST(HttpClient, TokensPerMinuteSpacesCalls) {
    FakeOpenAi server;
    ASSERT_TRUE(server.start().ok());
    ClientOptions o = fast_options(server);
    ChatRequest r = simple(std::string(400, 'a'));  // 3 + 4 + 100 = 107 tokens
    r.max_tokens = 93;                              // 200 tokens per request
    ASSERT_EQ(estimate_request_tokens(r), 200);
    o.tokens_per_minute = 200 * 60 * 5;  // 5 requests/s
    o.rate_burst_s = 0.2;                // one request's worth
    auto client = client_for(o);
    ChatRequest warm = simple("w");
    warm.max_tokens = 1;
    ASSERT_TRUE(client->complete(warm).ok());
    server.reset_records();
    BatchResult br = run(*client, std::vector<ChatRequest>(4, r));
    ASSERT_TRUE(br.status.ok());
    std::vector<double> t = sorted_arrivals(server);
    ASSERT_EQ(t.size(), 4u);
    EXPECT_GE(t[3] - t[0], 0.6 - 0.03);
}

TEST(HttpClient, CancelFromAnotherThreadReturnsPromptly) {
    FakeOpenAi server([](const json&, int) { return FakeReply::text("slow").delay(30000); });
    ASSERT_TRUE(server.start().ok());
    ClientOptions o = fast_options(server);
    o.max_concurrency = 2;
    o.timeout_s = 60;
    auto client = client_for(o);
    std::vector<ChatRequest> reqs(6, simple("x"));
    std::atomic<bool> cancel{false};
    std::thread canceller([&] {
        while (server.calls() < 2)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        cancel = true;
    });
    const auto t0 = std::chrono::steady_clock::now();
    BatchResult br = run(*client, reqs, &cancel);
    const double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    canceller.join();
    EXPECT_EQ(br.status.code(), StatusCode::kCancelled);
    for (size_t i = 0; i < reqs.size(); ++i) {
        ASSERT_TRUE(br.results[i].has_value()) << i;
        ASSERT_FALSE(br.results[i]->ok());
        EXPECT_EQ(br.results[i]->status().code(), StatusCode::kCancelled);
    }
    EXPECT_LT(took, 10.0);  // did not wait for the 30 s replies
    EXPECT_EQ(server.calls(), 2);
}

TEST(HttpClient, AzureStyleHeaderAndQuery) {
    FakeOpenAi server;
    ASSERT_TRUE(server.start().ok());
    ClientOptions o = fast_options(server);
    o.base_url = "http://127.0.0.1:" + std::to_string(server.port()) + "/";  // trailing slash
    o.api_key_header = "api-key";
    o.extra_query = "api-version=2024-06-01";
    auto client = client_for(o);
    auto r = client->complete(simple("x"));
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    auto rec = server.requests().at(0);
    EXPECT_EQ(rec.path, "/chat/completions");
    EXPECT_EQ(rec.query, "api-version=2024-06-01");
    EXPECT_EQ(rec.header("api-key"), "sk-SECRET");
    EXPECT_EQ(rec.header("Authorization"), "");
}

TEST(HttpClient, KeyNeverInAnyErrorText) {
    // A mix of every failure kind; grep every message for the key.
    FakeOpenAi server([](const json& req, int) {
        const std::string t = FakeOpenAi::request_text(req);
        if (t == "400") return FakeReply::error(400, "bad");
        if (t == "404") return FakeReply::error(404, "no such model");
        if (t == "500") return FakeReply::error(500, "boom, auth was Bearer sk-SECRET");
        if (t == "429") return FakeReply::error(429, "slow").retry_after("0");
        if (t == "junk") return FakeReply::raw(200, "<html>sk-SECRET</html>");
        return FakeReply::drop();
    });
    ASSERT_TRUE(server.start().ok());
    ClientOptions o = fast_options(server);
    o.max_retries = 1;
    auto client = client_for(o);
    std::vector<ChatRequest> reqs;
    for (const char* t : {"400", "404", "500", "429", "junk", "drop"})
        reqs.push_back(simple(t));
    BatchResult br = run(*client, reqs);
    ASSERT_TRUE(br.status.ok());
    for (size_t i = 0; i < reqs.size(); ++i) {
        ASSERT_TRUE(br.results[i].has_value());
        EXPECT_FALSE(br.results[i]->ok()) << i;
        expect_no_key(*br.results[i]);
    }
    EXPECT_EQ(br.results[1]->status().code(), StatusCode::kNotFound);
    EXPECT_EQ(br.results[3]->status().code(), StatusCode::kResourceExhausted);
    // And it was sent.
    for (const auto& r : server.requests())
        EXPECT_EQ(r.header("Authorization"), "Bearer sk-SECRET");
}

TEST(HttpClient, TlsWithCustomCaAndRejectsUnknownCa) {
    test::TempDir dir;
    const std::string cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
    auto gen = test::run_command(
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
        "-addext subjectAltName=IP:127.0.0.1 -keyout " +
        key + " -out " + cert);
    if (gen.exit_code != 0) GTEST_SKIP() << "openssl CLI unavailable: " << gen.output;
    FakeOpenAi server;
    ASSERT_TRUE(server.start_tls(cert, key).ok());
    ASSERT_EQ(server.base_url().rfind("https://", 0), 0u);
    ClientOptions o = fast_options(server);
    o.max_retries = 0;
    {
        auto client = client_for(o);  // system CA bundle: the self-signed cert is refused
        auto r = client->complete(simple("x"));
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
        expect_no_key(r);
    }
    o.ca_file = cert;
    auto client = client_for(o);
    std::vector<ChatRequest> reqs(4, simple("over tls"));
    BatchResult br = run(*client, reqs);
    ASSERT_TRUE(br.status.ok());
    for (auto& r : br.results) {
        ASSERT_TRUE(r->ok()) << r->status().to_string();
        EXPECT_EQ((*r)->content, "echo: over tls");
    }
    EXPECT_EQ(server.requests().at(0).header("Authorization"), "Bearer sk-SECRET");
}

TEST(FakeOpenAi, AnswerWithAndNotJsonBody) {
    FakeOpenAi server(FakeOpenAi::answer_with([](const std::string& text) {
        return text.find("caption") != std::string::npos ? "mentions" : "clean";
    }));
    ASSERT_TRUE(server.start().ok());
    auto client = client_for(fast_options(server));
    EXPECT_EQ(client->complete(simple("the caption says")).value().content, "mentions");
    EXPECT_EQ(client->complete(simple("nothing")).value().content, "clean");
    EXPECT_EQ(server.calls(), 2);
    server.reset_records();
    EXPECT_EQ(server.calls(), 0);
    server.stop();
    server.stop();  // idempotent
}

}  // namespace
}  // namespace mf::llm
