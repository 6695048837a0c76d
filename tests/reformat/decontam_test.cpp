// Decontamination: --against parsing, text normalisation and n-gram / whole-question matches,
// and the stage on real data: resized, JPEG-60 and 5%-cropped copies of VQA-RAD test images are
// rejected as contaminated_image, MedICaT figures are kept, captions quoting or lightly
// paraphrasing a VQA-RAD question are rejected as contaminated_text; the CLI end to end.
#include "reformat/decontam.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

#include "curate/sample.h"
#include "io/image.h"
#include "io/phash.h"
#include "test_util.h"

namespace mf::reformat {
namespace {

fs::path vqa_rad() {
    return test::shared_data() / "vqa_rad";
}

std::string jpeg(const io::Image& im, int quality) {
    std::string s = io::encode_jpeg(im, quality, /*subsample_420=*/true);
    EXPECT_FALSE(s.empty());
    return s;
}

TEST(Decontam, NormalizeForOverlap) {
    EXPECT_EQ(normalize_for_overlap("  Is the LIVER, enlarged?!  "), "is the liver enlarged");
    EXPECT_EQ(normalize_for_overlap("T2-weighted\n\tMRI"), "t2 weighted mri");
    EXPECT_EQ(normalize_for_overlap("?!"), "");
    EXPECT_EQ(overlap_words("a  b-c"), (std::vector<std::string>{"a", "b", "c"}));
}

TEST(Decontam, ParseAgainst) {
    if (!fs::exists(vqa_rad() / "testset.json")) GTEST_SKIP();
    std::string path = (vqa_rad() / "testset.json").string();
    auto ok = parse_against("vqa-rad:" + path + ":" + (vqa_rad() / "images").string());
    ASSERT_TRUE(ok.ok()) << ok.status().message();
    EXPECT_EQ(ok->benchmark, "vqa-rad");
    EXPECT_EQ(ok->images_dir, vqa_rad() / "images");
    auto guess = parse_against("vqa-rad:" + path);  // images/ next to the file
    ASSERT_TRUE(guess.ok());
    EXPECT_EQ(guess->images_dir, vqa_rad() / "images");
    for (const std::string& bad : std::vector<std::string>{
             "vqa-rad", "nope:" + path, "vqa-rad:/no/such.json",
             "vqa-rad:" + path + ":/no/such/dir", "vqa-rad::x", "vqa-rad:" + path + ":a:b", ""}) {
        auto r = parse_against(bad);
        EXPECT_FALSE(r.ok()) << bad;
        if (!r.ok()) EXPECT_NE(r.status().message().find("--against"), std::string::npos);
    }
}

BenchmarkIndex text_bench(std::vector<std::string> qs) {
    BenchmarkIndex b;
    for (size_t i = 0; i < qs.size(); ++i)
        b.questions.push_back({"vqa-rad", "qid:" + std::to_string(i), qs[i], overlap_words(qs[i])});
    return b;
}

curate::Sample with_caption(std::string caption, std::vector<std::string> mentions = {}) {
    curate::Sample s;
    s.id = "s";
    s.caption = std::move(caption);
    s.mentions = std::move(mentions);
    return s;
}

TEST(Decontam, TextNgramsAndWholeQuestions) {
    DecontamParams p;
    p.check_images = false;
    DecontamIndex idx(
        text_bench({"Is the cardiac silhouette less than half the diameter of the "
                    "diaphragm?",
                    "Is there evidence of an aortic aneurysm?", "Is the liver normal?"}),
        p);
    // Verbatim inside a longer caption.
    auto a = idx.text_overlaps(with_caption(
        "Figure 2. Chest film. Is the cardiac silhouette less than half the diameter of the "
        "diaphragm? No."));
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].item_id, "qid:0");
    // Light paraphrase (case, punctuation, last words changed): an 8-gram is still shared.
    auto b = idx.text_overlaps(
        with_caption("the Cardiac silhouette - less than half the diameter of the chest wall"));
    ASSERT_EQ(b.size(), 1u);
    EXPECT_EQ(b[0].shared_text, "the cardiac silhouette less than half the diameter");
    // Short question: only the whole normalised question counts, found in the mentions too.
    auto c = idx.text_overlaps(with_caption("CT", {"IS THERE evidence of an aortic aneurysm"}));
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].item_id, "qid:1");
    EXPECT_TRUE(idx.text_overlaps(with_caption("there is evidence of an aortic aneurysm")).empty());
    // Below min_question_words (4 < 5): never matched.
    EXPECT_TRUE(idx.text_overlaps(with_caption("CT: is the liver normal here")).empty());
    // Exact normalised match of a whole mention: any length.
    auto e = idx.text_overlaps(with_caption("Knee.", {"is the LIVER normal?"}));
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].item_id, "qid:2");
    EXPECT_EQ(e[0].shared_text, "is the liver normal");
    // Word boundaries: "aneurysms" is not "aneurysm".
    EXPECT_TRUE(
        idx.text_overlaps(with_caption("is there evidence of an aortic aneurysms")).empty());
}

// Writes samples referencing variants of VQA-RAD test images and unrelated MedICaT figures.
TEST(Decontam, StageOnRealImagesAndText) {
    fs::path medicat = test::shared_data() / "medicat_sample" / "figures";
    if (!fs::exists(vqa_rad() / "testset.json") || !fs::is_directory(medicat)) GTEST_SKIP();
    // The first 60 VQA-RAD test items (real records and images; fewer images keep it fast).
    auto all_items = nlohmann::json::parse(test::read_text(vqa_rad() / "testset.json"));
    nlohmann::json test_items = nlohmann::json::array();
    std::set<std::string> bench_images;
    for (size_t i = 0; i < 60 && i < all_items.size(); ++i) {
        test_items.push_back(all_items[i]);
        bench_images.insert(all_items[i]["image_name"].get<std::string>());
    }
    test::TempDir bench_dir;
    test::write_text(bench_dir / "testset.json", test_items.dump());
    auto spec = parse_against("vqa-rad:" + (bench_dir / "testset.json").string() + ":" +
                              (vqa_rad() / "images").string());
    ASSERT_TRUE(spec.ok());
    std::vector<std::string> names;
    for (const auto& it : test_items) {
        std::string n = it["image_name"];
        if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
        if (names.size() == 6) break;
    }
    test::TempDir dir;
    std::string jsonl;
    int n_contaminated_img = 0;
    auto add = [&](std::string id, std::vector<std::string> images, std::string caption) {
        curate::Sample s;
        s.id = std::move(id);
        s.images = std::move(images);
        s.caption = std::move(caption);
        s.lineage.source = "jsonl";
        jsonl += curate::sample_to_json(s) + "\n";
    };
    for (size_t i = 0; i < names.size(); ++i) {
        io::DecodeResult d = io::decode_image_file(vqa_rad() / "images" / names[i]);
        ASSERT_TRUE(d.ok());
        const io::Image& im = d.image;
        std::vector<std::pair<std::string, std::string>> variants = {
            {"resized", jpeg(io::resize_image(im, im.width * 2 / 3, im.height * 2 / 3), 95)},
            {"q60", jpeg(im, 60)},
            {"crop5", jpeg(io::crop_border(im, 0.05), 90)}};
        for (const auto& [kind, bytes] : variants) {
            std::string f = kind + "_" + names[i];
            test::write_text(dir / f, bytes);
            add("img:" + f, {f}, "A radiograph of the patient.");  // relative to the input
            ++n_contaminated_img;
        }
    }
    int n_medicat = 0;
    for (const auto& e : fs::directory_iterator(medicat)) {
        add("medicat:" + e.path().filename().string(), {e.path().string()},
            "Nuclear magnetic resonance scan demonstrating the occipital lesion.");
        ++n_medicat;
    }
    std::string q0 = test_items[0]["question"];  // "Is there evidence of an aortic aneurysm?"
    add("text:verbatim", {}, "Case 3. " + q0 + " Yes, a 6 cm aneurysm.");
    std::string long_q = test_items[21]["question"];  // "Is the cardiac silhouette ... diaphragm?"
    ASSERT_GE(overlap_words(long_q).size(), 9u) << long_q;
    // Light paraphrase: case and punctuation changed, the last word replaced.
    std::string para = long_q;
    para.replace(para.find("cardiac"), 7, "CARDIAC,");
    para.replace(para.find("diaphragm?"), 10, "thorax");
    add("text:paraphrase", {}, "We ask: " + para + " in this film.");
    add("text:clean", {"missing.jpg"}, "Axial CT shows a hypodense liver lesion.");
    jsonl += "{not json\n";
    test::write_text(dir / "in.jsonl", jsonl);

    DecontamOptions opt;
    opt.input = dir / "in.jsonl";
    opt.out_dir = dir / "out";
    opt.against = {*spec};
    opt.n_threads = 2;
    opt.progress = false;
    auto stats = run_decontam(opt);
    ASSERT_TRUE(stats.ok()) << stats.status().message();
    const uint64_t total = n_contaminated_img + n_medicat + 3 + 1;
    EXPECT_EQ(stats->input, total);
    EXPECT_EQ(stats->kept + stats->rejected, total);
    EXPECT_EQ(stats->reasons["contaminated_image"], static_cast<uint64_t>(n_contaminated_img));
    EXPECT_EQ(stats->reasons["contaminated_text"], 2u);
    EXPECT_EQ(stats->reasons["bad_record"], 1u);
    EXPECT_EQ(stats->kept, static_cast<uint64_t>(n_medicat + 1));

    auto kept = test::read_lines(dir / "out" / "samples.jsonl");
    for (const auto& l : kept)
        EXPECT_TRUE(l.find("medicat:") != std::string::npos ||
                    l.find("text:clean") != std::string::npos)
            << l;
    bool saw_img_detail = false, saw_verbatim = false;
    for (const auto& l : test::read_lines(dir / "out" / "rejects.jsonl")) {
        auto j = nlohmann::json::parse(l);
        std::string detail = j["detail"];
        if (j["reason"] == "contaminated_image") {
            saw_img_detail = true;
            EXPECT_NE(detail.find("vqa-rad item qid:"), std::string::npos) << detail;
            EXPECT_NE(detail.find("pHash distance"), std::string::npos) << detail;
        }
        if (j["id"] == "text:verbatim") {
            saw_verbatim = true;
            EXPECT_EQ(j["reason"], "contaminated_text");
            EXPECT_NE(detail.find("qid:11"), std::string::npos) << detail;
        }
    }
    EXPECT_TRUE(saw_img_detail);
    EXPECT_TRUE(saw_verbatim);
    auto report = nlohmann::json::parse(test::read_text(dir / "out" / "overlap_report.json"));
    EXPECT_GE(report["overlaps"].size(), static_cast<size_t>(n_contaminated_img + 2));
    EXPECT_NE(test::read_text(dir / "out" / "overlap_report.md").find("| img:crop5_"),
              std::string::npos);
    auto sj = nlohmann::json::parse(test::read_text(dir / "out" / "stats.json"));
    EXPECT_EQ(sj["extra"]["phash_threshold"], 10);
    EXPECT_EQ(sj["extra"]["sample_images_unreadable"], 1);  // missing.jpg: kept, counted
    EXPECT_EQ(sj["extra"]["benchmark_image_hashes"].get<size_t>(), 3 * bench_images.size());
}

TEST(Decontam, CliEndToEndAndBadSpec) {
    if (!fs::exists(vqa_rad() / "testset.json")) GTEST_SKIP();
    test::TempDir dir;
    curate::Sample s;
    s.id = "a";
    s.caption = "Is there evidence of an aortic aneurysm?";
    curate::Sample t;
    t.id = "b";
    t.caption = "An unrelated caption about a knee MRI.";
    test::write_text(dir / "in.jsonl",
                     curate::sample_to_json(s) + "\n" + curate::sample_to_json(t) + "\n");
    std::string against = "vqa-rad:" + (vqa_rad() / "testset.json").string();
    auto r = test::run_medforge("decontam --in " + (dir / "in.jsonl").string() + " --against " +
                                against + " --out " + (dir / "out").string() +
                                " --threads 1 --no-images");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto rej = test::read_lines(dir / "out" / "rejects.jsonl");
    ASSERT_EQ(rej.size(), 1u);
    EXPECT_NE(rej[0].find("contaminated_text"), std::string::npos);
    EXPECT_EQ(test::read_lines(dir / "out" / "samples.jsonl").size(), 1u);
    EXPECT_TRUE(fs::exists(dir / "out" / "overlap_report.md"));

    auto bad = test::run_medforge("decontam --in " + (dir / "in.jsonl").string() +
                                  " --against vqa-radd:/x --out " + (dir / "o2").string());
    EXPECT_NE(bad.exit_code, 0);
    EXPECT_NE(bad.output.find("unknown benchmark"), std::string::npos) << bad.output;
    auto help = test::run_medforge("help");
    EXPECT_NE(help.output.find("decontam"), std::string::npos);
}

}  // namespace
}  // namespace mf::reformat
