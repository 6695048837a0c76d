// The jats adapter on the fixtures in tests/data/jats (written for these tests from the JATS tag
// library's structure) and on small articles written by the tests.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

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

fs::path pkg1() {
    return test::fixtures() / "jats" / "pkg1";
}
fs::path article1() {
    return pkg1() / "article1.nxml";
}
std::string img(const std::string& name) {
    return io::absolute_normal(pkg1() / name).string();
}

constexpr const char* kCcBy = "https://creativecommons.org/licenses/by/4.0/";

TEST(IngestJats, FixtureArticleSamples) {
    Collect c = ingest_collect("jats", article1());
    std::vector<std::string> order = {
        "R:no_image",           "S:jats:PMC7654321:F1",  "S:jats:PMC7654321:F2",
        "S:jats:PMC7654321:F3", "S:jats:PMC7654321:F4A", "S:jats:PMC7654321:F4B",
        "S:jats:PMC7654321:F5", "R:image_missing",       "R:empty_caption"};
    EXPECT_EQ(c.order, order);
    EXPECT_EQ(c.samples.size() + c.rejects.size(), 9u);
    EXPECT_EQ(c.bytes, fs::file_size(article1()));

    const Sample* f1 = c.find("jats:PMC7654321:F1");
    ASSERT_NE(f1, nullptr);
    EXPECT_EQ(f1->caption,
              "Baseline CT. Axial contrast-enhanced CT of the abdomen shows a 2.1\xE2\x80\x89"
              "cm cystic "
              "lesion in the left kidney (arrow); HU2 values are given in Table 1.");
    EXPECT_EQ(f1->images, std::vector<std::string>{img("f1.png")});
    EXPECT_EQ(f1->lineage.source, "jats");
    EXPECT_EQ(f1->lineage.article, "PMC7654321");
    EXPECT_EQ(f1->lineage.figure, "F1");
    EXPECT_EQ(f1->lineage.licence, kCcBy);
    EXPECT_EQ(f1->lineage.file, io::absolute_normal(article1()).string());
    EXPECT_EQ(f1->lineage.line, 68);  // the <fig> element's line
    EXPECT_EQ(f1->meta_json, R"({"label":"Figure 1"})");
    // Mentions: body sentences only (not the abstract, not the reference list), abbreviation-safe,
    // and the range "Figures 1–3".
    ASSERT_EQ(f1->mentions.size(), 2u);
    EXPECT_EQ(f1->mentions[0],
              "The contrast-enhanced computed tomography of our patient is shown in Fig. 1.");
    EXPECT_EQ(f1->mentions[1],
              "Serial scans over six months are summarised in Figures 1\xE2\x80\x93"
              "3; the wall "
              "thickness increased by 0.4 mm (p = 0.03).");

    // F2: its own xref, the range, and the rid list "F2 F4B".
    const Sample* f2 = c.find("jats:PMC7654321:F2");
    ASSERT_NE(f2, nullptr);
    ASSERT_EQ(f2->mentions.size(), 3u);
    EXPECT_EQ(f2->mentions[0], "The ultrasound examination showed a septated lesion (Figure 2).");
    EXPECT_EQ(f2->mentions[1], f1->mentions[1]);
    EXPECT_EQ(f2->mentions[2],
              "The lower pole lesion and the upper pole cyst were both visible on the ultrasound "
              "and the MRI (Figures 2 and 4B).");

    // F3: only cited through the range; its <alternatives> count once.
    const Sample* f3 = c.find("jats:PMC7654321:F3");
    ASSERT_NE(f3, nullptr);
    EXPECT_EQ(f3->mentions, std::vector<std::string>{f1->mentions[1]});
    EXPECT_EQ(f3->images, std::vector<std::string>{img("f3.jpg")});

    // Fig-group: each child is a sample, caption = group caption + own caption; a citation of the
    // group goes to every child, a citation of one child only to it.
    const Sample* a = c.find("jats:PMC7654321:F4A");
    const Sample* b = c.find("jats:PMC7654321:F4B");
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(a->caption, "MRI of the kidneys. T1-weighted image.");
    EXPECT_EQ(b->caption, "MRI of the kidneys. T2-weighted image with a bright cyst.");
    EXPECT_EQ(a->meta_json, R"({"label":"A","group":"F4"})");
    std::string mri =
        "Magnetic resonance images, i.e. T1- and T2-weighted series, are compared in Figure 4.";
    EXPECT_EQ(a->mentions, std::vector<std::string>{mri});
    EXPECT_EQ(b->mentions, (std::vector<std::string>{mri, f2->mentions[2]}));

    // Two graphics: one sample, images in order.
    const Sample* f5 = c.find("jats:PMC7654321:F5");
    ASSERT_NE(f5, nullptr);
    EXPECT_EQ(f5->images, (std::vector<std::string>{img("f5-arterial.png"), img("f5-venous.png")}));
    EXPECT_EQ(f5->mentions,
              std::vector<std::string>{
                  "Dynamic series are shown in Figure 5, and histology in Figure 6."});

    // Rejects name the figure, the href and the line.
    const Reject* miss = c.find_reject("image_missing");
    ASSERT_NE(miss, nullptr);
    EXPECT_EQ(miss->id, "jats:PMC7654321:F6");
    EXPECT_NE(miss->detail.find("fig 'F6'"), std::string::npos) << miss->detail;
    EXPECT_NE(miss->detail.find("graphic 'f6'"), std::string::npos) << miss->detail;
    EXPECT_NE(miss->detail.find("article1.nxml:"), std::string::npos) << miss->detail;
    EXPECT_EQ(miss->file, io::absolute_normal(article1()).string());
    EXPECT_GT(miss->line, 0);
    EXPECT_NE(miss->record_json.find("\"caption\":\"Histology"), std::string::npos);
    const Reject* noimg = c.find_reject("no_image");
    ASSERT_NE(noimg, nullptr);
    EXPECT_EQ(noimg->id, "jats:PMC7654321:F7");
    const Reject* empty = c.find_reject("empty_caption");
    ASSERT_NE(empty, nullptr);
    EXPECT_EQ(empty->id, "jats:PMC7654321:F8");
}

TEST(IngestJats, FolderIsRecursiveAndSorted) {
    Collect c = ingest_collect("jats", test::fixtures() / "jats");
    // pkg1/article1.nxml, then pkg2/article2.xml, then pkg2/broken.nxml.
    ASSERT_EQ(c.samples.size(), 8u);
    EXPECT_EQ(c.samples[6].id, "jats:PMC1111111:fig1");   // a fig without id: its position
    EXPECT_EQ(c.samples[7].id, "jats:PMC1111111:G1");     // a fig-group without child figs
    EXPECT_EQ(c.samples[6].lineage.licence, "cc-by-nc");  // license-type when no URL is given
    EXPECT_TRUE(c.samples[6].mentions.empty());
    // An xref without ref-type that points at a figure still counts.
    EXPECT_EQ(c.samples[7].mentions,
              std::vector<std::string>{"A panel without an identifier appears below, and a gross "
                                       "photograph is in Figure 2."});
    EXPECT_EQ(c.samples[7].images, c.samples[6].images);  // href "g1" found as g1.png
    ASSERT_EQ(c.rejects.size(), 4u);
    const Reject* bad = c.find_reject("bad_xml");
    ASSERT_NE(bad, nullptr);
    EXPECT_EQ(bad->id, "");
    EXPECT_EQ(bad->line, 10);
    EXPECT_NE(bad->detail.find("broken.nxml:10"), std::string::npos) << bad->detail;
    EXPECT_EQ(c.order.back(), "R:bad_xml");
}

TEST(IngestJats, WrittenArticleRangesListsAndIds) {
    test::TempDir dir;
    std::string figs;
    for (int i = 1; i <= 5; ++i) {
        figs += "<fig id=\"f" + std::to_string(i) + "\"><label>Figure " + std::to_string(i) +
                "</label><caption><p>Panel number " + std::to_string(i) +
                " of the series.</p></caption><graphic xlink:href=\"p" + std::to_string(i) +
                "\"/></fig>\n";
        test::write_text(dir / ("p" + std::to_string(i) + ".webp"), "RIFF");
    }
    test::write_text(
        dir / "a.xml",
        "<article xmlns:xlink=\"http://www.w3.org/1999/xlink\"><front><article-meta>"
        "<article-id pub-id-type=\"doi\">10.1/x</article-id></article-meta></front><body>"
        "<sec><sec><p>Panels <xref ref-type=\"fig\" rid=\"f2\">2</xref>\xE2\x80\x93"
        "<xref ref-type=\"fig\" rid=\"f4\">4</xref> show it. Panels "
        "<xref ref-type=\"fig\" rid=\"f1 f5\">1 and 5</xref> do not.</p></sec></sec>"
        "</body><floats-group>" +
            figs + "</floats-group></article>");
    IngestOptions opt;
    opt.default_licence = "CC0";
    Collect c = ingest_collect("jats", dir / "a.xml", opt);
    ASSERT_EQ(c.samples.size(), 5u);
    EXPECT_EQ(c.samples[0].id, "jats:doi:10.1/x:f1");
    EXPECT_EQ(c.samples[0].lineage.licence, "CC0");  // the article states none
    const std::string range =
        "Panels 2\xE2\x80\x93"
        "4 show it.";
    const std::string list = "Panels 1 and 5 do not.";
    EXPECT_EQ(c.samples[0].mentions, std::vector<std::string>{list});
    EXPECT_EQ(c.samples[1].mentions, std::vector<std::string>{range});
    EXPECT_EQ(c.samples[2].mentions, std::vector<std::string>{range});  // inside the range
    EXPECT_EQ(c.samples[3].mentions, std::vector<std::string>{range});
    EXPECT_EQ(c.samples[4].mentions, std::vector<std::string>{list});
    EXPECT_EQ(c.samples[2].images,
              std::vector<std::string>{io::absolute_normal(dir / "p3.webp").string()});
}

TEST(IngestJats, ImageRootAndLicenceVariants) {
    test::TempDir dir;
    test::write_text(dir / "imgs" / "x1.tif", "II*");
    test::write_text(dir / "xml" / "b.nxml",
                     "<article xmlns:xlink=\"http://www.w3.org/1999/xlink\" "
                     "xmlns:ali=\"http://www.niso.org/schemas/ali/1.0/\"><front><article-meta>"
                     "<article-id pub-id-type=\"pmcid\">4242</article-id><permissions><license>"
                     "<ali:license_ref>http://example.org/licence</ali:license_ref></license>"
                     "</permissions></article-meta></front><body><fig id=\"X1\"><caption><title>T"
                     "</title><p>Body <sup>a</sup>text.</p></caption><graphic xlink:href=\"x1\"/>"
                     "</fig></body></article>");
    // Without --image-root the file is looked for next to the article: missing.
    Collect c1 = ingest_collect("jats", dir / "xml");
    ASSERT_EQ(c1.rejects.size(), 1u);
    EXPECT_EQ(c1.rejects[0].reason, "image_missing");
    IngestOptions opt;
    opt.image_root = dir / "imgs" / ".." / "imgs";
    Collect c2 = ingest_collect("jats", dir / "xml", opt);
    ASSERT_EQ(c2.samples.size(), 1u);
    const Sample& s = c2.samples[0];
    EXPECT_EQ(s.id, "jats:PMC4242:X1");
    EXPECT_EQ(s.caption, "T. Body atext.");
    EXPECT_EQ(s.lineage.licence, "http://example.org/licence");
    EXPECT_EQ(s.images,
              std::vector<std::string>{io::absolute_normal(dir / "imgs" / "x1.tif").string()});
    EXPECT_EQ(s.images[0].find(".."), std::string::npos);  // lexically normal
}

TEST(IngestJats, BadInputs) {
    test::TempDir dir;
    // Not found at all: an error, not a reject.
    auto ing = make_ingestor("jats", {});
    ASSERT_TRUE(ing.ok());
    Collect c;
    Status st = (*ing)->run(dir / "nope.xml", c);
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("nope.xml"), std::string::npos);
    // An empty folder has no articles.
    fs::create_directories(dir / "empty");
    EXPECT_FALSE((*ing)->run(dir / "empty", c).ok());
    // Not JATS, and an unterminated document.
    test::write_text(dir / "x" / "a.xml", "<html><body/></html>");
    test::write_text(dir / "x" / "b.xml", "<article>\n<front>\n<article-meta>\n");
    Collect c2 = ingest_collect("jats", dir / "x");
    ASSERT_EQ(c2.rejects.size(), 2u);
    EXPECT_EQ(c2.rejects[0].reason, "bad_xml");
    EXPECT_NE(c2.rejects[0].detail.find("no <article>"), std::string::npos);
    EXPECT_EQ(c2.rejects[1].reason, "bad_xml");
    EXPECT_GE(c2.rejects[1].line, 3);
    EXPECT_TRUE(c2.samples.empty());
}

TEST(IngestJats, LineOfOffset) {
    using ingest_detail::line_of_offset;
    EXPECT_EQ(line_of_offset("abc", 0), 1);
    EXPECT_EQ(line_of_offset("a\nb\nc", 2), 2);
    EXPECT_EQ(line_of_offset("a\nb\nc", 4), 3);
    EXPECT_EQ(line_of_offset("a\n", 99), 2);
}

}  // namespace
}  // namespace mf::curate
