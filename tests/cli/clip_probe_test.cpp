// `medforge classifier train --features clip`: a linear probe on CLIP embeddings, trained on
// labelled folders, cross-validated, saved, and used by `classifier predict` and `filter`.
#include <gtest/gtest.h>

#include <random>

#include "io/image.h"
#include "test_util.h"

namespace mf::test {
namespace {

// Two visually distinct classes: grey structured "scans" vs saturated colour "charts".
void write_images(const fs::path& dir, bool grey, int n, uint64_t seed) {
    fs::create_directories(dir);
    std::mt19937_64 rng(seed);
    for (int i = 0; i < n; ++i) {
        io::Image im;
        im.width = 96 + static_cast<int>(rng() % 64);
        im.height = 80 + static_cast<int>(rng() % 64);
        im.pixels.resize(static_cast<size_t>(im.width) * im.height * 3);
        int cx = im.width / 2, cy = im.height / 2;
        uint8_t c[3] = {static_cast<uint8_t>(rng()), static_cast<uint8_t>(rng()),
                        static_cast<uint8_t>(rng())};
        for (int y = 0; y < im.height; ++y)
            for (int x = 0; x < im.width; ++x) {
                size_t o = (static_cast<size_t>(y) * im.width + x) * 3;
                if (grey) {
                    double r = std::hypot(x - cx, y - cy);
                    uint8_t v = static_cast<uint8_t>(
                        std::clamp(200.0 - r * 2.5 + double(rng() % 30), 0.0, 255.0));
                    im.pixels[o] = im.pixels[o + 1] = im.pixels[o + 2] = v;
                } else {
                    bool bar = (x / 12) % 2 == 0 && y > im.height / 3;
                    for (int k = 0; k < 3; ++k)
                        im.pixels[o + k] = bar ? c[k] : 255;
                }
            }
        write_text(dir / ("img" + std::to_string(i) + ".jpg"), io::encode_jpeg(im));
    }
}

TEST(ClipProbe, TrainEvalPredict) {
    TempDir tmp;
    std::string clip = (tmp.path() / "clip").string();
    auto r = run_medforge("model init --arch clip-vision --size tiny --out " + clip);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    write_images(tmp.path() / "med", true, 10, 1);
    write_images(tmp.path() / "non", false, 10, 2);
    std::string probe = (tmp.path() / "probe.json").string();
    r = run_medforge("classifier train --features clip --vision " + clip + " --medical " +
                     (tmp.path() / "med").string() + " --nonmedical " +
                     (tmp.path() / "non").string() + " --folds 5 --out " + probe);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("10 medical, 10 non-medical"), std::string::npos) << r.output;
    auto text = read_text(probe);
    EXPECT_NE(text.find("\"medforge-clip-probe\""), std::string::npos);
    // new images of each class
    write_images(tmp.path() / "med2", true, 3, 11);
    write_images(tmp.path() / "non2", false, 3, 12);
    r = run_medforge("classifier eval --model " + probe + " --medical " +
                     (tmp.path() / "med2").string() + " --nonmedical " +
                     (tmp.path() / "non2").string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("accuracy 1.000"), std::string::npos) << r.output;
    r = run_medforge("classifier predict --model " + probe + " " +
                     (tmp.path() / "med2/img0.jpg").string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("\tmedical"), std::string::npos) << r.output;
    // a broken probe file names itself
    write_text(tmp.path() / "bad.json", R"({"format":"medforge-clip-probe","mean":[1]})");
    r = run_medforge("classifier predict --model " + (tmp.path() / "bad.json").string() + " " +
                     (tmp.path() / "med2/img0.jpg").string());
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("bad.json"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace mf::test
