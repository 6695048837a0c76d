// The dedup stage end to end: reason codes and duplicate_of on a planted corpus (real images from
// ../shared/data), earliest-kept-wins, bad records, stats, determinism across thread counts,
// and 4 shard processes + `medforge merge` byte-equal to one `medforge dedup`.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/text.h"
#include "curate/dedup.h"
#include "curate/hashing_embedder.h"
#include "test_util.h"

namespace mf::curate {
namespace {

using test::TempDir;

std::string caption(std::mt19937_64& rng, int words = 60) {
    std::string s;
    for (int i = 0; i < words; ++i) {
        if (i) s += ' ';
        s += std::string("w").append(std::to_string(rng() % 5000));
    }
    return s;
}

std::string replace_word(const std::string& s, size_t index_from_end_words, const std::string& w) {
    // Replaces the word that is `index_from_end_words` words from the end (0 = last).
    std::vector<std::string> v;
    size_t i = 0;
    while (i <= s.size()) {
        size_t j = s.find(' ', i);
        if (j == std::string::npos) j = s.size();
        v.push_back(s.substr(i, j - i));
        i = j + 1;
    }
    v[v.size() - 1 - index_from_end_words] = w;
    std::string o;
    for (size_t k = 0; k < v.size(); ++k) {
        if (k) o += ' ';
        o += v[k];
    }
    return o;
}

std::string line(const std::string& id, const std::vector<std::string>& images,
                 const std::string& cap) {
    nlohmann::json j;
    j["id"] = id;
    j["images"] = images;
    j["caption"] = cap;
    j["lineage"] = {{"source", "jsonl"}, {"article", "PMC1"}, {"figure", id}};
    return j.dump();
}

struct Corpus {
    fs::path input;
    int records = 0;
};

// Planted duplicates; see the expectations in DedupStage.ReasonsAndDuplicateOf.
Corpus make_corpus(const fs::path& dir) {
    fs::create_directories(dir / "img");
    auto src = test::shared_data() / "vqa_rad" / "images";
    auto files = *io::list_files(src, {".jpg"}, false);
    std::vector<std::string> I;
    for (int k = 0; k < 7; ++k) {
        fs::path p = dir / "img" / (std::string("i").append(std::to_string(k) + ".jpg"));
        fs::copy_file(files[k], p, fs::copy_options::overwrite_existing);
        I.push_back(p.string());
    }
    fs::path i0dup = dir / "img" / "i0_copy.jpg";
    fs::copy_file(files[0], i0dup, fs::copy_options::overwrite_existing);
    std::mt19937_64 rng(42);
    std::vector<std::string> C;
    for (int k = 0; k < 8; ++k)
        C.push_back(caption(rng));
    std::string c0_upper = C[0];
    std::transform(c0_upper.begin(), c0_upper.end(), c0_upper.begin(), ::toupper);
    std::string s;
    auto add = [&](const std::string& l) { s += l + "\n"; };
    add(line("s0", {I[0]}, C[0]));                                // kept
    add(line("s1", {i0dup.string()}, C[1]));                      // duplicate_image of s0
    add(line("s2", {I[1]}, "  " + c0_upper + ". "));              // duplicate_caption of s0
    add(line("s3", {I[2]}, replace_word(C[0], 0, "different")));  // near_duplicate of s0
    add(line("s4", {I[3], I[0]}, C[3]));                          // shares 1 of 2 images
    add("{\"id\": \"broken\", ");                                 // bad_record
    add("");                                                      // blank: not a record
    add(line("s5", {I[4]}, C[1]));  // kept: s1 had C1 but was rejected
    add(line("s6", {I[5]}, C[2]));  // kept
    add(line("s7", {(dir / "img" / "missing.jpg").string()}, C[4]));  // kept, image unreadable
    add(line("s8", {I[1]}, C[5]));                           // kept: I1 belonged to rejected s2
    add(line("s9", {I[2]}, C[0]));                           // duplicate_caption of s0
    add("{\"id\": 5, \"images\": [], \"caption\": \"x\"}");  // bad_record (id type)
    add(line("s10", {}, ""));                                // kept: empty captions never match
    add(line("s11", {}, ""));                                // kept
    // two interior words changed: Jaccard ~0.7 (not near), cosine ~0.96 (semantic)
    add(line("s12", {I[6]}, replace_word(replace_word(C[2], 20, "alpha"), 40, "beta")));
    Corpus c;
    c.input = dir / "in.jsonl";
    test::write_text(c.input, s);
    c.records = 15;
    return c;
}

struct Outcome {
    std::map<std::string, std::string> reason, dup_of;
    std::vector<std::string> kept;
    int bad = 0;
};

Outcome read_outcome(const fs::path& out) {
    Outcome o;
    for (const auto& l : test::read_lines(out / "samples.jsonl"))
        o.kept.push_back(nlohmann::json::parse(l)["id"].get<std::string>());
    for (const auto& l : test::read_lines(out / "rejects.jsonl")) {
        auto j = nlohmann::json::parse(l);
        std::string id = j["id"].get<std::string>();
        if (j["reason"] == "bad_record") {
            ++o.bad;
            EXPECT_FALSE(j["detail"].get<std::string>().empty());
            continue;
        }
        o.reason[id] = j["reason"].get<std::string>();
        o.dup_of[id] = j.value("duplicate_of", "");
    }
    return o;
}

DedupOptions options(const Corpus& c, const fs::path& out, bool semantic, size_t threads = 1) {
    DedupOptions o;
    o.input = c.input;
    o.out_dir = out;
    o.n_threads = threads;
    o.progress = false;
    if (semantic) o.params.embedder = std::make_shared<HashingEmbedder>(512);
    return o;
}

TEST(DedupStage, ReasonsAndDuplicateOf) {
    TempDir t;
    Corpus c = make_corpus(t.path());
    auto st = run_dedup(options(c, t / "out", false));
    ASSERT_TRUE(st.ok()) << st.status().to_string();
    Outcome o = read_outcome(t / "out");
    EXPECT_EQ(o.kept,
              (std::vector<std::string>{"s0", "s5", "s6", "s7", "s8", "s10", "s11", "s12"}));
    EXPECT_EQ(o.reason["s1"], "duplicate_image");
    EXPECT_EQ(o.reason["s2"], "duplicate_caption");
    EXPECT_EQ(o.reason["s3"], "near_duplicate_caption");
    EXPECT_EQ(o.reason["s4"], "duplicate_image");
    EXPECT_EQ(o.reason["s9"], "duplicate_caption");
    for (auto id : {"s1", "s2", "s3", "s4", "s9"})
        EXPECT_EQ(o.dup_of[id], "s0") << id;
    EXPECT_EQ(o.bad, 2);
    EXPECT_EQ(st->input, 15u);
    EXPECT_EQ(st->kept + st->rejected, st->input);
    EXPECT_EQ(st->reasons.at("duplicate_image"), 2u);
    EXPECT_EQ(st->reasons.at("duplicate_caption"), 2u);
    EXPECT_EQ(st->reasons.at("near_duplicate_caption"), 1u);
    EXPECT_EQ(st->reasons.at("bad_record"), 2u);
    EXPECT_EQ(st->extra["images_unreadable"].get<int>(), 1);
    EXPECT_EQ(st->extra["images_hashed"].get<int>(), 11);
    EXPECT_FALSE(fs::exists(t / "out" / ".dedup-signatures"));
    // Kept lines are verbatim input lines.
    auto in = test::read_lines(c.input);
    auto kept_lines = test::read_lines(t / "out" / "samples.jsonl");
    EXPECT_EQ(kept_lines[0], in[0]);
    // near-dup detail carries the similarity
    auto rej = test::read_text(t / "out" / "rejects.jsonl");
    EXPECT_NE(rej.find("estimated Jaccard 0.9"), std::string::npos);
}

TEST(DedupStage, SemanticHashingEmbedderFindsReworded) {
    TempDir t;
    Corpus c = make_corpus(t.path());
    auto st = run_dedup(options(c, t / "out", true));
    ASSERT_TRUE(st.ok()) << st.status().to_string();
    Outcome o = read_outcome(t / "out");
    EXPECT_EQ(o.reason["s12"], "semantic_duplicate");
    EXPECT_EQ(o.dup_of["s12"], "s6");
    EXPECT_EQ(st->reasons.at("semantic_duplicate"), 1u);
    EXPECT_EQ(st->kept + st->rejected, 15u);
}

// A generic (non-hashing) embedder goes through Embedder::embed() once per batch on the main
// thread; wrapping the hashing embedder must give byte-identical output.
class WrappedEmbedder : public Embedder {
  public:
    std::string name() const override { return inner_.name(); }
    int dim() const override { return inner_.dim(); }
    Result<std::vector<float>> embed(std::span<const std::string> texts) const override {
        ++calls;
        return inner_.embed(texts);
    }
    mutable int calls = 0;

  private:
    HashingEmbedder inner_{512};
};

TEST(DedupStage, GenericEmbedderPathEqualsHashingPath) {
    TempDir t;
    Corpus c = make_corpus(t.path());
    ASSERT_TRUE(run_dedup(options(c, t / "a", true, 2)).ok());
    DedupOptions o = options(c, t / "b", false, 2);
    auto w = std::make_shared<WrappedEmbedder>();
    o.params.embedder = w;
    ASSERT_TRUE(run_dedup(o).ok());
    EXPECT_GE(w->calls, 1);
    EXPECT_EQ(test::read_text(t / "a" / "rejects.jsonl"),
              test::read_text(t / "b" / "rejects.jsonl"));
    EXPECT_EQ(test::read_text(t / "a" / "samples.jsonl"),
              test::read_text(t / "b" / "samples.jsonl"));
}

TEST(DedupStage, DisabledChecksKeepTheirDuplicates) {
    TempDir t;
    Corpus c = make_corpus(t.path());
    DedupOptions o = options(c, t / "out", false);
    o.params.image_hash = false;
    o.params.minhash = false;
    auto st = run_dedup(o);
    ASSERT_TRUE(st.ok());
    Outcome r = read_outcome(t / "out");
    EXPECT_EQ(r.reason.count("s1"), 0u);  // image dup now kept
    EXPECT_EQ(r.reason.count("s3"), 0u);  // near dup now kept
    EXPECT_EQ(r.reason["s2"], "duplicate_caption");
}

TEST(DedupStage, SameBytesWithOneAndTwoThreads) {
    TempDir t;
    Corpus c = make_corpus(t.path());
    ASSERT_TRUE(run_dedup(options(c, t / "a", true, 1)).ok());
    ASSERT_TRUE(run_dedup(options(c, t / "b", true, 2)).ok());
    EXPECT_EQ(test::read_text(t / "a" / "samples.jsonl"),
              test::read_text(t / "b" / "samples.jsonl"));
    EXPECT_EQ(test::read_text(t / "a" / "rejects.jsonl"),
              test::read_text(t / "b" / "rejects.jsonl"));
}

TEST(DedupStage, FourShardProcessesPlusMergeEqualOneProcess) {
    TempDir t;
    Corpus c = make_corpus(t.path());
    for (std::string extra : {"", " --semantic hashing"}) {
        fs::path single = t / (std::string("single").append(std::to_string(extra.size())));
        fs::path sharded = t / (std::string("sharded").append(std::to_string(extra.size())));
        auto r = test::run_medforge("dedup --in " + c.input.string() + " --out " + single.string() +
                                    extra + " -j 2");
        ASSERT_EQ(r.exit_code, 0) << r.output;
        for (int i = 0; i < 4; ++i) {
            auto rs =
                test::run_medforge("dedup --in " + c.input.string() + " --out " + sharded.string() +
                                   extra + " --shard " + std::to_string(i) + "/4 -j 1");
            ASSERT_EQ(rs.exit_code, 0) << rs.output;
        }
        auto m = test::run_medforge("merge " + sharded.string());
        ASSERT_EQ(m.exit_code, 0) << m.output;
        EXPECT_EQ(test::read_text(single / "samples.jsonl"),
                  test::read_text(sharded / "samples.jsonl"));
        EXPECT_EQ(test::read_text(single / "rejects.jsonl"),
                  test::read_text(sharded / "rejects.jsonl"));
        auto s1 = *load_stats(single / "stats.json");
        auto s2 = *load_stats(sharded / "stats.json");
        EXPECT_EQ(s1.reasons, s2.reasons);
        EXPECT_EQ(s1.input, s2.input);
        EXPECT_EQ(s2.stage, "dedup");
        EXPECT_EQ(s2.shard, "merged 4");
        EXPECT_EQ(s1.extra["images_hashed"], s2.extra["images_hashed"]);
    }
}

TEST(DedupStage, MergeNamesMissingShardAndMismatchedOptions) {
    TempDir t;
    Corpus c = make_corpus(t.path());
    fs::path out = t / "out";
    for (int i = 0; i < 3; ++i)
        ASSERT_EQ(test::run_medforge("dedup -q --in " + c.input.string() + " --out " +
                                     out.string() + " --shard " + std::to_string(i) + "/4")
                      .exit_code,
                  0);
    auto m = test::run_medforge("merge " + out.string());
    EXPECT_NE(m.exit_code, 0);
    EXPECT_NE(m.output.find("3/4 is missing or unfinished"), std::string::npos) << m.output;
    ASSERT_EQ(test::run_medforge("dedup -q --in " + c.input.string() + " --out " + out.string() +
                                 " --minhash-threshold 0.7 --shard 3/4")
                  .exit_code,
              0);
    m = test::run_medforge("merge " + out.string());
    EXPECT_NE(m.exit_code, 0);
    EXPECT_NE(m.output.find("same dedup options"), std::string::npos) << m.output;
}

TEST(DedupStage, BadOptionsAreUsageErrors) {
    TempDir t;
    Corpus c = make_corpus(t.path());
    auto r = test::run_medforge("dedup --in " + c.input.string() + " --out " + (t / "o").string() +
                                " --bands 20 --rows 10");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("exceeds --num-perm"), std::string::npos) << r.output;
    r = test::run_medforge("dedup --in " + (t / "nope").string() + " --out " + (t / "o").string());
    EXPECT_NE(r.exit_code, 0);
}

// Real data: MedICaT sample figures; the file appended to itself with new ids. Every copy is a
// duplicate_image of its original, and the originals are all kept (distinct figures).
TEST(DedupStage, RealMedicatFiguresDuplicatedOnce) {
    TempDir t;
    fs::path dir = test::shared_data() / "medicat_sample";
    std::string s;
    int n = 0;
    for (int copy = 0; copy < 2; ++copy) {
        for (const auto& l : test::read_lines(dir / "sample.jsonl")) {
            auto j = nlohmann::json::parse(l);
            std::string img =
                (dir / "figures" /
                 (j["pdf_hash"].get<std::string>() + "_" + j["fig_uri"].get<std::string>()))
                    .string();
            s += line("medicat:" + std::to_string(copy) + ":" + j["pdf_hash"].get<std::string>() +
                          ":" + j["fig_key"].get<std::string>(),
                      {img}, j["s2_caption"].get<std::string>()) +
                 "\n";
            if (copy == 0) ++n;
        }
    }
    test::write_text(t / "in.jsonl", s);
    DedupOptions o;
    o.input = t / "in.jsonl";
    o.out_dir = t / "out";
    o.params.embedder = std::make_shared<HashingEmbedder>();
    auto st = run_dedup(o);
    ASSERT_TRUE(st.ok()) << st.status().to_string();
    EXPECT_EQ(st->input, uint64_t(2 * n));
    EXPECT_EQ(st->kept, uint64_t(n));
    EXPECT_EQ(st->reasons.at("duplicate_image"), uint64_t(n));
    EXPECT_EQ(st->extra["images_unreadable"].get<int>(), 0);
    for (const auto& id : read_outcome(t / "out").kept)
        EXPECT_EQ(id.rfind("medicat:0:", 0), 0u);
}

}  // namespace
}  // namespace mf::curate
