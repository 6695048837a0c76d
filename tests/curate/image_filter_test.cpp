// ImageFilter: every reason code on generated bad images, the detail naming the image, header-only
// mode, the classifier gate (with the shipped model on real files), and a run through
// run_map_stage where kept + rejected == input.
#include "curate/image_filter.h"

#include <gtest/gtest.h>
#include <stb/stb_image_write.h>
#include <nlohmann/json.hpp>

#include <random>

#include "curate/stats_classifier.h"
#include "io/file.h"
#include "test_util.h"

namespace mf::curate {
namespace {

using mf::test::TempDir;
namespace fs = std::filesystem;

void append_to_string(void* ctx, void* data, int size) {
    static_cast<std::string*>(ctx)->append(static_cast<char*>(data), size_t(size));
}

std::string png(int w, int h) {
    std::vector<uint8_t> px(size_t(w) * h * 3);
    std::mt19937 rng(w + h);
    for (auto& v : px)
        v = uint8_t(rng() & 0x3F);
    std::string s;
    stbi_write_png_to_func(append_to_string, &s, w, h, 3, px.data(), w * 3);
    return s;
}

fs::path put(const TempDir& dir, const std::string& name, const std::string& bytes) {
    fs::path p = dir / name;
    EXPECT_TRUE(io::write_file_atomic(p, bytes).ok());
    return p;
}

Sample sample(std::string id, std::vector<fs::path> images) {
    Sample s;
    s.id = std::move(id);
    for (auto& p : images)
        s.images.push_back(p.string());
    s.caption = "CT of the chest";
    return s;
}

// A classifier for the gate logic: "medical" when the image is mostly dark.
class DarkIsMedical : public ImageClassifier {
  public:
    std::string name() const override { return "dark-test"; }
    Result<float> medical_probability(const io::Image& im) const override {
        double s = 0;
        for (uint8_t v : im.pixels)
            s += v;
        return float(1.0 - s / (255.0 * double(im.pixels.size())));
    }
};

struct Fixture {
    TempDir dir;
    fs::path good, good2, small, missing, empty, truncated, bomb, junk, white;
    Fixture() {
        good = put(dir, "good.png", png(400, 340));
        good2 = put(dir, "good2.png", png(336, 500));
        small = put(dir, "small.png", png(320, 240));
        missing = dir / "missing.png";
        empty = put(dir, "empty.png", "");
        std::string t = png(400, 400);
        truncated = put(dir, "truncated.png", t.substr(0, t.size() / 2));
        std::string b = png(400, 400);
        // Rewrite IHDR to claim 100000 x 100000 (fixing the CRC is not needed for the limit:
        // the CRC check comes first, so build a valid header by hand).
        std::string hdr(
            "\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\x00\x01\x86\xa0\x00\x01\x86\xa0\x08\x02\0\0\0", 29);
        uint32_t c = 0xFFFFFFFF;
        for (size_t i = 12; i < 29; ++i) {
            c ^= uint8_t(hdr[i]);
            for (int k = 0; k < 8; ++k)
                c = (c & 1) ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        c ^= 0xFFFFFFFF;
        for (int k = 3; k >= 0; --k)
            hdr += char((c >> (8 * k)) & 0xFF);
        bomb = put(dir, "bomb.png", hdr + b.substr(33));
        junk = put(dir, "junk.png", std::string(2000, 'z'));
        std::vector<uint8_t> wpx(400 * 400 * 3, 250);
        std::string ws;
        stbi_write_png_to_func(append_to_string, &ws, 400, 400, 3, wpx.data(), 400 * 3);
        white = put(dir, "white.png", ws);
    }
};

TEST(ImageFilter, ReasonCodesAndDetails) {
    Fixture fx;
    ImageFilter filter(ImageFilterParams{});
    EXPECT_TRUE(filter.apply(sample("a", {fx.good, fx.good2})).keep);
    struct Case {
        fs::path path;
        const char* reason;
    } cases[] = {{fx.small, "image_too_small"}, {fx.missing, "image_missing"},
                 {fx.empty, "image_empty"},     {fx.truncated, "image_truncated"},
                 {fx.bomb, "image_too_large"},  {fx.junk, "image_unsupported"}};
    for (const auto& c : cases) {
        Verdict v = filter.apply(sample("x", {fx.good, c.path, fx.good2}));
        EXPECT_FALSE(v.keep) << c.path;
        EXPECT_EQ(v.reason, c.reason) << v.detail;
        EXPECT_NE(v.detail.find("image 2/3 " + c.path.string()), std::string::npos) << v.detail;
    }
    Verdict v = filter.apply(sample("s", {fx.small}));
    EXPECT_EQ(v.detail, "image 1/1 " + fx.small.string() + ": 320x240, need min side 336");
    v = filter.apply(sample("none", {}));
    EXPECT_EQ(v.reason, "no_image");
    // min_side is a parameter.
    ImageFilterParams p;
    p.min_side = 200;
    EXPECT_TRUE(ImageFilter(p).apply(sample("s", {fx.small})).keep);
}

TEST(ImageFilter, HeaderOnlyModeMissesTruncationButIsCheap) {
    Fixture fx;
    ImageFilterParams p;
    p.decode = false;
    ImageFilter filter(p);
    // The header of a truncated file is intact: header-only mode keeps it, full decode does not.
    EXPECT_TRUE(filter.apply(sample("t", {fx.truncated})).keep);
    EXPECT_EQ(ImageFilter(ImageFilterParams{}).apply(sample("t", {fx.truncated})).reason,
              "image_truncated");
    EXPECT_EQ(filter.apply(sample("b", {fx.bomb})).reason, "image_too_large");
    EXPECT_EQ(filter.apply(sample("s", {fx.small})).reason, "image_too_small");
}

TEST(ImageFilter, ClassifierGate) {
    Fixture fx;
    DarkIsMedical dark;
    ImageFilterParams p;
    p.classifier = &dark;
    ImageFilter filter(p);
    EXPECT_TRUE(filter.apply(sample("g", {fx.good})).keep);  // pixels 0..63: dark
    Verdict v = filter.apply(sample("w", {fx.good, fx.white}));
    EXPECT_EQ(v.reason, "non_medical_image");
    EXPECT_NE(v.detail.find("image 2/2"), std::string::npos) << v.detail;
    EXPECT_NE(v.detail.find("dark-test"), std::string::npos) << v.detail;
    p.min_medical_prob = 0.0f;
    EXPECT_TRUE(ImageFilter(p).apply(sample("w", {fx.white})).keep);
}

TEST(ImageFilter, ShippedModelOnRealFiles) {
    fs::path data = mf::test::shared_data();
    if (!fs::exists(data)) GTEST_SKIP();
    auto model = load_default_classifier();
    ASSERT_TRUE(model.ok()) << model.status().to_string();
    ImageFilterParams p;
    p.min_side = 0;
    p.classifier = &*model;
    ImageFilter filter(p);
    // Chosen as clear-cut examples of each class (see docs/classifier.md for the CV figures).
    EXPECT_TRUE(filter.apply(sample("m", {data / "vqa_rad/images/synpic100176.jpg"})).keep);
    Verdict v = filter.apply(sample("c", {data / "nonmedical/charts/plot.png"}));
    EXPECT_EQ(v.reason, "non_medical_image") << v.detail;
}

TEST(ImageFilter, RunMapStageCountsEveryRecord) {
    Fixture fx;
    TempDir out;
    std::vector<Sample> samples = {
        sample("k1", {fx.good}),    sample("r1", {fx.small}), sample("k2", {fx.good, fx.good2}),
        sample("r2", {fx.missing}), sample("r3", {fx.empty}), sample("r4", {fx.truncated}),
        sample("r5", {fx.bomb}),    sample("r6", {}),         sample("r7", {fx.good, fx.junk}),
    };
    std::string jsonl;
    for (const auto& s : samples)
        jsonl += sample_to_json(s) + "\n";
    jsonl += "{not json\n";
    fs::path input = out / "in.jsonl";
    ASSERT_TRUE(io::write_file_atomic(input, jsonl).ok());
    ImageFilter filter(ImageFilterParams{});
    MapStageOptions opt;
    opt.stage = "image_filter";
    opt.input = input;
    opt.out_dir = out / "stage";
    opt.n_threads = 2;
    opt.progress = false;
    auto stats = run_map_stage(opt, [&](const Sample& s, size_t) { return filter.apply(s); });
    ASSERT_TRUE(stats.ok()) << stats.status().to_string();
    EXPECT_EQ(stats->input, samples.size() + 1);
    EXPECT_EQ(stats->kept + stats->rejected, stats->input);
    EXPECT_EQ(stats->kept, 2u);
    std::map<std::string, uint64_t> want = {{"image_too_small", 1},   {"image_missing", 1},
                                            {"image_empty", 1},       {"image_truncated", 1},
                                            {"image_too_large", 1},   {"no_image", 1},
                                            {"image_unsupported", 1}, {"bad_record", 1}};
    EXPECT_EQ(stats->reasons, want);
    auto kept = mf::test::read_lines(out / "stage" / "samples.jsonl");
    ASSERT_EQ(kept.size(), 2u);
    EXPECT_EQ(kept[0], sample_to_json(samples[0]));
    EXPECT_EQ(kept[1], sample_to_json(samples[2]));
    auto rejects = mf::test::read_lines(out / "stage" / "rejects.jsonl");
    EXPECT_EQ(rejects.size(), 8u);
    auto first = nlohmann::json::parse(rejects[0]);
    EXPECT_EQ(first["reason"], "image_too_small");
    EXPECT_NE(first["detail"].get<std::string>().find("320x240"), std::string::npos);
}

}  // namespace
}  // namespace mf::curate
