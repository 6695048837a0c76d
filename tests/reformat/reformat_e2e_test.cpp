// End to end through the fake OpenAI server (real HTTP on loopback): the library with the real
// HTTP client, and the `medforge reformat` / `medforge build` commands as a user runs them.
#include <fmt/core.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <mutex>

#include "reformat/build.h"
#include "reformat/ledger.h"
#include "reformat/reformat.h"
#include "reformat_test_util.h"
#include "support/fake_openai.h"

namespace mf::reformat {
namespace {

using nlohmann::json;
using test::FakeOpenAi;
using test::FakeReply;
using testing::good_reply;
using testing::make_samples;
using testing::write_samples;

json load(const std::filesystem::path& p) {
    return json::parse(test::read_text(p));
}

std::string q(const std::filesystem::path& p) {
    return "'" + p.string() + "'";
}

// Counts answers per caption number.
struct Tally {
    std::mutex mu;
    std::map<int, int> answered;
    void add(int n) {
        std::lock_guard lock(mu);
        ++answered[n];
    }
};

TEST(ReformatE2E, EveryMethodThroughTheFakeServer) {
    for (const char* method : {"mllm-unblinded", "llm-text", "mllm-image-only", "native-caption"}) {
        SCOPED_TRACE(method);
        test::TempDir dir;
        auto samples = make_samples(4);  // sample 2 has two images
        write_samples(dir / "in.jsonl", samples);
        FakeOpenAi server([](const json& req, int) {
            std::string t = FakeOpenAi::request_text(req);
            if (testing::caption_number(t) < 0) t = "Caption number 9";  // image-only
            return FakeReply::text(good_reply(t));
        });
        ASSERT_TRUE(server.start().ok());
        auto r =
            test::run_medforge("reformat --in " + q(dir / "in.jsonl") + " --out " + q(dir / "out") +
                               " --endpoint " + server.base_url() + " --model fake-4o --method " +
                               method + " --image-tokens --jsonl --concurrency 3");
        ASSERT_EQ(r.exit_code, 0) << r.output;
        json align = load(dir / "out" / "alignment_vqa.json");
        ASSERT_EQ(align.size(), 4u);
        EXPECT_EQ(align[2]["image"].size(), 2u);
        EXPECT_EQ(align[2]["method"], method);
        EXPECT_EQ(
            align[2]["conversations"][0]["value"].get<std::string>().rfind("<image>\n<image>\n", 0),
            0u);
        auto stats = load(dir / "out" / "stats.json");
        EXPECT_EQ(stats["kept"], 4);
        EXPECT_EQ(stats["input"], 4);
        if (std::string(method) == "native-caption") {
            EXPECT_EQ(server.calls(), 0);
            EXPECT_EQ(align[1]["conversations"][1]["value"], samples[1].caption);
            EXPECT_FALSE(std::filesystem::exists(dir / "out" / "instruction_vqa.json"));
            continue;
        }
        EXPECT_EQ(server.calls(), 4);
        json instr = load(dir / "out" / "instruction_vqa.json");
        ASSERT_EQ(instr.size(), 4u);
        EXPECT_EQ(instr[0]["model"], "fake-4o");
        EXPECT_EQ(test::read_lines(dir / "out" / "instruction_vqa.jsonl").size(), 4u);
        // What went over the wire.
        for (const auto& req : server.requests()) {
            std::string t = FakeOpenAi::request_text(req.body);
            int n = testing::caption_number(t);
            EXPECT_EQ(req.body["model"], "fake-4o");
            int images = FakeOpenAi::image_count(req.body);
            if (std::string(method) == "llm-text") {
                EXPECT_EQ(images, 0);
                EXPECT_GE(n, 0);
            } else if (std::string(method) == "mllm-image-only") {
                EXPECT_EQ(t.find("Caption number"), std::string::npos);
                EXPECT_GE(images, 1);
            } else {
                ASSERT_GE(n, 0);
                EXPECT_EQ(images, static_cast<int>(samples[n].images.size()));
                for (const auto& url : FakeOpenAi::image_urls(req.body))
                    EXPECT_EQ(url.rfind("data:image/jpeg;base64,", 0), 0u);
                EXPECT_NE(t.find("<reference>"), std::string::npos);
            }
        }
        EXPECT_GT(stats["extra"]["tokens"]["prompt"].get<int64_t>(), 0);
    }
}

TEST(ReformatE2E, MultiImageRequestKeepsImageOrder) {
    test::TempDir dir;
    auto imgs = testing::demo_images();
    curate::Sample s = make_samples(1)[0];
    s.images = {imgs[3].string(), imgs[0].string(), imgs[5].string()};  // png, jpg, jpg
    write_samples(dir / "in.jsonl", {s});
    FakeOpenAi server(FakeOpenAi::answer_with([](const std::string& t) { return good_reply(t); }));
    ASSERT_TRUE(server.start().ok());
    ReformatOptions o;
    o.input = dir / "in.jsonl";
    o.out_dir = dir / "out";
    o.prompt.model = "m";
    o.progress = false;
    EndpointOptions ep;
    ep.endpoint = server.base_url();
    auto client = make_client(ep);
    ASSERT_TRUE(client.ok());
    ASSERT_TRUE(run_reformat(o, client->get()).ok());
    ASSERT_EQ(server.calls(), 1);
    auto urls = FakeOpenAi::image_urls(server.requests()[0].body);
    ASSERT_EQ(urls.size(), 3u);
    for (size_t k = 0; k < 3; ++k)
        EXPECT_EQ(urls[k], *llm::image_data_url(s.images[k], o.image_max_side, o.image_quality))
            << k;
    // Image parts come before the prompt text.
    const json content = server.requests()[0].body["messages"][0]["content"];
    EXPECT_EQ(content[0]["type"], "image_url");
    EXPECT_EQ(content[3]["type"], "text");
}

TEST(ReformatE2E, FaultsRetriesReasksAndRejects) {
    test::TempDir dir;
    write_samples(dir / "in.jsonl", make_samples(5));
    Tally tally;
    std::mutex mu;
    std::map<int, int> calls_per;
    FakeOpenAi server([&](const json& req, int) {
        std::string t = FakeOpenAi::request_text(req);
        int n = testing::caption_number(t);
        int k;
        {
            std::lock_guard lock(mu);
            k = calls_per[n]++;
        }
        if (n == 0 && k == 0) return FakeReply::error(429, "slow down").retry_after("0");
        if (n == 1 && k == 0) return FakeReply::error(500, "boom");
        if (n == 2) {  // always mentions the caption: rejected after the re-asks
            return FakeReply::text(
                "{\"image_description\": \"The caption describes a hepatic lesion on CT.\", "
                "\"question\": \"What is shown?\", \"answer\": \"A lesion in the liver is "
                "visible here.\"}");
        }
        if (n == 3 && k == 0) return FakeReply::raw(200, "this is not json");
        if (n == 4 && k == 0) return FakeReply::text("Sorry, here you go: {\"image_description\"");
        tally.add(n);
        return FakeReply::text(good_reply(t));
    });
    ASSERT_TRUE(server.start().ok());
    setenv("MF_TEST_REFORMAT_KEY", "sk-very-secret-123", 1);
    auto r = test::run_medforge(
        "reformat --in " + q(dir / "in.jsonl") + " --out " + q(dir / "out") + " --endpoint " +
        server.base_url() +
        " --model m --api-key-env MF_TEST_REFORMAT_KEY --max-reasks 2 --max-retries 3 -v");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output.find("sk-very-secret-123"), std::string::npos);
    for (const auto& req : server.requests())
        EXPECT_EQ(req.header("Authorization"), "Bearer sk-very-secret-123");
    EXPECT_EQ(calls_per[0], 2);  // 429 then success (client retry)
    EXPECT_EQ(calls_per[1], 2);  // 500 then success
    EXPECT_EQ(calls_per[2], 3);  // first ask + 2 re-asks, all mention the caption
    EXPECT_EQ(calls_per[3], 1);  // a 200 whose body is not JSON: request_failed, not paid
    EXPECT_EQ(calls_per[4], 2);  // truncated JSON: re-asked
    auto stats = load(dir / "out" / "stats.json");
    EXPECT_EQ(stats["kept"], 3);
    EXPECT_EQ(stats["rejected"], 2);
    EXPECT_EQ(stats["reasons"]["mentions_reference"], 1);
    EXPECT_EQ(stats["reasons"]["request_failed"], 1);
    auto rejects = test::read_lines(dir / "out" / "rejects.jsonl");
    ASSERT_EQ(rejects.size(), 2u);
    json rj = json::parse(rejects[0]);
    EXPECT_EQ(rj["id"], "test:s2");
    EXPECT_NE(rj["detail"].get<std::string>().find("The caption describes"), std::string::npos);
    // The re-asks told the model what was wrong.
    int reasks = 0;
    for (const auto& req : server.requests()) {
        std::string t = FakeOpenAi::request_text(req.body);
        if (testing::caption_number(t) == 2 &&
            t.find("previous reply could not be used") != std::string::npos)
            ++reasks;
    }
    EXPECT_EQ(reasks, 2);
    // Ledger: states and HTTP attempts; the key is nowhere in it.
    auto l = std::move(Ledger::open(dir / "out" / "ledger.sqlite", true)).value();
    auto counts = *l->count_by_state();
    EXPECT_EQ(counts["done"], 3);
    EXPECT_EQ(counts["failed"], 2);
    for (const auto& f : std::filesystem::recursive_directory_iterator(dir / "out")) {
        if (!f.is_regular_file()) continue;
        EXPECT_EQ(test::read_text(f.path()).find("sk-very-secret-123"), std::string::npos)
            << f.path();
    }
    // A re-run sends only the request that failed in transport (nothing was recorded for it);
    // validation failures are final.
    int before = server.calls();
    auto r2 = test::run_medforge("reformat --in " + q(dir / "in.jsonl") + " --out " +
                                 q(dir / "out") + " --endpoint " + server.base_url() +
                                 " --model m --api-key-env MF_TEST_REFORMAT_KEY");
    ASSERT_EQ(r2.exit_code, 0) << r2.output;
    EXPECT_EQ(server.calls(), before + 1);
    EXPECT_EQ(calls_per[3], 2);
    stats = load(dir / "out" / "stats.json");
    EXPECT_EQ(stats["kept"], 4);
    EXPECT_EQ(stats["rejected"], 1);
    // A third run sends nothing at all.
    auto r3 =
        test::run_medforge("reformat --in " + q(dir / "in.jsonl") + " --out " + q(dir / "out") +
                           " --endpoint " + server.base_url() + " --model m");
    ASSERT_EQ(r3.exit_code, 0) << r3.output;
    EXPECT_EQ(server.calls(), before + 1);
}

TEST(ReformatE2E, DryRunSendsNothingAndPrintsTheNumbers) {
    test::TempDir dir;
    write_samples(dir / "in.jsonl", make_samples(3), {"not json"});
    FakeOpenAi server;
    ASSERT_TRUE(server.start().ok());
    auto r = test::run_medforge("reformat --in " + q(dir / "in.jsonl") + " --out " +
                                q(dir / "out") + " --endpoint " + server.base_url() +
                                " --model m --dry-run --max-tokens 500 --price-in 2.5 "
                                "--price-out 10");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(server.calls(), 0);
    EXPECT_NE(r.output.find("requests to send: 3 (4 images)"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("completion tokens: at most 1500"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("1 rejected"), std::string::npos) << r.output;
    ReformatOptions o;
    o.input = dir / "in.jsonl";
    o.out_dir = dir / "out";
    o.prompt.model = "m";
    o.prompt.max_tokens = 500;
    o.price_in = 2.5;
    o.price_out = 10;
    auto e = *estimate_reformat(o);
    EXPECT_NE(r.output.find(fmt::format("estimated prompt tokens: {}", e.prompt_tokens)),
              std::string::npos);
    EXPECT_NE(r.output.find(fmt::format("at most {:.4f} in total", e.cost_max)), std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(dir / "out" / "ledger.sqlite"));
}

TEST(ReformatE2E, UsageErrors) {
    test::TempDir dir;
    write_samples(dir / "in.jsonl", make_samples(1));
    auto r =
        test::run_medforge("reformat --in " + q(dir / "in.jsonl") + " --out " + q(dir / "out"));
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.output.find("--endpoint"), std::string::npos) << r.output;
    auto r2 = test::run_medforge("reformat --in " + q(dir / "in.jsonl") + " --out " +
                                 q(dir / "out") + " --method gpt");
    EXPECT_NE(r2.exit_code, 0);
    auto r3 = test::run_medforge("reformat --in " + q(dir / "missing.jsonl") + " --out " +
                                 q(dir / "out") + " --method native-caption");
    EXPECT_EQ(r3.exit_code, 1);
    EXPECT_NE(r3.output.find("missing.jsonl"), std::string::npos) << r3.output;
}

TEST(ReformatE2E, BuildRunsReformatAsStageFour) {
    test::TempDir dir;
    FakeOpenAi server(FakeOpenAi::answer_with([](const std::string& t) {
        return "{\"image_description\": \"A detailed view of the medical image with a visible "
               "finding in the centre.\", \"question\": \"What stands out in this image?\", "
               "\"answer\": \"A focal abnormality is visible in the central region.\"}";
    }));
    ASSERT_TRUE(server.start().ok());
    std::filesystem::path demo = test::source_dir() / "examples" / "demo";
    std::string base = test::read_text(demo / "build.json");
    json cfg = json::parse(base);
    for (auto& s : cfg["sources"])
        s["input"] = (demo / s["input"].get<std::string>()).string();
    cfg["filter"]["text"]["enabled"] = false;  // no dependency on setup's default lexicon
    // Without an endpoint: native-caption, labelled as such.
    test::write_text(dir / "plain.json", cfg.dump(2));
    auto r = test::run_medforge("build --config " + q(dir / "plain.json") + " --out " +
                                q(dir / "plain"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("no endpoint configured"), std::string::npos) << r.output;
    auto st = load(dir / "plain" / "4-reformat" / "stats.json");
    EXPECT_EQ(st["extra"]["method"], "native-caption");
    auto dedup = load(dir / "plain" / "3-dedup" / "stats.json");
    EXPECT_EQ(st["input"], dedup["kept"]);
    EXPECT_EQ(st["kept"].get<int>() + st["rejected"].get<int>(), st["input"].get<int>());
    std::string card = test::read_text(dir / "plain" / "data_card.md");
    EXPECT_NE(card.find("4-reformat"), std::string::npos) << card;

    cfg["reformat"] = {{"endpoint", server.base_url()}, {"model", "fake"}, {"jsonl", true}};
    test::write_text(dir / "llm.json", cfg.dump(2));
    r = test::run_medforge("build --config " + q(dir / "llm.json") + " --out " + q(dir / "llm"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    st = load(dir / "llm" / "4-reformat" / "stats.json");
    EXPECT_EQ(st["extra"]["method"], "mllm-unblinded");
    EXPECT_EQ(server.calls(), st["kept"].get<int>());
    EXPECT_GT(server.calls(), 0);
    auto align = load(dir / "llm" / "4-reformat" / "alignment_vqa.json");
    EXPECT_EQ(align.size(), st["kept"].get<size_t>());
    // Resumable as a whole: a second build sends nothing new.
    int before = server.calls();
    r = test::run_medforge("build --config " + q(dir / "llm.json") + " --out " + q(dir / "llm"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(server.calls(), before);
    // A typo in the section is an error naming the key.
    cfg["reformat"]["modle"] = "x";
    test::write_text(dir / "bad.json", cfg.dump(2));
    r = test::run_medforge("build --config " + q(dir / "bad.json") + " --out " + q(dir / "bad"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("reformat.modle"), std::string::npos) << r.output;
    EXPECT_FALSE(std::filesystem::exists(dir / "bad" / "1-ingest"));  // stopped before ingest
}

TEST(ReformatE2E, ShippedLlmBuildConfigParses) {
    auto cfg =
        json::parse(test::read_text(test::source_dir() / "examples" / "demo" / "build_llm.json"));
    auto b = parse_build_reformat(cfg["reformat"]);
    ASSERT_TRUE(b.ok()) << b.status().to_string();
    EXPECT_EQ(b->options.method, Method::kMllmUnblinded);
    EXPECT_EQ(b->endpoint.endpoint, "http://127.0.0.1:8080/v1");
    EXPECT_TRUE(b->options.jsonl);
    // No endpoint: native-caption.
    auto none = parse_build_reformat(json::object());
    ASSERT_TRUE(none.ok());
    EXPECT_EQ(none->options.method, Method::kNativeCaption);
    auto bad = parse_build_reformat(json{{"images", "paint"}});
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.status().message().find("reformat.images"), std::string::npos);
}

}  // namespace
}  // namespace mf::reformat
