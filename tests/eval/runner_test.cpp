// The key test: the real VQA-RAD and SLAKE files with scripted answers from the fake
// OpenAI server over HTTP give exactly the accuracies computed here, independently, from the
// data file. Also: resume (a second run sends nothing), shards + cache reuse, reports, CLI.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "core/text.h"
#include "eval/runner.h"
#include "support/fake_openai.h"
#include "test_util.h"

namespace mf::eval {
namespace {

using nlohmann::json;
using test::FakeOpenAi;
using test::FakeReply;

// The question line of a prompt (everything before the first "\nA. ").
std::string question_of(const std::string& prompt) {
    auto p = prompt.find("\nA. ");
    return p == std::string::npos ? prompt : prompt.substr(0, p);
}

// Scripted model: the choice depends on the question's length (A = yes when even), and the
// answer style rotates with the question's length / 2 over five forms. Open questions: "MRI".
std::string scripted_answer(const std::string& prompt) {
    if (prompt.find("\nA. ") == std::string::npos) return "MRI";
    std::string q = question_of(prompt);
    bool yes = q.size() % 2 == 0;
    switch ((q.size() / 2) % 5) {
        case 0:
            return yes ? "A" : "B";
        case 1:
            return yes ? "(A)" : "The answer is B.";
        case 2:
            return yes ? "Yes" : "No.";
        case 3:
            return yes ? "I think it is A" : "I think it is B";  // official: "I" -> wrong
        default:
            return yes ? "**A**" : "B. no";
    }
}

// Expected correctness of one closed yes/no item for each extractor.
bool expected_correct(const std::string& question, bool answer_yes, bool official) {
    bool yes = question.size() % 2 == 0;
    if (official && (question.size() / 2) % 5 == 3) return false;
    return yes == answer_yes;
}

struct Expect {
    std::map<std::string, std::pair<int64_t, int64_t>> closed;  // subset -> (n, correct)
    int64_t open_n = 0;
    int64_t open_exact = 0;
};

Expect expect_from_file(const std::string& file, bool slake, bool official) {
    json doc = json::parse(test::read_text(test::shared_data() / file));
    Expect e;
    for (const auto& r : doc) {
        std::string type = r["answer_type"].get<std::string>();
        std::string ans =
            r["answer"].is_string() ? r["answer"].get<std::string>() : r["answer"].dump();
        std::string la = text::ascii_lower(text::trim(ans));
        std::string subset;
        if (slake) {
            if (r["q_lang"] != "en" || type != "CLOSED") continue;
            subset = r["modality"].get<std::string>();
        } else {
            subset = r["question_type"].get<std::string>();
            subset = subset.substr(0, subset.find(','));
            subset = std::string(text::trim(subset));
        }
        bool closed_yn = type == "CLOSED" && (la == "yes" || la == "no");
        if (!closed_yn) {
            e.open_n++;
            if (la == "mri") e.open_exact++;
            continue;
        }
        auto& [n, c] = e.closed[subset];
        n++;
        c += expected_correct(r["question"].get<std::string>(), la == "yes", official);
    }
    return e;
}

void check_results(const json& res, const Expect& e) {
    int64_t n_all = 0, c_all = 0;
    std::map<std::string, std::pair<int64_t, int64_t>> got;
    for (const auto& s : res["closed"]["subsets"]) {
        got[s["name"]] = {s["n"].get<int64_t>(), s["correct"].get<int64_t>()};
        EXPECT_DOUBLE_EQ(s["mean"].get<double>(),
                         static_cast<double>(s["correct"].get<int64_t>()) / s["n"].get<double>());
    }
    EXPECT_EQ(got, e.closed);
    double macro = 0;
    for (auto& [k, v] : e.closed) {
        n_all += v.first;
        c_all += v.second;
        macro += static_cast<double>(v.second) / static_cast<double>(v.first);
    }
    macro /= static_cast<double>(e.closed.size());
    EXPECT_EQ(res["closed"]["micro"]["n"].get<int64_t>(), n_all);
    EXPECT_EQ(res["closed"]["correct"].get<int64_t>(), c_all);
    EXPECT_NEAR(res["closed"]["micro"]["mean"].get<double>(),
                static_cast<double>(c_all) / static_cast<double>(n_all), 1e-12);
    EXPECT_NEAR(res["closed"]["macro"]["mean"].get<double>(), macro, 1e-12);
    double lo = res["closed"]["micro"]["ci95"][0], hi = res["closed"]["micro"]["ci95"][1];
    EXPECT_LE(lo, res["closed"]["micro"]["mean"].get<double>());
    EXPECT_GE(hi, res["closed"]["micro"]["mean"].get<double>());
    if (e.open_n > 0) {
        EXPECT_EQ(res["open"]["exact"]["n"].get<int64_t>(), e.open_n);
        EXPECT_NEAR(res["open"]["exact"]["mean"].get<double>(),
                    static_cast<double>(e.open_exact) / static_cast<double>(e.open_n), 1e-12);
    }
}

struct Server {
    FakeOpenAi fake{FakeOpenAi::answer_with(scripted_answer)};
    Server() { EXPECT_TRUE(fake.start().ok()); }
};

std::unique_ptr<llm::LlmClient> client_for(const FakeOpenAi& s) {
    llm::ClientOptions o;
    o.base_url = s.base_url();
    o.max_concurrency = 16;
    o.backoff_initial_s = 0.01;
    auto c = llm::make_http_client(o);
    EXPECT_TRUE(c.ok());
    return std::move(*c);
}

TEST(EvalRun, VqaRadRealFileScriptedAnswersOverHttp) {
    Server server;
    test::TempDir dir;
    RunParams p;
    p.benchmark = "vqa-rad";
    p.data = test::shared_data() / "vqa_rad/testset.json";
    p.endpoint = server.fake.base_url();
    p.model = "scripted";
    p.out = dir.path() / "run";
    p.bootstrap_resamples = 200;
    {
        auto client = client_for(server.fake);
        auto r = run_eval(p, *client);
        ASSERT_TRUE(r.ok()) << r.status().to_string();
        EXPECT_EQ(r->items, 451);
        EXPECT_EQ(r->sent, 451);
        EXPECT_EQ(r->failed, 0);
        EXPECT_EQ(r->missing_images, 0);
        Expect e = expect_from_file("vqa_rad/testset.json", false, false);
        int64_t closed = 0;
        for (auto& [k, v] : e.closed)
            closed += v.first;
        EXPECT_EQ(closed, 251);  // closed yes/no items; the other 21 closed + 179 open are open
        check_results(r->results, e);
    }
    // Every request carried its image (data URL) and the paper's instruction.
    auto reqs = server.fake.requests();
    ASSERT_EQ(reqs.size(), 451u);
    int with_instruction = 0;
    for (const auto& q : reqs) {
        EXPECT_EQ(FakeOpenAi::image_count(q.body), 1);
        std::string t = FakeOpenAi::request_text(q.body);
        with_instruction += t.find(kInstruction) != std::string::npos;
        EXPECT_EQ(q.body["model"], "scripted");
        EXPECT_DOUBLE_EQ(q.body["temperature"].get<double>(), 0.2);
    }
    EXPECT_EQ(with_instruction, 251);
    EXPECT_EQ(FakeOpenAi::image_urls(reqs[0].body)[0].rfind("data:image/jpeg;base64,", 0), 0u);

    // Resume: a second run sends nothing; the official extractor re-scores from the cache.
    server.fake.reset_records();
    p.extractor = Extractor::kOfficial;
    auto client = client_for(server.fake);
    auto r2 = run_eval(p, *client);
    ASSERT_TRUE(r2.ok()) << r2.status().to_string();
    EXPECT_EQ(server.fake.calls(), 0);
    EXPECT_EQ(r2->sent, 0);
    EXPECT_EQ(r2->cached, 451);
    check_results(r2->results, expect_from_file("vqa_rad/testset.json", false, true));

    // Reports exist and carry the numbers and the protocol card.
    std::string md = test::read_text(p.out / "results.md");
    std::string html = test::read_text(p.out / "report.html");
    json res = json::parse(test::read_text(p.out / "results.json"));
    const json& card = res["protocol_card"];
    EXPECT_EQ(card["extractor"], "official");
    EXPECT_EQ(card["items"]["total"], 451);
    EXPECT_EQ(card["data_files"][0]["sha256"].get<std::string>().size(), 64u);
    EXPECT_EQ(card["prompt_template_sha256"].get<std::string>().size(), 64u);
    EXPECT_EQ(card["endpoint_host"], "http://127.0.0.1:" + std::to_string(server.fake.port()));
    char micro[32];
    std::snprintf(micro, sizeof micro, "%.1f", res["closed"]["micro"]["mean"].get<double>() * 100);
    EXPECT_NE(md.find(micro), std::string::npos);
    EXPECT_NE(html.find(micro), std::string::npos);
    EXPECT_NE(html.find("<svg"), std::string::npos);
    EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));  // no external asset
    EXPECT_NE(md.find("| PRES |"), std::string::npos);
}

TEST(EvalRun, SlakeRealFileShardsThenMergedRun) {
    Server server;
    test::TempDir dir;
    RunParams p;
    p.benchmark = "slake";
    p.data = test::shared_data() / "slake/validate.json";
    p.no_images = true;  // the shared SLAKE file has no images
    p.endpoint = server.fake.base_url();
    p.model = "scripted";
    p.bootstrap_resamples = 200;
    int64_t total_sent = 0;
    for (uint32_t i = 0; i < 2; ++i) {
        RunParams s = p;
        s.shard = {i, 2};
        s.out = dir.path() / ("shard" + std::to_string(i));
        auto client = client_for(server.fake);
        auto r = run_eval(s, *client);
        ASSERT_TRUE(r.ok()) << r.status().to_string();
        EXPECT_GT(r->sent, 0);
        total_sent += r->sent;
    }
    EXPECT_EQ(total_sent, 422);  // English CLOSED
    EXPECT_EQ(server.fake.calls(), 422);
    for (const auto& q : server.fake.requests())
        EXPECT_EQ(FakeOpenAi::image_count(q.body), 0);
    server.fake.reset_records();
    p.out = dir.path() / "all";
    p.reuse_caches = {dir.path() / "shard0", dir.path() / "shard1"};
    auto client = client_for(server.fake);
    auto r = run_eval(p, *client);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(server.fake.calls(), 0);
    EXPECT_EQ(r->cached, 422);
    Expect e = expect_from_file("slake/validate.json", true, false);
    EXPECT_EQ(e.closed.size(), 3u);  // CT, MRI, X-Ray
    check_results(r->results, e);
}

TEST(EvalRun, FailedRequestsAreScoredWrongAndRetriedNextRun) {
    FakeOpenAi server([](const json& req, int) {
        std::string t = FakeOpenAi::request_text(req);
        if (t.find("aortic aneurysm") != std::string::npos) return FakeReply::error(400, "bad");
        return FakeReply::text(scripted_answer(t));
    });
    ASSERT_TRUE(server.start().ok());
    test::TempDir dir;
    RunParams p;
    p.benchmark = "vqa-rad";
    p.data = test::shared_data() / "vqa_rad/testset.json";
    p.endpoint = server.base_url();
    p.model = "m";
    p.out = dir.path();
    p.limit = 20;
    p.bootstrap_resamples = 50;
    auto client = client_for(server);
    auto r = run_eval(p, *client);
    ASSERT_TRUE(r.ok());
    EXPECT_GE(r->failed, 1);
    EXPECT_EQ(r->sent + r->failed, 20);
    server.reset_records();
    auto r2 = run_eval(p, *client);
    ASSERT_TRUE(r2.ok());
    EXPECT_EQ(server.calls(), r->failed);  // only the failed ones are asked again
}

TEST(EvalCli, SlakeRunAndCompare) {
    Server server;
    test::TempDir dir;
    auto out = dir.path() / "cli";
    auto res = test::run_medforge(
        "eval --benchmark slake --data " + (test::shared_data() / "slake/validate.json").string() +
        " --no-images --endpoint " + server.fake.base_url() + " --model scripted --out " +
        out.string() + " --limit 40 --extractor official --bootstrap 100");
    ASSERT_EQ(res.exit_code, 0) << res.output;
    EXPECT_TRUE(std::filesystem::exists(out / "results.json"));
    EXPECT_TRUE(std::filesystem::exists(out / "report.html"));
    auto cmp = test::run_medforge("eval compare " + out.string() + " --paper");
    ASSERT_EQ(cmp.exit_code, 0) << cmp.output;
    EXPECT_NE(cmp.output.find("Table 2"), std::string::npos);
    EXPECT_NE(cmp.output.find("HuatuoGPT-Vision-34B"), std::string::npos);
    EXPECT_NE(cmp.output.find("scripted"), std::string::npos);
    auto bad = test::run_medforge(
        "eval --benchmark nope --data x --endpoint http://h --model m "
        "--out " +
        (dir.path() / "x").string());
    EXPECT_NE(bad.exit_code, 0);
    EXPECT_NE(bad.output.find("unknown benchmark"), std::string::npos);
}

}  // namespace
}  // namespace mf::eval
