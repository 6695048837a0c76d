// Reformat on real PMC figures (../shared/data/medicat_sample, ingested by curate) through the
// fake OpenAI server: the real captions and mentions reach the prompt inside <reference>, every
// real image is sent in order as a JPEG data URL, and every sample ends kept or rejected.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "curate/ingest.h"
#include "io/line_reader.h"
#include "reformat/build.h"
#include "reformat/reformat.h"
#include "reformat_test_util.h"
#include "support/fake_openai.h"

namespace mf::reformat {
namespace {

using nlohmann::json;

TEST(ReformatRealData, MedicatSampleThroughTheFakeServer) {
    auto src = test::shared_data() / "medicat_sample" / "sample.jsonl";
    if (!std::filesystem::exists(src)) GTEST_SKIP() << "no " << src;
    test::TempDir dir;
    curate::IngestRunOptions in;
    in.format = "medicat";
    in.input = src;
    in.out_dir = dir / "ingest";
    in.progress = false;
    auto ing = curate::run_ingest(in);
    ASSERT_TRUE(ing.ok()) << ing.status().to_string();
    ASSERT_GT(ing->kept, 0u);
    std::vector<curate::Sample> samples;
    {
        io::LineReader lines;
        ASSERT_TRUE(lines.open(dir / "ingest" / "samples.jsonl").ok());
        std::string_view line;
        while (lines.next(&line))
            samples.push_back(*curate::sample_from_json(line));
    }
    test::FakeOpenAi server([](const json& req, int) {
        return test::FakeReply::text(
            "Here is the JSON:\n```json\n{\"image_description\": \"A cross-sectional medical "
            "image with a focal abnormality and surrounding tissue changes.\", \"question\": "
            "\"What is the most striking finding?\", \"answer\": \"A focal lesion with irregular "
            "margins stands out against the surrounding tissue.\"}\n```");
    });
    ASSERT_TRUE(server.start().ok());
    ReformatOptions o;
    o.input = dir / "ingest";
    o.out_dir = dir / "out";
    o.prompt.model = "fake";
    o.progress = false;
    EndpointOptions ep;
    ep.endpoint = server.base_url();
    auto client = make_client(ep);
    ASSERT_TRUE(client.ok());
    auto res = run_reformat(o, client->get());
    ASSERT_TRUE(res.ok()) << res.status().to_string();
    EXPECT_EQ(res->stats.input, samples.size());
    EXPECT_EQ(res->stats.kept + res->stats.rejected, res->stats.input);
    EXPECT_EQ(static_cast<size_t>(server.calls()), res->stats.kept);
    EXPECT_EQ(res->stats.kept, samples.size());  // all images of the sample exist
    std::map<std::string, const curate::Sample*> by_caption;
    for (const auto& s : samples)
        by_caption[s.caption] = &s;
    for (const auto& r : server.requests()) {
        std::string t = test::FakeOpenAi::request_text(r.body);
        const curate::Sample* s = nullptr;
        for (const auto& [cap, p] : by_caption)
            if (t.find(cap) != std::string::npos) s = p;
        ASSERT_NE(s, nullptr) << "request without a known real caption";
        EXPECT_NE(t.find("<reference>"), std::string::npos);
        for (const auto& m : s->mentions)
            EXPECT_NE(t.find(m), std::string::npos);
        auto urls = test::FakeOpenAi::image_urls(r.body);
        ASSERT_EQ(urls.size(), s->images.size());
        EXPECT_EQ(urls[0], *llm::image_data_url(s->images[0], 1024, 90));
    }
    auto align = json::parse(test::read_text(dir / "out" / "alignment_vqa.json"));
    ASSERT_EQ(align.size(), res->stats.kept);
    for (const auto& a : align)
        EXPECT_EQ(a["source"], "medicat");
}

}  // namespace
}  // namespace mf::reformat
