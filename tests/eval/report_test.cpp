// score_run + reports + compare without HTTP: numbers land in the right paper columns.
#include <gtest/gtest.h>

#include "eval/runner.h"
#include "test_util.h"

namespace mf::eval {
namespace {

TEST(Report, CompareFillsPaperColumnsByModality) {
    Dataset ds;
    ds.benchmark = "omnimedvqa";
    std::vector<std::optional<std::string>> resp;
    // CT: 3 of 4 right; Ultrasound: 1 of 2 right.
    auto add = [&](const std::string& subset, int answer, std::optional<std::string> out) {
        EvalItem it;
        it.id = "i" + std::to_string(ds.items.size());
        it.question = "Q";
        it.options = {"a", "b", "c", "d"};
        it.answer_index = answer;
        it.subset = subset;
        ds.items.push_back(it);
        resp.push_back(out);
    };
    add("CT(Computed Tomography)", 0, "A");
    add("CT(Computed Tomography)", 1, "B");
    add("CT(Computed Tomography)", 2, "C");
    add("CT(Computed Tomography)", 3, "A");
    add("Ultrasound", 0, "A");
    add("Ultrasound", 1, std::nullopt);  // failed request: wrong
    RunParams p;
    p.bootstrap_resamples = 100;
    nlohmann::json card = {{"benchmark", "omnimedvqa"}, {"model", "m1"}, {"extractor", "robust"}};
    nlohmann::json res = score_run(ds, resp, p, card);
    EXPECT_EQ(res["closed"]["correct"], 4);
    EXPECT_DOUBLE_EQ(res["closed"]["micro"]["mean"].get<double>(), 4.0 / 6);
    EXPECT_DOUBLE_EQ(res["closed"]["macro"]["mean"].get<double>(), (0.75 + 0.5) / 2);
    test::TempDir dir;
    ASSERT_TRUE(write_reports(res, dir.path() / "run").ok());
    auto md = compare_markdown({dir.path() / "run"}, true);
    ASSERT_TRUE(md.ok()) << md.status().to_string();
    // Table 3 row for this run: CT 75.0, US 50.0, Avg = macro 62.5.
    auto pos = md->find("## Paper Table 3");
    ASSERT_NE(pos, std::string::npos);
    auto row = md->find("| **m1 (run, robust)** | 75.0 |", pos);
    EXPECT_NE(row, std::string::npos) << *md;
    EXPECT_NE(md->find("| 50.0 | 62.5 |", row), std::string::npos) << *md;
    auto html = compare_html({dir.path() / "run"}, true);
    ASSERT_TRUE(html.ok());
    EXPECT_NE(html->find("<table>"), std::string::npos);
    EXPECT_FALSE(compare_markdown({dir.path() / "nope"}, false).ok());
}

TEST(Report, BundleRunFillsTable2AndTable3) {
    test::TempDir dir;
    auto f = dir.path() / "bundle.json";
    test::write_text(f, R"J([
 {"question": "q1", "options": ["yes", "no"], "answer": "yes", "image": ["a.png"], "dataset": "VQA-RAD", "subset": ""},
 {"question": "q2", "options": ["yes", "no"], "answer": "no", "image": ["a.png"], "dataset": "VQA-RAD", "subset": ""},
 {"question": "q3", "options": ["CT", "MRI"], "answer": "CT", "image": ["b.png"], "dataset": "OmniMedVQA", "subset": "CT(Computed Tomography)"},
 {"question": "q4", "options": ["CT", "MRI"], "answer": "MRI", "image": ["b.png"], "dataset": "OmniMedVQA", "subset": "MR (Mag-netic Resonance Imaging)"}
])J");
    auto ds = load_huatuo_bundle(f, {});
    ASSERT_TRUE(ds.ok()) << ds.status().to_string();
    // Answers: q1 right, q2 wrong, q3 right, q4 wrong.
    std::vector<std::optional<std::string>> resp{"A", "A", "A", "A"};
    RunParams p;
    p.bootstrap_resamples = 50;
    nlohmann::json card = {
        {"benchmark", "huatuo-bundle"}, {"model", "m2"}, {"extractor", "robust"}};
    auto res = score_run(*ds, resp, p, card);
    ASSERT_TRUE(res["closed"].contains("groups"));
    EXPECT_EQ(res["closed"]["groups"].size(), 2u);
    ASSERT_TRUE(write_reports(res, dir.path() / "b").ok());
    EXPECT_NE(test::read_text(dir.path() / "b/results.md").find("| VQA-RAD | 2 | 1 | 50.0"),
              std::string::npos);
    auto md = compare_markdown({dir.path() / "b"}, true);
    ASSERT_TRUE(md.ok());
    auto t2 = md->find("## Paper Table 2");
    EXPECT_NE(md->find("| **m2 (b, robust)** | 50.0 | – |", t2), std::string::npos) << *md;
    auto t3 = md->find("## Paper Table 3");
    EXPECT_NE(md->find("| **m2 (b, robust)** | 100.0 | – | 0.0 |", t3), std::string::npos) << *md;
}

}  // namespace
}  // namespace mf::eval
