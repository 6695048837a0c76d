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

}  // namespace
}  // namespace mf::eval
