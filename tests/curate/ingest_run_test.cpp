// run_ingest: stage outputs, duplicate ids, kept + rejected == input, sharding + merge equal to a
// single run byte for byte.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <string>

#include "curate/ingest.h"
#include "curate/stage.h"
#include "ingest_test_util.h"
#include "test_util.h"

namespace mf::curate {
namespace {

namespace fs = std::filesystem;

IngestRunOptions run_opts(const std::string& format, const fs::path& input, const fs::path& out,
                          ShardSpec shard = {}) {
    IngestRunOptions o;
    o.format = format;
    o.input = input;
    o.out_dir = out;
    o.shard = shard;
    o.progress = false;
    return o;
}

// A JSONL input mixing good records, duplicates and bad lines.
std::string mixed_jsonl(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) {
        if (i % 17 == 5) {
            s += "{\"id\": broken\n";
        } else if (i % 23 == 7) {
            s += "{\"id\":\"dup\",\"images\":[\"d.png\"],\"caption\":\"Duplicate " +
                 std::to_string(i) + ".\"}\n";
        } else if (i % 29 == 3) {
            s += "{\"id\":\"n" + std::to_string(i) +
                 "\",\"images\":[\"a.png\",\"b.png\"],\"caption\":\"\"}\n";
        } else {
            s += "{\"id\":\"s" + std::to_string(i) + "\",\"images\":[\"" + std::to_string(i) +
                 ".png\"],\"caption\":\"Caption " + std::to_string(i) + ".\"}\n";
        }
    }
    return s;
}

TEST(RunIngest, OutputsAndInvariant) {
    test::TempDir dir;
    test::write_text(dir / "in.jsonl", mixed_jsonl(200));
    auto st = run_ingest(run_opts("jsonl", dir / "in.jsonl", dir / "out"));
    ASSERT_TRUE(st.ok()) << st.status().to_string();
    EXPECT_EQ(st->input, 200u);
    EXPECT_EQ(st->kept + st->rejected, st->input);
    auto samples = testing::read_samples(dir / "out" / "samples.jsonl");
    auto rejects = testing::read_json_lines(dir / "out" / "rejects.jsonl");
    EXPECT_EQ(samples.size(), st->kept);
    EXPECT_EQ(rejects.size(), st->rejected);
    // The first "dup" is kept, every later one rejected naming the id.
    size_t n_dup_in = 0;
    for (int i = 0; i < 200; ++i)
        n_dup_in += (i % 17 != 5 && i % 23 == 7);
    ASSERT_GT(n_dup_in, 2u);
    EXPECT_EQ(st->reasons["duplicate_id"], n_dup_in - 1);
    size_t kept_dup = 0;
    for (const auto& s : samples)
        kept_dup += s.id == "dup";
    EXPECT_EQ(kept_dup, 1u);
    for (const auto& r : rejects) {
        EXPECT_EQ(r["stage"], "ingest");
        if (r["reason"] == "duplicate_id") {
            EXPECT_EQ(r["id"], "dup");
            EXPECT_TRUE(r["record"].is_object());
        }
    }
    EXPECT_GT(st->reasons["bad_json"], 0u);
    EXPECT_GT(st->reasons["empty_caption"], 0u);
    // stats.json on disk, with the extra counts.
    auto disk = load_stats(dir / "out" / "stats.json");
    ASSERT_TRUE(disk.ok());
    EXPECT_EQ(disk->stage, "ingest");
    EXPECT_EQ(disk->kept, st->kept);
    EXPECT_EQ(disk->extra["kept_by_source.jsonl"].get<uint64_t>(), st->kept);
    EXPECT_EQ(disk->bytes_in, fs::file_size(dir / "in.jsonl"));
    uint64_t hist = 0;
    for (auto it = disk->extra.begin(); it != disk->extra.end(); ++it)
        if (it.key().rfind("images_per_sample.", 0) == 0) hist += it->get<uint64_t>();
    EXPECT_EQ(hist, st->kept);
}

void expect_same_file(const fs::path& a, const fs::path& b) {
    std::string x = test::read_text(a), y = test::read_text(b);
    EXPECT_FALSE(x.empty() && y.empty() && !fs::exists(a)) << a;
    EXPECT_EQ(x, y) << a << " vs " << b;
}

void check_sharded_equals_single(const std::string& format, const fs::path& input, uint32_t n) {
    test::TempDir dir;
    auto single = run_ingest(run_opts(format, input, dir / "single"));
    ASSERT_TRUE(single.ok()) << single.status().to_string();
    uint64_t sum_input = 0;
    for (uint32_t i = 0; i < n; ++i) {
        auto st = run_ingest(run_opts(format, input, dir / "sharded", ShardSpec{i, n}));
        ASSERT_TRUE(st.ok()) << st.status().to_string();
        EXPECT_EQ(st->kept + st->rejected, st->input);
        sum_input += st->input;
    }
    EXPECT_EQ(sum_input, single->input);
    ASSERT_TRUE(merge_shards(dir / "sharded").ok());
    expect_same_file(dir / "single" / "samples.jsonl", dir / "sharded" / "samples.jsonl");
    expect_same_file(dir / "single" / "rejects.jsonl", dir / "sharded" / "rejects.jsonl");
    auto merged = load_stats(dir / "sharded" / "stats.json");
    ASSERT_TRUE(merged.ok());
    EXPECT_EQ(merged->input, single->input);
    EXPECT_EQ(merged->kept, single->kept);
    EXPECT_EQ(merged->reasons, single->reasons);
    EXPECT_EQ(merged->bytes_in, single->bytes_in);
    EXPECT_EQ(merged->extra, single->extra);
}

TEST(RunIngest, ShardedJsonlEqualsSingle) {
    test::TempDir dir;
    test::write_text(dir / "in.jsonl", mixed_jsonl(300));
    check_sharded_equals_single("jsonl", dir / "in.jsonl", 2);
}

TEST(RunIngest, ShardedJatsEqualsSingle) {
    check_sharded_equals_single("jats", test::fixtures() / "jats", 2);
}

TEST(RunIngest, ShardedMedicatEqualsSingle) {
    check_sharded_equals_single("medicat", test::shared_data() / "medicat_sample" / "sample.jsonl",
                                2);
}

TEST(RunIngest, ThreadCountDoesNotChangeOutput) {
    test::TempDir dir;
    test::write_text(dir / "in.jsonl", mixed_jsonl(9000));  // more than one parse batch
    auto one = run_opts("jsonl", dir / "in.jsonl", dir / "one");
    one.adapter.threads = 1;
    auto many = run_opts("jsonl", dir / "in.jsonl", dir / "many");
    many.adapter.threads = 4;
    ASSERT_TRUE(run_ingest(one).ok());
    ASSERT_TRUE(run_ingest(many).ok());
    expect_same_file(dir / "one" / "samples.jsonl", dir / "many" / "samples.jsonl");
    expect_same_file(dir / "one" / "rejects.jsonl", dir / "many" / "rejects.jsonl");
    EXPECT_EQ(test::read_lines(dir / "one" / "samples.jsonl").size() +
                  test::read_lines(dir / "one" / "rejects.jsonl").size(),
              9000u);
}

TEST(RunIngest, JatsThreadCountDoesNotChangeOutput) {
    test::TempDir dir;
    // 300 small articles (more than one parallel batch), every tenth malformed.
    for (int i = 0; i < 300; ++i) {
        std::string n = std::to_string(i);
        std::string xml =
            i % 10 == 3
                ? "<article><front>" + n
                : "<article xmlns:xlink=\"http://www.w3.org/1999/xlink\"><front><article-meta>"
                  "<article-id pub-id-type=\"pmc\">" +
                      n +
                      "</article-id></article-meta>"
                      "</front><body><p>See <xref ref-type=\"fig\" rid=\"F1\">Figure 1</xref>. "
                      "Done.</p><fig id=\"F1\"><caption><p>Caption " +
                      n + ".</p></caption><graphic xlink:href=\"g" + n +
                      "\"/></fig></body></article>";
        char name[32];
        std::snprintf(name, sizeof name, "a%03d.xml", i);
        test::write_text(dir / "in" / name, xml);
        if (i % 7 != 0) test::write_text(dir / "in" / ("g" + n + ".png"), "png");
    }
    auto one = run_opts("jats", dir / "in", dir / "one");
    one.adapter.threads = 1;
    auto many = run_opts("jats", dir / "in", dir / "many");
    many.adapter.threads = 4;
    auto a = run_ingest(one);
    auto b = run_ingest(many);
    ASSERT_TRUE(a.ok() && b.ok());
    expect_same_file(dir / "one" / "samples.jsonl", dir / "many" / "samples.jsonl");
    expect_same_file(dir / "one" / "rejects.jsonl", dir / "many" / "rejects.jsonl");
    EXPECT_EQ(a->input, 300u);
    EXPECT_EQ(a->reasons["bad_xml"], 30u);
    EXPECT_EQ(a->bytes_in, b->bytes_in);
    auto first = test::read_lines(dir / "one" / "samples.jsonl").front();
    EXPECT_NE(first.find("\"id\":\"jats:PMC1:F1\""), std::string::npos) << first;
    EXPECT_NE(first.find("\"mentions\":[\"See Figure 1.\"]"), std::string::npos) << first;
}

TEST(RunIngest, JatsFixtureCounts) {
    test::TempDir dir;
    auto st = run_ingest(run_opts("jats", test::fixtures() / "jats", dir / "out"));
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->input, 12u);
    EXPECT_EQ(st->kept, 8u);
    EXPECT_EQ(st->rejected, 4u);
    EXPECT_EQ(st->extra["images_per_sample.1"].get<int>(), 7);
    EXPECT_EQ(st->extra["images_per_sample.2"].get<int>(), 1);
}

TEST(RunIngest, Errors) {
    test::TempDir dir;
    auto bad_format = run_ingest(run_opts("xml", dir.path(), dir / "out"));
    EXPECT_FALSE(bad_format.ok());
    auto missing = run_ingest(run_opts("jsonl", dir / "missing.jsonl", dir / "out"));
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.status().message().find("missing.jsonl"), std::string::npos);
}

}  // namespace
}  // namespace mf::curate
