// Request/response JSON, base64, image data URLs, token estimates and cost: no network.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <random>

#include "io/image.h"
#include "llm/client.h"
#include "llm/http_util.h"
#include "test_util.h"

namespace mf::llm {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

TEST(Base64, Rfc4648Vectors) {
    const std::pair<const char*, const char*> vectors[] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (const auto& [plain, enc] : vectors) {
        EXPECT_EQ(base64_encode(plain), enc) << plain;
        auto d = base64_decode(enc);
        ASSERT_TRUE(d.ok()) << enc;
        EXPECT_EQ(*d, plain);
    }
}

// Naive reference: bit string of the input, cut in 6-bit groups.
std::string naive_base64(const std::string& in) {
    static const std::string a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string bits;
    for (unsigned char c : in) {
        for (int b = 7; b >= 0; --b)
            bits.push_back(((c >> b) & 1) ? '1' : '0');
    }
    while (bits.size() % 6)
        bits.push_back('0');
    std::string out;
    for (size_t i = 0; i < bits.size(); i += 6)
        out.push_back(a[std::stoi(bits.substr(i, 6), nullptr, 2)]);
    while (out.size() % 4)
        out.push_back('=');
    return out;
}

TEST(Base64, RandomBytesMatchNaiveAndRoundTrip) {
    std::mt19937 rng(7);
    for (int len = 0; len < 70; ++len) {
        std::string s(len, '\0');
        for (char& c : s)
            c = static_cast<char>(rng() & 0xFF);
        const std::string enc = base64_encode(s);
        EXPECT_EQ(enc, naive_base64(s));
        auto d = base64_decode(enc);
        ASSERT_TRUE(d.ok());
        EXPECT_EQ(*d, s);
    }
}

TEST(Base64, RejectsBadInput) {
    EXPECT_FALSE(base64_decode("Zm9v!").ok());
    EXPECT_FALSE(base64_decode("Z").ok());
    EXPECT_FALSE(base64_decode("Zm9=v").ok());
    EXPECT_FALSE(base64_decode("Zh==").ok());  // non-zero trailing bits
    auto unpadded = base64_decode("Zm8");
    ASSERT_TRUE(unpadded.ok());
    EXPECT_EQ(*unpadded, "fo");
}

TEST(RequestBody, TextOnlyMessageIsPlainStringAndOptionalFieldsOmitted) {
    ChatRequest r;
    r.model = "gpt-4o";
    r.messages = {ChatMessage::text("system", "be brief"), ChatMessage::text("user", "hi \"x\"")};
    r.max_tokens = 0;
    r.user_tag = "sample-42";
    json j = json::parse(request_body(r));
    EXPECT_EQ(j["model"], "gpt-4o");
    ASSERT_EQ(j["messages"].size(), 2u);
    EXPECT_EQ(j["messages"][0]["role"], "system");
    EXPECT_EQ(j["messages"][1]["content"], "hi \"x\"");
    EXPECT_DOUBLE_EQ(j["temperature"].get<double>(), 0.7);
    for (const char* k : {"max_tokens", "top_p", "seed", "stop", "response_format", "user"}) {
        EXPECT_FALSE(j.contains(k)) << k;
    }
    EXPECT_EQ(request_body(r).find("sample-42"), std::string::npos);
}

TEST(RequestBody, ImagePartsInOrderWithOptions) {
    ChatRequest r;
    r.model = "m";
    ChatMessage m;
    m.role = "user";
    m.content = {image_url_part("data:image/jpeg;base64,AAAA", "high"), text_part("between"),
                 image_url_part("https://x/y.png")};
    r.messages = {m};
    r.json_object = true;
    r.stop = {"\n\n", "END"};
    r.seed = 123;
    r.top_p = 0.9;
    r.max_tokens = 77;
    r.temperature = 0;
    json j = json::parse(request_body(r));
    const json& c = j["messages"][0]["content"];
    ASSERT_TRUE(c.is_array());
    ASSERT_EQ(c.size(), 3u);
    EXPECT_EQ(c[0]["type"], "image_url");
    EXPECT_EQ(c[0]["image_url"]["url"], "data:image/jpeg;base64,AAAA");
    EXPECT_EQ(c[0]["image_url"]["detail"], "high");
    EXPECT_EQ(c[1], json({{"type", "text"}, {"text", "between"}}));
    EXPECT_EQ(c[2]["image_url"]["url"], "https://x/y.png");
    EXPECT_FALSE(c[2]["image_url"].contains("detail"));
    EXPECT_EQ(j["response_format"], json({{"type", "json_object"}}));
    EXPECT_EQ(j["stop"], json({"\n\n", "END"}));
    EXPECT_EQ(j["seed"], 123);
    EXPECT_DOUBLE_EQ(j["top_p"].get<double>(), 0.9);
    EXPECT_EQ(j["max_tokens"], 77);
    EXPECT_EQ(j["temperature"], 0);
}

TEST(RequestBody, InvalidUtf8DoesNotThrow) {
    ChatRequest r;
    r.messages = {ChatMessage::text("user", std::string("bad \xff\xfe byte"))};
    EXPECT_TRUE(json::accept(request_body(r)));
}

TEST(ParseResponse, StringContentUsageAndFinishReason) {
    const std::string body = R"({"id":"c1","model":"gpt-x","choices":[{"index":0,
        "message":{"role":"assistant","content":"hello"},"finish_reason":"length"}],
        "usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}})";
    auto r = parse_response(body);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->content, "hello");
    EXPECT_EQ(r->finish_reason, "length");
    EXPECT_EQ(r->id, "c1");
    EXPECT_EQ(r->model, "gpt-x");
    EXPECT_EQ(r->usage.prompt_tokens, 10);
    EXPECT_EQ(r->usage.completion_tokens, 5);
    EXPECT_EQ(r->usage.total_tokens, 15);
    EXPECT_EQ(r->raw, body);
}

TEST(ParseResponse, ListContentNullContentAndMissingUsage) {
    auto r = parse_response(R"({"choices":[{"message":{"content":[{"type":"text","text":"a"},
        {"type":"text","text":"b"}]},"finish_reason":"stop"}]})");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->content, "ab");
    EXPECT_EQ(r->usage.total_tokens, 0);
    auto n = parse_response(R"({"choices":[{"message":{"content":null}}]})");
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(n->content, "");
}

TEST(ParseResponse, ErrorsNameTheProblem) {
    auto e = parse_response(R"({"error":{"message":"model overloaded","type":"server_error"}})");
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.status().message().find("model overloaded"), std::string::npos);
    auto nj = parse_response("<html>bad gateway</html>");
    ASSERT_FALSE(nj.ok());
    EXPECT_EQ(nj.status().code(), StatusCode::kCorruption);
    EXPECT_NE(nj.status().message().find("not JSON"), std::string::npos);
    auto nc = parse_response(R"({"id":"x"})");
    ASSERT_FALSE(nc.ok());
    EXPECT_NE(nc.status().message().find("choices"), std::string::npos);
    auto empty = parse_response(R"({"choices":[]})");
    ASSERT_FALSE(empty.ok());
    EXPECT_NE(empty.status().message().find("empty"), std::string::npos);
    auto nm = parse_response(R"({"choices":[{"text":"x"}]})");
    ASSERT_FALSE(nm.ok());
    EXPECT_NE(nm.status().message().find("choices[0].message"), std::string::npos);
    auto nco = parse_response(R"({"choices":[{"message":{"role":"assistant"}}]})");
    ASSERT_FALSE(nco.ok());
    EXPECT_NE(nco.status().message().find("content"), std::string::npos);
}

TEST(Cost, PerMillionTokens) {
    Usage u{1'000'000, 500'000, 1'500'000};
    EXPECT_DOUBLE_EQ(cost_usd(u, Price{2.5, 10.0}), 2.5 + 5.0);
    Usage sum;
    sum += u;
    sum += Usage{1, 2, 3};
    EXPECT_EQ(sum.prompt_tokens, 1'000'001);
    EXPECT_EQ(sum.completion_tokens, 500'002);
    EXPECT_EQ(sum.total_tokens, 1'500'003);
}

fs::path first_jpeg_at_least(int min_side) {
    for (const auto& e : fs::directory_iterator(test::shared_data() / "vqa_rad" / "images")) {
        io::ProbeResult p = io::probe_image_file(e.path());
        if (p.ok() && p.info.format == io::ImageFormat::kJpeg &&
            std::max(p.info.width, p.info.height) >= min_side) {
            return e.path();
        }
    }
    return {};
}

TEST(ImageDataUrl, RealJpegDecodesBackWithinMaxSide) {
    const fs::path img = first_jpeg_at_least(300);
    ASSERT_FALSE(img.empty()) << "no JPEG >= 300 px in shared data";
    io::ProbeResult orig = io::probe_image_file(img);
    auto url = image_data_url(img, 256, 85);
    ASSERT_TRUE(url.ok()) << url.status().to_string();
    const std::string prefix = "data:image/jpeg;base64,";
    ASSERT_EQ(url->rfind(prefix, 0), 0u);
    auto bytes = base64_decode(std::string_view(*url).substr(prefix.size()));
    ASSERT_TRUE(bytes.ok());
    io::DecodeResult dec = io::decode_image_bytes(*bytes);
    ASSERT_TRUE(dec.ok()) << dec.detail;
    EXPECT_EQ(dec.info.format, io::ImageFormat::kJpeg);
    EXPECT_EQ(std::max(dec.image.width, dec.image.height), 256);
    // Aspect ratio kept within rounding.
    const double a0 = double(orig.info.width) / orig.info.height;
    const double a1 = double(dec.image.width) / dec.image.height;
    EXPECT_NEAR(a0, a1, 0.02 * a0);

    // Content survives: mean brightness close to the original's downscaled version.
    io::DecodeResult src = io::decode_image_file(img);
    io::Image ref = io::resize_image(src.image, dec.image.width, dec.image.height);
    double diff = 0;
    for (size_t i = 0; i < ref.pixels.size(); ++i)
        diff += std::abs(ref.pixels[i] - dec.image.pixels[i]);
    EXPECT_LT(diff / ref.pixels.size(), 6.0);

    // No upscaling when the image is already small enough.
    auto big = image_data_url(img, 100000, 90);
    ASSERT_TRUE(big.ok());
    auto bb = base64_decode(std::string_view(*big).substr(prefix.size()));
    io::ProbeResult pb = io::probe_image_bytes(*bb);
    EXPECT_EQ(pb.info.width, orig.info.width);
    EXPECT_EQ(pb.info.height, orig.info.height);

    auto part = image_file_part(img, 128, 80, "low");
    ASSERT_TRUE(part.ok());
    EXPECT_EQ(part->kind, ContentPart::Kind::kImageUrl);
    EXPECT_EQ(part->detail, "low");
}

TEST(ImageDataUrl, MissingAndCorruptFilesAreErrors) {
    test::TempDir dir;
    auto missing = image_data_url(dir / "nope.jpg");
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.status().message().find("image_missing"), std::string::npos);
    test::write_text(dir / "bad.jpg", "\xff\xd8\xff garbage");
    auto bad = image_data_url(dir / "bad.jpg");
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.status().message().find("bad.jpg"), std::string::npos);
    EXPECT_FALSE(image_data_url(dir / "nope.jpg", 0).ok());
}

TEST(EstimateTokens, TextAndImages) {
    ChatRequest r;
    r.messages = {ChatMessage::text("user", std::string(400, 'a'))};
    EXPECT_EQ(estimate_prompt_tokens(r), 3 + 4 + 100);
    r.max_tokens = 50;
    EXPECT_EQ(estimate_request_tokens(r), 3 + 4 + 100 + 50);
    Usage u = estimate_usage(r);
    EXPECT_EQ(u.prompt_tokens, 107);
    EXPECT_EQ(u.completion_tokens, 50);
    EXPECT_EQ(u.total_tokens, 157);
    EXPECT_DOUBLE_EQ(cost_usd(u, Price{1e6, 0}), 107.0);

    ChatRequest img;
    ChatMessage m;
    m.role = "user";
    m.content = {image_url_part("https://example.org/x.png")};
    img.messages = {m};
    EXPECT_EQ(estimate_prompt_tokens(img), 3 + 4 + 765);
    img.messages[0].content[0].detail = "low";
    EXPECT_EQ(estimate_prompt_tokens(img), 3 + 4 + 85);

    // A known-size data URL: 1024x1024 -> shorter side 768 -> 2x2 tiles -> 85 + 4*170.
    const fs::path jpg = first_jpeg_at_least(300);
    ASSERT_FALSE(jpg.empty());
    auto url = image_data_url(jpg, 512, 80);
    ASSERT_TRUE(url.ok());
    img.messages[0].content[0] = image_url_part(*url);
    auto bytes = base64_decode(std::string_view(*url).substr(23));
    io::ProbeResult p = io::probe_image_bytes(*bytes);
    const int tiles = ((p.info.width + 511) / 512) * ((p.info.height + 511) / 512);
    EXPECT_EQ(estimate_prompt_tokens(img), 3 + 4 + 85 + 170 * tiles);
}

TEST(RetryAfter, SecondsAndHttpDate) {
    const std::time_t now = 1445412480;  // Wed, 21 Oct 2015 07:28:00 GMT
    EXPECT_DOUBLE_EQ(detail::parse_retry_after("120", now), 120);
    EXPECT_DOUBLE_EQ(detail::parse_retry_after(" 1.5\r\n", now), 1.5);
    EXPECT_DOUBLE_EQ(detail::parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), 30);
    EXPECT_DOUBLE_EQ(detail::parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), 0);
    EXPECT_LT(detail::parse_retry_after("soon", now), 0);
    EXPECT_LT(detail::parse_retry_after("", now), 0);
}

TEST(Backoff, FullJitterWithinExponentialCap) {
    std::mt19937_64 rng(1);
    for (int retry = 1; retry <= 8; ++retry) {
        const double cap = std::min(5.0, 0.5 * std::pow(2.0, retry - 1));
        double mx = 0;
        for (int k = 0; k < 200; ++k) {
            const double d = detail::backoff_delay(retry, 0.5, 5.0, rng);
            EXPECT_GE(d, 0);
            EXPECT_LE(d, cap);
            mx = std::max(mx, d);
        }
        EXPECT_GT(mx, cap * 0.8);  // jitter spans the range
    }
    EXPECT_TRUE(detail::retryable_http_status(429));
    EXPECT_TRUE(detail::retryable_http_status(503));
    EXPECT_FALSE(detail::retryable_http_status(400));
    EXPECT_FALSE(detail::retryable_http_status(401));
}

TEST(TokenBucket, RateAndBurst) {
    detail::TokenBucket b(10.0, 2.0, 0.0);  // 10/s, burst 2
    EXPECT_EQ(b.wait_s(1, 0), 0);
    b.take(1, 0);
    b.take(1, 0);
    EXPECT_NEAR(b.wait_s(1, 0), 0.1, 1e-9);
    EXPECT_NEAR(b.wait_s(1, 0.05), 0.05, 1e-9);
    // A request larger than the capacity waits for a full bucket, then leaves a debt.
    EXPECT_NEAR(b.wait_s(5, 0.05), 0.15, 1e-9);
    b.take(5, 0.2);
    EXPECT_NEAR(b.wait_s(1, 0.2), 0.4, 1e-9);
}

TEST(Redact, ReplacesSecret) {
    EXPECT_EQ(detail::redact("key sk-SECRET and sk-SECRET", "sk-SECRET"),
              "key [redacted] and [redacted]");
    EXPECT_EQ(detail::redact("abc", ""), "abc");
}

TEST(ApiKeyFromEnv, NamesVariableNeverValue) {
    ::setenv("MF_TEST_KEY_VAR", "sk-SECRET-env", 1);
    auto k = api_key_from_env("MF_TEST_KEY_VAR");
    ASSERT_TRUE(k.ok());
    EXPECT_EQ(*k, "sk-SECRET-env");
    ::unsetenv("MF_TEST_KEY_VAR");
    auto m = api_key_from_env("MF_TEST_KEY_VAR");
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
    EXPECT_NE(m.status().message().find("MF_TEST_KEY_VAR"), std::string::npos);
}

TEST(MakeClient, RejectsBadOptions) {
    ClientOptions o;
    o.base_url = "api.openai.com/v1";
    EXPECT_FALSE(make_http_client(o).ok());
    o.base_url = "http://127.0.0.1:1/v1";
    o.max_concurrency = 0;
    EXPECT_FALSE(make_http_client(o).ok());
}

}  // namespace
}  // namespace mf::llm
