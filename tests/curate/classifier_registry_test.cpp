#include <gtest/gtest.h>

#include "curate/image_classifier.h"
#include "curate/stats_classifier.h"
#include "test_util.h"

namespace mf::curate {
namespace {

TEST(ClassifierRegistry, LoadsBuiltInAndRegisteredFormats) {
    auto path = default_classifier_path();
    ASSERT_TRUE(path.ok()) << path.status().to_string();
    auto c = load_image_classifier(*path);
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    EXPECT_EQ((*c)->name(), "stats-logreg-v1");

    mf::test::TempDir tmp;
    mf::test::write_text(tmp.path() / "x.json", R"({"format":"someone-elses"})");
    auto bad = load_image_classifier(tmp.path() / "x.json");
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.status().message().find("someone-elses"), std::string::npos);
    EXPECT_NE(bad.status().message().find("x.json"), std::string::npos);

    struct Half : ImageClassifier {
        std::string name() const override { return "half"; }
        Result<float> medical_probability(const io::Image&) const override { return 0.5f; }
    };
    register_classifier_format("someone-elses", [](const std::filesystem::path&) {
        return Result<std::unique_ptr<ImageClassifier>>(
            std::unique_ptr<ImageClassifier>(new Half()));
    });
    auto ok = load_image_classifier(tmp.path() / "x.json");
    ASSERT_TRUE(ok.ok());
    EXPECT_EQ((*ok)->name(), "half");
    mf::test::write_text(tmp.path() / "y.json", "[1,2]");
    EXPECT_FALSE(load_image_classifier(tmp.path() / "y.json").ok());
}

}  // namespace
}  // namespace mf::curate
