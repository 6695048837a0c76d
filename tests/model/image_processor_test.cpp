// The LLaVA / CLIP image processor against golden files written by Pillow + numpy
// (scripts/reference/clip_preprocess_ref.py): the uint8 image after Pillow's resize must be
// identical (SHA-256), and so must the float32 CHW tensor.
#include "model/image_processor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "core/hash.h"
#include "core/thread_pool.h"
#include "test_util.h"

namespace mf::model {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Same formulas as synthetic() in scripts/reference/clip_preprocess_ref.py.
io::Image synthetic_image(const std::string& pattern, int w, int h) {
    io::Image img;
    img.width = w;
    img.height = h;
    img.pixels.resize(size_t(w) * h * 3);
    for (uint32_t y = 0; y < uint32_t(h); ++y) {
        for (uint32_t x = 0; x < uint32_t(w); ++x) {
            for (uint32_t c = 0; c < 3; ++c) {
                uint32_t v = 0;
                if (pattern == "ramp") {
                    v = (x * 3 + y * 5 + c * 85) % 256;
                } else if (pattern == "noise") {
                    uint32_t hh = (x * 73856093u) ^ (y * 19349663u) ^ (c * 83492791u);
                    v = (hh >> 11) & 255;
                } else if (pattern == "checker") {
                    v = ((x / 4 + y / 4) % 2) * 255;
                }
                img.pixels[(size_t(y) * w + x) * 3 + c] = uint8_t(v);
            }
        }
    }
    return img;
}

std::string sha_of(const void* data, size_t n) {
    return sha256_hex(std::string_view(static_cast<const char*>(data), n));
}

ImageProcessorConfig config_of(const json& c) {
    ImageProcessorConfig cfg = ImageProcessorConfig::llava15();
    cfg.pad_to_square = c["pad"].get<bool>();
    if (c.contains("shortest_edge")) cfg.shortest_edge = c["shortest_edge"].get<int>();
    if (c.contains("crop_size")) cfg.crop_height = cfg.crop_width = c["crop_size"].get<int>();
    if (c.contains("resample")) cfg.resample = ResampleFilter(c["resample"].get<int>());
    if (c.contains("image_mean")) {
        for (int i = 0; i < 3; ++i)
            cfg.image_mean[i] = c["image_mean"][i].get<double>();
    }
    if (c.contains("image_std")) {
        for (int i = 0; i < 3; ++i)
            cfg.image_std[i] = c["image_std"][i].get<double>();
    }
    return cfg;
}

const json& golden() {
    static const json j =
        json::parse(test::read_text(test::fixtures() / "image_processor" / "golden.json"));
    return j;
}

// Every golden case: decode (or synthesise), pad, resize, crop, normalise; compare each stage.
TEST(ImageProcessor, MatchesPillowGolden) {
    const json& cases = golden()["cases"];
    ASSERT_GE(cases.size(), 40u);
    int checked = 0;
    for (const json& c : cases) {
        const std::string name = c["name"].get<std::string>();
        SCOPED_TRACE(name);
        io::Image img;
        if (c.contains("file")) {
            const fs::path p = test::shared_data() / c["file"].get<std::string>();
            io::DecodeResult d = io::decode_image_file(p);
            ASSERT_TRUE(d.ok()) << p << ": " << d.detail;
            img = std::move(d.image);
        } else {
            const json& s = c["synthetic"];
            img = synthetic_image(s["pattern"].get<std::string>(), s["width"].get<int>(),
                                  s["height"].get<int>());
        }
        ASSERT_EQ(img.width, c["decoded_size"][0].get<int>());
        ASSERT_EQ(img.height, c["decoded_size"][1].get<int>());
        // The decoders must agree with Pillow's before the resize can be compared.
        ASSERT_EQ(sha_of(img.pixels.data(), img.pixels.size()),
                  c["decoded_sha256"].get<std::string>())
            << "decoded pixels differ from Pillow's";

        const ImageProcessorConfig cfg = config_of(c);
        io::Image padded = cfg.pad_to_square ? pad_to_square(img, cfg.pad_color()) : img;
        EXPECT_EQ(padded.width, c["padded_size"][0].get<int>());
        EXPECT_EQ(padded.height, c["padded_size"][1].get<int>());
        auto sz = shortest_edge_size(padded.width, padded.height, cfg.shortest_edge);
        ASSERT_EQ(sz[0], c["resized_size"][0].get<int>());
        ASSERT_EQ(sz[1], c["resized_size"][1].get<int>());
        auto resized = resize_like_pil(padded, sz[0], sz[1], cfg.resample);
        ASSERT_TRUE(resized.ok()) << resized.status().to_string();

        // uint8 after the resize: bit-exact; on a mismatch report the sampled differences.
        const std::string rsha = sha_of(resized->pixels.data(), resized->pixels.size());
        int max_diff = 0;
        for (const json& s : c["resized_samples"]) {
            const int x = s[0].get<int>(), y = s[1].get<int>(), ch = s[2].get<int>();
            const int got = resized->pixels[(size_t(y) * resized->width + x) * 3 + ch];
            max_diff = std::max(max_diff, std::abs(got - s[3].get<int>()));
        }
        EXPECT_EQ(max_diff, 0) << "sampled uint8 values differ from Pillow";
        EXPECT_EQ(rsha, c["resized_sha256"].get<std::string>()) << "resized image differs";

        // The whole pipeline (which crops inside the resize) and its float32 tensor.
        auto out = preprocess(img, cfg);
        ASSERT_TRUE(out.ok()) << out.status().to_string();
        const auto osz = cfg.output_size(img.width, img.height);
        ASSERT_EQ(out->size(), size_t(3) * osz[0] * osz[1]);
        EXPECT_EQ(sha_of(out->data(), out->size() * sizeof(float)),
                  c["output_sha256"].get<std::string>())
            << "float tensor differs";
        double sum = 0;
        for (float v : *out)
            sum += v;
        const double want_sum = c["output_sum"].get<double>();
        EXPECT_NEAR(sum, want_sum, 1e-6 * std::max(1.0, std::abs(want_sum)));
        for (const json& s : c["output_samples"]) {
            EXPECT_EQ((*out)[s[0].get<size_t>()], s[1].get<float>()) << "index " << s[0];
        }
        ++checked;
    }
    EXPECT_EQ(checked, int(cases.size()));
}

TEST(ImageProcessor, PadColourAndOffsets) {
    const ImageProcessorConfig cfg = ImageProcessorConfig::llava15();
    EXPECT_EQ(cfg.pad_color(), (std::array<uint8_t, 3>{122, 116, 104}));

    // Wide 5x2: rows 1..2 hold the image ((5 - 2) // 2 = 1), rows 0, 3, 4 the colour.
    io::Image wide = synthetic_image("ramp", 5, 2);
    io::Image sq = pad_to_square(wide, cfg.pad_color());
    ASSERT_EQ(sq.width, 5);
    ASSERT_EQ(sq.height, 5);
    auto px = [](const io::Image& im, int x, int y, int c) {
        return int(im.pixels[(size_t(y) * im.width + x) * 3 + c]);
    };
    for (int y = 0; y < 5; ++y) {
        for (int x = 0; x < 5; ++x) {
            for (int c = 0; c < 3; ++c) {
                const bool inside = y >= 1 && y < 3;
                const int want = inside ? px(wide, x, y - 1, c) : cfg.pad_color()[c];
                EXPECT_EQ(px(sq, x, y, c), want) << x << "," << y << "," << c;
            }
        }
    }
    // Tall 2x7: columns 2..3 ((7 - 2) // 2 = 2).
    io::Image tall = synthetic_image("noise", 2, 7);
    sq = pad_to_square(tall, {1, 2, 3});
    ASSERT_EQ(sq.width, 7);
    for (int y = 0; y < 7; ++y) {
        for (int x = 0; x < 7; ++x) {
            const bool inside = x >= 2 && x < 4;
            for (int c = 0; c < 3; ++c) {
                EXPECT_EQ(px(sq, x, y, c), inside ? px(tall, x - 2, y, c) : c + 1);
            }
        }
    }
    // Square input: unchanged.
    io::Image same = synthetic_image("ramp", 4, 4);
    EXPECT_EQ(pad_to_square(same, {0, 0, 0}).pixels, same.pixels);

    // End to end: a 3x700 strip padded to 700x700 then reduced to 336: the left and right edges
    // are pure background, normalised to (int(m * 255) / 255 - m) / s.
    auto out = preprocess(synthetic_image("ramp", 3, 700), cfg);
    ASSERT_TRUE(out.ok());
    for (int c = 0; c < 3; ++c) {
        const float bg = (float(cfg.pad_color()[c] * (1.0 / 255.0)) - float(cfg.image_mean[c])) /
                         float(cfg.image_std[c]);
        EXPECT_EQ((*out)[size_t(c) * 336 * 336 + 100 * 336 + 0], bg);
        EXPECT_EQ((*out)[size_t(c) * 336 * 336 + 100 * 336 + 335], bg);
    }
}

TEST(ImageProcessor, OutputSizes) {
    EXPECT_EQ(shortest_edge_size(1000, 800, 336), (std::array<int, 2>{420, 336}));
    EXPECT_EQ(shortest_edge_size(800, 1000, 336), (std::array<int, 2>{336, 420}));
    EXPECT_EQ(shortest_edge_size(336, 900, 336), (std::array<int, 2>{336, 900}));
    EXPECT_EQ(shortest_edge_size(7, 40, 336), (std::array<int, 2>{336, 1920}));
    auto cfg = ImageProcessorConfig::llava_hf();
    EXPECT_EQ(cfg.output_size(1000, 800), (std::array<int, 2>{336, 336}));
    cfg.do_center_crop = false;
    EXPECT_EQ(cfg.output_size(1000, 800), (std::array<int, 2>{420, 336}));
    cfg.pad_to_square = true;
    EXPECT_EQ(cfg.output_size(1000, 800), (std::array<int, 2>{336, 336}));
    auto out = preprocess(synthetic_image("noise", 1000, 800), ImageProcessorConfig::llava_hf());
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(out->size(), size_t(3 * 336 * 336));
}

TEST(ImageProcessor, BadInputErrors) {
    const auto cfg = ImageProcessorConfig::llava15();
    io::Image empty;
    auto r = preprocess(empty, cfg);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("empty image"), std::string::npos);

    io::Image zero_w;
    zero_w.width = 0;
    zero_w.height = 5;
    EXPECT_FALSE(preprocess(zero_w, cfg).ok());

    io::Image short_buf = synthetic_image("ramp", 4, 4);
    short_buf.pixels.pop_back();
    r = preprocess(short_buf, cfg);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("width*height*3"), std::string::npos);

    EXPECT_FALSE(resize_like_pil(synthetic_image("ramp", 4, 4), 0, 3).ok());
    EXPECT_FALSE(resize_like_pil(empty, 3, 3).ok());

    auto bad = cfg;
    bad.resample = ResampleFilter(0);
    r = preprocess(synthetic_image("ramp", 4, 4), bad);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("resample"), std::string::npos);
    bad = cfg;
    bad.image_std[1] = 0;
    EXPECT_FALSE(preprocess(synthetic_image("ramp", 4, 4), bad).ok());
    bad = cfg;
    bad.crop_height = 0;
    EXPECT_FALSE(preprocess(synthetic_image("ramp", 4, 4), bad).ok());

    auto f = preprocess_file(test::shared_data() / "no_such_image.jpg", cfg);
    ASSERT_FALSE(f.ok());
    EXPECT_EQ(f.status().code(), StatusCode::kNotFound);
}

TEST(ImageProcessor, LoadsHuggingFaceConfigs) {
    test::TempDir dir;
    // openai/clip-vit-large-patch14-336 (the LLaVA-1.5 / HuatuoGPT-Vision vision tower): old
    // integer sizes; the pad comes from the LLaVA checkpoint's config.json.
    fs::create_directories(dir / "llava15");
    test::write_text(dir / "llava15" / "preprocessor_config.json", R"({
  "crop_size": 336, "do_center_crop": true, "do_normalize": true, "do_resize": true,
  "feature_extractor_type": "CLIPFeatureExtractor",
  "image_mean": [0.48145466, 0.4578275, 0.40821073],
  "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 336})");
    test::write_text(
        dir / "llava15" / "config.json",
        R"({"architectures": ["LlavaLlamaForCausalLM"], "image_aspect_ratio": "pad"})");
    auto a = load_image_processor_config(dir / "llava15");
    ASSERT_TRUE(a.ok()) << a.status().to_string();
    EXPECT_TRUE(a->pad_to_square);
    EXPECT_EQ(a->shortest_edge, 336);
    EXPECT_EQ(a->crop_height, 336);
    EXPECT_EQ(a->resample, ResampleFilter::kBicubic);
    EXPECT_EQ(a->pad_color(), (std::array<uint8_t, 3>{122, 116, 104}));

    // llava-hf/llava-1.5-7b-hf: dict sizes, no pad.
    fs::create_directories(dir / "hf");
    test::write_text(dir / "hf" / "preprocessor_config.json", R"({
  "crop_size": {"height": 224, "width": 200}, "do_center_crop": true, "do_convert_rgb": true,
  "do_normalize": true, "do_rescale": true, "do_resize": true,
  "image_mean": [0.5, 0.5, 0.5], "image_processor_type": "CLIPImageProcessor",
  "image_std": [0.25, 0.5, 0.5], "processor_class": "LlavaProcessor", "resample": 2,
  "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 256}})");
    auto b = load_image_processor_config(dir / "hf" / "preprocessor_config.json");
    ASSERT_TRUE(b.ok()) << b.status().to_string();
    EXPECT_FALSE(b->pad_to_square);
    EXPECT_EQ(b->shortest_edge, 256);
    EXPECT_EQ(b->crop_height, 224);
    EXPECT_EQ(b->crop_width, 200);
    EXPECT_EQ(b->resample, ResampleFilter::kBilinear);
    EXPECT_EQ(b->image_std[0], 0.25);
    EXPECT_EQ(b->pad_color(), (std::array<uint8_t, 3>{127, 127, 127}));

    // do_pad overrides config.json.
    fs::create_directories(dir / "pad");
    test::write_text(dir / "pad" / "preprocessor_config.json", R"({"do_pad": true})");
    auto c = load_image_processor_config(dir / "pad");
    ASSERT_TRUE(c.ok());
    EXPECT_TRUE(c->pad_to_square);

    // Errors name the file and the field.
    fs::create_directories(dir / "bad");
    test::write_text(dir / "bad" / "preprocessor_config.json", R"({"image_mean": [0.5, 0.5]})");
    auto e = load_image_processor_config(dir / "bad");
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.status().message().find("image_mean"), std::string::npos);
    test::write_text(dir / "bad" / "preprocessor_config.json", R"({"resample": 0})");
    e = load_image_processor_config(dir / "bad");
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.status().message().find("resample"), std::string::npos);
    test::write_text(dir / "bad" / "preprocessor_config.json", "{not json");
    e = load_image_processor_config(dir / "bad");
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.status().code(), StatusCode::kCorruption);
    EXPECT_FALSE(load_image_processor_config(dir / "missing").ok());
}

TEST(ImageProcessor, BatchOnThreadPoolMatchesSingle) {
    const auto cfg = ImageProcessorConfig::llava15();
    std::vector<io::Image> imgs = {synthetic_image("noise", 640, 480),
                                   synthetic_image("ramp", 200, 300),
                                   synthetic_image("checker", 336, 336)};
    ThreadPool pool(2);
    auto batch = preprocess_batch(imgs, cfg, &pool);
    ASSERT_TRUE(batch.ok()) << batch.status().to_string();
    const size_t per = size_t(3) * 336 * 336;
    ASSERT_EQ(batch->size(), imgs.size() * per);
    for (size_t i = 0; i < imgs.size(); ++i) {
        auto one = preprocess(imgs[i], cfg);
        ASSERT_TRUE(one.ok());
        EXPECT_TRUE(std::equal(one->begin(), one->end(), batch->begin() + i * per)) << i;
    }
    imgs[1] = io::Image{};
    auto bad = preprocess_batch(imgs, cfg, &pool);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.status().message().find("image 1"), std::string::npos);

    // Files: decode + preprocess on the pool; same as decoding then preprocessing.
    const fs::path jpg = test::shared_data() / "nonmedical/photos/rocket.jpg";
    auto files = preprocess_files({jpg, jpg}, cfg, &pool);
    ASSERT_TRUE(files.ok()) << files.status().to_string();
    auto single = preprocess_file(jpg, cfg);
    ASSERT_TRUE(single.ok());
    EXPECT_TRUE(std::equal(single->begin(), single->end(), files->begin() + per));
}

}  // namespace
}  // namespace mf::model
