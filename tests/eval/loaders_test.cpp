// Loaders on the real files in ../shared/data and on fixtures of the other formats; bad files
// are refused with the missing field named.
#include <gtest/gtest.h>

#include <map>

#include "core/text.h"
#include "eval/eval.h"
#include "test_util.h"

namespace mf::eval {
namespace {

fs::path fx(const std::string& name) {
    return test::fixtures() / "eval" / name;
}

TEST(Loaders, VqaRadMevfRealFile) {
    auto ds = load_vqa_rad(test::shared_data() / "vqa_rad/testset.json", {});
    ASSERT_TRUE(ds.ok()) << ds.status().to_string();
    ASSERT_EQ(ds->items.size(), 451u);
    int closed = 0, open = 0;
    std::map<std::string, int> subsets;
    for (const auto& it : ds->items) {
        (it.closed ? closed : open)++;
        subsets[it.subset]++;
        ASSERT_EQ(it.images.size(), 1u);
        if (it.closed) {
            EXPECT_EQ(it.options, (std::vector<std::string>{"yes", "no"}));
            EXPECT_EQ(it.answer_index, text::ascii_lower(it.answer_text) == "yes" ? 0 : 1);
        }
    }
    // 272 CLOSED in the file: 251 yes/no become choice items, 21 other closed answers and the
    // 179 OPEN are scored as open items.
    EXPECT_EQ(closed, 251);
    EXPECT_EQ(open, 200);
    EXPECT_GT(subsets["PRES"], 0);
    EXPECT_EQ(ds->items[0].id, "qid:11");
    auto no_open = load_vqa_rad(test::shared_data() / "vqa_rad/testset.json", {false, false});
    ASSERT_TRUE(no_open.ok());
    EXPECT_EQ(no_open->items.size(), 251u);
}

TEST(Loaders, VqaRadOsfFixture) {
    auto ds = load_vqa_rad(fx("vqa_rad_osf.json"), {});
    ASSERT_TRUE(ds.ok()) << ds.status().to_string();
    ASSERT_EQ(ds->items.size(), 3u);  // the train ("freeform") item is not loaded
    EXPECT_EQ(ds->skipped.at("not_test_split"), 1);
    EXPECT_EQ(ds->items[0].subset, "PRES");  // "PRES, POS" -> first type
    EXPECT_TRUE(ds->items[0].closed);        // "CLOSED " with a trailing space
    EXPECT_EQ(ds->items[0].answer_index, 1);
    EXPECT_FALSE(ds->items[1].closed);
    EXPECT_EQ(ds->items[1].answer_text, "2");  // numeric answer
    EXPECT_FALSE(ds->items[2].closed);         // closed but not yes/no
}

TEST(Loaders, SlakeRealFile) {
    auto ds = load_slake(test::shared_data() / "slake/validate.json", {});
    ASSERT_TRUE(ds.ok()) << ds.status().to_string();
    EXPECT_EQ(ds->items.size(), 422u);  // English CLOSED
    EXPECT_EQ(ds->skipped.at("not_english"), 1046);
    EXPECT_EQ(ds->skipped.at("open_question"), 631);
    int yn = 0;
    std::map<std::string, int> mods;
    for (const auto& it : ds->items) {
        yn += it.closed;
        mods[it.subset]++;
    }
    EXPECT_EQ(yn, 358);  // 182 yes + 176 no
    EXPECT_EQ(mods.size(), 3u);
    LoadOptions all;
    all.all_questions = true;
    auto ds2 = load_slake(test::shared_data() / "slake/validate.json", all);
    ASSERT_TRUE(ds2.ok());
    EXPECT_EQ(ds2->items.size(), 1053u);  // 631 + 422 English
}

TEST(Loaders, MmmuRealFileAndFixture) {
    auto ds = load_mmmu(test::shared_data() / "mmmu/mmmu_pro_tool_data.jsonl", {});
    ASSERT_TRUE(ds.ok()) << ds.status().to_string();
    EXPECT_EQ(ds->items.size(), 4u);  // the 4 Clinical_Medicine items
    for (const auto& it : ds->items) {
        EXPECT_EQ(it.subset, "Clinical_Medicine");
        EXPECT_GE(it.options.size(), 4u);
        EXPECT_GE(it.answer_index, 0);
    }
    LoadOptions all;
    all.all_questions = true;
    auto ds_all = load_mmmu(test::shared_data() / "mmmu/mmmu_pro_tool_data.jsonl", all);
    ASSERT_TRUE(ds_all.ok());
    EXPECT_EQ(ds_all->items.size(), 21u);

    auto f = load_mmmu(fx("mmmu_val.jsonl"), {});
    ASSERT_TRUE(f.ok()) << f.status().to_string();
    ASSERT_EQ(f->items.size(), 2u);
    EXPECT_EQ(f->items[0].options, (std::vector<std::string>{"Pneumonia", "Pneumothorax",
                                                             "Pleural effusion", "Normal"}));
    EXPECT_EQ(f->items[0].answer_index, 1);
    EXPECT_EQ(f->items[0].images.size(), 1u);
    EXPECT_EQ(f->items[1].subset, "Pharmacy");
    EXPECT_EQ(f->skipped.at("not_health_medicine"), 1);
    EXPECT_EQ(f->skipped.at("open_question"), 1);
}

TEST(Loaders, PathVqaFixture) {
    auto ds = load_pathvqa(fx("pathvqa.jsonl"), {});
    ASSERT_TRUE(ds.ok()) << ds.status().to_string();
    ASSERT_EQ(ds->items.size(), 3u);
    EXPECT_TRUE(ds->items[0].closed);
    EXPECT_FALSE(ds->items[1].closed);
    EXPECT_EQ(ds->items[2].answer_index, 1);
    EXPECT_EQ(ds->items[2].images[0], "test_0003.jpg");
}

TEST(Loaders, PmcVqaCsvWithQuotes) {
    auto ds = load_pmc_vqa(fx("pmc_vqa.csv"), {});
    ASSERT_TRUE(ds.ok()) << ds.status().to_string();
    ASSERT_EQ(ds->items.size(), 2u);
    EXPECT_EQ(ds->items[0].options,
              (std::vector<std::string>{"Normal kidney", "Mass, left kidney", "Cyst", "Stone"}));
    EXPECT_EQ(ds->items[0].answer_index, 1);
    EXPECT_EQ(ds->items[1].question, "Which imaging modality was used\n(see the \"arrow\")?");
    EXPECT_EQ(ds->items[1].answer_index, 1);  // by Answer text (empty Answer_label)
}

TEST(Loaders, OmniMedVqaDirectoryAndFile) {
    auto ds = load_omnimedvqa(fx("omnimedvqa"), {});
    ASSERT_TRUE(ds.ok()) << ds.status().to_string();
    ASSERT_EQ(ds->items.size(), 3u);
    EXPECT_EQ(ds->items[0].options.size(), 2u);
    EXPECT_EQ(ds->items[1].options.size(), 4u);
    EXPECT_EQ(ds->items[1].answer_index, 1);
    EXPECT_EQ(ds->items[2].subset, "Ultrasound");
    EXPECT_EQ(ds->items[2].id, "omni:BUSI:BUSI_0001");
    auto one = load_omnimedvqa(fx("omnimedvqa/BUSI.json"), {});
    ASSERT_TRUE(one.ok());
    EXPECT_EQ(one->items.size(), 1u);
}

TEST(Loaders, HuatuoBundle) {
    auto ds = load_huatuo_bundle(fx("huatuo_bundle.json"), {});
    ASSERT_TRUE(ds.ok()) << ds.status().to_string();
    ASSERT_EQ(ds->items.size(), 3u);
    EXPECT_EQ(ds->items[0].answer_index, 1);
    EXPECT_EQ(ds->items[0].subset, "VQA-RAD");
    EXPECT_EQ(ds->items[1].answer_index, 1);
    EXPECT_EQ(ds->items[1].subset, "OmniMedVQA/MR (Mag-netic Resonance Imaging)");
    EXPECT_EQ(ds->items[2].answer_index, -1);  // "?" is kept and scored wrong
    EXPECT_EQ(ds->items[2].images.size(), 2u);
    EXPECT_EQ(ds->skipped.at("open_question"), 1);
}

TEST(Loaders, BadFilesNameTheMissingField) {
    struct Case {
        const char* bench;
        const char* file;
        const char* field;
    };
    for (const Case& c : {Case{"slake", "bad_slake_no_qlang.json", "'q_lang'"},
                          Case{"omnimedvqa", "bad_omni_no_gt.json", "'gt_answer'"},
                          Case{"pmc-vqa", "bad_pmc_no_choice_d.csv", "'Choice D'"},
                          Case{"mmmu", "bad_mmmu_no_options.jsonl", "'options'"},
                          Case{"huatuo-bundle", "bad_bundle_no_dataset.json", "'dataset'"},
                          Case{"vqa-rad", "bad_slake_no_qlang.json", "'image_name'"},
                          Case{"pathvqa", "bad_omni_no_gt.json", "'answer'"}}) {
        auto ds = load_benchmark(c.bench, fx(c.file), {});
        ASSERT_FALSE(ds.ok()) << c.bench << " " << c.file;
        EXPECT_NE(ds.status().message().find(c.field), std::string::npos)
            << ds.status().to_string();
    }
    // Not JSON at all, and a file that does not exist.
    EXPECT_FALSE(load_benchmark("slake", fx("pmc_vqa.csv"), {}).ok());
    EXPECT_FALSE(load_benchmark("slake", fx("nope.json"), {}).ok());
    EXPECT_FALSE(load_benchmark("nope", fx("pmc_vqa.csv"), {}).ok());
}

TEST(Csv, QuotesNewlinesAndErrors) {
    auto rows = parse_csv("a,\"b,c\",\"d\"\"e\"\r\n\"x\ny\",,z\n");
    ASSERT_TRUE(rows.ok());
    ASSERT_EQ(rows->size(), 2u);
    EXPECT_EQ((*rows)[0], (std::vector<std::string>{"a", "b,c", "d\"e"}));
    EXPECT_EQ((*rows)[1], (std::vector<std::string>{"x\ny", "", "z"}));
    EXPECT_FALSE(parse_csv("a,\"unterminated\n").ok());
}

TEST(ListLiteral, PythonAndJsonForms) {
    auto a = parse_list_literal("['a', \"b's\", 'c\\'d']");
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(*a, (std::vector<std::string>{"a", "b's", "c'd"}));
    auto e = parse_list_literal("[]");
    ASSERT_TRUE(e.ok());
    EXPECT_TRUE(e->empty());
    EXPECT_FALSE(parse_list_literal("a, b").ok());
    EXPECT_FALSE(parse_list_literal("['a]").ok());
}

}  // namespace
}  // namespace mf::eval
