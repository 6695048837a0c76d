#include "curate/sample.h"

#include <gtest/gtest.h>

namespace mf::curate {
namespace {

Sample make_sample() {
    Sample s;
    s.id = "jats:PMC1:F2";
    s.images = {"/data/a \"1\".jpg", "/data/b.png"};
    s.caption = "Axial CT of the thorax.\nArrow: nodule. caf\xC3\xA9";
    s.mentions = {"As shown in Figure 2, the nodule...", "Second\tmention"};
    s.lineage = {"jats", "PMC1", "F2", "CC BY 4.0", "/in/a.xml", 7};
    s.meta_json = R"({"label":"Figure 2","n":[1,2]})";
    return s;
}

TEST(Sample, JsonRoundTrip) {
    Sample s = make_sample();
    std::string line = sample_to_json(s);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    auto back = sample_from_json(line);
    ASSERT_TRUE(back.ok()) << back.status().to_string();
    EXPECT_EQ(*back, s);
    EXPECT_EQ(sample_to_json(*back), line);  // stable bytes
}

TEST(Sample, MinimalRecordAndOptionalFields) {
    auto s = sample_from_json(R"({"id":"x","images":[],"caption":"c"})");
    ASSERT_TRUE(s.ok());
    EXPECT_TRUE(s->mentions.empty());
    EXPECT_EQ(s->lineage.line, 0);
    EXPECT_TRUE(s->meta_json.empty());
}

TEST(Sample, ErrorsNameTheField) {
    struct Case {
        const char* json;
        const char* expect;
    } cases[] = {
        {R"({"images":[],"caption":"c"})", "field 'id': missing"},
        {R"({"id":"","images":[],"caption":"c"})", "field 'id': must not be empty"},
        {R"({"id":"x","images":"a.jpg","caption":"c"})", "field 'images': expected an array"},
        {R"({"id":"x","images":[1],"caption":"c"})", "field 'images': expected an array"},
        {R"({"id":"x","images":[]})", "field 'caption': missing"},
        {R"({"id":"x","images":[],"caption":"c","lineage":{"line":"7"}})", "field 'lineage.line'"},
        {R"({"id":"x","images":[],"caption":"c","meta":[1]})", "field 'meta'"},
        {R"([1,2])", "expected a JSON object"},
        {R"({"id":"x",)", "malformed JSON"},
        {"{\"id\":\"x\xFF\",\"images\":[],\"caption\":\"c\"}", "malformed JSON"},
    };
    for (const auto& c : cases) {
        auto r = sample_from_json(c.json);
        ASSERT_FALSE(r.ok()) << c.json;
        EXPECT_NE(r.status().message().find(c.expect), std::string::npos)
            << c.json << " -> " << r.status().message();
    }
}

TEST(Sample, Context) {
    Sample s = make_sample();
    EXPECT_EQ(sample_context(s, false), s.caption);
    EXPECT_EQ(sample_context(s, true), s.caption + " " + s.mentions[0] + " " + s.mentions[1]);
}

}  // namespace
}  // namespace mf::curate
