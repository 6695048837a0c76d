// The reformat engine with an in-process test double of the LLM client (no HTTP): outputs,
// re-asks, rejects, resumption from the ledger, cancellation, dry-run numbers. The same paths
// over real HTTP are in reformat_e2e_test.cpp.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "io/image.h"
#include "reformat/ledger.h"
#include "reformat/reformat.h"
#include "reformat_test_util.h"

namespace mf::reformat {
namespace {

using nlohmann::json;
using testing::good_reply;
using testing::make_samples;
using testing::request_text;
using testing::ScriptedClient;
using testing::write_samples;

ReformatOptions options(const test::TempDir& dir, Method m = Method::kMllmUnblinded) {
    ReformatOptions o;
    o.input = dir / "in.jsonl";
    o.out_dir = dir / "out";
    o.method = m;
    o.prompt.model = "test-model";
    o.progress = false;
    o.batch = 4;
    return o;
}

json load(const std::filesystem::path& p) {
    return json::parse(test::read_text(p));
}

TEST(Engine, UnblindedWritesBothFilesWithLineageAndImages) {
    test::TempDir dir;
    auto samples = make_samples(5);
    write_samples(dir / "in.jsonl", samples);
    ScriptedClient client([](const llm::ChatRequest& r, int) {
        return ScriptedClient::reply(good_reply(request_text(r)));
    });
    auto o = options(dir);
    o.image_tokens = true;
    o.jsonl = true;
    o.price_in = 2.0;
    o.price_out = 10.0;
    auto res = run_reformat(o, &client);
    ASSERT_TRUE(res.ok()) << res.status().to_string();
    EXPECT_EQ(client.calls(), 5);
    EXPECT_EQ(res->stats.input, 5u);
    EXPECT_EQ(res->stats.kept, 5u);
    EXPECT_EQ(res->stats.rejected, 0u);

    json align = load(dir / "out" / "alignment_vqa.json");
    json instr = load(dir / "out" / "instruction_vqa.json");
    ASSERT_EQ(align.size(), 5u);
    ASSERT_EQ(instr.size(), 5u);
    for (size_t i = 0; i < 5; ++i) {
        const auto& a = align[i];
        const auto& s = samples[i];
        EXPECT_EQ(a["id"], s.id + "#alignment");
        EXPECT_EQ(a["sample_id"], s.id);
        EXPECT_EQ(a["method"], "mllm-unblinded");
        EXPECT_EQ(a["model"], "test-model");
        EXPECT_EQ(a["prompt_version"], "unblinded-v1");
        EXPECT_EQ(a["licence"], "CC BY 4.0");
        EXPECT_EQ(a["scenario"], std::string(scenarios()[pick_scenario(s.id, 1)].key));
        ASSERT_EQ(a["image"].size(), s.images.size());
        for (size_t k = 0; k < s.images.size(); ++k) {
            std::string rel = a["image"][k];
            EXPECT_EQ(rel.rfind("images/", 0), 0u);
            EXPECT_EQ(test::read_text(dir / "out" / rel), test::read_text(s.images[k]));
        }
        ASSERT_EQ(a["conversations"].size(), 2u);
        EXPECT_EQ(a["conversations"][0]["from"], "human");
        EXPECT_EQ(a["conversations"][1]["from"], "gpt");
        std::string human = a["conversations"][0]["value"];
        std::string prefix;
        for (size_t k = 0; k < s.images.size(); ++k)
            prefix += "<image>\n";
        EXPECT_EQ(human, prefix + std::string(pick_describe_question(s.id, s.images.size(), 1)));
        EXPECT_EQ(a["conversations"][1]["value"],
                  "Axial CT image number " + std::to_string(i) +
                      " showing a well-defined hypodense lesion in the right hepatic lobe.");
        EXPECT_EQ(instr[i]["conversations"][0]["value"],
                  prefix + "What abnormality is visible in image " + std::to_string(i) + "?");
        EXPECT_EQ(instr[i]["id"], s.id + "#instruction");
    }
    // JSONL twins hold the same records.
    auto lines = test::read_lines(dir / "out" / "alignment_vqa.jsonl");
    ASSERT_EQ(lines.size(), 5u);
    EXPECT_EQ(json::parse(lines[3]), align[3]);
    // Stats: tokens and cost from the usage of every reply.
    const auto& ex = res->stats.extra;
    EXPECT_EQ(ex["tokens"]["prompt"], 500);
    EXPECT_EQ(ex["tokens"]["completion"], 250);
    EXPECT_NEAR(ex["cost"].get<double>(), 500 * 2.0 / 1e6 + 250 * 10.0 / 1e6, 1e-12);
    auto stats = load(dir / "out" / "stats.json");
    EXPECT_EQ(stats["stage"], "reformat");
    EXPECT_EQ(stats["kept"], 5);
    EXPECT_FALSE(std::filesystem::exists(dir / "out" / ".partial"));
}

TEST(Engine, RerunSendsNothingAndRewritesIdenticalOutputs) {
    test::TempDir dir;
    write_samples(dir / "in.jsonl", make_samples(6));
    ScriptedClient client([](const llm::ChatRequest& r, int) {
        return ScriptedClient::reply(good_reply(request_text(r)));
    });
    auto o = options(dir);
    ASSERT_TRUE(run_reformat(o, &client).ok());
    std::string a1 = test::read_text(dir / "out" / "alignment_vqa.json");
    std::string i1 = test::read_text(dir / "out" / "instruction_vqa.json");
    ASSERT_TRUE(run_reformat(o, &client).ok());
    EXPECT_EQ(client.calls(), 6);  // nothing asked twice
    EXPECT_EQ(test::read_text(dir / "out" / "alignment_vqa.json"), a1);
    EXPECT_EQ(test::read_text(dir / "out" / "instruction_vqa.json"), i1);
    // Another model is another request.
    o.prompt.model = "other-model";
    ASSERT_TRUE(run_reformat(o, &client).ok());
    EXPECT_EQ(client.calls(), 12);
}

TEST(Engine, InvalidRepliesAreReaskedThenRejectedWithRawText) {
    test::TempDir dir;
    write_samples(dir / "in.jsonl", make_samples(3));
    // Sample 0: mentions the caption once, then answers well. Sample 1: never valid JSON.
    // Sample 2: fine at once.
    std::map<int, int> seen;
    ScriptedClient client([&](const llm::ChatRequest& r, int) {
        std::string t = request_text(r);
        int n = testing::caption_number(t);
        int k = seen[n]++;
        if (n == 0 && k == 0)
            return ScriptedClient::reply(
                "{\"image_description\": \"As stated in the caption, an axial CT image of the "
                "liver.\", \"question\": \"What is shown?\", \"answer\": \"A hypodense hepatic "
                "lesion is visible.\"}");
        if (n == 1) return ScriptedClient::reply("I cannot comply with that request.");
        return ScriptedClient::reply(good_reply(t));
    });
    auto o = options(dir);
    o.max_reasks = 2;
    auto res = run_reformat(o, &client);
    ASSERT_TRUE(res.ok()) << res.status().to_string();
    EXPECT_EQ(seen[0], 2);
    EXPECT_EQ(seen[1], 3);  // first ask + 2 re-asks
    EXPECT_EQ(seen[2], 1);
    // The re-ask quotes the validation error.
    bool reask_seen = false;
    for (const auto& r : client.seen()) {
        std::string t = request_text(r);
        if (testing::caption_number(t) == 0 &&
            t.find("Your previous reply could not be used") != std::string::npos) {
            reask_seen = true;
            EXPECT_NE(t.find("caption"), std::string::npos);
        }
    }
    EXPECT_TRUE(reask_seen);
    EXPECT_EQ(res->stats.kept, 2u);
    EXPECT_EQ(res->stats.rejected, 1u);
    EXPECT_EQ(res->stats.reasons.at("no_json"), 1u);
    EXPECT_EQ(res->stats.extra["failures"]["no_json"], 1);
    auto rejects = test::read_lines(dir / "out" / "rejects.jsonl");
    ASSERT_EQ(rejects.size(), 1u);
    json rj = json::parse(rejects[0]);
    EXPECT_EQ(rj["id"], "test:s1");
    EXPECT_EQ(rj["reason"], "no_json");
    EXPECT_NE(rj["detail"].get<std::string>().find("I cannot comply"), std::string::npos);
    EXPECT_EQ(rj["record"]["id"], "test:s1");
    EXPECT_EQ(load(dir / "out" / "alignment_vqa.json").size(), 2u);
    // The ledger keeps every raw reply of the failed row.
    auto l = std::move(Ledger::open(dir / "out" / "ledger.sqlite")).value();
    auto counts = *l->count_by_state();
    EXPECT_EQ(counts["done"], 2);
    EXPECT_EQ(counts["failed"], 1);
}

TEST(Engine, EveryRecordEndsKeptOrRejected) {
    test::TempDir dir;
    auto samples = make_samples(4);
    curate::Sample no_img = samples[0];
    no_img.id = "test:noimg";
    no_img.images.clear();
    curate::Sample missing = samples[1];
    missing.id = "test:missing";
    missing.images = {(dir / "nope.jpg").string()};
    samples.push_back(no_img);
    samples.push_back(missing);
    samples.push_back(samples[2]);  // duplicate id
    write_samples(dir / "in.jsonl", samples, {"{not json", "{\"id\": 5}"});
    ScriptedClient client([](const llm::ChatRequest& r, int call) -> Result<llm::ChatResponse> {
        std::string t = request_text(r);
        if (testing::caption_number(t) == 3) return Status::unavailable("HTTP 503 after retries");
        return ScriptedClient::reply(good_reply(t));
    });
    auto o = options(dir);
    auto res = run_reformat(o, &client);
    ASSERT_TRUE(res.ok()) << res.status().to_string();
    const auto& st = res->stats;
    EXPECT_EQ(st.input, 9u);
    EXPECT_EQ(st.kept + st.rejected, st.input);
    EXPECT_EQ(st.kept, 3u);
    EXPECT_EQ(st.reasons.at("bad_record"), 2u);
    EXPECT_EQ(st.reasons.at("no_images"), 1u);
    EXPECT_EQ(st.reasons.at("image_missing"), 1u);
    EXPECT_EQ(st.reasons.at("duplicate_id"), 1u);
    EXPECT_EQ(st.reasons.at("request_failed"), 1u);
    EXPECT_EQ(test::read_lines(dir / "out" / "samples.jsonl").size(), 3u);
    EXPECT_EQ(test::read_lines(dir / "out" / "rejects.jsonl").size(), 6u);
    // request_failed is retried by the next run (nothing was recorded for it).
    ScriptedClient ok_client([](const llm::ChatRequest& r, int) {
        return ScriptedClient::reply(good_reply(request_text(r)));
    });
    auto res2 = run_reformat(o, &ok_client);
    ASSERT_TRUE(res2.ok());
    EXPECT_EQ(ok_client.calls(), 1);
    EXPECT_EQ(res2->stats.kept, 4u);
}

TEST(Engine, NativeCaptionNeedsNoModel) {
    test::TempDir dir;
    auto samples = make_samples(3);
    write_samples(dir / "in.jsonl", samples);
    auto o = options(dir, Method::kNativeCaption);
    o.image_mode = ImageMode::kSymLink;
    auto res = run_reformat(o, nullptr);
    ASSERT_TRUE(res.ok()) << res.status().to_string();
    json align = load(dir / "out" / "alignment_vqa.json");
    ASSERT_EQ(align.size(), 3u);
    EXPECT_EQ(align[1]["conversations"][1]["value"], samples[1].caption);
    EXPECT_EQ(align[1]["method"], "native-caption");
    EXPECT_EQ(align[1]["model"], "none");
    EXPECT_TRUE(align[1]["scenario"].is_null());
    EXPECT_FALSE(std::filesystem::exists(dir / "out" / "instruction_vqa.json"));
    EXPECT_FALSE(std::filesystem::exists(dir / "out" / "ledger.sqlite"));
    std::string rel = align[0]["image"][0];
    EXPECT_TRUE(std::filesystem::is_symlink(dir / "out" / rel));
}

TEST(Engine, TextAndImageOnlyMethodsSendWhatTheyShould) {
    for (Method m : {Method::kLlmText, Method::kMllmImageOnly}) {
        test::TempDir dir;
        auto samples = make_samples(3);
        write_samples(dir / "in.jsonl", samples);
        ScriptedClient client([](const llm::ChatRequest& r, int) {
            std::string t = request_text(r);
            // The image-only prompt has no caption: answer from the image count instead.
            if (testing::caption_number(t) < 0) t = "Caption number 7";
            return ScriptedClient::reply(good_reply(t));
        });
        auto o = options(dir, m);
        o.image_url = [](const std::filesystem::path& p) -> Result<std::string> {
            return "url:" + p.filename().string();
        };
        auto res = run_reformat(o, &client);
        ASSERT_TRUE(res.ok()) << res.status().to_string();
        ASSERT_EQ(client.seen().size(), 3u);
        for (size_t i = 0; i < 3; ++i) {
            const auto& req = client.seen()[i];
            std::string t = request_text(req);
            size_t n_img = 0;
            for (const auto& p : req.messages[0].content)
                if (p.kind == llm::ContentPart::Kind::kImageUrl) {
                    EXPECT_EQ(
                        p.image_url,
                        "url:" +
                            std::filesystem::path(samples[i].images[n_img]).filename().string());
                    ++n_img;
                }
            if (m == Method::kLlmText) {
                EXPECT_EQ(n_img, 0u);
                EXPECT_NE(t.find(samples[i].caption), std::string::npos);
            } else {
                EXPECT_EQ(n_img, samples[i].images.size());
                EXPECT_EQ(t.find("Caption number"), std::string::npos);
            }
        }
        json instr = load(dir / "out" / "instruction_vqa.json");
        EXPECT_EQ(instr.size(), 3u);
        EXPECT_EQ(instr[0]["method"], std::string(method_name(m)));
        EXPECT_EQ(instr[0]["prompt_version"], std::string(prompt_version(m)));
    }
}

TEST(Engine, CancelLeavesLedgerConsistentAndResumes) {
    test::TempDir dir;
    write_samples(dir / "in.jsonl", make_samples(10));
    std::atomic<bool> cancel{false};
    ScriptedClient client([&](const llm::ChatRequest& r, int call) {
        if (call == 4) cancel.store(true);  // Ctrl-C while the 5th reply comes in
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        return ScriptedClient::reply(good_reply(request_text(r)));
    });
    auto o = options(dir);
    o.cancel = &cancel;
    o.batch = 20;
    auto res = run_reformat(o, &client);
    ASSERT_FALSE(res.ok());
    EXPECT_EQ(res.status().code(), StatusCode::kCancelled);
    int first = client.calls();
    EXPECT_GE(first, 5);
    EXPECT_LT(first, 10);
    {
        auto l = std::move(Ledger::open(dir / "out" / "ledger.sqlite")).value();
        auto counts = *l->count_by_state();
        EXPECT_EQ(counts["in_flight"], 0);
        EXPECT_EQ(counts["done"], first);
        EXPECT_EQ(counts["pending"], 10 - first);
    }
    EXPECT_FALSE(std::filesystem::exists(dir / "out" / "alignment_vqa.json"));
    cancel.store(false);
    auto res2 = run_reformat(o, &client);
    ASSERT_TRUE(res2.ok()) << res2.status().to_string();
    EXPECT_EQ(client.calls(), 10);  // only the rest was asked
    EXPECT_EQ(res2->stats.kept, 10u);
}

TEST(Engine, DryRunCountsRequestsTokensAndCost) {
    test::TempDir dir;
    auto samples = make_samples(6);  // 2 of them have two images
    write_samples(dir / "in.jsonl", samples, {"{broken"});
    auto o = options(dir);
    o.price_in = 5;
    o.price_out = 15;
    o.prompt.max_tokens = 1000;
    auto e = estimate_reformat(o);
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    EXPECT_EQ(e->samples, 7);
    EXPECT_EQ(e->rejected, 1);
    EXPECT_EQ(e->requests, 6);
    EXPECT_EQ(e->images, 8);
    EXPECT_EQ(e->max_completion_tokens, 6000);
    // Naive recomputation: prompt text / 4 + 8 per request, tile rule per image.
    int64_t expect = 0;
    for (const auto& s : samples) {
        expect += (build_prompt_text(s, o.method, pick_scenario(s.id, 1)).size() + 3) / 4 + 8;
        for (const auto& p : s.images) {
            auto info = io::probe_image_file(p).info;
            expect += image_tokens_estimate(info.width, info.height, o.image_max_side);
        }
    }
    EXPECT_EQ(e->prompt_tokens, expect);
    EXPECT_NEAR(e->cost_prompt, expect * 5 / 1e6, 1e-12);
    EXPECT_NEAR(e->cost_max, expect * 5 / 1e6 + 6000 * 15 / 1e6, 1e-12);
    EXPECT_FALSE(std::filesystem::exists(dir / "out" / "ledger.sqlite"));  // nothing written
    // After a run the same dry run has nothing left to send.
    ScriptedClient client([](const llm::ChatRequest& r, int) {
        return ScriptedClient::reply(good_reply(request_text(r)));
    });
    ASSERT_TRUE(run_reformat(o, &client).ok());
    auto e2 = estimate_reformat(o);
    ASSERT_TRUE(e2.ok());
    EXPECT_EQ(e2->requests, 0);
    EXPECT_EQ(e2->already_done, 6);
}

TEST(Engine, ImageTokenEstimateFollowsTileRule) {
    EXPECT_EQ(image_tokens_estimate(512, 512, 0), 85 + 170);
    EXPECT_EQ(image_tokens_estimate(1024, 1024, 0), 85 + 170 * 4);  // 768x768 -> 2x2 tiles
    EXPECT_EQ(image_tokens_estimate(2048, 4096, 0), 85 + 170 * 6);  // 1024x2048 -> 768x1536
    EXPECT_EQ(image_tokens_estimate(4000, 4000, 1024), 85 + 170 * 4);
    EXPECT_EQ(image_tokens_estimate(0, 0, 1024), 765);
}

TEST(Engine, StableImageNames) {
    std::string a = output_image_name("jats:PMC1:F2", 0, "/x/fig.JPG");
    EXPECT_EQ(a, output_image_name("jats:PMC1:F2", 0, "/other/dir/fig.JPG"));
    EXPECT_NE(a,
              output_image_name("jats_PMC1_F2", 0, "/x/fig.JPG"));  // sanitised alike, hash differs
    EXPECT_EQ(a.substr(a.size() - 6), "_0.jpg");
    EXPECT_EQ(a.find(':'), std::string::npos);
}

TEST(Engine, StopsWhenTheEndpointNeverAnswers) {
    test::TempDir dir;
    write_samples(dir / "in.jsonl", make_samples(6));
    ScriptedClient client([](const llm::ChatRequest&, int) -> Result<llm::ChatResponse> {
        return Status::invalid_argument("HTTP 401: invalid api key");
    });
    auto o = options(dir);
    auto res = run_reformat(o, &client);
    ASSERT_FALSE(res.ok());
    EXPECT_EQ(res.status().code(), StatusCode::kUnavailable);
    EXPECT_NE(res.status().message().find("HTTP 401"), std::string::npos);
    EXPECT_EQ(client.calls(), 4);  // one batch, not the whole input
    // Fixed endpoint: the next run asks everything again (nothing was recorded as an answer).
    ScriptedClient ok([](const llm::ChatRequest& r, int) {
        return ScriptedClient::reply(good_reply(request_text(r)));
    });
    auto res2 = run_reformat(o, &ok);
    ASSERT_TRUE(res2.ok()) << res2.status().to_string();
    EXPECT_EQ(ok.calls(), 6);
    EXPECT_EQ(res2->stats.kept, 6u);
}

}  // namespace
}  // namespace mf::reformat
