#include "curate/text_filter.h"

#include <gtest/gtest.h>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "curate/stage.h"
#include "test_util.h"

namespace mf::curate {
namespace {

Lexicon small_lexicon() {
    Lexicon lex;
    for (const char* t : {"CT", "thorax", "nodule", "pleural effusion", "lobe", "lung", "carcinoma",
                          "x-ray", "cardiomegaly"})
        lex.add(t);
    return lex;
}

Sample sample(std::string id, std::string caption, std::vector<std::string> mentions = {}) {
    Sample s;
    s.id = std::move(id);
    s.images = {"/img/" + s.id + ".jpg"};
    s.caption = std::move(caption);
    s.mentions = std::move(mentions);
    s.lineage.source = "jsonl";
    return s;
}

TEST(TextFilter, KeepsAtThresholdDropsBelowWithDetail) {
    TextFilterParams p;
    p.min_terms = 5;
    TextFilter f(p, small_lexicon());
    Verdict keep = f.apply(sample("a",
                                  "Axial CT of the thorax: a nodule in the right upper lobe "
                                  "of the lung."));
    EXPECT_TRUE(keep.keep);
    Verdict drop = f.apply(sample("b", "CT of the thorax shows a nodule. Nodules, nodules."));
    EXPECT_FALSE(drop.keep);
    EXPECT_EQ(drop.reason, "too_few_terms");
    EXPECT_EQ(drop.detail, "3 medical terms (ct, thorax, nodule), need 5");
    Verdict none = f.apply(sample("c", "A photograph of a cat."));
    EXPECT_EQ(none.reason, "too_few_terms");
    EXPECT_EQ(none.detail, "0 medical terms, need 5");
}

TEST(TextFilter, EmptyCaption) {
    TextFilter f({}, small_lexicon());
    Verdict v = f.apply(sample("e", "  \n\t "));
    EXPECT_FALSE(v.keep);
    EXPECT_EQ(v.reason, "empty_caption");
    TextFilterParams p;
    p.use_mentions = true;
    p.min_terms = 1;
    TextFilter fm(p, small_lexicon());
    EXPECT_TRUE(fm.apply(sample("e", "", {"The nodule (Fig. 2) grew."})).keep);
    EXPECT_EQ(fm.apply(sample("e", "", {" "})).reason, "empty_caption");
}

TEST(TextFilter, MentionsCountWhenAskedAndStayDistinct) {
    TextFilterParams p;
    p.min_terms = 4;
    Sample s =
        sample("m", "CT of the thorax.", {"The CT shows a nodule.", "Cardiomegaly and a nodule."});
    TextFilter caption_only(p, small_lexicon());
    EXPECT_FALSE(caption_only.apply(s).keep);
    p.use_mentions = true;
    TextFilter with_mentions(p, small_lexicon());
    EXPECT_TRUE(with_mentions.apply(s).keep);  // ct, thorax, nodule, cardiomegaly
    EXPECT_EQ(with_mentions.terms_of(s).size(), 4u);
    p.min_terms = 5;
    TextFilter five(p, small_lexicon());
    EXPECT_EQ(five.apply(s).detail,
              "4 medical terms (ct, thorax, nodule, cardiomegaly), need 5 (caption + mentions)");
}

TEST(TextFilter, CreateLoadsLexiconFileAndReportsMissing) {
    test::TempDir tmp;
    ASSERT_TRUE(small_lexicon().save(tmp / "lex.txt").ok());
    TextFilterParams p;
    p.lexicon = tmp / "lex.txt";
    auto f = TextFilter::create(p);
    ASSERT_TRUE(f.ok()) << f.status().to_string();
    EXPECT_EQ((*f)->matcher().n_terms(), 9u);
    p.lexicon = tmp / "missing.txt";
    auto g = TextFilter::create(p);
    ASSERT_FALSE(g.ok());
    EXPECT_NE(g.status().message().find("missing.txt"), std::string::npos);
    p.min_terms = -1;
    EXPECT_FALSE(TextFilter::create(p).ok());
}

TEST(TextFilter, ThroughRunMapStage) {
    test::TempDir tmp;
    std::string in;
    in += sample_to_json(sample("k1", "Axial CT of the thorax: nodule in the lobe of the lung.")) +
          "\n";
    in += sample_to_json(sample("d1", "CT of the thorax.")) + "\n";
    in += sample_to_json(sample("e1", "")) + "\n";
    in += "{not json\n";
    in += "\n";
    in += sample_to_json(sample("k2",
                                "Chest X-ray: cardiomegaly, pleural effusions, lung "
                                "nodules and a carcinoma.")) +
          "\n";
    in += "{\"id\":\"x\",\"images\":[],\"caption\":\"\xFF\xFE bad utf8 CT\"}\n";
    test::write_text(tmp / "in.jsonl", in);
    TextFilter f({}, small_lexicon());
    MapStageOptions opt;
    opt.stage = "filter_text";
    opt.input = tmp / "in.jsonl";
    opt.out_dir = tmp / "out";
    opt.n_threads = 2;
    opt.batch_size = 2;
    opt.progress = false;
    auto st = run_map_stage(opt, [&](const Sample& s, size_t) { return f.apply(s); });
    ASSERT_TRUE(st.ok()) << st.status().to_string();
    EXPECT_EQ(st->input, 6u);
    EXPECT_EQ(st->kept + st->rejected, st->input);
    EXPECT_EQ(st->kept, 2u);
    EXPECT_EQ(st->reasons["too_few_terms"], 1u);
    EXPECT_EQ(st->reasons["empty_caption"], 1u);
    EXPECT_EQ(st->reasons["bad_record"], 2u);  // malformed JSON; invalid UTF-8 (simdjson)
    auto kept = test::read_lines(tmp / "out" / "samples.jsonl");
    ASSERT_EQ(kept.size(), 2u);
    EXPECT_NE(kept[0].find("\"k1\""), std::string::npos);
    EXPECT_NE(kept[1].find("\"k2\""), std::string::npos);
    auto rejects = test::read_lines(tmp / "out" / "rejects.jsonl");
    ASSERT_EQ(rejects.size(), 4u);
    auto r0 = nlohmann::json::parse(rejects[0]);
    EXPECT_EQ(r0["id"], "d1");
    EXPECT_EQ(r0["reason"], "too_few_terms");
    EXPECT_EQ(r0["detail"], "2 medical terms (ct, thorax), need 5");
}

}  // namespace
}  // namespace mf::curate

namespace mf::curate {
namespace {

// run_map_stage double-buffers its batches: outputs must not depend on the batch size.
TEST(TextFilter, RunMapStageOutputIndependentOfBatchSize) {
    test::TempDir tmp;
    std::string in;
    const char* caps[] = {"CT of the thorax: nodule in the lobe of the lung.", "CT only.", "",
                          "Chest X-ray: cardiomegaly, pleural effusion, lung nodules, carcinoma."};
    for (int i = 0; i < 203; ++i) {
        if (i % 17 == 5) in += "{broken\n";
        if (i % 23 == 7) in += "   \n";
        std::string id = "s";
        id += std::to_string(i);
        in += sample_to_json(sample(id, caps[i % 4]));
        in += '\n';
    }
    test::write_text(tmp / "in.jsonl", in);
    TextFilter f({}, small_lexicon());
    std::string ref_samples, ref_rejects;
    for (size_t bs : {4096, 1, 2, 7, 64}) {
        for (size_t threads : {1, 2}) {
            MapStageOptions opt;
            opt.stage = "filter_text";
            opt.input = tmp / "in.jsonl";
            opt.out_dir = tmp / fmt::format("out_{}_{}", bs, threads);
            opt.n_threads = threads;
            opt.batch_size = bs;
            opt.progress = false;
            auto st = run_map_stage(opt, [&](const Sample& s, size_t) { return f.apply(s); });
            ASSERT_TRUE(st.ok()) << st.status().to_string();
            EXPECT_EQ(st->input, 203u + 12u);  // 12 broken lines, blank lines are not records
            EXPECT_EQ(st->kept + st->rejected, st->input);
            std::string s = test::read_text(opt.out_dir / "samples.jsonl");
            std::string r = test::read_text(opt.out_dir / "rejects.jsonl");
            if (ref_samples.empty()) {
                ref_samples = s;
                ref_rejects = r;
                EXPECT_EQ(st->kept, 101u);
            } else {
                EXPECT_EQ(s, ref_samples) << "batch size " << bs << ", threads " << threads;
                EXPECT_EQ(r, ref_rejects) << "batch size " << bs << ", threads " << threads;
            }
        }
    }
}

}  // namespace
}  // namespace mf::curate
