#include "curate/stage.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "test_util.h"

namespace mf::curate {
namespace {

// A corpus of n samples plus a few malformed lines, written as Sample JSONL.
std::filesystem::path write_corpus(const test::TempDir& d, int n) {
    std::string text;
    for (int i = 0; i < n; ++i) {
        Sample s;
        s.id = "s" + std::to_string(i);
        s.caption = "caption number " + std::to_string(i);
        s.images = {"/img/" + std::to_string(i) + ".jpg"};
        text += sample_to_json(s) + "\n";
        if (i % 37 == 5) text += "{\"id\": broken json\n";
        if (i % 53 == 7) text += "\n";  // blank lines are not records
        if (i % 61 == 3) text += "{\"id\":\"bad\xFFutf8\",\"images\":[],\"caption\":\"x\"}\n";
    }
    test::write_text(d / "in" / "samples.jsonl", text);
    return d / "in";
}

// Keeps samples whose number is not divisible by 3.
Verdict by_three(const Sample& s, size_t) {
    int n = std::atoi(s.id.c_str() + 1);
    if (n % 3 == 0) return Verdict::drop("divisible_by_three", "n=" + std::to_string(n));
    return Verdict::kept();
}

TEST(ShardSpec, Parse) {
    auto s = parse_shard("2/4");
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->index, 2u);
    EXPECT_EQ(s->count, 4u);
    EXPECT_EQ(s->dir_name(), "0002-of-0004");
    for (const char* bad : {"4/4", "1/0", "x", "1/", "-1/2", "1/2/3"})
        EXPECT_FALSE(parse_shard(bad).ok()) << bad;
}

TEST(ShardSpec, SlurmEnvironment) {
    setenv("SLURM_ARRAY_TASK_ID", "3", 1);
    setenv("SLURM_ARRAY_TASK_COUNT", "4", 1);
    setenv("SLURM_ARRAY_TASK_MIN", "0", 1);
    auto s = parse_shard("slurm");
    unsetenv("SLURM_ARRAY_TASK_ID");
    unsetenv("SLURM_ARRAY_TASK_COUNT");
    unsetenv("SLURM_ARRAY_TASK_MIN");
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    EXPECT_EQ(s->to_string(), "3/4");
    EXPECT_FALSE(parse_shard("slurm").ok());  // no variables set now
}

TEST(ShardSpec, PartitionsEveryKeyExactlyOnce) {
    for (int k = 0; k < 1000; ++k) {
        std::string key = "id" + std::to_string(k);
        int owners = 0;
        for (uint32_t i = 0; i < 4; ++i)
            owners += ShardSpec{i, 4}.owns(key);
        EXPECT_EQ(owners, 1);
    }
}

TEST(MapStage, KeptPlusRejectedEqualsInput) {
    test::TempDir d;
    auto in = write_corpus(d, 500);
    MapStageOptions opt{"toy", in, d / "out"};
    opt.batch_size = 64;  // several batches
    auto stats = run_map_stage(opt, by_three);
    ASSERT_TRUE(stats.ok()) << stats.status().to_string();
    auto kept = test::read_lines(d / "out" / "samples.jsonl");
    auto rejects = test::read_lines(d / "out" / "rejects.jsonl");
    EXPECT_EQ(stats->input, kept.size() + rejects.size());
    EXPECT_EQ(stats->kept, kept.size());
    EXPECT_EQ(stats->reasons.at("divisible_by_three"), 167u);  // 0,3,...,498
    EXPECT_EQ(stats->reasons.at("bad_record"), 14u + 9u);      // broken JSON + bad UTF-8 lines
    EXPECT_EQ(stats->input, 500u + 23u);
    // Kept lines are the input lines, byte for byte, in input order.
    auto input_lines = test::read_lines(in / "samples.jsonl");
    size_t pos = 0;
    for (const auto& k : kept) {
        while (pos < input_lines.size() && input_lines[pos] != k)
            ++pos;
        ASSERT_LT(pos, input_lines.size()) << "kept line not found in order: " << k;
    }
    // A bad record names file:line and carries the raw text.
    bool found = false;
    for (const auto& r : rejects) {
        if (r.find("\"bad_record\"") == std::string::npos) continue;
        EXPECT_NE(r.find("samples.jsonl:"), std::string::npos) << r;
        EXPECT_NE(r.find("\"record\":\""), std::string::npos) << r;
        found = true;
    }
    EXPECT_TRUE(found);
    auto loaded = load_stats(d / "out" / "stats.json");
    ASSERT_TRUE(loaded.ok());
    EXPECT_EQ(loaded->kept, stats->kept);
}

TEST(MapStage, ShardsMergeToTheSingleProcessOutput) {
    test::TempDir d;
    auto in = write_corpus(d, 700);
    MapStageOptions single{"toy", in, d / "single"};
    ASSERT_TRUE(run_map_stage(single, by_three).ok());
    for (uint32_t i = 0; i < 4; ++i) {
        MapStageOptions opt{"toy", in, d / "sharded"};
        opt.shard = {i, 4};
        opt.batch_size = 50;
        opt.n_threads = 1 + i % 2;
        auto st = run_map_stage(opt, by_three);
        ASSERT_TRUE(st.ok());
        EXPECT_GT(st->input, 0u);
    }
    ASSERT_TRUE(merge_shards(d / "sharded").ok());
    EXPECT_EQ(test::read_text(d / "sharded" / "samples.jsonl"),
              test::read_text(d / "single" / "samples.jsonl"));
    EXPECT_EQ(test::read_text(d / "sharded" / "rejects.jsonl"),
              test::read_text(d / "single" / "rejects.jsonl"));
    auto a = load_stats(d / "single" / "stats.json");
    auto b = load_stats(d / "sharded" / "stats.json");
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->input, b->input);
    EXPECT_EQ(a->kept, b->kept);
    EXPECT_EQ(a->reasons, b->reasons);
}

TEST(MapStage, MergeRefusesMissingShard) {
    test::TempDir d;
    auto in = write_corpus(d, 50);
    for (uint32_t i : {0u, 2u}) {
        MapStageOptions opt{"toy", in, d / "out"};
        opt.shard = {i, 3};
        ASSERT_TRUE(run_map_stage(opt, by_three).ok());
    }
    Status st = merge_shards(d / "out");
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("shard 1/3"), std::string::npos) << st.message();
}

TEST(MapStage, MissingInputIsAClearError) {
    test::TempDir d;
    MapStageOptions opt{"toy", d / "nothing", d / "out"};
    auto st = run_map_stage(opt, by_three);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.status().code(), StatusCode::kNotFound);
    EXPECT_NE(st.status().message().find("nothing"), std::string::npos);
}

}  // namespace
}  // namespace mf::curate
