// The JSON-based adapters on the real files in ../shared/data and on written records.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <unistd.h>

#include "core/text.h"
#include "curate/ingest.h"
#include "curate/ingest_internal.h"
#include "ingest_test_util.h"
#include "io/file.h"
#include "test_util.h"

namespace mf::curate {
namespace {

namespace fs = std::filesystem;
using testing::Collect;
using testing::ingest_collect;

fs::path medicat() {
    return test::shared_data() / "medicat_sample" / "sample.jsonl";
}
fs::path llava() {
    return test::shared_data() / "llava_med" / "instruct_few_shot_examples.json";
}

// Independent reading of the real file with nlohmann::json, to compare against.
std::vector<nlohmann::json> json_lines(const fs::path& p) {
    std::vector<nlohmann::json> out;
    for (const auto& l : test::read_lines(p))
        if (!l.empty()) out.push_back(nlohmann::json::parse(l));
    return out;
}

TEST(IngestMedicat, RealSample) {
    Collect c = ingest_collect("medicat", medicat());
    auto ref = json_lines(medicat());
    ASSERT_EQ(ref.size(), 10u);
    ASSERT_EQ(c.samples.size(), 10u);
    EXPECT_TRUE(c.rejects.empty());
    EXPECT_EQ(c.bytes, fs::file_size(medicat()));
    std::set<std::string> ids;
    for (size_t i = 0; i < ref.size(); ++i) {
        const auto& r = ref[i];
        const Sample& s = c.samples[i];
        std::string hash = r["pdf_hash"], uri = r["fig_uri"];
        EXPECT_EQ(s.id, "medicat:" + hash + ":" + uri);
        ids.insert(s.id);
        std::string cap = r["s2_caption"].is_string() ? r["s2_caption"].get<std::string>()
                                                      : r["s2orc_caption"].get<std::string>();
        EXPECT_EQ(s.caption, cap);
        size_t n_refs = r["s2orc_references"].is_array() ? r["s2orc_references"].size() : 0;
        EXPECT_EQ(s.mentions.size(), n_refs) << s.id;
        ASSERT_EQ(s.images.size(), 1u);
        EXPECT_EQ(
            s.images[0],
            (test::shared_data() / "medicat_sample" / "figures" / (hash + "_" + uri)).string());
        EXPECT_TRUE(fs::is_regular_file(s.images[0])) << s.images[0];
        const auto& lic = r["oa_info"]["oa"]["license"];
        EXPECT_EQ(s.lineage.licence, lic.is_string() ? lic.get<std::string>() : "");
        EXPECT_EQ(s.lineage.article, r["oa_info"]["doi"].get<std::string>());
        EXPECT_EQ(s.lineage.figure, r["fig_key"].get<std::string>());
        EXPECT_EQ(s.lineage.line, static_cast<int64_t>(i + 1));
        EXPECT_EQ(s.lineage.source, "medicat");
    }
    EXPECT_EQ(ids.size(), 10u);
    EXPECT_EQ(c.with_json, 10u);
    // Spot checks written out.
    EXPECT_EQ(c.samples[0].id, "medicat:26491ab76c6e8d6acc582e71bb6b3b5f5601ccc2:3-Figure4-1.png");
    EXPECT_EQ(c.samples[1].lineage.licence, "cc-by-nc-nd");
    EXPECT_EQ(c.samples[1].mentions.size(), 2u);
    EXPECT_TRUE(c.samples[2].mentions.empty());  // s2orc_references: null
    // The one record whose s2orc_caption is null still has its s2_caption.
    EXPECT_EQ(c.samples[8].caption.substr(0, 14), "Fig. 1. Brain ");
    EXPECT_NE(c.samples[0].meta_json.find("\"radiology\":true"), std::string::npos);
}

TEST(IngestMedicat, DefaultLicenceAndRequireImages) {
    IngestOptions opt;
    opt.default_licence = "unknown-oa";
    opt.require_images = true;
    Collect c = ingest_collect("medicat", medicat(), opt);
    ASSERT_EQ(c.samples.size(), 10u);                        // every figure file is there
    EXPECT_EQ(c.samples[0].lineage.licence, "unknown-oa");   // license: null
    EXPECT_EQ(c.samples[1].lineage.licence, "cc-by-nc-nd");  // stated licence wins

    // The same records next to no figures folder: require_images rejects them.
    test::TempDir dir;
    fs::copy_file(medicat(), dir / "sample.jsonl");
    Collect c2 = ingest_collect("medicat", dir / "sample.jsonl", opt);
    EXPECT_EQ(c2.samples.size(), 0u);
    EXPECT_EQ(c2.count_reason("image_missing"), 10u);
    // Off by default: kept with the expected path.
    Collect c3 = ingest_collect("medicat", dir / "sample.jsonl");
    ASSERT_EQ(c3.samples.size(), 10u);
    EXPECT_EQ(fs::path(c3.samples[0].images[0]).parent_path(),
              io::absolute_normal(dir / "figures"));
}

TEST(IngestMedicat, BadRecords) {
    test::TempDir dir;
    test::write_text(
        dir / "m.jsonl",
        "{\"pdf_hash\":\"h1\",\"fig_uri\":\"a.png\",\"s2_caption\":\"Good one.\"}\n"
        "\n"
        "{\"pdf_hash\":\"h2\",\"fig_uri\":\"b.png\",\"s2_caption\":\"Trunc\n"
        "{\"pdf_hash\":\"h3\",\"s2_caption\":\"No uri.\"}\n"
        "{\"pdf_hash\":\"h4\",\"fig_uri\":7,\"s2_caption\":\"Bad type.\"}\n"
        "{\"pdf_hash\":\"h5\",\"fig_uri\":\"e.png\",\"s2_caption\":\"Bad \xff byte.\"}\n"
        "[1,2]\n"
        "{\"pdf_hash\":\"h6\",\"fig_uri\":\"f.png\"}\n"
        "{\"pdf_hash\":\"h7\",\"fig_uri\":\"g.png\",\"s2_caption\":\"  \"}\n"
        "{\"pdf_hash\":\"h8\",\"fig_uri\":\"h.png\",\"s2_caption\":\"\",\"s2orc_caption\":"
        "\"Fallback.\","
        "\"s2orc_references\":\"One mention.\"}\n");
    Collect c = ingest_collect("medicat", dir / "m.jsonl");
    ASSERT_EQ(c.samples.size(), 2u);
    EXPECT_EQ(c.samples[0].id, "medicat:h1:a.png");
    EXPECT_EQ(c.samples[0].lineage.article, "h1");  // no DOI: the pdf hash
    EXPECT_EQ(c.samples[1].caption, "Fallback.");
    EXPECT_EQ(c.samples[1].mentions, std::vector<std::string>{"One mention."});
    ASSERT_EQ(c.rejects.size(), 7u);
    std::string file = io::absolute_normal(dir / "m.jsonl").string();
    EXPECT_EQ(c.rejects[0].reason, "bad_json");
    EXPECT_EQ(c.rejects[0].line, 3);
    EXPECT_EQ(c.rejects[0].detail.rfind(file + ":3: malformed JSON", 0), 0u) << c.rejects[0].detail;
    EXPECT_EQ(c.rejects[1].reason, "missing_field");
    EXPECT_NE(c.rejects[1].detail.find("'fig_uri'"), std::string::npos);
    EXPECT_EQ(c.rejects[1].detail.rfind(file + ":4: ", 0), 0u);
    EXPECT_EQ(c.rejects[2].reason, "wrong_type");
    EXPECT_NE(c.rejects[2].detail.find("'fig_uri'"), std::string::npos);
    EXPECT_EQ(c.rejects[3].reason, "invalid_utf8");
    EXPECT_EQ(c.rejects[3].line, 6);
    EXPECT_TRUE(nlohmann::json::accept(c.rejects[3].record_json));  // sanitised, still JSON
    EXPECT_EQ(c.rejects[4].reason, "wrong_type");                   // an array, not an object
    EXPECT_EQ(c.rejects[5].reason, "missing_field");
    EXPECT_NE(c.rejects[5].detail.find("s2_caption"), std::string::npos);
    EXPECT_EQ(c.rejects[6].reason, "empty_caption");
    EXPECT_EQ(c.rejects[6].id, "medicat:h7:g.png");
    for (const auto& r : c.rejects) {
        EXPECT_EQ(r.file, file);
        EXPECT_TRUE(nlohmann::json::accept(r.record_json)) << r.record_json;
    }
}

TEST(IngestLlavaMed, RealFewShotExamples) {
    Collect c = ingest_collect("llava-med", llava());
    std::ifstream f(llava());
    auto ref = nlohmann::json::parse(f);
    ASSERT_EQ(ref.size(), 8u);
    ASSERT_EQ(c.samples.size(), 8u);
    EXPECT_TRUE(c.rejects.empty());
    fs::path dir = io::absolute_normal(llava()).parent_path();
    for (size_t i = 0; i < ref.size(); ++i) {
        const auto& r = ref[i];
        const Sample& s = c.samples[i];
        std::string pmid = r["pmid"], pair = r["pair_id"];
        EXPECT_EQ(s.id, "llava-med:" + pmid + ":" + pair);
        EXPECT_EQ(s.lineage.article, "PMID:" + pmid);
        EXPECT_EQ(s.lineage.figure, r["fig_id"].get<std::string>());
        EXPECT_EQ(s.mentions.size(), r["in_text_mention"].size());
        EXPECT_EQ(s.caption, text::collapse_whitespace(r["fig_caption"].get<std::string>()));
        // No image field in these records: LLaVA-Med's <pair_id>.jpg naming.
        EXPECT_EQ(s.images, std::vector<std::string>{(dir / (pair + ".jpg")).string()});
        EXPECT_EQ(s.lineage.line, static_cast<int64_t>(i + 1));  // record index in the array
        EXPECT_NE(s.meta_json.find("\"fig_label\""), std::string::npos);
    }
    EXPECT_EQ(c.samples[0].id, "llava-med:18627621:18627621_F2");
    EXPECT_EQ(c.samples[0].meta_json.substr(0, 24), "{\"fig_label\":\"Figure 2\",");
}

TEST(IngestLlavaMed, MentionShapesAndImages) {
    test::TempDir dir;
    test::write_text(dir / "images" / "7_F1.jpg", "x");
    test::write_text(
        dir / "l.jsonl",
        R"j({"pmid":7,"pair_id":"7_F1","fig_id":"F1","fig_caption":"Cap one.","in_text_mention":[["CT","(","Figure","1",")","."],["Second","one","."]]})j"
        "\n"
        R"j({"pmid":"8","fig_id":"F2","fig_caption":"Cap two.","in_text_mention":"Only  one   sentence.","image":["a.png","b.png"]})j"
        "\n"
        R"j({"pmid":"9","fig_id":"F3","fig_caption":"Cap three.","in_text_mention":[{"tokens":["x","y"]},{"sentence":"z."}],"image_file":"c.png"})j"
        "\n"
        R"j({"pmid":"10","fig_caption":"No figure id."})j"
        "\n"
        R"j({"pmid":"11","fig_id":"F5","fig_caption":"No image at all."})j"
        "\n"
        R"j({"pmid":"12","pair_id":"12_F6","fig_caption":"Bad mentions.","in_text_mention":[1,2]})j"
        "\n");
    Collect c = ingest_collect("llava-med", dir / "l.jsonl");
    ASSERT_EQ(c.samples.size(), 3u);
    EXPECT_EQ(c.samples[0].id, "llava-med:7:7_F1");
    EXPECT_EQ(c.samples[0].mentions,
              (std::vector<std::string>{"CT ( Figure 1 ) .", "Second one ."}));
    EXPECT_EQ(c.samples[0].images,
              std::vector<std::string>{io::absolute_normal(dir / "images" / "7_F1.jpg").string()});
    EXPECT_EQ(c.samples[1].id, "llava-med:8:F2");
    EXPECT_EQ(c.samples[1].mentions, std::vector<std::string>{"Only one sentence."});
    EXPECT_EQ(c.samples[1].images,
              (std::vector<std::string>{io::absolute_normal(dir / "a.png").string(),
                                        io::absolute_normal(dir / "b.png").string()}));
    EXPECT_EQ(c.samples[2].mentions, (std::vector<std::string>{"x y", "z."}));
    EXPECT_EQ(c.samples[2].images,
              std::vector<std::string>{io::absolute_normal(dir / "c.png").string()});
    ASSERT_EQ(c.rejects.size(), 3u);
    EXPECT_EQ(c.rejects[0].reason, "missing_field");
    EXPECT_NE(c.rejects[0].detail.find("pair_id"), std::string::npos);
    EXPECT_EQ(c.rejects[1].reason, "no_image");
    EXPECT_EQ(c.rejects[1].id, "llava-med:11:F5");
    EXPECT_EQ(c.rejects[2].reason, "wrong_type");
    EXPECT_NE(c.rejects[2].detail.find("in_text_mention"), std::string::npos);
}

TEST(IngestPmcOa, Records) {
    test::TempDir dir;
    test::write_text(dir / "images" / "PMC212319_Fig3_4.jpg", "x");
    test::write_text(
        dir / "pmc_oa.jsonl",
        R"j({"image":"PMC212319_Fig3_4.jpg","caption":"A. Real time  image of a cell.","pmcid":"PMC212319","url_name":"1471-2121-4-13-3.jpg"})j"
        "\n"
        R"j({"image":"PMC99_F1.jpg","caption":"Beta caption."})j"
        "\n"
        R"j({"image":"PMC99_F2.jpg"})j"
        "\n"
        R"j({"image":"PMC99_F3.jpg","caption":""})j"
        "\n");
    Collect c = ingest_collect("pmc-oa", dir / "pmc_oa.jsonl");
    ASSERT_EQ(c.samples.size(), 2u);
    const Sample& a = c.samples[0];
    EXPECT_EQ(a.id, "pmc-oa:PMC212319_Fig3_4.jpg");
    EXPECT_EQ(a.caption, "A. Real time image of a cell.");
    EXPECT_EQ(a.lineage.article, "PMC212319");
    EXPECT_EQ(a.lineage.figure, "PMC212319_Fig3_4");
    EXPECT_EQ(a.images, std::vector<std::string>{
                            io::absolute_normal(dir / "images" / "PMC212319_Fig3_4.jpg").string()});
    EXPECT_EQ(a.meta_json, R"j({"url_name":"1471-2121-4-13-3.jpg"})j");
    EXPECT_EQ(c.samples[1].lineage.article, "PMC99");  // from the file name
    EXPECT_EQ(c.samples[1].images,
              std::vector<std::string>{io::absolute_normal(dir / "PMC99_F1.jpg").string()});
    ASSERT_EQ(c.rejects.size(), 2u);
    EXPECT_EQ(c.rejects[0].reason, "missing_field");
    EXPECT_NE(c.rejects[0].detail.find("'caption'"), std::string::npos);
    EXPECT_EQ(c.rejects[1].reason, "empty_caption");
}

TEST(IngestPubMedVision, ArrayFile) {
    test::TempDir dir;
    test::write_text(dir / "pmv.json", R"j([
  {"id": "pmc_1", "image": ["images/a.jpg", "images/b.jpg"], "modality": "CT", "body_part": "Chest",
   "conversations": [{"from": "human", "value": "<image>\n<image>\nDescribe the images."},
                     {"from": "gpt", "value": "Axial CT  slices show <image> a nodule."},
                     {"from": "human", "value": "More?"}, {"from": "gpt", "value": "No."}]},
  {"id": 42, "image": "c.png", "conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A lesion."}]},
  {"id": "pmc_3", "image": "d.png", "conversations": [{"from": "human", "value": "Q only"}]},
  {"id": "pmc_4", "image": 5, "conversations": []},
  "not an object"
])j");
    Collect c = ingest_collect("pubmedvision", dir / "pmv.json");
    ASSERT_EQ(c.samples.size(), 2u);
    const Sample& a = c.samples[0];
    EXPECT_EQ(a.id, "pubmedvision:pmc_1");
    EXPECT_EQ(a.caption, "Axial CT slices show a nodule.");
    EXPECT_TRUE(a.mentions.empty());
    EXPECT_EQ(a.images,
              (std::vector<std::string>{io::absolute_normal(dir / "images" / "a.jpg").string(),
                                        io::absolute_normal(dir / "images" / "b.jpg").string()}));
    EXPECT_EQ(a.meta_json, R"j({"modality":"CT","body_part":"Chest"})j");
    EXPECT_EQ(a.lineage.line, 1);
    EXPECT_EQ(c.samples[1].id, "pubmedvision:42");
    ASSERT_EQ(c.rejects.size(), 3u);
    EXPECT_EQ(c.rejects[0].reason, "missing_field");  // no gpt turn
    EXPECT_EQ(c.rejects[0].line, 3);
    EXPECT_NE(c.rejects[0].detail.find("pmv.json: record 3"), std::string::npos)
        << c.rejects[0].detail;
    EXPECT_EQ(c.rejects[1].reason, "wrong_type");
    EXPECT_NE(c.rejects[1].detail.find("'image'"), std::string::npos);
    EXPECT_EQ(c.rejects[2].reason, "wrong_type");
    EXPECT_EQ(c.rejects[2].line, 5);

    // A broken array is one reject for the file.
    test::write_text(dir / "bad.json", "[{\"id\": 1,]");
    Collect c2 = ingest_collect("pubmedvision", dir / "bad.json");
    ASSERT_EQ(c2.rejects.size(), 1u);
    EXPECT_EQ(c2.rejects[0].reason, "bad_json");
    EXPECT_TRUE(c2.samples.empty());

    // A byte order mark is tolerated; invalid UTF-8 rejects the file naming the line.
    test::write_text(dir / "bom" / "a.json",
                     "\xEF\xBB\xBF [{\"id\":\"b1\",\"image\":\"x.png\",\"conversations\":"
                     "[{\"from\":\"gpt\",\"value\":\"Fine.\"}]}]");
    Collect c3 = ingest_collect("pubmedvision", dir / "bom" / "a.json");
    ASSERT_EQ(c3.samples.size(), 1u);
    EXPECT_EQ(c3.samples[0].caption, "Fine.");
    test::write_text(dir / "utf" / "a.json", "[\n{\"id\":\"u\xff\"}\n]");
    Collect c4 = ingest_collect("pubmedvision", dir / "utf" / "a.json");
    ASSERT_EQ(c4.rejects.size(), 1u);
    EXPECT_EQ(c4.rejects[0].reason, "invalid_utf8");
    EXPECT_EQ(c4.rejects[0].line, 2);
}

TEST(IngestJsonl, PlainSamples) {
    test::TempDir dir;
    test::write_text(
        dir / "in" / "s.jsonl",
        R"j({"id":"a1","images":["x/1.png","/abs/2.png"],"caption":"  Cap   A. ","mentions":["M."]})j"
        "\n"
        R"j({"id":"a2","images":["3.png"],"caption":"Cap B.","lineage":{"source":"jats","article":"PMC1","figure":"F1","licence":"CC BY","file":"/orig.xml","line":4},"meta":{"k":1}})j"
        "\n"
        R"j({"id":"","images":[],"caption":"x"})j"
        "\n"
        R"j({"id":"a4","images":"3.png","caption":"x"})j"
        "\n"
        R"j({"id":"a5","images":[],"caption":"No images."})j"
        "\n");
    Collect c = ingest_collect("jsonl", dir / "in");
    ASSERT_EQ(c.samples.size(), 2u);
    const Sample& a = c.samples[0];
    EXPECT_EQ(a.id, "a1");
    EXPECT_EQ(a.caption, "Cap A.");
    EXPECT_EQ(a.images,
              (std::vector<std::string>{io::absolute_normal(dir / "in" / "x" / "1.png").string(),
                                        "/abs/2.png"}));
    EXPECT_EQ(a.lineage.source, "jsonl");
    EXPECT_EQ(a.lineage.line, 1);
    EXPECT_EQ(a.lineage.file, io::absolute_normal(dir / "in" / "s.jsonl").string());
    const Sample& b = c.samples[1];
    EXPECT_EQ(b.lineage.source, "jats");  // carried lineage is kept
    EXPECT_EQ(b.lineage.file, "/orig.xml");
    EXPECT_EQ(b.meta_json, R"j({"k":1})j");
    ASSERT_EQ(c.rejects.size(), 3u);
    EXPECT_EQ(c.rejects[0].reason, "missing_field");
    EXPECT_EQ(c.rejects[1].reason, "wrong_type");
    EXPECT_NE(c.rejects[1].detail.find("'images'"), std::string::npos);
    EXPECT_EQ(c.rejects[2].reason, "no_image");
}

TEST(IngestFormats, UnknownFormatAndMissingInput) {
    auto r = make_ingestor("docx", {});
    ASSERT_FALSE(r.ok());
    for (const auto& f : ingest_formats())
        EXPECT_NE(r.status().message().find(f), std::string::npos) << f;
    for (const auto& f : ingest_formats()) {
        auto ing = make_ingestor(f, {});
        ASSERT_TRUE(ing.ok()) << f;
        EXPECT_EQ((*ing)->format(), f);
        Collect c;
        Status st = (*ing)->run("/nonexistent/medforge/input", c);
        EXPECT_EQ(st.code(), StatusCode::kNotFound) << f;
    }
}

TEST(IngestFormats, UnreadableFileInFolderIsRejected) {
    if (::geteuid() == 0) GTEST_SKIP() << "root reads everything";
    test::TempDir dir;
    test::write_text(dir / "a.jsonl", R"j({"image":"x.jpg","caption":"c."})j");
    fs::permissions(dir / "a.jsonl", fs::perms::none);
    Collect c = ingest_collect("pmc-oa", dir.path());
    ASSERT_EQ(c.rejects.size(), 1u);
    EXPECT_EQ(c.rejects[0].reason, "unreadable_file");
}

}  // namespace
}  // namespace mf::curate

namespace mf::curate {
namespace {

// The locator's string fast path against the naive reference: absolute_normal(base / sub / ref).
TEST(ImageLocator, MatchesNaiveNormalisation) {
    test::TempDir dir;
    fs::create_directories(dir / "root" / "images");
    test::write_text(dir / "root" / "images" / "in_sub.png", "x");
    test::write_text(dir / "root" / "top.png", "x");
    ingest_detail::ImageLocator loc(dir / "root" / "." / "", {"images", "figures"});
    fs::path base = io::absolute_normal(dir / "root");
    for (std::string ref : {"a.png", "x/y/z.png", "./a.png", "x/../a.png", "x//a.png", "../up.png",
                            "a/./b.png", "..png", ".hidden.png", "x/.."}) {
        std::string naive = io::absolute_normal(base / ref).string();
        EXPECT_EQ(loc.locate(ref, {""}), naive) << ref;
        // "images" exists but the file is not in it: the first candidate.
        EXPECT_EQ(loc.locate(ref, {"", "images"}), naive) << ref;
        // "figures" does not exist: never tried.
        EXPECT_EQ(loc.locate(ref, {"figures", ""}),
                  io::absolute_normal(base / "figures" / ref).string())
            << ref;
    }
    EXPECT_EQ(loc.locate("in_sub.png", {"", "images"}), (base / "images" / "in_sub.png").string());
    EXPECT_EQ(loc.locate("top.png", {"", "images"}), (base / "top.png").string());
    EXPECT_EQ(loc.locate("/abs/./p/../q.png", {""}), "/abs/q.png");
    ingest_detail::ImageLocator root("/", {});
    EXPECT_EQ(root.locate("a/b.png", {""}), "/a/b.png");
}

}  // namespace
}  // namespace mf::curate
