#include "curate/config_reader.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace mf::curate {
namespace {

TEST(ConfigReader, ReadsTypedFieldsWithDefaults) {
    auto j = nlohmann::json::parse(R"({"min_terms": 7, "use_mentions": true, "lexicon": "x.txt",
                                       "prob": 0.25, "paths": ["a", "b"], "// note": "comment"})");
    ConfigReader r(j, "filter.text");
    int min_terms = 5, untouched = 3;
    bool use = false;
    std::string lex;
    double prob = 0.5;
    std::vector<std::string> paths;
    EXPECT_TRUE(r.get("min_terms", &min_terms, 0, 1000).ok());
    EXPECT_TRUE(r.get("absent", &untouched).ok());
    EXPECT_TRUE(r.get("use_mentions", &use).ok());
    EXPECT_TRUE(r.get("lexicon", &lex).ok());
    EXPECT_TRUE(r.get("prob", &prob, 0, 1).ok());
    EXPECT_TRUE(r.get("paths", &paths).ok());
    EXPECT_TRUE(r.finish().ok());
    EXPECT_EQ(min_terms, 7);
    EXPECT_EQ(untouched, 3);
    EXPECT_TRUE(use);
    EXPECT_EQ(lex, "x.txt");
    EXPECT_DOUBLE_EQ(prob, 0.25);
    EXPECT_EQ(paths, (std::vector<std::string>{"a", "b"}));
}

TEST(ConfigReader, ErrorsNameThePath) {
    auto j = nlohmann::json::parse(R"({"min_terms": "five", "prob": 2.0, "min_term": 3})");
    ConfigReader r(j, "filter.text");
    int n = 0;
    double p = 0;
    Status a = r.get("min_terms", &n);
    EXPECT_NE(a.message().find("filter.text.min_terms: expected an integer"), std::string::npos)
        << a.message();
    Status b = r.get("prob", &p, 0, 1);
    EXPECT_NE(b.message().find("filter.text.prob"), std::string::npos);
    EXPECT_NE(b.message().find("out of range"), std::string::npos);
    Status c = r.finish();
    EXPECT_NE(c.message().find("filter.text.min_term: unknown key"), std::string::npos)
        << c.message();
}

TEST(ConfigReader, JsonFileErrorsNameTheLine) {
    test::TempDir d;
    test::write_text(d / "c.json", "{\n  \"a\": 1,\n  \"b\": \n}\n");
    auto r = load_json_file((d / "c.json").string());
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("c.json:4"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace mf::curate
