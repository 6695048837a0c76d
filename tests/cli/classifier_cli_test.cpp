// `medforge classifier train|eval|predict` as a user runs it, on generated labelled folders.
#include <gtest/gtest.h>
#include <stb/stb_image_write.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <random>

#include "test_util.h"

namespace mf::test {
namespace {

void write_png(const fs::path& p, int w, int h, bool chart, int seed) {
    std::vector<uint8_t> px(size_t(w) * h * 3);
    std::mt19937 rng(seed);
    std::normal_distribution<float> noise(0.f, 12.f);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            uint8_t* o = px.data() + (size_t(y) * w + x) * 3;
            if (chart) {
                bool bar = x > w / 4 && x < w / 2 && y > h / 3;
                o[0] = bar ? 31 : 255, o[1] = bar ? 119 : 255, o[2] = bar ? 180 : 255;
                if (y == h - 10 || x == 10) o[0] = o[1] = o[2] = 0;
            } else {
                float dx = (x - w / 2.f) / (w / 3.f), dy = (y - h / 2.f) / (h / 3.f);
                float v = 20 + 150 * std::exp(-(dx * dx + dy * dy)) + noise(rng);
                o[0] = o[1] = o[2] = uint8_t(std::clamp(v, 0.f, 255.f));
            }
        }
    ASSERT_TRUE(stbi_write_png(p.c_str(), w, h, 3, px.data(), w * 3));
}

TEST(ClassifierCli, TrainEvalPredict) {
    TempDir dir;
    fs::create_directories(dir / "med");
    fs::create_directories(dir / "non");
    for (int i = 0; i < 6; ++i) {
        write_png(dir / "med" / ("scan" + std::to_string(i) + ".png"), 120 + 10 * i, 120, false, i);
        write_png(dir / "non" / ("chart" + std::to_string(i) + ".png"), 160, 100 + 10 * i, true, i);
    }
    fs::path model = dir / "model.json";
    auto r =
        run_medforge("classifier -q train --medical " + (dir / "med").string() + " --nonmedical " +
                     (dir / "non").string() + " --folds 3 --out " + model.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("images: 6 medical, 6 non-medical"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("3-fold cross-validation"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("balanced accuracy 1.0000"), std::string::npos) << r.output;
    auto j = nlohmann::json::parse(read_text(model));
    EXPECT_EQ(j["format"], "medforge-image-classifier");
    EXPECT_EQ(j["training"]["medical_images"], 6);

    r = run_medforge("classifier -q eval --model " + model.string() + " --medical " +
                     (dir / "med").string() + " --nonmedical " + (dir / "non").string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("accuracy 1.0000"), std::string::npos) << r.output;

    write_png(dir / "new_scan.png", 130, 130, false, 99);
    r = run_medforge("classifier -q predict --model " + model.string() + " " +
                     (dir / "new_scan.png").string() + " " + (dir / "non/chart0.png").string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("new_scan.png\t"), std::string::npos) << r.output;
    size_t scan = r.output.find("new_scan.png\t"), chart = r.output.find("chart0.png\t");
    ASSERT_NE(chart, std::string::npos);
    EXPECT_NE(r.output.substr(scan, r.output.find('\n', scan) - scan).find("\tmedical"),
              std::string::npos)
        << r.output;
    EXPECT_NE(r.output.substr(chart).find("\tnon-medical"), std::string::npos) << r.output;

    // An image that does not decode: reported on its line, exit code 1.
    write_text(dir / "broken.png", "not a png");
    r = run_medforge("classifier -q predict --model " + model.string() + " " +
                     (dir / "broken.png").string());
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("error\timage_unsupported"), std::string::npos) << r.output;
}

TEST(ClassifierCli, Errors) {
    TempDir dir;
    auto r = run_medforge("classifier predict --model " + (dir / "nope.json").string() + " x.png");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("nope.json"), std::string::npos) << r.output;
    r = run_medforge("classifier train --medical " + dir.path().string());
    EXPECT_EQ(r.exit_code, 2) << r.output;  // --nonmedical and --out missing
    fs::create_directories(dir / "empty");
    r = run_medforge("classifier train --medical " + (dir / "empty").string() + " --nonmedical " +
                     (dir / "empty").string() + " --out " + (dir / "m.json").string());
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("no images"), std::string::npos) << r.output;
    r = run_medforge("classifier");
    EXPECT_EQ(r.exit_code, 2) << r.output;
}

}  // namespace
}  // namespace mf::test
