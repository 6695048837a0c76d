// The end-to-end correctness clause, run as a user would with the medforge binary: real
// PubMed Central figures (../shared/data/medicat_sample) go through `medforge build` (ingest ->
// filter -> dedup -> reformat, the reformatter's LLM being the real-protocol fake OpenAI server),
// a tiny model from `medforge model init` is trained by `medforge train --stage instruct` on the
// build's instruction_vqa.json + images/ until its loss is near zero (read from metrics.jsonl),
// and `medforge chat --temperature 0` then answers each sample's question with its answer.
#include <fmt/core.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/fake_openai.h"
#include "test_util.h"

namespace mf::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string q(const fs::path& p) {
    return "'" + p.string() + "'";
}

// Short, distinct scenario Q/As (the tiny model memorises them quickly). They avoid laterality,
// numbers, modality and anatomy words so the reformatter's answer verifier has nothing to flag.
struct Qa {
    const char* q;
    const char* a;
};
constexpr Qa kQa[] = {
    {"What stands out first?", "A bright rounded area in the centre."},
    {"How do the borders look?", "The borders look irregular and blurred."},
    {"Is the passage open?", "Yes, the passage looks open and wide."},
    {"What changed after treatment?", "The narrowing has resolved well."},
    {"What does the arrow mark?", "The arrow marks a dark oval spot."},
    {"Describe the texture.", "A smooth, even texture throughout."},
    {"What is the image quality?", "Sharp contrast with fine detail."},
    {"Where is the abnormality?", "Near the top of the image."},
    {"What colour dominates?", "Mostly shades of grey and white."},
    {"Is anything unusual?", "A thin bright line crosses the view."},
};

std::string trim(std::string s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
        s.pop_back();
    size_t b = 0;
    while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b])))
        ++b;
    return s.substr(b);
}

TEST(TrainPipelineSlow, CuratedDataIsLearnedAndAnsweredInChat) {
    fs::path src = test::shared_data() / "medicat_sample" / "sample.jsonl";
    if (!fs::exists(src)) GTEST_SKIP() << "no " << src;
    // A distinctive piece of each real caption tells the fake LLM which figure it is asked about.
    std::vector<std::string> keys;
    for (const auto& line : test::read_lines(src)) {
        auto r = json::parse(line);
        std::string cap = r["s2_caption"].get<std::string>();
        ASSERT_GT(cap.size(), 52u);
        keys.push_back(cap.substr(12, 40));
    }
    ASSERT_LE(keys.size(), std::size(kQa));
    test::FakeOpenAi server([&keys](const json& req, int) {
        std::string text = test::FakeOpenAi::request_text(req);
        for (size_t i = 0; i < keys.size(); ++i)
            if (text.find(keys[i]) != std::string::npos)
                return test::FakeReply::text(json{
                    {"image_description",
                     "A medical figure with a clearly visible region of interest and the "
                     "surrounding structures around it."},
                    {"question", kQa[i].q},
                    {"answer", kQa[i].a}}.dump());
        return test::FakeReply::error(400, "unknown figure");
    });
    ASSERT_TRUE(server.start().ok());

    test::TempDir tmp;
    // 1. medforge build: the real curation pipeline + reformat through the fake LLM.
    json cfg = {
        {"name", "train e2e"},
        {"sources", json::array({{{"format", "medicat"}, {"input", src.string()}}})},
        {"filter",
         {{"text", {{"enabled", false}}},  // no dependency on setup's default lexicon
          {"image", {{"min_side", 336}, {"decode", true}, {"classifier", "none"}}}}},
        {"dedup",
         {{"image_hash", true}, {"exact_caption", true}, {"minhash", true}, {"semantic", "none"}}},
        {"reformat",
         {{"endpoint", server.base_url()},
          {"model", "fake-mllm"},
          {"method", "mllm-unblinded"},
          {"concurrency", 4},
          {"seed", 1}}}};
    test::write_text(tmp / "build.json", cfg.dump(2));
    auto b = test::run_medforge("build --config " + q(tmp / "build.json") + " --out " +
                                q(tmp / "data") + " -q");
    ASSERT_EQ(b.exit_code, 0) << b.output;
    fs::path vqa_dir = tmp / "data" / "4-reformat";
    auto vqa = json::parse(test::read_text(vqa_dir / "instruction_vqa.json"));
    ASSERT_GE(vqa.size(), 4u) << "too few figures survived the build";
    EXPECT_EQ(static_cast<size_t>(server.calls()), vqa.size());  // one request per kept figure
    struct Item {
        fs::path image;
        std::string question, answer;
    };
    std::vector<Item> items;
    for (const auto& r : vqa) {
        ASSERT_EQ(r["image"].size(), 1u);
        const auto& conv = r["conversations"];
        ASSERT_EQ(conv.size(), 2u);
        items.push_back({vqa_dir / r["image"][0].get<std::string>(),
                         conv[0]["value"].get<std::string>(), conv[1]["value"].get<std::string>()});
        ASSERT_TRUE(fs::exists(items.back().image)) << items.back().image;
    }

    // 2. medforge model init: a tiny random LLaVA-Qwen2 (the 336 px CLIP tower, 576 tokens).
    auto init = test::run_medforge("model init --arch llava-qwen2 --size tiny --seed 7 --out " +
                                   q(tmp / "base"));
    ASSERT_EQ(init.exit_code, 0) << init.output;

    // 3. medforge train --stage instruct on the build's output until the loss is near zero:
    // micro-batch = global batch of 4 (two steps per epoch over the 8 figures), seeded, a high
    // lr for a tiny model (lr 1e-2 over 60 epochs ends near 0.01; the bound leaves a 5x margin).
    const int64_t n = static_cast<int64_t>(items.size()), gb = 4, epochs = 60;
    const int64_t per_epoch = (n + gb - 1) / gb;
    auto tr = test::run_medforge(fmt::format(
        "train --stage instruct --model {} --data {} --images {} --out {} --lr 1e-2 --epochs {} "
        "--global-batch {} --batch-size {} --seed 5 --threads 2 --workers 2 --log-every 20",
        q(tmp / "base"), q(vqa_dir / "instruction_vqa.json"), q(vqa_dir), q(tmp / "run"), epochs,
        gb, gb));
    ASSERT_EQ(tr.exit_code, 0) << tr.output;
    auto lines = test::read_lines(tmp / "run" / "metrics.jsonl");
    ASSERT_EQ(static_cast<int64_t>(lines.size()), per_epoch * epochs);
    EXPECT_GT(json::parse(lines.front())["loss"].get<double>(), 3.0);  // random: ~ln(vocab)
    // The last epoch (every figure once) is near zero.
    for (int64_t i = 1; i <= per_epoch; ++i) {
        auto m = json::parse(lines[lines.size() - i]);
        EXPECT_LT(m["loss"].get<double>(), 0.05) << "step " << m["step"] << "\n" << tr.output;
    }
    auto tc = json::parse(test::read_text(tmp / "run" / "train_config.json"));
    EXPECT_EQ(tc["samples"].get<int64_t>(), n);
    EXPECT_EQ(tc["rejected"].get<int64_t>(), 0);

    // 4. medforge chat (greedy) answers every sample's question with its answer.
    for (const auto& it : items) {
        auto c = test::run_command(fmt::format(
            "{} chat --model {} --image {} --prompt {} --temperature 0 --max-tokens 40 "
            "--threads 2 2>/dev/null",
            test::medforge_binary().string(), q(tmp / "run"), q(it.image), q(it.question)));
        ASSERT_EQ(c.exit_code, 0) << c.output;
        EXPECT_EQ(trim(c.output), it.answer) << "question: " << it.question;
    }
}

}  // namespace
}  // namespace mf::train
