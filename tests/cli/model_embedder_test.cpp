// medforge dedup --embedder DIR and the build config's dedup.embedder: semantic dedup with a
// sentence-transformers model (a random tiny BERT written by model::init_text_encoder).
#include "cli/model_embedder.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>

#include "test_util.h"

namespace mf::cli {
namespace {

namespace fs = std::filesystem;

std::string line(const std::string& id, const std::string& cap,
                 const std::vector<std::string>& images = {}) {
    nlohmann::json j;
    j["id"] = id;
    j["images"] = images;
    j["caption"] = cap;
    j["lineage"] = {{"source", "jsonl"}, {"article", "PMC1"}, {"figure", id}};
    return j.dump() + "\n";
}

TEST(ModelEmbedder, EmbedsUnitRowsAndZeroForBlank) {
    test::TempDir t;
    ASSERT_TRUE(model::init_text_encoder(model::Arch::kMpnet, "tiny", t / "m").ok());
    auto e = TransformerEmbedder::load(t / "m", 4, 1);
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    EXPECT_EQ((*e)->dim(), 32);
    EXPECT_EQ((*e)->name(), "mpnet:m:32");
    std::vector<std::string> texts = {"CT of the chest.", "  ", "", "Axial MRI of the brain."};
    auto v = (*e)->embed(texts);
    ASSERT_TRUE(v.ok());
    for (size_t i = 0; i < texts.size(); ++i) {
        double n = 0;
        for (size_t k = 0; k < 32; ++k)
            n += (*v)[i * 32 + k] * (*v)[i * 32 + k];
        EXPECT_NEAR(n, (i == 1 || i == 2) ? 0.0 : 1.0, 1e-5) << i;
    }
}

TEST(ModelEmbedder, DedupCliFindsRewordingsWithTheModel) {
    test::TempDir t;
    ASSERT_TRUE(model::init_text_encoder(model::Arch::kBert, "tiny", t / "model").ok());
    std::string in = line("s0", "CT scan of the chest shows a small nodule.") +
                     line("s1", "Axial MRI of the brain with contrast.") +
                     // the same WordPiece tokens as s0 (case): cosine 1
                     line("s2", "Ct SCAN of the CHEST shows a small NODULE.") + line("s3", "  ") +
                     line("s4", "  ") + line("s5", "Histology reveals malignant cells.");
    test::write_text(t / "in.jsonl", in);
    auto r = test::run_medforge("dedup --in " + (t / "in.jsonl").string() + " --out " +
                                (t / "out").string() + " --embedder " + (t / "model").string() +
                                " --no-caption-hash --no-minhash --no-image-hash "
                                "--semantic-threshold 0.99999 --clusters 1 -j 1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto rejects = test::read_lines(t / "out" / "rejects.jsonl");
    ASSERT_EQ(rejects.size(), 1u) << test::read_text(t / "out" / "rejects.jsonl");
    auto j = nlohmann::json::parse(rejects[0]);
    EXPECT_EQ(j["id"], "s2");
    EXPECT_EQ(j["reason"], "semantic_duplicate");
    EXPECT_EQ(j["duplicate_of"], "s0");
    EXPECT_EQ(test::read_lines(t / "out" / "samples.jsonl").size(), 5u);
    auto stats = nlohmann::json::parse(test::read_text(t / "out" / "stats.json"));
    EXPECT_NE(stats.dump().find("bert:model:32"), std::string::npos) << stats.dump();

    // Two shard processes + merge decide the same as one process.
    std::string common = " --embedder " + (t / "model").string() +
                         " --no-caption-hash --no-minhash --no-image-hash "
                         "--semantic-threshold 0.99999 --clusters 1 -j 1";
    for (int i = 0; i < 2; ++i) {
        auto rs = test::run_medforge("dedup --in " + (t / "in.jsonl").string() + " --out " +
                                     (t / "sharded").string() + common + " --shard " +
                                     std::to_string(i) + "/2");
        ASSERT_EQ(rs.exit_code, 0) << rs.output;
    }
    auto m = test::run_medforge("merge " + (t / "sharded").string());
    ASSERT_EQ(m.exit_code, 0) << m.output;
    EXPECT_EQ(test::read_text(t / "out" / "samples.jsonl"),
              test::read_text(t / "sharded" / "samples.jsonl"));
    EXPECT_EQ(test::read_text(t / "out" / "rejects.jsonl"),
              test::read_text(t / "sharded" / "rejects.jsonl"));

    // A folder that is not a model: the error names it.
    auto bad = test::run_medforge("dedup --in " + (t / "in.jsonl").string() + " --out " +
                                  (t / "o2").string() + " --embedder " + (t / "nope").string());
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.output.find("nope"), std::string::npos) << bad.output;
    auto nodir = test::run_medforge("dedup --in " + (t / "in.jsonl").string() + " --out " +
                                    (t / "o3").string() + " --semantic model");
    EXPECT_EQ(nodir.exit_code, 1);
    EXPECT_NE(nodir.output.find("--embedder"), std::string::npos) << nodir.output;
}

TEST(ModelEmbedder, BuildConfigKeyLoadsTheModel) {
    test::TempDir t;
    ASSERT_TRUE(model::init_text_encoder(model::Arch::kBert, "tiny", t / "model").ok());
    // Two different real images (ingest wants images); captions with the same tokens.
    std::vector<std::string> imgs;
    for (const auto& e : fs::directory_iterator(test::shared_data() / "vqa_rad" / "images"))
        if (e.path().extension() == ".jpg" && imgs.size() < 2) imgs.push_back(e.path().string());
    ASSERT_EQ(imgs.size(), 2u);
    std::string in =
        line("s0", "CT scan of the chest shows a small nodule in the lung.", {imgs[0]}) +
        line("s1", "ct scan of the chest SHOWS a small nodule in the LUNG.", {imgs[1]});
    test::write_text(t / "in.jsonl", in);
    test::write_text(t / "lexicon.txt", "ct\nchest\nnodule\nlung\n");
    test::write_text(
        t / "build.json",
        R"({"sources": [{"format": "jsonl", "input": "in.jsonl", "require_images": false}],
            "filter": {"text": {"lexicon": "lexicon.txt", "min_terms": 1}, "image": {"enabled": false}},
            "dedup": {"embedder": "model", "exact_caption": false, "minhash": false,
                      "semantic_threshold": 0.99999, "clusters": 1}})");
    auto r = test::run_medforge("build --config " + (t / "build.json").string() + " --out " +
                                (t / "out").string() + " -j 1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::string rejects = test::read_text(t / "out" / "3-dedup" / "rejects.jsonl");
    EXPECT_NE(rejects.find("semantic_duplicate"), std::string::npos) << rejects;
    EXPECT_EQ(test::read_lines(t / "out" / "3-dedup" / "samples.jsonl").size(), 1u) << r.output;
    // A missing model folder fails before any stage, naming the key.
    test::write_text(t / "bad.json",
                     R"({"sources": [{"format": "jsonl", "input": "in.jsonl"}],
                         "dedup": {"embedder": "nope"}})");
    auto b = test::run_medforge("build --config " + (t / "bad.json").string() + " --out " +
                                (t / "o2").string());
    EXPECT_EQ(b.exit_code, 1);
    EXPECT_NE(b.output.find("dedup.embedder"), std::string::npos) << b.output;
    EXPECT_FALSE(fs::exists(t / "o2" / "1-ingest"));
}

}  // namespace
}  // namespace mf::cli
