// `medforge model init | inspect`, `chat` and `eval --model-dir` as a user runs them.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace mf::test {
namespace {

TEST(ModelCli, InitInspectChatEval) {
    TempDir tmp;
    std::string dir = (tmp.path() / "tiny").string();
    auto r = run_medforge("model init --arch llava-qwen2 --size tiny --seed 3 --out " + dir);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    for (const char* f :
         {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
          "generation_config.json", "preprocessor_config.json"})
        EXPECT_TRUE(fs::exists(tmp.path() / "tiny" / f)) << f;
    // a second init into the same folder needs --force
    r = run_medforge("model init --arch llava-qwen2 --out " + dir);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("--force"), std::string::npos) << r.output;

    r = run_medforge("model inspect --json " + dir);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
    EXPECT_EQ(j["arch"], "llava-qwen2");
    EXPECT_EQ(j["chat_template"], "huatuo");
    EXPECT_EQ(j["vision"]["image_tokens"], 576);
    EXPECT_GT(j["parameters"]["vision_tower"].get<int64_t>(), 0);
    EXPECT_GT(j["parameters"]["projector"].get<int64_t>(), 0);
    EXPECT_EQ(j["parameters"]["total"].get<int64_t>(),
              j["parameters"]["language_model"].get<int64_t>() +
                  j["parameters"]["vision_tower"].get<int64_t>() +
                  j["parameters"]["projector"].get<int64_t>());
    r = run_medforge("model inspect " + dir);
    EXPECT_NE(r.output.find("576 image tokens"), std::string::npos) << r.output;

    // chat: same seed, same text; an image from the shared data
    fs::path img;
    for (const auto& e : fs::directory_iterator(shared_data() / "vqa_rad/images")) {
        img = e.path();
        break;
    }
    std::string chat = "chat --model " + dir + " --image " + img.string() +
                       " --prompt 'Which organ?' --max-tokens 8 --temperature 0.8 --seed 5";
    auto c1 = run_medforge(chat), c2 = run_medforge(chat);
    ASSERT_EQ(c1.exit_code, 0) << c1.output;
    EXPECT_EQ(c1.output, c2.output);
    r = run_medforge("chat --model " + dir + " --image /nonexistent.png --prompt x");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("nonexistent.png"), std::string::npos) << r.output;

    // eval in-process: runs, writes the reports, and a re-run is served from the cache
    std::string out = (tmp.path() / "eval").string();
    std::string ev = "eval --benchmark vqa-rad --data " +
                     (shared_data() / "vqa_rad/testset.json").string() + " --images " +
                     (shared_data() / "vqa_rad/images").string() + " --model-dir " + dir +
                     " --out " + out + " --limit 3";
    r = run_medforge(ev);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("3 sent"), std::string::npos) << r.output;
    EXPECT_TRUE(fs::exists(fs::path(out) / "report.html"));
    auto res = nlohmann::json::parse(read_text(fs::path(out) / "results.json"));
    EXPECT_EQ(res["protocol_card"]["model"], "tiny") << res["protocol_card"].dump();
    r = run_medforge(ev);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("0 sent, 3 cached"), std::string::npos) << r.output;
    // --endpoint and --model-dir exclude each other
    r = run_medforge(ev + " --endpoint http://127.0.0.1:1/v1");
    EXPECT_NE(r.exit_code, 0);
}

TEST(ModelCli, InspectAndChatRefuseWhatIsNotACheckpoint) {
    TempDir tmp;
    write_text(tmp.path() / "config.json", R"({"architectures":["GPT2LMHeadModel"]})");
    auto r = run_medforge("model inspect " + tmp.path().string());
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("GPT2LMHeadModel"), std::string::npos) << r.output;
    r = run_medforge("chat --model " + (tmp.path() / "nothing").string() + " --prompt hi");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("config.json"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace mf::test
