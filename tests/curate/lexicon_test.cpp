#include "curate/lexicon.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace mf::curate {
namespace {

using test::fixtures;
using test::shared_data;

fs::path fx(const std::string& name) {
    return fixtures() / "lexicon" / name;
}

std::vector<std::string> read_terms(LexiconFormat f, const fs::path& p) {
    auto r = read_lexicon_terms(f, p);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? *r : std::vector<std::string>{};
}

bool has(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(Normalize, LowerCaseWhitespacePunctuation) {
    EXPECT_EQ(normalize_term("  Pleural   Effusion "), "pleural effusion");
    EXPECT_EQ(normalize_term("X-Ray"), "x-ray");
    EXPECT_EQ(normalize_term("ab-"), "");  // prefix entry: too short after trimming
    EXPECT_EQ(normalize_term("(Thorax)."), "thorax");
    EXPECT_EQ(normalize_term("Crohn's"), "crohn");
    EXPECT_EQ(normalize_term("ÉPENDYMOMA"), "épendymoma");  // Latin-1 capitals in UTF-8
    EXPECT_EQ(normalize_term("CT"), "ct");                  // capital abbreviation kept
    EXPECT_EQ(normalize_term("ct"), "");                    // lower-case 2-letter word dropped
    EXPECT_EQ(normalize_term("A1"), "a1");
    EXPECT_EQ(normalize_term("a"), "");
    EXPECT_EQ(normalize_term(""), "");
}

TEST(LexiconLoaders, WordList) {
    auto t = read_terms(LexiconFormat::kWords, fx("words_sample.txt"));
    EXPECT_EQ(t.size(), 6u);
    Lexicon lex;
    for (auto& s : t)
        lex.add(s);
    EXPECT_TRUE(lex.contains("computed tomography"));
    EXPECT_TRUE(lex.contains("PLEURAL EFFUSION"));
    EXPECT_TRUE(lex.contains("ct"));  // from the "CT" line
    EXPECT_TRUE(lex.contains("nodule"));
    EXPECT_EQ(lex.size(), 5u);
}

TEST(LexiconLoaders, HunspellFixture) {
    auto t = read_terms(LexiconFormat::kHunspell, fx("med_sample.dic"));
    EXPECT_FALSE(has(t, "8"));  // word count line
    EXPECT_TRUE(has(t, "abdominal"));
    EXPECT_TRUE(has(t, "nodule"));
    EXPECT_TRUE(has(t, "1/2-life"));  // "\/" unescaped
    for (const auto& s : t)
        EXPECT_EQ(s.find("A comment"), std::string::npos);
    EXPECT_EQ(t.size(), 8u);
}

TEST(LexiconLoaders, HunspellRealDebianFile) {
    fs::path p = shared_data() / "vocab" / "hunspell_en_med_glut.dic";
    auto t = read_terms(LexiconFormat::kHunspell, p);
    EXPECT_EQ(t.size(), 90142u);  // the README's "Number of Terms"
    EXPECT_TRUE(has(t, "abdominal"));
    for (const auto& s : t)
        ASSERT_EQ(s.find('/'), std::string::npos) << s;
}

TEST(LexiconLoaders, MeshTreeRealFile) {
    auto t = read_terms(LexiconFormat::kMeshTree, shared_data() / "vocab" / "mesh_2017_tree.tsv");
    EXPECT_GT(t.size(), 27000u);  // 28,470 descriptors, deduplicated by the natural form
    EXPECT_LE(t.size(), 28470u);
    EXPECT_TRUE(has(t, "Lung"));
    EXPECT_TRUE(has(t, "Breast"));
    EXPECT_TRUE(has(t, "Human Mammary Gland"));  // "Mammary Glands, Human" inverted + singular
    EXPECT_TRUE(has(t, "Body Region"));
    EXPECT_FALSE(has(t, "Term"));  // header skipped
}

TEST(LexiconLoaders, MeshAsciiFixture) {
    auto t = read_terms(LexiconFormat::kMeshAscii, fx("d2017_sample.bin"));
    EXPECT_TRUE(has(t, "Calcimycin"));
    EXPECT_TRUE(has(t, "A-23187"));
    EXPECT_TRUE(has(t, "Antibiotic A23187"));
    EXPECT_TRUE(has(t, "Squamous Cell Carcinoma"));
    EXPECT_TRUE(has(t, "Epidermoid Carcinoma"));  // "Carcinomas, Epidermoid" -> natural, singular
    EXPECT_TRUE(has(t, "Planocellular Carcinoma"));  // ENTRY without '|' fields
    EXPECT_TRUE(has(t, "Lymph Node"));
    EXPECT_TRUE(has(t, "Lymph Gland"));
    EXPECT_FALSE(has(t, "Anti-Bacterial Agents"));  // PA lines are not terms
    EXPECT_EQ(t.size(), 9u);                        // deduplicated
}

TEST(LexiconLoaders, MeshAsciiRejectsOtherFiles) {
    auto r = read_lexicon_terms(LexiconFormat::kMeshAscii, fx("words_sample.txt"));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("NEWRECORD"), std::string::npos);
    EXPECT_NE(r.status().message().find("words_sample.txt"), std::string::npos);
}

TEST(LexiconLoaders, SpecialistFixture) {
    auto t = read_terms(LexiconFormat::kSpecialist, fx("LEXICON_sample"));
    EXPECT_TRUE(has(t, "abdominal aorta"));
    EXPECT_TRUE(has(t, "anaesthesia"));
    EXPECT_TRUE(has(t, "anesthesia"));
    EXPECT_TRUE(has(t, "CT"));
    EXPECT_TRUE(has(t, "gram-negative"));
    EXPECT_TRUE(has(t, "ovum"));
    EXPECT_EQ(t.size(), 7u);
    auto bad = read_lexicon_terms(LexiconFormat::kSpecialist, fx("med_sample.dic"));
    EXPECT_FALSE(bad.ok());
}

TEST(LexiconLoaders, MissingFileNamesPath) {
    auto r = read_lexicon_terms(LexiconFormat::kWords, fx("no_such_file.txt"));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("no_such_file.txt"), std::string::npos);
}

TEST(LexiconFormat, ParseNamesAndSources) {
    EXPECT_EQ(*parse_lexicon_format("mesh-tree"), LexiconFormat::kMeshTree);
    EXPECT_EQ(*parse_lexicon_format("specialist"), LexiconFormat::kSpecialist);
    EXPECT_FALSE(parse_lexicon_format("xml").ok());
    auto s = parse_lexicon_source("hunspell:/a/b.dic");
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->format, LexiconFormat::kHunspell);
    EXPECT_EQ(s->path, fs::path("/a/b.dic"));
    EXPECT_FALSE(parse_lexicon_source("/a/b.dic").ok());
    EXPECT_FALSE(parse_lexicon_source("foo:/a").ok());
}

TEST(StopList, LowerCaseEntriesOnly) {
    auto s = load_stop_list(fx("stop_sample.txt"));
    ASSERT_TRUE(s.ok());
    EXPECT_TRUE(s->count("lung"));
    EXPECT_TRUE(s->count("the"));
    EXPECT_FALSE(s->count("parkinson"));  // proper name
    EXPECT_FALSE(s->count("ct"));         // abbreviation
    EXPECT_EQ(s->size(), 2u);             // "lung's" skipped
}

TEST(StopList, RealWamerican) {
    fs::path p = "/usr/share/dict/american-english";
    if (!fs::exists(p)) GTEST_SKIP() << "wamerican not installed (scripts/setup.sh installs it)";
    auto s = load_stop_list(p);
    ASSERT_TRUE(s.ok());
    EXPECT_GT(s->size(), 50000u);
    EXPECT_TRUE(s->count("table"));
    EXPECT_FALSE(s->count("mri"));
}

TEST(BuildLexicon, StopKeepAdd) {
    LexiconBuildOptions opt;
    opt.sources.push_back({LexiconFormat::kHunspell, fx("med_sample.dic"), true});
    opt.stop_lists.push_back(fx("stop_sample.txt"));
    LexiconBuildReport rep;
    auto lex = build_lexicon(opt, &rep);
    ASSERT_TRUE(lex.ok());
    EXPECT_FALSE(lex->contains("lung"));  // removed by the stop list
    EXPECT_TRUE(lex->contains("thorax"));
    EXPECT_TRUE(lex->contains("crohn"));
    EXPECT_EQ(rep.removed, 1u);
    EXPECT_EQ(rep.final_size, lex->size());

    // --keep protects "lung" (listed by a curated source) from the stop list.
    opt.keep.push_back({LexiconFormat::kWords, fx("words_sample.txt"), false});
    test::TempDir tmp;
    test::write_text(tmp / "keep.txt", "lung\n");
    opt.keep.push_back({LexiconFormat::kWords, tmp / "keep.txt", false});
    auto lex2 = build_lexicon(opt, &rep);
    ASSERT_TRUE(lex2.ok());
    EXPECT_TRUE(lex2->contains("lung"));
    EXPECT_EQ(rep.kept_by_keep, 1u);
    EXPECT_FALSE(lex2->contains("pleural effusion"));  // keep adds nothing

    // --add sources are not stop-filtered.
    opt.keep.clear();
    opt.sources.push_back({LexiconFormat::kWords, tmp / "keep.txt", false});
    auto lex3 = build_lexicon(opt, &rep);
    ASSERT_TRUE(lex3.ok());
    EXPECT_TRUE(lex3->contains("lung"));
}

TEST(BuildLexicon, SaveLoadRoundTripSorted) {
    Lexicon lex;
    for (const char* t : {"thorax", "Pleural Effusion", "x-ray", "CT", "nodule"})
        lex.add(t);
    test::TempDir tmp;
    ASSERT_TRUE(lex.save(tmp / "sub" / "lex.txt").ok());
    auto lines = test::read_lines(tmp / "sub" / "lex.txt");
    ASSERT_EQ(lines.size(), 6u);
    EXPECT_EQ(lines[0][0], '#');
    std::vector<std::string> body(lines.begin() + 1, lines.end());
    EXPECT_TRUE(std::is_sorted(body.begin(), body.end()));
    auto back = Lexicon::load(tmp / "sub" / "lex.txt");
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->terms(), lex.terms());
    // A saved lexicon as a build source keeps its short terms.
    LexiconBuildOptions opt;
    opt.sources.push_back({LexiconFormat::kLexicon, tmp / "sub" / "lex.txt", true});
    auto rebuilt = build_lexicon(opt);
    ASSERT_TRUE(rebuilt.ok());
    EXPECT_EQ(rebuilt->terms(), lex.terms());
    EXPECT_EQ(*parse_lexicon_format("lexicon"), LexiconFormat::kLexicon);
    test::write_text(tmp / "empty.txt", "# nothing\n");
    EXPECT_FALSE(Lexicon::load(tmp / "empty.txt").ok());
}

TEST(BuildLexicon, DefaultRecipeOnRealFiles) {
    fs::path dic = shared_data() / "vocab" / "hunspell_en_med_glut.dic";
    fs::path stop = "/usr/share/dict/american-english";
    if (!fs::exists(stop)) GTEST_SKIP() << "wamerican not installed";
    LexiconBuildOptions opt;
    opt.sources.push_back({LexiconFormat::kHunspell, dic, true});
    opt.stop_lists.push_back(stop);
    LexiconBuildReport rep;
    auto lex = build_lexicon(opt, &rep);
    ASSERT_TRUE(lex.ok());
    EXPECT_GT(lex->size(), 70000u);
    EXPECT_GT(rep.removed, 5000u);
    EXPECT_FALSE(lex->contains("table"));
    EXPECT_TRUE(lex->contains("cardiomegaly"));
    EXPECT_TRUE(lex->contains("pleural"));
}

TEST(DefaultLexiconPath, RelativeToBinary) {
    fs::path p = default_lexicon_path();
    EXPECT_EQ(p.filename(), "medical_en.txt");
    EXPECT_EQ(p.parent_path().filename(), "lexicon");
    EXPECT_EQ(p.parent_path().parent_path().parent_path().filename(), "share");
}

}  // namespace
}  // namespace mf::curate
