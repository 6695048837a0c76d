// The answer verifier as a reformat stage, end to end through the fake OpenAI server (real HTTP
// on loopback): a contradicting reply is re-asked once with the contradiction named and the
// corrected reply kept; one that contradicts twice is rejected as verifier:<kind>; the re-ask is
// its own ledger attempt, and a resumed run neither repeats nor re-pays anything. Also
// `medforge verify` on a reformat output directory and on LLaVA-Med's real instruct data.
#include <fmt/core.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <map>
#include <mutex>

#include "core/hash.h"
#include "io/file.h"
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

// Contradicts the samples of make_samples() (axial CT, a 2 cm lesion): MRI and 5 cm.
std::string contradicting_reply(int n) {
    return fmt::format(
        "{{\"image_description\": \"Axial MRI image number {} showing a 5 cm hypodense lesion "
        "in the liver.\", \"question\": \"What abnormality is visible?\", \"answer\": \"A "
        "rounded hypodense lesion is seen in the liver.\"}}",
        n);
}

bool is_verifier_reask(const std::string& prompt) {
    return prompt.find("contradicts the reference") != std::string::npos;
}

struct Script {
    std::mutex mu;
    std::map<int, int> calls;  // per caption number
    std::map<int, std::vector<std::string>> prompts;
    int next(int n, const std::string& prompt) {
        std::lock_guard lock(mu);
        prompts[n].push_back(prompt);
        return calls[n]++;
    }
};

ReformatOptions options(const test::TempDir& dir) {
    ReformatOptions o;
    o.input = dir / "in.jsonl";
    o.out_dir = dir / "out";
    o.prompt.model = "fake-4o";
    o.progress = false;
    o.image_mode = ImageMode::kNone;
    return o;
}

std::unique_ptr<llm::LlmClient> client_for(const FakeOpenAi& server, int max_retries = 3) {
    EndpointOptions ep;
    ep.endpoint = server.base_url();
    ep.max_retries = max_retries;
    ep.concurrency = 2;
    return std::move(make_client(ep)).value();
}

TEST(VerifyStage, ReasksOnceThenKeepsOrRejects) {
    test::TempDir dir;
    write_samples(dir / "in.jsonl", make_samples(3));
    Script script;
    FakeOpenAi server([&](const json& req, int) {
        std::string t = FakeOpenAi::request_text(req);
        int n = testing::caption_number(t);
        int k = script.next(n, t);
        if (n == 1 && k == 0) return FakeReply::text(contradicting_reply(n));  // then fixed
        if (n == 2) return FakeReply::text(contradicting_reply(n));            // never fixed
        return FakeReply::text(good_reply(t));
    });
    ASSERT_TRUE(server.start().ok());
    auto client = client_for(server);
    auto res = run_reformat(options(dir), client.get());
    ASSERT_TRUE(res.ok()) << res.status().to_string();
    EXPECT_EQ(script.calls[0], 1);
    EXPECT_EQ(script.calls[1], 2);
    EXPECT_EQ(script.calls[2], 2);  // verify_reasks = 1: one re-ask, then rejected
    // The re-ask names the contradictions; the first ask does not.
    ASSERT_EQ(script.prompts[1].size(), 2u);
    EXPECT_FALSE(is_verifier_reask(script.prompts[1][0]));
    EXPECT_TRUE(is_verifier_reask(script.prompts[1][1]));
    EXPECT_NE(script.prompts[1][1].find("MRI"), std::string::npos);
    EXPECT_NE(script.prompts[1][1].find("(modality)"), std::string::npos);
    EXPECT_NE(script.prompts[1][1].find("(number_unit)"), std::string::npos);

    auto stats = load(dir / "out" / "stats.json");
    EXPECT_EQ(stats["kept"], 2);
    EXPECT_EQ(stats["rejected"], 1);
    EXPECT_EQ(stats["reasons"]["verifier:modality"], 1) << stats.dump(2);
    EXPECT_EQ(stats["extra"]["verify"]["enabled"], true);
    EXPECT_EQ(stats["extra"]["verify"]["reasked"], 2);
    EXPECT_EQ(stats["extra"]["verify"]["fixed_by_reask"], 1);
    EXPECT_EQ(stats["extra"]["verify"]["rejected"], 1);
    auto rejects = test::read_lines(dir / "out" / "rejects.jsonl");
    ASSERT_EQ(rejects.size(), 1u);
    json rj = json::parse(rejects[0]);
    EXPECT_EQ(rj["id"], "test:s2");
    EXPECT_EQ(rj["reason"], "verifier:modality");
    EXPECT_NE(rj["detail"].get<std::string>().find("still contradicting after 1 re-ask"),
              std::string::npos);
    EXPECT_NE(rj["detail"].get<std::string>().find("'5 cm'"), std::string::npos);
    // The corrected answer is the one kept.
    json align = load(dir / "out" / "alignment_vqa.json");
    ASSERT_EQ(align.size(), 2u);
    EXPECT_EQ(align[1]["sample_id"], "test:s1");
    EXPECT_NE(align[1]["conversations"][1]["value"].get<std::string>().find("Axial CT"),
              std::string::npos);

    // Ledger: the re-ask is its own paid attempt of the same request.
    auto l = std::move(Ledger::open(dir / "out" / "ledger.sqlite", true)).value();
    auto samples = make_samples(3);
    for (int n : {1, 2}) {
        std::vector<std::string> hashes;
        for (const auto& p : samples[n].images)
            hashes.push_back(sha256_hex(*io::read_file(p)));
        std::string key =
            request_key(samples[n].id, "mllm-unblinded", "fake-4o", "unblinded-v1", hashes);
        auto row = *l->get(key);
        ASSERT_TRUE(row.has_value());
        EXPECT_EQ(row->attempts, 2);
        auto tries = *l->attempts(key);
        ASSERT_EQ(tries.size(), 2u);
        EXPECT_EQ(tries[0].outcome, "reask");
        EXPECT_EQ(tries[0].error.rfind("verifier:modality: ", 0), 0u) << tries[0].error;
        EXPECT_EQ(tries[1].outcome, n == 1 ? "done" : "failed");
    }

    // A re-run sends nothing: done and verifier-rejected rows are final.
    int before = server.calls();
    auto again = run_reformat(options(dir), client.get());
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(server.calls(), before);
    EXPECT_EQ(load(dir / "out" / "stats.json")["kept"], 2);
}

TEST(VerifyStage, ResumeAfterAFailedReaskDoesNotPayTwice) {
    test::TempDir dir;
    write_samples(dir / "in.jsonl", make_samples(2));
    Script script;
    std::atomic<bool> server_down_for_reasks{true};
    FakeOpenAi server([&](const json& req, int) {
        std::string t = FakeOpenAi::request_text(req);
        int n = testing::caption_number(t);
        script.next(n, t);
        if (n == 0 && !is_verifier_reask(t)) return FakeReply::text(contradicting_reply(n));
        if (n == 0 && server_down_for_reasks.load()) return FakeReply::error(500, "down");
        return FakeReply::text(good_reply(t));
    });
    ASSERT_TRUE(server.start().ok());
    {
        auto client = client_for(server, /*max_retries=*/0);
        auto res = run_reformat(options(dir), client.get());
        ASSERT_TRUE(res.ok()) << res.status().to_string();
        auto stats = load(dir / "out" / "stats.json");
        EXPECT_EQ(stats["reasons"]["request_failed"], 1) << stats.dump(2);
        EXPECT_EQ(script.calls[0], 2);  // the first (contradicting) reply, the failed re-ask
    }
    server_down_for_reasks.store(false);
    auto client = client_for(server, 0);
    auto res = run_reformat(options(dir), client.get());
    ASSERT_TRUE(res.ok()) << res.status().to_string();
    // Only the re-ask was sent again, still naming the contradiction; the paid first reply was
    // not asked again and sample 1 (done) was not touched.
    EXPECT_EQ(script.calls[0], 3);
    EXPECT_EQ(script.calls[1], 1);
    EXPECT_TRUE(is_verifier_reask(script.prompts[0][2]));
    auto stats = load(dir / "out" / "stats.json");
    EXPECT_EQ(stats["kept"], 2);
    EXPECT_EQ(stats["extra"]["verify"]["fixed_by_reask"], 1);
    EXPECT_EQ(stats["extra"]["requests"]["replies"], 3);  // paid: 2 for sample 0, 1 for sample 1
}

TEST(VerifyStage, OffByFlagAndForImageOnly) {
    for (const char* variant : {"--no-verify", "--method mllm-image-only"}) {
        SCOPED_TRACE(variant);
        test::TempDir dir;
        write_samples(dir / "in.jsonl", make_samples(2));
        FakeOpenAi server([](const json& req, int) {
            int n = testing::caption_number(FakeOpenAi::request_text(req));
            return FakeReply::text(contradicting_reply(n));
        });
        ASSERT_TRUE(server.start().ok());
        auto r = test::run_medforge("reformat --in " + q(dir / "in.jsonl") + " --out " +
                                    q(dir / "out") + " --endpoint " + server.base_url() +
                                    " --model m --no-images " + variant);
        ASSERT_EQ(r.exit_code, 0) << r.output;
        EXPECT_EQ(server.calls(), 2);
        auto stats = load(dir / "out" / "stats.json");
        EXPECT_EQ(stats["kept"], 2);
        EXPECT_EQ(stats["extra"]["verify"]["enabled"], false);
    }
}

TEST(VerifyStage, BuildConfigKeys) {
    json j = {{"endpoint", "http://127.0.0.1:1/v1"},
              {"model", "m"},
              {"verify", false},
              {"verify_reasks", 2}};
    auto b = parse_build_reformat(j);
    ASSERT_TRUE(b.ok()) << b.status().to_string();
    EXPECT_FALSE(b->options.verify);
    EXPECT_EQ(b->options.verify_reasks, 2);
    auto d = parse_build_reformat(json{{"endpoint", "http://127.0.0.1:1/v1"}, {"model", "m"}});
    ASSERT_TRUE(d.ok());
    EXPECT_TRUE(d->options.verify);
    EXPECT_FALSE(parse_build_reformat(json{{"verify", "yes"}}).ok());
}

TEST(VerifyCommand, ReformatOutputDirectoryJoinsSamples) {
    test::TempDir dir;
    write_samples(dir / "in.jsonl", make_samples(3));
    FakeOpenAi server([](const json& req, int) {
        std::string t = FakeOpenAi::request_text(req);
        int n = testing::caption_number(t);
        return FakeReply::text(n == 1 ? contradicting_reply(n) : good_reply(t));
    });
    ASSERT_TRUE(server.start().ok());
    // Generated without the verifier, then checked afterwards.
    auto r = test::run_medforge("reformat --in " + q(dir / "in.jsonl") + " --out " +
                                q(dir / "out") + " --endpoint " + server.base_url() +
                                " --model m --no-images --no-verify");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto v = test::run_medforge("verify --in " + q(dir / "out") + " --out " + q(dir / "v"));
    ASSERT_EQ(v.exit_code, 0) << v.output;
    auto stats = load(dir / "v" / "stats.json");
    EXPECT_EQ(stats["records"], 6);  // 3 alignment + 3 instruction records
    EXPECT_EQ(stats["records_without_source"], 0);
    EXPECT_EQ(stats["answers_checked"], 6);
    EXPECT_EQ(stats["records_flagged"], 1);
    EXPECT_EQ(stats["by_kind"]["modality"]["answers"], 1);
    EXPECT_EQ(stats["by_kind"]["number_unit"]["answers"], 1);
    EXPECT_EQ(stats["by_kind"]["laterality"]["answers"], 0);
    auto flagged = test::read_lines(dir / "v" / "flagged.jsonl");
    ASSERT_EQ(flagged.size(), 1u);
    json f = json::parse(flagged[0]);
    EXPECT_EQ(f["id"], "test:s1#alignment");
    EXPECT_EQ(f["sample_id"], "test:s1");
    EXPECT_EQ(f["flags"][0]["kind"], "modality");
    EXPECT_EQ(f["flags"][0]["answer"]["text"], "MRI");
    EXPECT_EQ(f["flags"][0]["source"]["text"], "CT");
    EXPECT_EQ(test::read_lines(dir / "v" / "passed.jsonl").size(), 5u);
    // Only some kinds; a bad kind is a usage error.
    auto v2 = test::run_medforge("verify --in " + q(dir / "out") + " --out " + q(dir / "v2") +
                                 " --kinds laterality,negation");
    ASSERT_EQ(v2.exit_code, 0) << v2.output;
    EXPECT_EQ(load(dir / "v2" / "stats.json")["records_flagged"], 0);
    auto bad = test::run_medforge("verify --in " + q(dir / "out") + " --out " + q(dir / "v3") +
                                  " --kinds sideness");
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.output.find("sideness"), std::string::npos);
    // A VQA file with no way to find its source: nothing checked, said so.
    test::write_text(dir / "lone.jsonl",
                     "{\"id\":\"x\",\"conversations\":[{\"from\":\"gpt\",\"value\":\"CT.\"}]}\n");
    auto v4 =
        test::run_medforge("verify --in " + q(dir / "lone.jsonl") + " --out " + q(dir / "v4"));
    ASSERT_EQ(v4.exit_code, 0) << v4.output;
    EXPECT_EQ(load(dir / "v4" / "stats.json")["records_without_source"], 1);
    EXPECT_NE(v4.output.find("no source text"), std::string::npos);
}

TEST(VerifyCommand, LlavaMedInstructExamples) {
    auto path = test::shared_data() / "llava_med" / "instruct_few_shot_examples.json";
    if (!std::filesystem::exists(path)) GTEST_SKIP() << "no " << path;
    test::TempDir dir;
    auto v = test::run_medforge("verify --in " + q(path) + " --out " + q(dir / "v"));
    ASSERT_EQ(v.exit_code, 0) << v.output;
    auto stats = load(dir / "v" / "stats.json");
    EXPECT_EQ(stats["records"], 8);
    EXPECT_EQ(stats["records_without_source"], 0);
    EXPECT_GE(stats["answers_checked"].get<int>(), 20);
    EXPECT_LE(stats["answer_flag_rate"].get<double>(), 0.1);
}

}  // namespace
}  // namespace mf::reformat
