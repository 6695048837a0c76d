#include "reformat/prompts.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "reformat_test_util.h"

namespace mf::reformat {
namespace {

using testing::make_samples;
using testing::request_text;

TEST(Prompts, MethodNamesRoundTrip) {
    for (Method m : {Method::kMllmUnblinded, Method::kNativeCaption, Method::kLlmText,
                     Method::kMllmImageOnly}) {
        auto p = parse_method(method_name(m));
        ASSERT_TRUE(p.ok());
        EXPECT_EQ(*p, m);
        EXPECT_FALSE(prompt_version(m).empty());
    }
    auto bad = parse_method("gpt4v");
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.status().message().find("mllm-unblinded"), std::string::npos);
    EXPECT_EQ(prompt_version(Method::kMllmUnblinded), "unblinded-v1");
}

TEST(Prompts, TenScenariosWithDistinctKeys) {
    std::set<std::string_view> keys;
    for (const auto& s : scenarios()) {
        keys.insert(s.key);
        EXPECT_GT(s.instruction.size(), 40u);
    }
    EXPECT_EQ(keys.size(), 10u);
}

TEST(Prompts, ScenarioIsDeterministicPerSampleAndSeed) {
    std::map<size_t, int> hist;
    int changed_with_seed = 0;
    for (int i = 0; i < 2000; ++i) {
        std::string id = "pmc:" + std::to_string(i);
        size_t a = pick_scenario(id, 7);
        EXPECT_EQ(a, pick_scenario(id, 7));
        EXPECT_LT(a, 10u);
        ++hist[a];
        if (pick_scenario(id, 8) != a) ++changed_with_seed;
    }
    // Every scenario drawn, none dominating (uniform: 200 expected each).
    EXPECT_EQ(hist.size(), 10u);
    for (auto& [k, n] : hist) {
        EXPECT_GT(n, 130) << k;
        EXPECT_LT(n, 270) << k;
    }
    EXPECT_GT(changed_with_seed, 1500);  // another seed gives another draw (~90%)
}

TEST(Prompts, DescribeQuestionSingularOrPluralByImageCount) {
    const auto& single = describe_questions_single();
    const auto& plural = describe_questions_plural();
    EXPECT_GE(single.size(), 10u);
    EXPECT_EQ(single.size(), plural.size());
    std::set<std::string_view> used;
    for (int i = 0; i < 500; ++i) {
        std::string id = "x" + std::to_string(i);
        auto q1 = pick_describe_question(id, 1, 3);
        auto q3 = pick_describe_question(id, 3, 3);
        EXPECT_NE(std::find(single.begin(), single.end(), q1), single.end());
        EXPECT_NE(std::find(plural.begin(), plural.end(), q3), plural.end());
        EXPECT_EQ(q1, pick_describe_question(id, 1, 3));
        used.insert(q1);
    }
    EXPECT_EQ(used.size(), single.size());
    for (auto q : plural)
        EXPECT_TRUE(q.find("these") != std::string_view::npos ||
                    q.find("images") != std::string_view::npos)
            << q;
}

TEST(Prompts, UnblindedHasImagesInOrderAndReferenceContext) {
    auto s = make_samples(3)[2];  // two images
    ASSERT_EQ(s.images.size(), 2u);
    PromptOptions o;
    o.model = "gpt-4o";
    o.max_tokens = 900;
    o.temperature = 0.2;
    auto r = build_request(s, Method::kMllmUnblinded, o,
                           {"data:image/jpeg;base64,AAA", "data:image/png;base64,BBB"});
    EXPECT_EQ(r.model, "gpt-4o");
    EXPECT_EQ(r.max_tokens, 900);
    EXPECT_DOUBLE_EQ(r.temperature, 0.2);
    ASSERT_EQ(r.messages.size(), 1u);
    const auto& c = r.messages[0].content;
    ASSERT_EQ(c.size(), 3u);
    EXPECT_EQ(c[0].kind, llm::ContentPart::Kind::kImageUrl);
    EXPECT_EQ(c[0].image_url, "data:image/jpeg;base64,AAA");
    EXPECT_EQ(c[1].image_url, "data:image/png;base64,BBB");
    EXPECT_EQ(c[2].kind, llm::ContentPart::Kind::kText);
    const std::string& t = c[2].text;
    EXPECT_NE(t.find("<reference>"), std::string::npos);
    EXPECT_NE(t.find(s.caption), std::string::npos);
    EXPECT_NE(t.find(s.mentions[0]), std::string::npos);
    EXPECT_NE(t.find("image 1 to image 2"), std::string::npos);
    EXPECT_NE(t.find("never mention"), std::string::npos);
    EXPECT_NE(t.find(scenarios()[pick_scenario(s.id, o.seed)].instruction), std::string::npos);
    EXPECT_NE(t.find("\"image_description\""), std::string::npos);
}

TEST(Prompts, ContextPresentOrAbsentPerMethod) {
    auto s = make_samples(1)[0];
    PromptOptions o;
    std::vector<std::string> urls = {"data:image/jpeg;base64,AAA"};
    auto text_only = build_request(s, Method::kLlmText, o, urls);
    ASSERT_EQ(text_only.messages[0].content.size(), 1u);  // no image parts
    std::string t = request_text(text_only);
    EXPECT_NE(t.find(s.caption), std::string::npos);
    EXPECT_NE(t.find("cannot see the image"), std::string::npos);

    auto image_only = build_request(s, Method::kMllmImageOnly, o, urls);
    ASSERT_EQ(image_only.messages[0].content.size(), 2u);
    t = request_text(image_only);
    EXPECT_EQ(t.find(s.caption), std::string::npos);
    EXPECT_EQ(t.find(s.mentions[0]), std::string::npos);
    EXPECT_EQ(t.find("<reference>"), std::string::npos);

    EXPECT_TRUE(build_prompt_text(s, Method::kNativeCaption, 0).empty());
}

TEST(Prompts, ReaskAppendsTheValidationError) {
    auto s = make_samples(1)[0];
    std::string first = build_prompt_text(s, Method::kMllmUnblinded, 4);
    std::string again =
        build_prompt_text(s, Method::kMllmUnblinded, 4, "\"answer\" mentions \"caption\"");
    EXPECT_EQ(again.substr(0, first.size()), first);
    EXPECT_NE(again.find("\"answer\" mentions \"caption\""), std::string::npos);
}

}  // namespace
}  // namespace mf::reformat
