// medforge serve over real HTTP on loopback, with tiny checkpoints from model::init_model:
// results against Engine::chat, streaming, batching, hostile input, the official openai client.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "io/image.h"
#include "llm/client.h"
#include "model/engine.h"
#include "model/model_test_util.h"
#include "serve/server.h"

namespace mf::serve {
namespace {

using nlohmann::json;
using namespace mf::model::testing;
namespace fs = std::filesystem;

io::Image test_image(int w, int h, int salt = 0) {
    io::Image im;
    im.width = w;
    im.height = h;
    im.pixels.resize(static_cast<size_t>(w) * h * 3);
    for (size_t i = 0; i < im.pixels.size(); ++i)
        im.pixels[i] = static_cast<uint8_t>((i * 7 + salt) % 251);
    return im;
}

struct Harness {
    mf::test::TempDir tmp;
    fs::path dir;
    std::unique_ptr<Server> server;
    explicit Harness(const std::string& arch, ServeOptions o = {}) {
        dir = make_model(tmp, arch, false);
        auto e = model::Engine::load(dir);
        EXPECT_TRUE(e.ok()) << e.status().to_string();
        o.port = 0;
        server = std::make_unique<Server>(o);
        auto st = server->start(std::move(*e));
        EXPECT_TRUE(st.ok()) << st.to_string();
    }
    std::unique_ptr<httplib::Client> client() const {
        auto c = std::make_unique<httplib::Client>("127.0.0.1", server->port());
        c->set_read_timeout(120, 0);
        c->set_write_timeout(120, 0);
        return c;
    }
    httplib::Result post(const json& body, const httplib::Headers& h = {}) const {
        return client()->Post("/v1/chat/completions", h, body.dump(), "application/json");
    }
};

json simple(const std::string& text, int max_tokens) {
    return json{{"messages", json::array({json{{"role", "user"}, {"content", text}}})},
                {"max_tokens", max_tokens},
                {"temperature", 0}};
}

// What a JSON string of `s` reads back as: the server's JSON replaces invalid UTF-8 (random
// weights write plenty) with U+FFFD, as OpenAI's does.
std::string sanitized(const std::string& s) {
    return json::parse(json(s).dump(-1, ' ', false, json::error_handler_t::replace))
        .get<std::string>();
}

// data: lines of an SSE body
std::vector<std::string> sse_events(const std::string& body) {
    std::vector<std::string> out;
    size_t at = 0;
    while (at < body.size()) {
        size_t end = body.find("\n\n", at);
        if (end == std::string::npos) end = body.size();
        std::string ev = body.substr(at, end - at);
        if (ev.rfind("data: ", 0) == 0) out.push_back(ev.substr(6));
        at = end + 2;
    }
    return out;
}

TEST(Serve, PlainAndStreamingEqualEngineChat) {
    Harness h("llava-qwen2");
    auto ref_engine = model::Engine::load(h.dir);
    ASSERT_TRUE(ref_engine.ok());
    const std::string jpeg = io::encode_jpeg(test_image(40, 30));
    auto decoded = io::decode_image_bytes(jpeg);
    ASSERT_TRUE(decoded.ok());
    model::SamplingParams sp;
    sp.max_tokens = 12;
    auto ref = (*ref_engine)->chat({{"user", "What is shown?"}}, {decoded.image}, sp);
    ASSERT_TRUE(ref.ok()) << ref.status().to_string();

    json body = {
        {"model", h.dir.filename().string()},
        {"max_tokens", 12},
        {"temperature", 0},
        {"messages",
         json::array({json{
             {"role", "user"},
             {"content",
              json::array({json{{"type", "image_url"},
                                {"image_url",
                                 {{"url", "data:image/jpeg;base64," + llm::base64_encode(jpeg)}}}},
                           json{{"type", "text"}, {"text", "What is shown?"}}})}}})}};
    auto res = h.post(body);
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    json j = json::parse(res->body);
    EXPECT_EQ(j["object"], "chat.completion");
    EXPECT_EQ(j["choices"][0]["message"]["content"], sanitized(ref->text));
    EXPECT_EQ(j["choices"][0]["finish_reason"], ref->finish_reason);
    EXPECT_EQ(j["usage"]["prompt_tokens"], ref->prompt_tokens);
    EXPECT_EQ(j["usage"]["completion_tokens"], static_cast<int64_t>(ref->tokens.size()));
    EXPECT_EQ(j["usage"]["total_tokens"],
              ref->prompt_tokens + static_cast<int64_t>(ref->tokens.size()));

    body["stream"] = true;
    auto sres = h.post(body);
    ASSERT_TRUE(sres);
    ASSERT_EQ(sres->status, 200);
    EXPECT_NE(sres->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
    auto events = sse_events(sres->body);
    ASSERT_GE(events.size(), 3u);
    EXPECT_EQ(events.back(), "[DONE]");
    std::string streamed;
    json last;
    for (size_t i = 0; i + 1 < events.size(); ++i) {
        json c = json::parse(events[i]);
        EXPECT_EQ(c["object"], "chat.completion.chunk");
        if (c["choices"][0]["delta"].contains("content"))
            streamed += c["choices"][0]["delta"]["content"].get<std::string>();
        if (i + 2 < events.size()) EXPECT_TRUE(c["choices"][0]["finish_reason"].is_null());
        last = c;
    }
    EXPECT_EQ(streamed, sanitized(ref->text));
    EXPECT_EQ(last["choices"][0]["finish_reason"], ref->finish_reason);
    EXPECT_EQ(last["usage"]["completion_tokens"], static_cast<int64_t>(ref->tokens.size()));
    EXPECT_EQ(last["usage"]["prompt_tokens"], ref->prompt_tokens);

    // the same image again comes from the embedding cache, with the same answer
    body.erase("stream");
    auto again = h.post(body);
    ASSERT_TRUE(again);
    EXPECT_EQ(json::parse(again->body)["choices"][0]["message"]["content"], sanitized(ref->text));
    auto metrics = h.client()->Get("/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_NE(metrics->body.find("medforge_image_cache_hits_total 2"), std::string::npos)
        << metrics->body;
    EXPECT_NE(metrics->body.find("medforge_requests_total{status=\"200\"} 3"), std::string::npos);
}

TEST(Serve, StopStringsSeedAndModels) {
    Harness h("qwen2");
    auto ref_engine = model::Engine::load(h.dir);
    ASSERT_TRUE(ref_engine.ok());
    model::SamplingParams sp;
    sp.max_tokens = 16;
    sp.temperature = 1.3;
    sp.top_p = 0.9;
    sp.seed = 5;
    auto ref = (*ref_engine)->chat({{"system", "Be brief."}, {"user", "hi"}}, {}, sp);
    ASSERT_TRUE(ref.ok());
    json body = {{"messages", json::array({json{{"role", "system"}, {"content", "Be brief."}},
                                           json{{"role", "user"}, {"content", "hi"}}})},
                 {"max_completion_tokens", 16},
                 {"temperature", 1.3},
                 {"top_p", 0.9},
                 {"seed", 5}};
    auto res = h.post(body);
    ASSERT_TRUE(res && res->status == 200);
    EXPECT_EQ(json::parse(res->body)["choices"][0]["message"]["content"], sanitized(ref->text));
    // a stop string taken from the reference text cuts there
    size_t at = std::string::npos;  // two ASCII letters after the start
    for (size_t i = 2; i + 1 < ref->text.size() && at == std::string::npos; ++i)
        if (std::isalpha(static_cast<unsigned char>(ref->text[i])) &&
            std::isalpha(static_cast<unsigned char>(ref->text[i + 1])))
            at = i;
    if (at != std::string::npos) {
        std::string stop = ref->text.substr(at, 2);
        sp.stop = {stop};
        auto r2 = (*ref_engine)->chat({{"system", "Be brief."}, {"user", "hi"}}, {}, sp);
        body["stop"] = stop;
        auto res2 = h.post(body);
        ASSERT_TRUE(res2 && res2->status == 200);
        json j = json::parse(res2->body);
        EXPECT_EQ(j["choices"][0]["message"]["content"], sanitized(r2->text));
        EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
    }
    auto models = h.client()->Get("/v1/models");
    ASSERT_TRUE(models && models->status == 200);
    EXPECT_EQ(json::parse(models->body)["data"][0]["id"], h.dir.filename().string());
    auto health = h.client()->Get("/health");
    ASSERT_TRUE(health && health->status == 200);
}

TEST(Serve, ConcurrentBatchedRequestsEqualUnbatched) {
    ServeOptions o;
    o.max_batch = 8;
    Harness h("qwen2", o);
    auto ref_engine = model::Engine::load(h.dir);
    ASSERT_TRUE(ref_engine.ok());
    const int N = 6;
    std::vector<std::string> prompts;
    for (int i = 0; i < N; ++i)
        prompts.push_back(std::string(i + 1, 'a' + i) + " question " + std::to_string(i * 37));
    std::vector<std::string> got(N);
    std::vector<int> status(N);
    std::vector<std::thread> ts;
    for (int i = 0; i < N; ++i)
        ts.emplace_back([&, i] {
            json b = simple(prompts[i], 24 + i);
            b["stop"] = json::array({"zzzz-never"});
            auto r = h.post(b);
            status[i] = r ? r->status : -1;
            if (r && r->status == 200)
                got[i] = json::parse(r->body)["choices"][0]["message"]["content"];
        });
    for (auto& t : ts)
        t.join();
    for (int i = 0; i < N; ++i) {
        ASSERT_EQ(status[i], 200);
        model::SamplingParams sp;
        sp.max_tokens = 24 + i;
        auto ref = (*ref_engine)->chat({{"user", prompts[i]}}, {}, sp);
        ASSERT_TRUE(ref.ok());
        EXPECT_EQ(got[i], sanitized(ref->text)) << "request " << i;
    }
    // the requests really were decoded together: more sequences than steps
    auto m = h.client()->Get("/metrics")->body;
    auto value = [&](const std::string& name) {
        size_t at = m.find("\n" + name + " ");
        return at == std::string::npos ? -1.0 : std::stod(m.substr(at + name.size() + 2));
    };
    EXPECT_GT(value("medforge_decode_batch_tokens_total"),
              1.5 * value("medforge_decode_steps_total"))
        << m;
    // where the time went: both kinds of forward were timed
    EXPECT_GT(value("medforge_prefill_seconds_total"), 0.0) << m;
    EXPECT_GT(value("medforge_decode_seconds_total"), 0.0) << m;
}

// Requests that share a long system prompt: later ones restore its keys/values from the prefix
// cache (usage.prompt_tokens_details.cached_tokens, whole 16-position blocks, the metric) and
// still answer exactly as the engine does without any cache; with the cache off nothing is reused.
TEST(Serve, SharedPromptStartComesFromThePrefixCache) {
    const std::string system =
        "You are a radiology assistant. Read the case, list the findings, then give one short "
        "impression. Use plain words and keep every sentence short.";
    for (size_t budget : {size_t{64} << 20, size_t{0}}) {
        ServeOptions o;
        o.prefix_cache_bytes = budget;
        Harness h("qwen2", o);
        auto ref_engine = model::Engine::load(h.dir);
        ASSERT_TRUE(ref_engine.ok());
        int64_t cached_total = 0;
        for (int i = 0; i < 3; ++i) {
            const std::string user = "case " + std::to_string(100 + 17 * i) + ": what is seen?";
            json b{{"messages", json::array({json{{"role", "system"}, {"content", system}},
                                             json{{"role", "user"}, {"content", user}}})},
                   {"max_tokens", 12},
                   {"temperature", 0}};
            auto r = h.post(b);
            ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no response");
            auto j = json::parse(r->body);
            const int64_t cached = j["usage"]["prompt_tokens_details"]["cached_tokens"];
            const int64_t prompt = j["usage"]["prompt_tokens"];
            EXPECT_EQ(cached % 16, 0);
            EXPECT_LT(cached, prompt);
            if (budget == 0 || i == 0)
                EXPECT_EQ(cached, 0) << i;
            else
                EXPECT_GE(cached, 16) << i;  // the system prompt alone is longer than a block
            cached_total += cached;
            model::SamplingParams sp;
            sp.max_tokens = 12;
            auto ref = (*ref_engine)->chat({{"system", system}, {"user", user}}, {}, sp);
            ASSERT_TRUE(ref.ok());
            EXPECT_EQ(j["choices"][0]["message"]["content"], sanitized(ref->text)) << i;
        }
        auto m = h.client()->Get("/metrics")->body;
        const std::string name = "\nmedforge_prefix_cache_hit_tokens_total ";
        size_t at = m.find(name);
        ASSERT_NE(at, std::string::npos) << m;
        EXPECT_EQ(std::stoll(m.substr(at + name.size())), cached_total);
    }
}

TEST(Serve, BadRequestsGetOpenAIErrors) {
    ServeOptions o;
    o.max_body_bytes = 8 << 20;
    o.images.max_images = 2;
    Harness h("llava-qwen2", o);
    auto c = h.client();
    auto expect_error = [&](const httplib::Result& r, int status, const std::string& param,
                            const std::string& what) {
        ASSERT_TRUE(r) << what;
        EXPECT_EQ(r->status, status) << what << ": " << r->body;
        json j = json::parse(r->body, nullptr, false);
        ASSERT_TRUE(j.is_object() && j.contains("error")) << what << ": " << r->body;
        EXPECT_TRUE(j["error"]["message"].is_string());
        EXPECT_TRUE(j["error"]["type"].is_string());
        EXPECT_TRUE(j["error"].contains("code"));
        if (!param.empty()) EXPECT_EQ(j["error"]["param"], param) << what;
    };
    expect_error(c->Post("/v1/chat/completions", "{not json", "application/json"), 400, "",
                 "bad json");
    expect_error(h.post(json{{"max_tokens", 3}}), 400, "messages", "no messages");
    expect_error(
        h.post(json{{"messages", json::array({json{{"role", "robot"}, {"content", "x"}}})}}), 400,
        "messages[0].role", "bad role");
    json b = simple("x", 3);
    b["temperature"] = "hot";
    expect_error(h.post(b), 400, "temperature", "bad temperature");
    b = simple("x", 0);
    expect_error(h.post(b), 400, "max_tokens", "zero max_tokens");
    b = simple("x", 3);
    b["model"] = "gpt-4o";
    expect_error(h.post(b), 404, "model", "unknown model");
    auto img = [](const std::string& url) {
        return json{{"messages",
                     json::array({json{
                         {"role", "user"},
                         {"content",
                          json::array({json{{"type", "image_url"}, {"image_url", {{"url", url}}}},
                                       json{{"type", "text"}, {"text", "?"}}})}}})},
                    {"max_tokens", 2}};
    };
    // an invalid image: base64 of bytes that are no image; broken base64
    expect_error(
        h.post(img("data:image/png;base64," + llm::base64_encode("this is not a png at all"))), 400,
        "messages[0].content[0].image_url", "invalid image");
    expect_error(h.post(img("data:image/png;base64,@@@@")), 400, "messages[0].content[0].image_url",
                 "bad base64");
    expect_error(h.post(img("https://example.com/x.png")), 400, "messages[0].content[0].image_url",
                 "remote refused");
    expect_error(h.post(img("/etc/passwd")), 400, "messages[0].content[0].image_url",
                 "local path refused");
    expect_error(h.post(img("file:///etc/passwd")), 400, "messages[0].content[0].image_url",
                 "file url refused");
    // too many images -> 422
    {
        std::string url =
            "data:image/jpeg;base64," + llm::base64_encode(io::encode_jpeg(test_image(8, 8)));
        json parts = json::array();
        for (int i = 0; i < 3; ++i)
            parts.push_back(json{{"type", "image_url"}, {"image_url", {{"url", url}}}});
        expect_error(
            h.post(json{{"messages", json::array({json{{"role", "user"}, {"content", parts}}})}}),
            422, "messages", "too many images");
    }
    // 50 MB of base64 -> 413
    {
        std::string big =
            R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,)";
        big.append(50u << 20, 'A');
        big += R"("}}]}]})";
        expect_error(c->Post("/v1/chat/completions", big, "application/json"), 413, "",
                     "50 MB body");
    }
    // 10,000 messages -> 422 (context)
    {
        json msgs = json::array();
        for (int i = 0; i < 10000; ++i)
            msgs.push_back(
                json{{"role", i % 2 ? "assistant" : "user"}, {"content", "hello there"}});
        expect_error(h.post(json{{"messages", msgs}, {"max_tokens", 4}}), 422, "messages",
                     "10k messages");
    }
    // max_tokens beyond the context -> 422
    expect_error(h.post(simple("x", 1 << 20)), 422, "max_tokens", "max_tokens > context");
    expect_error(c->Get("/v1/nothing"), 404, "", "unknown route");
    // still healthy
    auto ok = h.post(simple("hello", 2));
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200);
}

TEST(Serve, LocalImagesOnlyUnderTheAllowedFolder) {
    mf::test::TempDir imgs;
    const std::string jpeg = io::encode_jpeg(test_image(20, 20));
    mf::test::write_text(imgs / "a.jpg", jpeg);
    ServeOptions o;
    o.images.allow_dir = imgs.path();
    Harness h("llava-qwen2", o);
    auto img = [](const std::string& url) {
        return json{
            {"messages",
             json::array({json{{"role", "user"},
                               {"content", json::array({json{{"type", "image_url"},
                                                             {"image_url", {{"url", url}}}}})}}})},
            {"max_tokens", 2}};
    };
    auto r = h.post(img((imgs / "a.jpg").string()));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    r = h.post(img("file://" + (imgs / "a.jpg").string()));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    r = h.post(img((imgs / ".." / "a.jpg").string()));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << r->body;
    r = h.post(img("/etc/hostname"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << r->body;
    EXPECT_NE(r->body.find("outside the allowed image folder"), std::string::npos) << r->body;
}

TEST(Serve, ApiKeyIsRequiredWhenSet) {
    ServeOptions o;
    o.api_key = "sk-test-123";
    Harness h("qwen2", o);
    auto r = h.post(simple("hi", 2));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401);
    EXPECT_EQ(json::parse(r->body)["error"]["code"], "invalid_api_key");
    r = h.post(simple("hi", 2), {{"Authorization", "Bearer sk-test-124"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401);
    r = h.post(simple("hi", 2), {{"Authorization", "Bearer sk-test-123"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(keys_equal("abc", "abc"));
    EXPECT_FALSE(keys_equal("abcd", "abc"));
    EXPECT_FALSE(keys_equal("", "abc"));
    EXPECT_FALSE(keys_equal("abd", "abc"));
}

TEST(Serve, StalledClientIsDroppedWithoutBlockingOthers) {
    ServeOptions o;
    o.read_timeout_s = 1;
    Harness h("qwen2", o);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(h.server->port()));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    std::string half =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n{\"messages\": [";
    ASSERT_EQ(send(fd, half.data(), half.size(), 0), static_cast<ssize_t>(half.size()));
    auto t0 = std::chrono::steady_clock::now();
    auto r = h.post(simple("hello", 3));  // served while the other one stalls
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
    }
    double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(n, 0) << "the server should close the stalled connection";
    EXPECT_LT(waited, 8.0);
    close(fd);
}

TEST(Serve, ManyParallelConnectionsGetAnswersOrQueueFull) {
    ServeOptions o;
    o.max_queue = 8;
    o.max_batch = 4;
    o.http_threads = 64;
    Harness h("qwen2", o);
    const int N = 220;
    std::vector<int> status(N, -1);
    std::vector<std::string> errors(N);
    std::vector<std::thread> ts;
    for (int i = 0; i < N; ++i)
        ts.emplace_back([&, i] {
            httplib::Client c("127.0.0.1", h.server->port());
            c.set_read_timeout(120, 0);
            c.set_connection_timeout(60, 0);
            auto r = c.Post("/v1/chat/completions", simple("hi " + std::to_string(i), 3).dump(),
                            "application/json");
            status[i] = r ? r->status : -1;
            if (!r) errors[i] = httplib::to_string(r.error());
        });
    for (auto& t : ts)
        t.join();
    int ok = 0, full = 0;
    for (int i = 0; i < N; ++i) {
        const int s = status[i];
        EXPECT_TRUE(s == 200 || s == 429) << s << " " << errors[i];
        ok += s == 200;
        full += s == 429;
    }
    EXPECT_GT(ok, 0);
    EXPECT_GT(full, 0) << "a queue of 8 should overflow with 220 clients";
    auto health = h.client()->Get("/health");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    auto m = h.client()->Get("/metrics")->body;
    EXPECT_NE(m.find("medforge_requests_total{status=\"429\"} " + std::to_string(full)),
              std::string::npos)
        << m;
}

TEST(Serve, JsonModeValidatesAndRetries) {
    Harness h("qwen2");
    json b = simple("Reply with a JSON object.", 6);
    b["response_format"] = {{"type", "json_object"}};
    auto r = h.post(b);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    // random weights do not write JSON: the server says so after its retries
    json j = json::parse(r->body);
    std::string content = j["choices"][0]["message"]["content"];
    EXPECT_EQ(r->get_header_value("X-Medforge-Json-Valid"),
              is_json_object(content) ? "true" : "false");
    if (!is_json_object(content)) {
        auto m = h.client()->Get("/metrics")->body;
        EXPECT_NE(m.find("medforge_json_retries_total 2"), std::string::npos) << m;
        EXPECT_GT(j["usage"]["completion_tokens"].get<int>(), 6);  // all attempts are counted
    }
    EXPECT_TRUE(is_json_object(" {\"a\": [1, 2]}\n"));
    EXPECT_FALSE(is_json_object("[1]"));
    EXPECT_FALSE(is_json_object("{\"a\": 1"));
    b["response_format"] = {{"type", "xml"}};
    r = h.post(b);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
}

TEST(Serve, LoadingFailureAnswers503AndShutdownFinishesInFlight) {
    {
        ServeOptions so;
        so.port = 0;
        Server s(so);
        mf::test::TempDir tmp;
        ASSERT_TRUE(s.start(tmp.path() / "missing", {}).ok());
        EXPECT_FALSE(s.wait_ready());
        httplib::Client c("127.0.0.1", s.port());
        auto r = c.Post("/v1/chat/completions", simple("hi", 2).dump(), "application/json");
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 503);
        EXPECT_EQ(json::parse(r->body)["error"]["code"], "model_loading");
        auto hl = c.Get("/health");
        ASSERT_TRUE(hl);
        EXPECT_EQ(hl->status, 503);
    }
    Harness h("qwen2");
    int status = -1;
    std::string finish;
    std::thread t([&] {
        auto r = h.post(simple("a long answer please", 200));
        status = r ? r->status : -2;
        if (r && r->status == 200) finish = json::parse(r->body)["choices"][0]["finish_reason"];
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    h.server->shutdown();  // returns after the request above was answered
    t.join();
    EXPECT_EQ(status, 200);
    EXPECT_FALSE(finish.empty());
}

// A number from Prometheus text: the line "name value" (-1 when absent).
double metric(const std::string& text, const std::string& name) {
    size_t at = text.find("\n" + name + " ");
    return at == std::string::npos ? -1.0 : std::stod(text.substr(at + name.size() + 2));
}

// Polls /metrics until `pred` holds (true) or 120 s pass (false): a wait for a state the server
// reaches on its own, not a timing assertion.
bool wait_metrics(const Harness& h, const std::function<bool(const std::string&)>& pred,
                  std::string* last = nullptr) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    std::string m;
    while (std::chrono::steady_clock::now() < end) {
        auto r = h.client()->Get("/metrics");
        if (r) m = r->body;
        if (pred(m)) {
            if (last) *last = m;
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (last) *last = m;
    return false;
}

// A raw loopback connection, so that the test can walk away mid-answer.
int connect_loopback(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

bool send_post(int fd, const json& body) {
    const std::string b = body.dump();
    const std::string req =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
        "application/json\r\nContent-Length: " +
        std::to_string(b.size()) + "\r\n\r\n" + b;
    return send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size());
}

TEST(Serve, Answers503WhileLoadingThen200) {
    mf::test::TempDir tmp;
    const fs::path dir = make_model(tmp, "qwen2", false);
    ServeOptions o;
    o.port = 0;
    Server server(o);
    // the loader waits for the test (a latch, not a sleep); released on every exit path
    struct Gate {
        std::promise<void> p;
        std::shared_future<void> f = p.get_future().share();
        bool open = false;
        void release() {
            if (!open) p.set_value();
            open = true;
        }
        ~Gate() { release(); }
    } gate;
    std::atomic<bool> loader_ran{false};
    ASSERT_TRUE(server
                    .start([&loader_ran, f = gate.f, dir]() {
                        loader_ran = true;
                        f.wait();
                        return model::Engine::load(dir);
                    })
                    .ok());
    httplib::Client c("127.0.0.1", server.port());
    c.set_read_timeout(120, 0);
    EXPECT_FALSE(server.ready());
    auto r = c.Post("/v1/chat/completions", simple("hi", 3).dump(), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503) << r->body;
    json err = json::parse(r->body);
    EXPECT_EQ(err["error"]["code"], "model_loading");
    EXPECT_NE(err["error"]["message"].get<std::string>().find("loading"), std::string::npos);
    EXPECT_EQ(r->get_header_value("Retry-After"), "5");
    auto hl = c.Get("/health");
    ASSERT_TRUE(hl);
    EXPECT_EQ(hl->status, 503);
    EXPECT_EQ(json::parse(hl->body)["status"], "loading");
    auto models = c.Get("/v1/models");
    ASSERT_TRUE(models);
    EXPECT_EQ(models->status, 503);
    auto m = c.Get("/metrics");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->status, 200);
    EXPECT_EQ(metric(m->body, "medforge_model_ready"), 0) << m->body;
    EXPECT_NE(m->body.find("medforge_requests_total{status=\"503\"} 1"), std::string::npos);
    EXPECT_FALSE(server.ready());

    gate.release();
    ASSERT_TRUE(server.wait_ready()) << server.load_error().to_string();
    EXPECT_TRUE(loader_ran);
    r = c.Post("/v1/chat/completions", simple("hi", 3).dump(), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(json::parse(r->body)["usage"]["completion_tokens"].get<int>() > 0, true);
    hl = c.Get("/health");
    ASSERT_TRUE(hl);
    EXPECT_EQ(hl->status, 200);
    EXPECT_EQ(metric(c.Get("/metrics")->body, "medforge_model_ready"), 1);
}

TEST(Serve, BadCheckpointFailsToLoadWithAClearErrorAndNoHang) {
    mf::test::TempDir tmp;
    const fs::path good = make_model(tmp, "qwen2", false);
    struct Case {
        std::string what;
        fs::path dir;
        std::string expect;  // in the error
    };
    std::vector<Case> cases;
    // a config.json that is not JSON
    fs::create_directories(tmp / "badjson");
    for (const auto& e : fs::directory_iterator(good))
        fs::copy(e.path(), tmp / "badjson" / e.path().filename());
    mf::test::write_text(tmp / "badjson" / "config.json", "{ not json");
    cases.push_back({"bad config.json", tmp / "badjson", "config.json"});
    // no weights
    fs::create_directories(tmp / "noweights");
    for (const auto& e : fs::directory_iterator(good))
        if (e.path().extension() != ".safetensors")
            fs::copy(e.path(), tmp / "noweights" / e.path().filename());
    cases.push_back({"no weights", tmp / "noweights", "safetensors"});
    cases.push_back({"missing folder", tmp / "missing", "missing"});
    for (const auto& cs : cases) {
        ServeOptions o;
        o.port = 0;
        Server server(o);
        ASSERT_TRUE(server.start(cs.dir, {}).ok());
        EXPECT_FALSE(server.wait_ready()) << cs.what;  // returns: the load ended in failure
        const std::string msg = server.load_error().to_string();
        EXPECT_FALSE(server.load_error().ok()) << cs.what;
        EXPECT_NE(msg.find(cs.expect), std::string::npos) << cs.what << ": " << msg;
        httplib::Client c("127.0.0.1", server.port());
        auto r = c.Post("/v1/chat/completions", simple("hi", 2).dump(), "application/json");
        ASSERT_TRUE(r) << cs.what;
        EXPECT_EQ(r->status, 503);
        json err = json::parse(r->body);
        EXPECT_EQ(err["error"]["code"], "model_loading");
        EXPECT_NE(err["error"]["message"].get<std::string>().find("failed to load"),
                  std::string::npos)
            << r->body;
        auto hl = c.Get("/health");
        ASSERT_TRUE(hl);
        EXPECT_EQ(hl->status, 503);
        EXPECT_EQ(json::parse(hl->body)["status"], "error");
        EXPECT_NE(json::parse(hl->body)["error"].get<std::string>().find(cs.expect),
                  std::string::npos);
    }
    // a loader that throws is a load error too
    ServeOptions o;
    o.port = 0;
    Server server(o);
    ASSERT_TRUE(server
                    .start([]() -> Result<std::unique_ptr<model::Engine>> {
                        throw std::runtime_error("disk on fire");
                    })
                    .ok());
    EXPECT_FALSE(server.wait_ready());
    EXPECT_NE(server.load_error().to_string().find("disk on fire"), std::string::npos);
}

TEST(Serve, ClientDisconnectCancelsTheSequence) {
    ServeOptions o;
    o.max_batch = 2;
    Harness h("qwen2", o);
    const int kMax = 4000;
    json body = simple("tell me everything", kMax);
    body["ignore_eos"] = true;  // random weights: only the disconnect can end it early

    // 1. streaming: read until the first content chunk, then close the socket
    body["stream"] = true;
    int fd = connect_loopback(h.server->port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_post(fd, body));
    std::string got;
    char buf[4096];
    timeval tv{60, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    auto events = [&] {
        size_t n = 0;
        for (size_t at = got.find("data: "); at != std::string::npos;
             at = got.find("data: ", at + 1))
            ++n;
        return n;
    };
    while (events() < 2) {  // the role chunk, then the first content chunk
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        ASSERT_GT(n, 0) << got;
        got.append(buf, static_cast<size_t>(n));
    }
    EXPECT_NE(got.find("200 OK"), std::string::npos) << got;
    close(fd);
    std::string m;
    ASSERT_TRUE(wait_metrics(
        h,
        [](const std::string& t) {
            return metric(t, "medforge_requests_cancelled_total") == 1 &&
                   metric(t, "medforge_active_sequences") == 0;
        },
        &m))
        << m;
    const double streamed_tokens = metric(m, "medforge_cancelled_completion_tokens_total");
    EXPECT_GE(streamed_tokens, 1);
    EXPECT_LT(streamed_tokens, kMax / 4) << "the sequence decoded on after the client left";
    EXPECT_LT(metric(m, "medforge_decode_batch_tokens_total"), kMax / 4);
    EXPECT_NE(m.find("medforge_requests_total{status=\"499\"} 1"), std::string::npos) << m;

    // 2. not streaming: close (with a reset) while the sequence is being decoded
    body.erase("stream");
    fd = connect_loopback(h.server->port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_post(fd, body));
    ASSERT_TRUE(wait_metrics(
        h, [](const std::string& t) { return metric(t, "medforge_active_sequences") == 1; }, &m))
        << m;
    linger lg{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
    ASSERT_TRUE(wait_metrics(
        h,
        [](const std::string& t) {
            return metric(t, "medforge_requests_cancelled_total") == 2 &&
                   metric(t, "medforge_active_sequences") == 0;
        },
        &m))
        << m;
    const double plain_tokens =
        metric(m, "medforge_cancelled_completion_tokens_total") - streamed_tokens;
    EXPECT_GE(plain_tokens, 1);
    EXPECT_LT(plain_tokens, kMax / 4);
    EXPECT_EQ(metric(m, "medforge_completion_tokens_total"), 0);  // nothing was answered

    // 3. the server goes on serving, streaming and not
    auto r = h.post(simple("hello", 3));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    json sb = simple("hello", 3);
    sb["stream"] = true;
    r = h.post(sb);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(sse_events(r->body).back(), "[DONE]");
    m = h.client()->Get("/metrics")->body;
    EXPECT_EQ(metric(m, "medforge_requests_cancelled_total"), 2) << m;
    EXPECT_NE(m.find("medforge_requests_total{status=\"200\"} 2"), std::string::npos) << m;
}

TEST(Serve, ClientThatLeavesWhileQueuedLeavesTheQueue) {
    ServeOptions o;
    o.max_batch = 1;  // A decodes; B waits in the queue
    Harness h("qwen2", o);
    json body = simple("a long answer", 4000);
    body["ignore_eos"] = true;
    int a = connect_loopback(h.server->port());
    ASSERT_GE(a, 0);
    ASSERT_TRUE(send_post(a, body));
    std::string m;
    ASSERT_TRUE(wait_metrics(
        h, [](const std::string& t) { return metric(t, "medforge_active_sequences") == 1; }, &m))
        << m;
    int b = connect_loopback(h.server->port());
    ASSERT_GE(b, 0);
    ASSERT_TRUE(send_post(b, simple("queued", 3)));
    ASSERT_TRUE(wait_metrics(
        h, [](const std::string& t) { return metric(t, "medforge_queue_depth") == 1; }, &m))
        << m;
    close(b);
    // B is let go while A still holds the only slot: it never started
    ASSERT_TRUE(wait_metrics(
        h,
        [](const std::string& t) {
            return metric(t, "medforge_requests_cancelled_total") == 1 &&
                   metric(t, "medforge_queue_depth") == 0;
        },
        &m))
        << m;
    EXPECT_EQ(metric(m, "medforge_active_sequences"), 1) << m;
    EXPECT_EQ(metric(m, "medforge_prefills_total"), 1) << m;
    EXPECT_EQ(metric(m, "medforge_cancelled_completion_tokens_total"), 0) << m;
    close(a);
    ASSERT_TRUE(wait_metrics(
        h,
        [](const std::string& t) {
            return metric(t, "medforge_requests_cancelled_total") == 2 &&
                   metric(t, "medforge_active_sequences") == 0;
        },
        &m))
        << m;
    EXPECT_LT(metric(m, "medforge_cancelled_completion_tokens_total"), 1000) << m;
    auto r = h.post(simple("next", 2));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
}

TEST(Serve, SchedulerPrefillsWaitingJobsTogether) {
    mf::test::TempDir tmp;
    const fs::path dir = make_model(tmp, "llava-qwen2", false);
    auto engine = model::Engine::load(dir);
    auto ref = model::Engine::load(dir);
    ASSERT_TRUE(engine.ok() && ref.ok());
    const std::vector<std::string> prompts = {"hi", "what is in this picture?",
                                              "a much longer question about the patient with "
                                              "several clauses, numbers 1 2 3 and more words",
                                              "x", "tell me about the image"};
    const io::Image img = test_image(24, 18);
    const int with_image = 1;  // prompts[1] comes with an image
    std::vector<model::GenerationResult> want;
    model::SamplingParams sp;
    sp.max_tokens = 8;
    for (size_t i = 0; i < prompts.size(); ++i) {
        auto g = (*ref)->chat({{"user", prompts[i]}},
                              static_cast<int>(i) == with_image ? std::vector<io::Image>{img}
                                                                : std::vector<io::Image>{},
                              sp);
        ASSERT_TRUE(g.ok()) << g.status().to_string();
        want.push_back(*g);
    }
    // all waiting jobs in one packed forward; then at most 1 position per forward (each alone)
    for (int64_t cap : {int64_t{4096}, int64_t{1}}) {
        std::mutex tok_mu;
        SchedulerOptions so;
        so.max_batch = 8;
        so.max_prefill_tokens = cap;
        Scheduler sch(**engine, tok_mu, so);
        sch.hold(true);
        std::vector<std::shared_ptr<Job>> jobs;
        for (size_t i = 0; i < prompts.size(); ++i) {
            auto j = std::make_shared<Job>();
            const bool im = static_cast<int>(i) == with_image;
            auto ids = (*engine)->prompt_ids({{"user", prompts[i]}}, im ? 1 : 0);
            ASSERT_TRUE(ids.ok());
            j->ids = *ids;
            j->prompt_positions = (*engine)->model()->expanded_length(j->ids);
            if (im) {
                auto px = (*engine)->pixels({img});
                ASSERT_TRUE(px.ok());
                j->pixels = *px;
                j->image_keys = {"img"};
            }
            j->sampling = sp;
            ASSERT_TRUE(sch.submit(j));
            jobs.push_back(j);
        }
        EXPECT_EQ(sch.queue_depth(), prompts.size());
        sch.hold(false);
        for (size_t i = 0; i < jobs.size(); ++i) {
            std::unique_lock lk(jobs[i]->mu);
            jobs[i]->cv.wait(lk, [&] { return jobs[i]->done; });
            EXPECT_FALSE(jobs[i]->error) << jobs[i]->error->message;
            EXPECT_EQ(jobs[i]->text, want[i].text) << "cap " << cap << " job " << i;
            EXPECT_EQ(jobs[i]->finish_reason, want[i].finish_reason);
            EXPECT_EQ(jobs[i]->completion_tokens, static_cast<int64_t>(want[i].tokens.size()));
            EXPECT_EQ(jobs[i]->prompt_positions, want[i].prompt_tokens);
        }
        auto st = sch.stats();
        EXPECT_EQ(st.prefills, static_cast<int64_t>(prompts.size()));
        EXPECT_EQ(st.prefill_forwards, cap == 1 ? static_cast<int64_t>(prompts.size()) : 1)
            << "cap " << cap;
    }
}

TEST(Serve, OfficialOpenAINodeClient) {
    fs::path modules = mf::test::source_dir() / "build/npm/node_modules";
    if (const char* d = std::getenv("MF_NPM_DIR")) modules = fs::path(d) / "node_modules";
    if (!fs::exists(modules / "openai/package.json") ||
        std::system("node --version >/dev/null 2>&1") != 0)
        GTEST_SKIP()
            << "needs node and the openai npm package in build/npm (scripts/setup.sh installs it)";
    ServeOptions o;
    o.api_key = "sk-node";
    Harness h("qwen2", o);
    auto ref_engine = model::Engine::load(h.dir);
    model::SamplingParams sp;
    sp.max_tokens = 8;
    auto ref = (*ref_engine)->chat({{"user", "Say hello."}}, {}, sp);
    ASSERT_TRUE(ref.ok());
    std::string cmd = "node " +
                      (mf::test::source_dir() / "tests/serve/openai_client.mjs").string() + " " +
                      modules.string() + " http://127.0.0.1:" + std::to_string(h.server->port()) +
                      "/v1 " + h.dir.filename().string() + " sk-node";
    auto out = mf::test::run_command(cmd);
    ASSERT_EQ(out.exit_code, 0) << out.output;
    json j = json::parse(out.output.substr(out.output.find('{')));
    EXPECT_EQ(j["plain_content"], sanitized(ref->text));
    EXPECT_EQ(j["stream_content"], sanitized(ref->text));
    EXPECT_EQ(j["plain_finish"], ref->finish_reason);
    EXPECT_EQ(j["stream_finish"], ref->finish_reason);
    EXPECT_EQ(j["plain_usage"]["completion_tokens"], static_cast<int64_t>(ref->tokens.size()));
    EXPECT_EQ(j["stream_usage"]["total_tokens"],
              ref->prompt_tokens + static_cast<int64_t>(ref->tokens.size()));
    EXPECT_EQ(j["model_ids"][0], h.dir.filename().string());
}

}  // namespace
}  // namespace mf::serve
