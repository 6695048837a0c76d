// `medforge ingest` as a user runs it.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "test_util.h"

namespace mf::test {
namespace {

std::string q(const fs::path& p) {
    return "'" + p.string() + "'";
}

TEST(IngestCli, Help) {
    auto r = run_medforge("ingest --help");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    for (const char* opt : {"--format", "--input", "--out", "--image-root", "--licence",
                            "--require-images", "--shard", "--quiet", "jats", "pubmedvision"})
        EXPECT_NE(r.output.find(opt), std::string::npos) << opt << "\n" << r.output;
}

TEST(IngestCli, UsageAndFormatErrors) {
    TempDir dir;
    auto r = run_medforge("ingest --input x --out " + q(dir / "o"));
    EXPECT_EQ(r.exit_code, 2) << r.output;
    r = run_medforge("ingest --format docx --input x --out " + q(dir / "o"));
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("valid formats: jats, medicat"), std::string::npos) << r.output;
    r = run_medforge("ingest --format jsonl --input " + q(dir / "none.jsonl") + " --out " +
                     q(dir / "o"));
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("none.jsonl"), std::string::npos) << r.output;
}

TEST(IngestCli, ShardedProcessesMergeToTheSingleRun) {
    TempDir dir;
    fs::path in = fixtures() / "jats";
    auto single =
        run_medforge("ingest -q --format jats --input " + q(in) + " --out " + q(dir / "single"));
    ASSERT_EQ(single.exit_code, 0) << single.output;
    for (int i = 0; i < 2; ++i) {
        auto r = run_medforge("ingest --format jats --input " + q(in) + " --out " + q(dir / "sh") +
                              " --shard " + std::to_string(i) + "/2");
        ASSERT_EQ(r.exit_code, 0) << r.output;
    }
    auto m = run_medforge("merge " + q(dir / "sh"));
    ASSERT_EQ(m.exit_code, 0) << m.output;
    EXPECT_EQ(read_text(dir / "single" / "samples.jsonl"), read_text(dir / "sh" / "samples.jsonl"));
    EXPECT_EQ(read_text(dir / "single" / "rejects.jsonl"), read_text(dir / "sh" / "rejects.jsonl"));
    EXPECT_EQ(read_lines(dir / "single" / "samples.jsonl").size(), 8u);
    EXPECT_EQ(read_lines(dir / "single" / "rejects.jsonl").size(), 4u);
}

TEST(IngestCli, MedicatWithLicenceAndRequireImages) {
    TempDir dir;
    auto r = run_medforge("ingest --format medicat --require-images --licence 'CC BY-NC' --input " +
                          q(shared_data() / "medicat_sample" / "sample.jsonl") + " --out " +
                          q(dir / "o"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("10 kept"), std::string::npos) << r.output;
    auto lines = read_lines(dir / "o" / "samples.jsonl");
    ASSERT_EQ(lines.size(), 10u);
    EXPECT_NE(lines[0].find("\"licence\":\"CC BY-NC\""), std::string::npos) << lines[0];
}

}  // namespace
}  // namespace mf::test
