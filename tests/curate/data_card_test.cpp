#include "curate/data_card.h"

#include <gtest/gtest.h>

#include "io/file.h"
#include "test_util.h"

namespace mf::curate {
namespace {

void write_stats(const std::filesystem::path& dir, const std::string& stage, uint64_t in,
                 uint64_t kept, std::map<std::string, uint64_t> reasons) {
    StageStats s;
    s.stage = stage;
    s.input = in;
    s.kept = kept;
    s.rejected = in - kept;
    s.reasons = std::move(reasons);
    s.seconds = 2;
    s.bytes_in = 4'000'000;
    s.extra["formats"] = {{"jats", in}};
    ASSERT_TRUE(io::write_file_atomic(dir / "stats.json", s.to_json().dump()).ok());
}

TEST(DataCard, FunnelInStageOrderWithReasons) {
    test::TempDir d;
    write_stats(d / "2-filter", "filter", 90, 60, {{"too_few_terms", 20}, {"image_too_small", 10}});
    write_stats(d / "1-ingest", "ingest", 100, 90, {{"bad_record", 10}});
    write_stats(d / "3-dedup", "dedup", 60, 55, {{"near_duplicate_caption", 5}});
    std::filesystem::create_directories(d / "not-a-stage");
    ASSERT_TRUE(write_data_card(d.path(), {}).ok());
    std::string md = test::read_text(d / "data_card.md");
    size_t a = md.find("| 1-ingest | 100 | 90 | 10 | 90.0% | 50 | 2.0 |");
    size_t b = md.find("| 2-filter | 90 | 60 | 30 | 66.7%");
    size_t c = md.find("| 3-dedup | 60 | 55 | 5 | 91.7%");
    ASSERT_NE(a, std::string::npos) << md;
    ASSERT_NE(b, std::string::npos) << md;
    ASSERT_NE(c, std::string::npos) << md;
    EXPECT_LT(a, b);
    EXPECT_LT(b, c);
    // Reasons sorted by count within a stage.
    EXPECT_LT(md.find("`too_few_terms` | 20"), md.find("`image_too_small` | 10"));
    EXPECT_NE(md.find("3-dedup/samples.jsonl"), std::string::npos);
    EXPECT_EQ(md.find("not-a-stage"), std::string::npos);
    auto j = nlohmann::json::parse(test::read_text(d / "data_card.json"));
    EXPECT_EQ(j["stages"].size(), 3u);
    EXPECT_EQ(j["stages"][2]["kept"], 55);
}

TEST(DataCard, EmptyFolderIsAnError) {
    test::TempDir d;
    Status st = write_data_card(d.path(), {});
    EXPECT_EQ(st.code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace mf::curate

namespace mf::curate {
namespace {

TEST(DataCard, NamesTheVqaFilesOfAReformatStage) {
    test::TempDir d;
    write_stats(d / "4-reformat", "reformat", 3, 3, {});
    test::write_text(d / "4-reformat" / "alignment_vqa.json", "[]");
    test::write_text(d / "4-reformat" / "instruction_vqa.json", "[]");
    ASSERT_TRUE(write_data_card(d.path(), {}).ok());
    std::string md = test::read_text(d / "data_card.md");
    EXPECT_NE(md.find("4-reformat/alignment_vqa.json` and `"), std::string::npos) << md;
    EXPECT_NE(md.find("4-reformat/instruction_vqa.json"), std::string::npos) << md;
}

}  // namespace
}  // namespace mf::curate
