// `medforge filter` and `medforge build` as a user runs them, including a sharded filter run as
// four separate processes joined by `medforge merge`.
#include <gtest/gtest.h>

#include "test_util.h"

namespace mf {
namespace {

const char* kLexicon =
    "abdomen\naxial\nbrain\ncarcinoma\ncerebral\nchest\ncomputed tomography\ncoronal\n"
    "edema\nendoscopic\ngastric\nhepatic\nhypodense\nkidney\nlesion\nlobe\nmagnetic resonance\n"
    "metastasis\nmucosal\nparietal\nradiograph\nspine\nventricle\nvertebral\nsurvival\n";

struct Demo {
    test::TempDir dir;
    std::string ingest;  // ingest output folder
    std::string lexicon;
    Demo() {
        test::write_text(dir / "lexicon.txt", kLexicon);
        lexicon = (dir / "lexicon.txt").string();
        ingest = (dir / "ingest").string();
        auto r = test::run_medforge("ingest --format jats --input " +
                                    (test::source_dir() / "examples/demo/jats").string() +
                                    " --out " + ingest);
        EXPECT_EQ(r.exit_code, 0) << r.output;
    }
};

TEST(FilterCli, FourShardProcessesMergeToTheSingleRun) {
    Demo demo;
    std::string common =
        " --in " + demo.ingest + " --lexicon " + demo.lexicon + " --min-terms 3 -q";
    auto single =
        test::run_medforge("filter" + common + " --out " + (demo.dir / "single").string());
    ASSERT_EQ(single.exit_code, 0) << single.output;
    std::string bin = test::medforge_binary().string();
    std::string cmd;
    for (int i = 0; i < 4; ++i)
        cmd += bin + " filter" + common + " -j 1 --out " + (demo.dir / "sharded").string() +
               " --shard " + std::to_string(i) + "/4 & ";
    cmd += "wait";
    auto shards = test::run_command(cmd);
    ASSERT_EQ(shards.exit_code, 0) << shards.output;
    auto merged = test::run_medforge("merge " + (demo.dir / "sharded").string());
    ASSERT_EQ(merged.exit_code, 0) << merged.output;
    for (const char* f : {"samples.jsonl", "rejects.jsonl"}) {
        std::string a = test::read_text(demo.dir / "single" / f);
        EXPECT_FALSE(a.empty()) << f;
        EXPECT_EQ(test::read_text(demo.dir / "sharded" / f), a) << f;
    }
    auto kept = test::read_lines(demo.dir / "single" / "samples.jsonl");
    auto rejected = test::read_lines(demo.dir / "single" / "rejects.jsonl");
    EXPECT_EQ(kept.size() + rejected.size(), 7u);  // every figure of the 3 demo articles
}

TEST(FilterCli, OptionsAndConfigErrors) {
    Demo demo;
    auto bad =
        test::run_medforge("filter --in " + demo.ingest + " --out " + (demo.dir / "o").string() +
                           " --lexicon " + (demo.dir / "nope.txt").string());
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.output.find("nope.txt"), std::string::npos) << bad.output;
    test::write_text(demo.dir / "f.json", R"({"filter": {"image": {"min_sid": 300}}})");
    auto cfg =
        test::run_medforge("filter --in " + demo.ingest + " --out " + (demo.dir / "o").string() +
                           " --config " + (demo.dir / "f.json").string());
    EXPECT_EQ(cfg.exit_code, 1);
    EXPECT_NE(cfg.output.find("filter.image.min_sid: unknown key"), std::string::npos)
        << cfg.output;
    auto shard = test::run_medforge("filter --in " + demo.ingest + " --out o --shard 4/4");
    EXPECT_EQ(shard.exit_code, 1);
    EXPECT_NE(shard.output.find("0 <= i < N"), std::string::npos) << shard.output;
    // Header-only image checks: no decode, no classifier; the thumbnail is still too small.
    auto fast =
        test::run_medforge("filter --in " + demo.ingest + " --out " + (demo.dir / "h").string() +
                           " --lexicon " + demo.lexicon + " --min-terms 1 --header-only -q");
    ASSERT_EQ(fast.exit_code, 0) << fast.output;
    std::string rejects = test::read_text(demo.dir / "h" / "rejects.jsonl");
    EXPECT_NE(rejects.find("image_too_small"), std::string::npos) << rejects;
    EXPECT_EQ(rejects.find("non_medical_image"), std::string::npos) << rejects;
}

TEST(BuildCli, DemoConfigRunsAndWritesTheCard) {
    test::TempDir d;
    // The shipped demo config uses the default lexicon and classifier; point the lexicon at a
    // file of our own so the test does not depend on setup having built the default one.
    test::write_text(d / "lexicon.txt", kLexicon);
    std::string demo = (test::source_dir() / "examples/demo").string();
    test::write_text(d / "build.json",
                     R"({"sources": [{"format": "jats", "input": ")" + demo +
                         R"(/jats"}, {"format": "jsonl", "input": ")" + demo +
                         R"(/extra.jsonl"}], "filter": {"text": {"lexicon": "lexicon.txt"}}})");
    auto r = test::run_medforge("build --config " + (d / "build.json").string() + " --out " +
                                (d / "out").string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("data card"), std::string::npos);
    std::string card = test::read_text(d / "out" / "data_card.md");
    EXPECT_NE(card.find("| 3-dedup |"), std::string::npos) << card;
    auto missing = test::run_medforge("build --config " + (d / "none.json").string() + " --out x");
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_NE(missing.output.find("none.json"), std::string::npos);
}

}  // namespace
}  // namespace mf
