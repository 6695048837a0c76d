// Throughput of the libcurl client against the local fake server (the performance item):
// sustained requests/s with 64 requests in flight, and the client's CPU per request (CPU time
// of the calling thread, which runs the whole event loop). Baseline in the same run: a naive
// client, one blocking curl_easy_perform per request with a fresh handle (no connection reuse).
// Prints the figures; asserts only correctness and a loose floor (the machine is shared).
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <time.h>

#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "llm/client.h"
#include "support/fake_openai.h"

namespace mf::llm {
namespace {

double thread_cpu_s() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

size_t sink(char*, size_t s, size_t n, void* ud) {
    static_cast<std::string*>(ud)->append("x");
    return s * n;
}

TEST(ClientThroughput, SixtyFourInFlight) {
    test::FakeOpenAi server(
        test::FakeOpenAi::answer_with([](const std::string&) { return std::string(300, 'a'); }),
        /*threads=*/72);
    ASSERT_TRUE(server.start().ok());
    ChatRequest r;
    r.model = "fake";
    r.messages = {ChatMessage::text("system", "You write VQA data."),
                  ChatMessage::text("user", std::string(1500, 'c'))};

    ClientOptions o;
    o.base_url = server.base_url();
    o.api_key = "sk-bench";
    o.max_concurrency = 64;
    auto client = std::move(make_http_client(o)).value();
    // Warm up connections.
    std::vector<ChatRequest> warm(64, r);
    ASSERT_TRUE(client->run_batch(warm, [](size_t, Result<ChatResponse>) {}).ok());

    const int n = 3000;
    std::vector<ChatRequest> reqs(n, r);
    int ok = 0;
    const double c0 = thread_cpu_s(), t0 = now_s();
    ASSERT_TRUE(client
                    ->run_batch(reqs,
                                [&](size_t, Result<ChatResponse> res) {
                                    ok += res.ok() && res->content.size() == 300;
                                })
                    .ok());
    const double wall = now_s() - t0, cpu = thread_cpu_s() - c0;
    EXPECT_EQ(ok, n);

    // Baseline: naive blocking client, fresh handle per request.
    const int nb = 400;
    const std::string body = request_body(r);
    const std::string url = server.base_url() + "/chat/completions";
    curl_slist* h = curl_slist_append(nullptr, "Content-Type: application/json");
    int bok = 0;
    const double bc0 = thread_cpu_s(), bt0 = now_s();
    for (int i = 0; i < nb; ++i) {
        CURL* e = curl_easy_init();
        std::string out;
        curl_easy_setopt(e, CURLOPT_URL, url.c_str());
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.c_str());
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &out);
        bok += curl_easy_perform(e) == CURLE_OK;
        curl_easy_cleanup(e);
    }
    const double bwall = now_s() - bt0, bcpu = thread_cpu_s() - bc0;
    curl_slist_free_all(h);
    EXPECT_EQ(bok, nb);

    const double rps = n / wall, brps = nb / bwall;
    std::printf(
        "[throughput] medforge client, 64 in flight: %.0f requests/s, client CPU %.1f us/request "
        "(%d requests, %.2f s)\n"
        "[throughput] naive blocking client, new handle per request: %.0f requests/s, CPU %.1f "
        "us/request\n"
        "[throughput] ratio requests/s %.2fx, CPU per request %.2fx less\n",
        rps, cpu / n * 1e6, n, wall, brps, bcpu / nb * 1e6, rps / brps, (bcpu / nb) / (cpu / n));
    EXPECT_GT(rps, 50);  // loose floor; the target (200/s on 2 cores) is reported above
}

// With a realistic server latency (20 ms here; seconds for a real model) concurrency is what
// matters: 64 in flight against the naive one-at-a-time client.
TEST(ClientThroughput, TwentyMsServerLatency) {
    test::FakeOpenAi server(
        [](const nlohmann::json&, int) {
            return test::FakeReply::text(std::string(300, 'a')).delay(20);
        },
        /*threads=*/72);
    ASSERT_TRUE(server.start().ok());
    ChatRequest r;
    r.model = "fake";
    r.messages = {ChatMessage::text("user", std::string(1500, 'c'))};
    ClientOptions o;
    o.base_url = server.base_url();
    o.max_concurrency = 64;
    auto client = std::move(make_http_client(o)).value();
    const int n = 1500;
    int ok = 0;
    const double c0 = thread_cpu_s(), t0 = now_s();
    ASSERT_TRUE(client
                    ->run_batch(std::vector<ChatRequest>(n, r),
                                [&](size_t, Result<ChatResponse> res) { ok += res.ok(); })
                    .ok());
    const double wall = now_s() - t0, cpu = thread_cpu_s() - c0;
    EXPECT_EQ(ok, n);

    const int nb = 50;
    const std::string body = request_body(r);
    const std::string url = server.base_url() + "/chat/completions";
    const double bt0 = now_s();
    for (int i = 0; i < nb; ++i) {
        CURL* e = curl_easy_init();
        std::string out;
        curl_easy_setopt(e, CURLOPT_URL, url.c_str());
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.c_str());
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &out);
        EXPECT_EQ(curl_easy_perform(e), CURLE_OK);
        curl_easy_cleanup(e);
    }
    const double bwall = now_s() - bt0;
    std::printf(
        "[throughput 20 ms latency] medforge client, 64 in flight: %.0f requests/s, CPU %.1f "
        "us/request; naive blocking client: %.0f requests/s; ratio %.1fx\n",
        n / wall, cpu / n * 1e6, nb / bwall, (n / wall) / (nb / bwall));
    EXPECT_GT(n / wall, 5 * nb / bwall);  // concurrency must pay off by a wide margin
}

}  // namespace
}  // namespace mf::llm
