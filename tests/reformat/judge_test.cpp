// medforge judge: the MLLM-as-judge evaluation of construction methods, through the fake OpenAI
// server (real HTTP on loopback). The fake judge reads the scores it should give from a marker in
// the candidate answer ("[[scores a b c d]]"), so every expected mean is known in advance.
#include <fmt/core.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "reformat/judge.h"
#include "reformat/ledger.h"
#include "reformat/reformat.h"
#include "reformat_test_util.h"
#include "support/fake_openai.h"

namespace mf::reformat {
namespace {

using nlohmann::json;
using test::FakeOpenAi;
using test::FakeReply;
namespace fs = std::filesystem;

const std::vector<std::string> kMethods = {"native-caption", "llm-text", "mllm-image-only",
                                           "mllm-unblinded"};

// The scores the fake judge gives method m on sample i.
std::array<int, 4> expected_scores(size_t m, size_t i) {
    return {static_cast<int>(1 + (i + m) % 5), static_cast<int>(1 + (2 * i + m) % 5),
            static_cast<int>(1 + (i * m + 1) % 5), static_cast<int>(5 - (i + 2 * m) % 5)};
}

std::string answer_text(size_t m, size_t i, const std::string& extra = "") {
    auto s = expected_scores(m, i);
    return fmt::format(
        "Answer variant {} for image {}: an axial CT shows a hypodense hepatic lesion. "
        "[[scores {} {} {} {}]]{}",
        m, i, s[0], s[1], s[2], s[3], extra);
}

// The fake judge: scores from the marker; "[[invalid-once]]" answers "not json" to the first
// ask and correctly to the re-ask; "[[invalid-always]]" always gives an out-of-range score.
FakeReply judge_reply(const json& req, int offset = 0) {
    std::string t = FakeOpenAi::request_text(req);
    size_t p = t.find("[[scores ");
    if (p == std::string::npos) return FakeReply::text("I cannot see any answer.");
    int s[4];
    if (std::sscanf(t.c_str() + p, "[[scores %d %d %d %d]]", &s[0], &s[1], &s[2], &s[3]) != 4)
        return FakeReply::text("bad marker");
    const bool reask = req["messages"].size() > 2;
    if (t.find("[[invalid-once]]") != std::string::npos && !reask)
        return FakeReply::text("The answer looks fine to me, I would give it a good score.");
    for (int c = 0; c < 4; ++c)
        s[c] = std::clamp(s[c] + offset, 1, 5);
    if (t.find("[[invalid-always]]") != std::string::npos) s[1] = 7;
    json out;
    for (int c = 0; c < 4; ++c)
        out[kJudgeCriteria[c]] = {{"score", s[c]},
                                  {"reason", fmt::format("reason {} {}", c, s[c])}};
    return FakeReply::text("```json\n" + out.dump() + "\n```");
}

json vqa_record(const curate::Sample& s, size_t m, const std::string& answer) {
    return {{"id", s.id + "#alignment"},
            {"image", s.images},
            {"conversations", json::array({{{"from", "human"},
                                            {"value",
                                             "<image>\nPlease provide a description of the given "
                                             "medical image."}},
                                           {{"from", "gpt"}, {"value", answer}}})},
            {"sample_id", s.id},
            {"method", kMethods[m]}};
}

struct Fixture {
    test::TempDir dir;
    std::vector<curate::Sample> samples;
    std::vector<fs::path> files;

    // n samples, `methods` files (set<m>.json arrays; the last one JSONL), samples.jsonl beside.
    explicit Fixture(size_t n, size_t methods = 4,
                     const std::map<std::pair<size_t, size_t>, std::string>& extra = {}) {
        samples = testing::make_samples(n);
        testing::write_samples(dir / "samples.jsonl", samples);
        for (size_t m = 0; m < methods; ++m) {
            const bool jsonl = m + 1 == methods && methods > 1;
            fs::path f = dir / fmt::format("set{}.{}", m, jsonl ? "jsonl" : "json");
            std::string text = jsonl ? "" : "[";
            for (size_t i = 0; i < n; ++i) {
                auto it = extra.find({m, i});
                json r = vqa_record(samples[i], m,
                                    answer_text(m, i, it == extra.end() ? "" : it->second));
                text += jsonl ? r.dump() + "\n" : (i ? ",\n" : "\n") + r.dump();
            }
            if (!jsonl) text += "\n]\n";
            test::write_text(f, text);
            files.push_back(f);
        }
    }
};

std::unique_ptr<llm::LlmClient> client_for(const FakeOpenAi& server, int concurrency = 4) {
    llm::ClientOptions co;
    co.base_url = server.base_url();
    co.max_concurrency = concurrency;
    co.backoff_initial_s = 0.01;
    co.max_retries = 1;
    auto c = llm::make_http_client(co);
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    return std::move(c).value();
}

JudgeOptions options(const Fixture& fx, const fs::path& out, size_t n, uint64_t seed) {
    JudgeOptions o;
    o.data = fx.files;
    o.out_dir = out;
    o.sample = n;
    o.seed = seed;
    o.model = "fake-judge";
    o.progress = false;
    o.bootstrap_resamples = 500;
    return o;
}

// (method index, sample index) of a request, from the marker-bearing answer text.
std::pair<int, int> which(const std::string& text) {
    size_t p = text.find("Answer variant ");
    if (p == std::string::npos) return {-1, -1};
    int m = -1, i = -1;
    std::sscanf(text.c_str() + p, "Answer variant %d for image %d", &m, &i);
    return {m, i};
}

TEST(JudgeTest, MeansCisOutputsAndLabelBlind) {
    Fixture fx(8);
    FakeOpenAi server([](const json& req, int) { return judge_reply(req); });
    ASSERT_TRUE(server.start().ok());
    auto client = client_for(server);
    auto o = options(fx, fx.dir / "out", 6, 7);
    auto run = run_judge(o, client.get());
    ASSERT_TRUE(run.ok()) << run.status().to_string();
    EXPECT_EQ(server.calls(), 24);  // 6 samples x 4 methods
    const json& r = run->report;
    EXPECT_EQ(r["methods"], json(kMethods));  // labels from the records' "method" fields

    // The sampled ids: 6 distinct ids, the same for every method.
    std::map<std::string, std::set<std::string>> ids_by_method;
    for (const auto& it : r["items"])
        ids_by_method[it["method"]].insert(it["id"].get<std::string>());
    ASSERT_EQ(ids_by_method.size(), 4u);
    for (const auto& [m, ids] : ids_by_method)
        EXPECT_EQ(ids, ids_by_method["native-caption"]);
    ASSERT_EQ(ids_by_method["native-caption"].size(), 6u);

    // Means: recomputed here from the scoring formula over the sampled ids.
    for (size_t m = 0; m < kMethods.size(); ++m) {
        const json& mj = r["judges"][0]["methods"][kMethods[m]];
        EXPECT_EQ(mj["scored"], 6);
        EXPECT_EQ(mj["failed"], 0);
        for (size_t c = 0; c < 4; ++c) {
            std::vector<double> v;
            for (const auto& id : ids_by_method[kMethods[m]]) {
                size_t i = std::stoul(id.substr(id.find(":s") + 2));
                v.push_back(expected_scores(m, i)[c]);
            }
            double mean = 0;
            for (double x : v)
                mean += x;
            mean /= static_cast<double>(v.size());
            const json& b = mj["criteria"][kJudgeCriteria[c]];
            SCOPED_TRACE(fmt::format("{} {}", kMethods[m], kJudgeCriteria[c]));
            EXPECT_NEAR(b["mean"].get<double>(), mean, 1e-12);
            double lo = b["ci95"][0].get<double>(), hi = b["ci95"][1].get<double>();
            EXPECT_LE(lo, mean + 1e-12);
            EXPECT_GE(hi, mean - 1e-12);
            EXPECT_GE(lo, *std::min_element(v.begin(), v.end()));
            EXPECT_LE(hi, *std::max_element(v.begin(), v.end()));
            if (*std::min_element(v.begin(), v.end()) != *std::max_element(v.begin(), v.end()))
                EXPECT_LT(lo, hi);
            else
                EXPECT_EQ(lo, hi);
        }
    }
    // Label-blind: no request names a method or a file; every request has the images and the
    // ground truth.
    for (const auto& rec : server.requests()) {
        std::string t = FakeOpenAi::request_text(rec.body);
        for (const auto& m : kMethods)
            EXPECT_EQ(t.find(m), std::string::npos) << m;
        for (const auto& f : fx.files)
            EXPECT_EQ(t.find(f.stem().string()), std::string::npos);
        EXPECT_EQ(rec.raw_body.find("native-caption"), std::string::npos);
        auto [m, i] = which(t);
        ASSERT_GE(i, 0);
        EXPECT_NE(t.find(fx.samples[static_cast<size_t>(i)].caption), std::string::npos);
        EXPECT_NE(t.find(fx.samples[static_cast<size_t>(i)].mentions[0]), std::string::npos);
        EXPECT_EQ(FakeOpenAi::image_count(rec.body),
                  static_cast<int>(fx.samples[static_cast<size_t>(i)].images.size()));
    }
    // Outputs.
    for (const char* f : {"report.json", "report.md", "report.html", "items.jsonl"})
        EXPECT_TRUE(fs::exists(fx.dir / "out" / f)) << f;
    EXPECT_EQ(test::read_lines(fx.dir / "out" / "items.jsonl").size(), 24u);
    std::string html = test::read_text(fx.dir / "out" / "report.html");
    EXPECT_NE(html.find("<svg"), std::string::npos);
    EXPECT_EQ(html.find("<script"), std::string::npos);
    EXPECT_EQ(html.find("src=\"http"), std::string::npos);
    EXPECT_EQ(std::count(html.begin(), html.end(), '\n') > 20, true);
    std::string md = test::read_text(fx.dir / "out" / "report.md");
    EXPECT_NE(md.find("| mllm-unblinded | 6 | 0 |"), std::string::npos) << md;

    // A second run pays nothing and writes the same report.
    auto again = run_judge(o, client.get());
    ASSERT_TRUE(again.ok()) << again.status().to_string();
    EXPECT_EQ(server.calls(), 24);
    EXPECT_EQ(again->report["judges"], r["judges"]);
}

TEST(JudgeTest, SampleAndOrderAreSeededAndShuffled) {
    Fixture fx(12);
    auto order_for = [&](uint64_t seed, const std::string& out) {
        FakeOpenAi server([](const json& req, int) { return judge_reply(req); });
        EXPECT_TRUE(server.start().ok());
        auto client = client_for(server, 1);  // one at a time: arrival order = send order
        auto o = options(fx, fx.dir / out, 5, seed);
        auto run = run_judge(o, client.get());
        EXPECT_TRUE(run.ok()) << run.status().to_string();
        std::vector<std::pair<int, int>> order;
        for (const auto& rec : server.requests())
            order.push_back(which(FakeOpenAi::request_text(rec.body)));
        return order;
    };
    auto a = order_for(3, "a");
    auto b = order_for(3, "b");
    auto c = order_for(4, "c");
    ASSERT_EQ(a.size(), 20u);
    EXPECT_EQ(a, b);  // same seed: same ids, same order
    EXPECT_NE(a, c);
    std::set<int> ids_a, ids_c;
    for (auto [m, i] : a)
        ids_a.insert(i);
    for (auto [m, i] : c)
        ids_c.insert(i);
    EXPECT_EQ(ids_a.size(), 5u);
    EXPECT_NE(ids_a, ids_c);  // 5 of 12: another seed draws another set
    // Shuffled across methods and samples: not grouped by method, nor by sample.
    int method_changes = 0, sample_changes = 0;
    for (size_t k = 1; k < a.size(); ++k) {
        method_changes += a[k].first != a[k - 1].first;
        sample_changes += a[k].second != a[k - 1].second;
    }
    EXPECT_GT(method_changes, 6);
    EXPECT_GT(sample_changes, 6);

    // The library functions directly.
    std::vector<int> v(50);
    for (int k = 0; k < 50; ++k)
        v[static_cast<size_t>(k)] = k;
    auto v1 = v, v2 = v, v3 = v;
    seeded_shuffle(v1, 9);
    seeded_shuffle(v2, 9);
    seeded_shuffle(v3, 10);
    EXPECT_EQ(v1, v2);
    EXPECT_NE(v1, v3);
    EXPECT_NE(v1, v);
    std::sort(v1.begin(), v1.end());
    EXPECT_EQ(v1, v);
}

TEST(JudgeTest, InvalidRepliesAreReaskedOnceThenFailed) {
    Fixture fx(3, 2, {{{0, 1}, " [[invalid-once]]"}, {{1, 2}, " [[invalid-always]]"}});
    FakeOpenAi server([](const json& req, int) { return judge_reply(req); });
    ASSERT_TRUE(server.start().ok());
    auto client = client_for(server);
    auto run = run_judge(options(fx, fx.dir / "out", 0, 1), client.get());
    ASSERT_TRUE(run.ok()) << run.status().to_string();
    EXPECT_EQ(server.calls(), 6 + 2);  // two re-asks
    const json& r = run->report;
    std::map<std::pair<std::string, std::string>, json> items;
    for (const auto& it : r["items"])
        items[{it["method"], it["id"]}] = it;
    const json& once = items[{kMethods[0], "test:s1"}];
    EXPECT_EQ(once["state"], "done");
    EXPECT_EQ(once["replies"], 2);
    EXPECT_EQ(once["scores"]["accuracy"], expected_scores(0, 1)[0]);
    const json& always = items[{kMethods[1], "test:s2"}];
    EXPECT_EQ(always["state"], "failed");
    EXPECT_EQ(always["reason"], "invalid_scores");
    EXPECT_EQ(always["replies"], 2);
    EXPECT_NE(always["detail"].get<std::string>().find("relevance"), std::string::npos);
    EXPECT_EQ(r["judges"][0]["methods"][kMethods[1]]["failed"], 1);
    EXPECT_EQ(r["judges"][0]["methods"][kMethods[1]]["scored"], 2);
    // The re-asks quote the error and the previous reply.
    int reasks = 0;
    for (const auto& rec : server.requests()) {
        if (rec.body["messages"].size() <= 2) continue;
        ++reasks;
        std::string t = FakeOpenAi::request_text(rec.body);
        EXPECT_NE(t.find("could not be used: invalid_scores"), std::string::npos) << t;
        if (t.find("[[invalid-once]]") != std::string::npos)
            EXPECT_NE(t.find("no JSON object"), std::string::npos);
        else
            EXPECT_NE(t.find("out of range"), std::string::npos);
        EXPECT_EQ(rec.body["messages"][2]["role"], "assistant");
    }
    EXPECT_EQ(reasks, 2);
    std::string md = test::read_text(fx.dir / "out" / "report.md");
    EXPECT_NE(md.find("failed (invalid_scores)"), std::string::npos);
}

TEST(JudgeTest, ParseReply) {
    auto ok = parse_judge_reply(
        "Here you go:\n```json\n{\"Accuracy\": {\"score\": 4, \"reason\": \"ok\"}, "
        "\"relevance\": {\"score\": \"5\", \"reason\": \"focused\"}, \"completeness\": "
        "{\"score\": 3.0, \"reason\": \"misses size\"}, \"usefulness\": {\"score\": 1, "
        "\"reason\": \"none\"}}\n```");
    ASSERT_TRUE(ok.ok()) << ok.status().to_string();
    EXPECT_EQ(ok->score, (std::array<int, 4>{4, 5, 3, 1}));
    EXPECT_EQ(ok->reason[2], "misses size");
    auto bad = [](const std::string& reply, const std::string& what) {
        auto r = parse_judge_reply(reply);
        ASSERT_FALSE(r.ok()) << reply;
        EXPECT_NE(r.status().message().find(what), std::string::npos) << r.status().message();
        EXPECT_EQ(r.status().message().rfind("invalid_scores:", 0), 0u);
    };
    const std::string rest =
        "\"relevance\": {\"score\": 5, \"reason\": \"r\"}, \"completeness\": {\"score\": 3, "
        "\"reason\": \"c\"}, \"usefulness\": {\"score\": 2, \"reason\": \"u\"}}";
    bad("no json here", "no JSON object");
    bad("{" + rest, "\"accuracy\" is missing");
    bad("{\"accuracy\": {\"score\": 6, \"reason\": \"a\"}, " + rest, "out of range");
    bad("{\"accuracy\": {\"score\": 0, \"reason\": \"a\"}, " + rest, "out of range");
    bad("{\"accuracy\": {\"score\": 3.5, \"reason\": \"a\"}, " + rest, "integer");
    bad("{\"accuracy\": {\"score\": \"high\", \"reason\": \"a\"}, " + rest, "integer");
    bad("{\"accuracy\": 4, " + rest, "must be an object");
    bad("{\"accuracy\": {\"score\": 4, \"reason\": \" \"}, " + rest, "reason");
}

// Quadratic-weighted kappa against values worked out by hand.
TEST(JudgeTest, QuadraticWeightedKappa) {
    // Categories 1..3, w = (i-j)^2/4. a = 1 1 2 3, b = 1 2 2 3.
    // Observed: one (1,2) disagreement: sum w*O = 0.25.
    // Marginals a: {2,1,1}, b: {1,2,1}; E_ij = a_i*b_j/4:
    //   |i-j| = 1: E12 = 1, E21 = 0.25, E23 = 0.25, E32 = 0.5 -> 2.0 * 0.25 = 0.5
    //   |i-j| = 2: E13 = 0.5, E31 = 0.25 -> 0.75 * 1
    //   kappa = 1 - 0.25 / 1.25 = 0.8
    EXPECT_NEAR(quadratic_weighted_kappa({1, 1, 2, 3}, {1, 2, 2, 3}, 1, 3), 0.8, 1e-12);
    // Perfect agreement.
    EXPECT_NEAR(quadratic_weighted_kappa({1, 2, 3, 4, 5}, {1, 2, 3, 4, 5}), 1.0, 1e-12);
    // Complete reversal on 1..5: O has (1,5),(5,1): sum w*O = 2; E = 0.5 at the four corners:
    // sum w*E = 0.5 + 0.5 = 1 -> kappa = -1.
    EXPECT_NEAR(quadratic_weighted_kappa({1, 5}, {5, 1}), -1.0, 1e-12);
    // a constant 4, b = 3 4 5: sum w*O = 2/16; E_4j = b_j = 1 each: sum w*E = 2/16 -> 0.
    EXPECT_NEAR(quadratic_weighted_kappa({4, 4, 4}, {3, 4, 5}), 0.0, 1e-12);
    // Categories 1..5, a = 1 2 3 4 5, b = 2 2 3 4 4 (w = d^2/16):
    // sum w*O = 1/16 + 1/16 = 0.125. Marginals a: 1 each; b: {0,2,1,2,0}; E_ij = b_j/5.
    // sum w*E = (1/5) * sum_i [2*(i-2)^2 + (i-3)^2 + 2*(i-4)^2] / 16 over i = 1..5
    //   i=1: 2+4+18 = 24; i=2: 0+1+8 = 9; i=3: 2+0+2 = 4; i=4: 8+1+0 = 9; i=5: 18+4+2 = 24
    //   total 70 -> 70 / 16 / 5 = 0.875 -> kappa = 1 - 0.125/0.875 = 6/7
    EXPECT_NEAR(quadratic_weighted_kappa({1, 2, 3, 4, 5}, {2, 2, 3, 4, 4}), 6.0 / 7.0, 1e-12);
    EXPECT_TRUE(std::isnan(quadratic_weighted_kappa({3, 3}, {3, 3})));
    EXPECT_TRUE(std::isnan(quadratic_weighted_kappa({}, {})));
    EXPECT_TRUE(std::isnan(quadratic_weighted_kappa({1, 6}, {1, 2})));
}

TEST(JudgeTest, SecondJudgeAndAgreement) {
    Fixture fx(6, 2);
    FakeOpenAi s1([](const json& req, int) { return judge_reply(req); });
    FakeOpenAi s2([](const json& req, int) { return judge_reply(req); });     // the same opinions
    FakeOpenAi s3([](const json& req, int) { return judge_reply(req, 1); });  // one point higher
    ASSERT_TRUE(s1.start().ok());
    ASSERT_TRUE(s2.start().ok());
    ASSERT_TRUE(s3.start().ok());
    auto c1 = client_for(s1), c2 = client_for(s2), c3 = client_for(s3);
    auto o = options(fx, fx.dir / "same", 0, 2);
    o.model2 = "fake-judge-2";
    auto same = run_judge(o, c1.get(), c2.get());
    ASSERT_TRUE(same.ok()) << same.status().to_string();
    EXPECT_EQ(s1.calls(), 12);
    EXPECT_EQ(s2.calls(), 12);
    const json& ag = same->report["agreement"];
    for (const char* c : kJudgeCriteria) {
        EXPECT_EQ(ag["criteria"][c]["n"], 12);
        EXPECT_NEAR(ag["criteria"][c]["kappa_quadratic"].get<double>(), 1.0, 1e-12) << c;
        EXPECT_EQ(ag["criteria"][c]["exact"], 1.0);
    }
    // Judge 2 one point higher (capped at 5): kappa from the same pairs recomputed here.
    o.out_dir = fx.dir / "shifted";
    auto shifted = run_judge(o, c1.get(), c3.get());
    ASSERT_TRUE(shifted.ok()) << shifted.status().to_string();
    std::vector<int> a, b;
    for (size_t m = 0; m < 2; ++m)
        for (size_t i = 0; i < 6; ++i) {
            a.push_back(expected_scores(m, i)[0]);
            b.push_back(std::min(expected_scores(m, i)[0] + 1, 5));
        }
    double k = shifted->report["agreement"]["criteria"]["accuracy"]["kappa_quadratic"];
    EXPECT_NEAR(k, quadratic_weighted_kappa(a, b), 1e-12);
    EXPECT_LT(k, 1.0);
    EXPECT_EQ(shifted->report["agreement"]["criteria"]["accuracy"]["n"], 12);
    EXPECT_EQ(shifted->report["agreement"]["criteria"]["accuracy"]["within_1"], 1.0);
    std::string md = test::read_text(fx.dir / "shifted" / "report.md");
    EXPECT_NE(md.find("Inter-judge agreement"), std::string::npos);
    EXPECT_NE(md.find("## Judge 2: fake-judge-2"), std::string::npos);
}

TEST(JudgeTest, BadInput) {
    Fixture fx(4, 2);
    FakeOpenAi server([](const json& req, int) { return judge_reply(req); });
    ASSERT_TRUE(server.start().ok());
    auto client = client_for(server);
    auto expect_error = [&](JudgeOptions o, const std::string& what) {
        auto r = run_judge(o, client.get());
        ASSERT_FALSE(r.ok()) << what;
        EXPECT_NE(r.status().message().find(what), std::string::npos) << r.status().to_string();
    };
    // Missing file.
    auto o = options(fx, fx.dir / "out", 0, 1);
    o.data.push_back(fx.dir / "nope.json");
    expect_error(o, (fx.dir / "nope.json").string() + " does not exist");
    // Malformed JSONL line 3.
    {
        std::string text;
        for (size_t i = 0; i < 4; ++i)
            text += (i == 2 ? std::string("{\"id\": broken")
                            : vqa_record(fx.samples[i], 0, "x").dump()) +
                    "\n";
        test::write_text(fx.dir / "bad.jsonl", text);
        auto ob = options(fx, fx.dir / "out", 0, 1);
        ob.data = {fx.files[0], fx.dir / "bad.jsonl"};
        expect_error(ob, (fx.dir / "bad.jsonl").string() + ":3:");
    }
    // Malformed JSON array: the error names the line.
    {
        test::write_text(fx.dir / "bad.json", "[\n" + vqa_record(fx.samples[0], 0, "x").dump() +
                                                  ",\n{\"id\": \"b\",,}\n]\n");
        auto ob = options(fx, fx.dir / "out", 0, 1);
        ob.data = {fx.dir / "bad.json"};
        expect_error(ob, (fx.dir / "bad.json").string() + ":3:");
        // A record that parses but lacks a field: its line.
        test::write_text(fx.dir / "bad2.json", "[\n" + vqa_record(fx.samples[0], 0, "x").dump() +
                                                   ",\n{\"id\": \"b\"}\n]\n");
        ob.data = {fx.dir / "bad2.json"};
        expect_error(ob, (fx.dir / "bad2.json").string() + ":3: missing \"conversations\"");
    }
    // Other array layouts (pretty-printed, one line) are read as a whole document.
    {
        json pretty = json::array(), one = json::array();
        for (size_t i = 0; i < 4; ++i) {
            pretty.push_back(vqa_record(fx.samples[i], 2, answer_text(2, i)));
            one.push_back(vqa_record(fx.samples[i], 3, answer_text(3, i)));
        }
        test::write_text(fx.dir / "pretty.json", pretty.dump(2));
        test::write_text(fx.dir / "one.json", one.dump());
        auto ob = options(fx, fx.dir / "layouts", 0, 1);
        ob.data = {fx.dir / "pretty.json", fx.dir / "one.json"};
        auto r = run_judge(ob, client.get());
        ASSERT_TRUE(r.ok()) << r.status().to_string();
        EXPECT_EQ(r->report["methods"], json({"mllm-image-only", "mllm-unblinded"}));
        EXPECT_EQ(r->report["judges"][0]["methods"]["mllm-unblinded"]["scored"], 4);
        test::write_text(fx.dir / "pretty_bad.json", pretty.dump(2).substr(0, 200));
        ob.data = {fx.dir / "pretty_bad.json"};
        expect_error(ob, (fx.dir / "pretty_bad.json").string() + ":");
    }
    // A record without an answer.
    {
        json r = vqa_record(fx.samples[0], 0, "x");
        r["conversations"].erase(1);
        test::write_text(fx.dir / "noans.jsonl", r.dump() + "\n");
        auto ob = options(fx, fx.dir / "out", 0, 1);
        ob.data = {fx.dir / "noans.jsonl"};
        expect_error(ob, (fx.dir / "noans.jsonl").string() + ":1: no non-empty \"gpt\" turn");
    }
    // Ids that do not match across files.
    {
        auto other = testing::make_samples(8);
        std::string text;
        for (size_t i = 4; i < 8; ++i)
            text += vqa_record(other[i], 1, "x").dump() + "\n";
        test::write_text(fx.dir / "other.jsonl", text);
        auto ob = options(fx, fx.dir / "out", 0, 1);
        ob.data = {fx.files[0], fx.dir / "other.jsonl"};
        expect_error(ob, "no sample id is present in every --data file");
    }
    // Two files with the same label; --label fixes it.
    {
        auto ob = options(fx, fx.dir / "dup", 0, 1);
        ob.data = {fx.files[0], fx.files[0]};
        expect_error(ob, "both have the method label 'native-caption'");
        ob.labels = {"a", "b"};
        auto r = run_judge(ob, client.get());
        ASSERT_TRUE(r.ok()) << r.status().to_string();
        EXPECT_EQ(r->report["methods"], json({"a", "b"}));
    }
    // Duplicate id inside a file.
    {
        std::string text = vqa_record(fx.samples[0], 0, "x").dump() + "\n" +
                           vqa_record(fx.samples[0], 0, "y").dump() + "\n";
        test::write_text(fx.dir / "dupid.jsonl", text);
        auto ob = options(fx, fx.dir / "out", 0, 1);
        ob.data = {fx.dir / "dupid.jsonl"};
        expect_error(ob,
                     (fx.dir / "dupid.jsonl").string() + ":2: sample id 'test:s0' appears twice");
    }
    // No ground truth: samples.jsonl elsewhere.
    {
        test::TempDir d2;
        fs::copy_file(fx.files[0], d2 / "a.json");
        auto ob = options(fx, fx.dir / "out", 0, 1);
        ob.data = {d2 / "a.json"};
        expect_error(ob, "pass --samples FILE");
        ob.samples = {fx.dir / "samples.jsonl"};
        ob.out_dir = d2 / "out";
        auto r = run_judge(ob, client.get());
        EXPECT_TRUE(r.ok()) << r.status().to_string();
    }
    // A relative image path that --images does not resolve.
    {
        json r = vqa_record(fx.samples[0], 0, answer_text(0, 0));
        r["image"] = "images/missing.jpg";
        test::write_text(fx.dir / "relimg.jsonl", r.dump() + "\n");
        auto ob = options(fx, fx.dir / "out", 0, 1);
        ob.data = {fx.dir / "relimg.jsonl"};
        ob.images_dir = fx.dir / "imgs";
        expect_error(ob, "point --images at the directory");
        // ... and one that it does.
        fs::create_directories(fx.dir / "imgs" / "images");
        fs::copy_file(fx.samples[0].images[0], fx.dir / "imgs" / "images" / "missing.jpg");
        ob.out_dir = fx.dir / "relout";
        auto ok = run_judge(ob, client.get());
        EXPECT_TRUE(ok.ok()) << ok.status().to_string();
    }
    // Labels count mismatch.
    {
        auto ob = options(fx, fx.dir / "out", 0, 1);
        ob.labels = {"only-one"};
        expect_error(ob, "give one label per file");
    }
}

// The files `medforge reformat` writes (alignment_vqa.json with images/ and samples.jsonl beside)
// are read as they are: labels from the "method" field, images and ground truth found beside.
TEST(JudgeTest, ReadsReformatOutputs) {
    test::TempDir dir;
    auto samples = testing::make_samples(5);
    testing::write_samples(dir / "in.jsonl", samples);
    for (auto [method, sub] :
         {std::pair{Method::kNativeCaption, "nc"}, std::pair{Method::kMllmUnblinded, "mu"}}) {
        ReformatOptions ro;
        ro.input = dir / "in.jsonl";
        ro.out_dir = dir / sub;
        ro.method = method;
        ro.prompt.model = "gen";
        ro.progress = false;
        testing::ScriptedClient gen([](const llm::ChatRequest& r, int) {
            return testing::ScriptedClient::reply(testing::good_reply(testing::request_text(r)));
        });
        auto res = run_reformat(ro, method == Method::kNativeCaption ? nullptr : &gen);
        ASSERT_TRUE(res.ok()) << res.status().to_string();
    }
    FakeOpenAi server([](const json& req, int) {
        std::string t = FakeOpenAi::request_text(req);
        const bool generated = t.find("Axial CT image number") != std::string::npos;
        json out;
        for (const char* c : kJudgeCriteria)
            out[c] = {{"score", generated ? 5 : 3}, {"reason", "ok"}};
        return FakeReply::text(out.dump());
    });
    ASSERT_TRUE(server.start().ok());
    auto client = client_for(server);
    JudgeOptions o;
    o.data = {dir / "nc" / "alignment_vqa.json", dir / "mu" / "alignment_vqa.json"};
    o.out_dir = dir / "judge";
    o.sample = 4;
    o.model = "fake-judge";
    o.progress = false;
    auto run = run_judge(o, client.get());
    ASSERT_TRUE(run.ok()) << run.status().to_string();
    EXPECT_EQ(run->report["methods"], json({"native-caption", "mllm-unblinded"}));
    const json& m = run->report["judges"][0]["methods"];
    EXPECT_EQ(m["native-caption"]["criteria"]["accuracy"]["mean"], 3.0);
    EXPECT_EQ(m["mllm-unblinded"]["criteria"]["usefulness"]["mean"], 5.0);
    EXPECT_EQ(m["mllm-unblinded"]["criteria"]["usefulness"]["ci95"], json({5.0, 5.0}));
    EXPECT_EQ(server.calls(), 8);
    for (const auto& rec : server.requests()) {
        std::string t = FakeOpenAi::request_text(rec.body);
        int n = testing::caption_number(t);  // the ground-truth caption is in the prompt
        ASSERT_GE(n, 0);
        EXPECT_EQ(FakeOpenAi::image_count(rec.body),
                  static_cast<int>(samples[static_cast<size_t>(n)].images.size()));
        EXPECT_EQ(t.find("<image>"), std::string::npos);
    }
}

// ---- kill and resume, through the medforge binary ----

template <typename Pred>
bool wait_for(Pred pred, double seconds = 30) {
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
}

int64_t done_rows(const fs::path& ledger) {
    if (!fs::exists(ledger)) return -1;
    auto l = Ledger::open(ledger, true);
    if (!l.ok()) return -1;
    auto c = (*l)->count_by_state();
    if (!c.ok()) return -1;
    return (*c)["done"];
}

TEST(JudgeTest, KilledRunResumesWithoutPayingTwice) {
    Fixture fx(4, 3);
    std::atomic<int> allow{5};
    std::mutex mu;
    std::map<std::pair<int, int>, int> answered;  // (method, sample) -> answers delivered
    int total = 0;
    FakeOpenAi server([&](const json& req, int) {
        auto w = which(FakeOpenAi::request_text(req));
        {
            std::lock_guard lock(mu);
            if (total < allow.load()) {
                ++total;
                ++answered[w];
                return judge_reply(req);
            }
        }
        return judge_reply(req).delay(60000);  // never arrives before the kill
    });
    ASSERT_TRUE(server.start().ok());
    std::string cmd = test::medforge_binary().string() + " judge --data";
    for (const auto& f : fx.files)
        cmd += " '" + f.string() + "'";
    cmd += " --out '" + (fx.dir / "out").string() + "' --endpoint " + server.base_url() +
           " --model fake --sample 0 --seed 5 --concurrency 2 --timeout 120";
    pid_t pid = fork();
    if (pid == 0) {
        std::string full = "exec " + cmd + " >'" + (fx.dir / "log1").string() + "' 2>&1";
        execl("/bin/sh", "sh", "-c", full.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    ASSERT_TRUE(wait_for([&] { return done_rows(fx.dir / "out" / "ledger.sqlite") == 5; }))
        << test::read_text(fx.dir / "log1");
    ASSERT_TRUE(wait_for([&] { return server.calls() >= 7; }));  // two more hanging in flight
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status));
    EXPECT_FALSE(fs::exists(fx.dir / "out" / "report.json"));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    allow.store(1 << 30);
    auto r = test::run_medforge(cmd.substr(cmd.find(" judge ") + 1));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    // Every item answered exactly once over both runs; the 5 recorded ones were not asked again.
    EXPECT_EQ(total, 12);
    ASSERT_EQ(answered.size(), 12u);
    for (const auto& [k, n] : answered)
        EXPECT_EQ(n, 1) << k.first << "," << k.second;
    EXPECT_EQ(server.calls(), 7 + 7);  // 5 answered + 2 hung, then 7 asked again
    json rep = json::parse(test::read_text(fx.dir / "out" / "report.json"));
    EXPECT_EQ(rep["judges"][0]["methods"]["mllm-image-only"]["scored"], 4);
    EXPECT_NE(r.output.find("mllm-image-only"), std::string::npos) << r.output;
}

TEST(JudgeTest, CommandHelpAndUsage) {
    auto h = test::run_medforge("judge --help");
    EXPECT_EQ(h.exit_code, 0);
    EXPECT_NE(h.output.find("--judge2-model"), std::string::npos);
    auto list = test::run_medforge("help");
    EXPECT_NE(list.output.find("judge"), std::string::npos);
    auto u = test::run_medforge("judge --data x.json --out o");
    EXPECT_NE(u.exit_code, 0);
}

}  // namespace
}  // namespace mf::reformat
