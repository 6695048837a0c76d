// The whole pipeline (`medforge build`) on the shipped demo data, with a lexicon written here so
// the expected funnel does not depend on the machine's default lexicon.
#include "curate/pipeline.h"

#include <gtest/gtest.h>

#include "io/file.h"
#include "test_util.h"

namespace mf::curate {
namespace {

const char* kLexicon =
    "abdomen\nabdominal\naxial\nbrain\ncarcinoma\ncerebral\nchest\ncomputed tomography\n"
    "coronal\ncontrast-enhanced\ndisc\nedema\nendoscopic\nendoscopy\nenhancement\nerythema\n"
    "gastric\nhepatic\nhypodense\nhyperintense\nkidney\nlesion\nlobe\nlumbar\n"
    "magnetic resonance\nmetastasis\nmucosal\nnerve root\nparietal\nradiograph\nspine\n"
    "tumour\nventricle\nvertebral\nadenocarcinoma\nsurvival\ngastrectomy\nlymph node\n"
    "chemotherapy\nantrum\npylorus\nopacities\npleural effusion\npneumothorax\n";

std::string demo_config(const test::TempDir& d, const std::string& extra_filter = "") {
    test::write_text(d / "lexicon.txt", kLexicon);
    fs::path demo = test::source_dir() / "examples" / "demo";
    std::string cfg = R"({"name": "demo test",
      "sources": [{"format": "jats", "input": ")" +
                      (demo / "jats").string() + R"("},
                  {"format": "jsonl", "input": ")" +
                      (demo / "extra.jsonl").string() + R"("}],
      "filter": {"text": {"min_terms": 5, "lexicon": "lexicon.txt"},
                 "image": {"min_side": 336, "classifier": "none")" +
                      extra_filter + R"(}},
      "dedup": {"minhash_threshold": 0.8}})";
    test::write_text(d / "build.json", cfg);
    return (d / "build.json").string();
}

std::map<std::string, std::string> reasons_by_id(const fs::path& rejects) {
    std::map<std::string, std::string> out;
    for (const auto& line : test::read_lines(rejects)) {
        auto j = nlohmann::json::parse(line);
        out[j["id"].get<std::string>()] = j["reason"].get<std::string>();
    }
    return out;
}

TEST(Pipeline, DemoFunnelWithEveryRecordAccountedFor) {
    test::TempDir d;
    auto cfg = load_build_config(demo_config(d));
    ASSERT_TRUE(cfg.ok()) << cfg.status().to_string();
    BuildOptions opt;
    opt.out_dir = d / "out";
    opt.progress = false;
    auto stats = run_build(*cfg, opt);
    ASSERT_TRUE(stats.ok()) << stats.status().to_string();
    ASSERT_EQ(stats->size(), 3u);
    // ingest: 7 JATS figures + 5 JSONL lines (one malformed).
    EXPECT_EQ((*stats)[0].input, 12u);
    EXPECT_EQ((*stats)[0].reasons.at("bad_json"), 1u);
    for (const auto& s : *stats)
        EXPECT_EQ(s.input, s.kept + s.rejected) << s.stage;
    EXPECT_EQ((*stats)[1].input, (*stats)[0].kept);
    EXPECT_EQ((*stats)[2].input, (*stats)[1].kept);

    auto filtered = reasons_by_id(d / "out" / "2-filter" / "rejects.jsonl");
    EXPECT_EQ(filtered["jats:PMC9000002:F4"], "image_too_small");
    EXPECT_EQ(filtered["demo:missing:4"], "image_missing");
    EXPECT_EQ(filtered["demo:plain:5"], "too_few_terms");
    auto deduped = reasons_by_id(d / "out" / "3-dedup" / "rejects.jsonl");
    EXPECT_EQ(deduped["demo:reupload:1"], "duplicate_image");
    EXPECT_EQ(deduped["demo:repost:2"], "near_duplicate_caption");

    // The final dataset: the two-image CT figure stays one sample with its images in order.
    auto kept = test::read_lines(d / "out" / "3-dedup" / "samples.jsonl");
    ASSERT_FALSE(kept.empty());
    auto first = sample_from_json(kept[0]);
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(first->id, "jats:PMC9000001:F1");
    ASSERT_EQ(first->images.size(), 2u);
    EXPECT_NE(first->images[0].find("ct_axial"), std::string::npos);
    EXPECT_NE(first->images[1].find("ct_coronal"), std::string::npos);
    EXPECT_NE(first->lineage.licence.find("creativecommons.org/licenses/by/4.0"),
              std::string::npos);

    std::string card = test::read_text(d / "out" / "data_card.md");
    EXPECT_NE(card.find("| 1-ingest | 12 |"), std::string::npos) << card;
    EXPECT_NE(card.find("`near_duplicate_caption`"), std::string::npos);
}

TEST(Pipeline, RerunSkipsFinishedStagesAndForceRedoes) {
    test::TempDir d;
    auto cfg = load_build_config(demo_config(d));
    ASSERT_TRUE(cfg.ok());
    BuildOptions opt;
    opt.out_dir = d / "out";
    opt.progress = false;
    ASSERT_TRUE(run_build(*cfg, opt).ok());
    std::string before = test::read_text(d / "out" / "3-dedup" / "samples.jsonl");
    auto t0 = fs::last_write_time(d / "out" / "2-filter" / "samples.jsonl");
    ASSERT_TRUE(run_build(*cfg, opt).ok());
    EXPECT_EQ(fs::last_write_time(d / "out" / "2-filter" / "samples.jsonl"), t0);  // skipped
    // A killed filter stage (no stage.done) is redone on the next run.
    fs::remove(d / "out" / "2-filter" / "stage.done");
    ASSERT_TRUE(run_build(*cfg, opt).ok());
    EXPECT_NE(fs::last_write_time(d / "out" / "2-filter" / "samples.jsonl"), t0);
    EXPECT_EQ(test::read_text(d / "out" / "3-dedup" / "samples.jsonl"), before);
}

TEST(Pipeline, ConfigErrorsNameTheField) {
    test::TempDir d;
    struct Case {
        std::string json, expect;
    } cases[] = {
        {R"({"sources": []})", "at least one source"},
        {R"({"sources": [{"format": "jats"}]})", "\"format\" and \"input\" are required"},
        {R"({"sources": [{"format": "jats", "input": "x", "inputs": "y"}]})",
         "sources[0].inputs: unknown key"},
        {R"({"sources": [{"format": "jats", "input": "x"}], "filter": {"text": {"min_terms": "5"}}})",
         "filter.text.min_terms: expected an integer"},
        {R"({"sources": [{"format": "jats", "input": "x"}], "dedup": {"semantic": "mpnet"}})",
         "dedup.semantic"},
        {R"({"sources": [{"format": "jats", "input": "x"}], "filtre": {}})", "filtre: unknown key"},
    };
    for (const auto& c : cases) {
        test::write_text(d / "bad.json", c.json);
        auto r = load_build_config(d / "bad.json");
        ASSERT_FALSE(r.ok()) << c.json;
        EXPECT_NE(r.status().message().find(c.expect), std::string::npos) << r.status().message();
        EXPECT_NE(r.status().message().find("bad.json"), std::string::npos) << r.status().message();
    }
}

}  // namespace
}  // namespace mf::curate
