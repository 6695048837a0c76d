#include "curate/term_matcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

#include "curate/lexicon.h"
#include "test_util.h"

namespace mf::curate {
namespace {

Lexicon make_lexicon(std::initializer_list<const char*> terms) {
    Lexicon lex;
    for (const char* t : terms)
        lex.add(t);
    return lex;
}

std::vector<std::string> found_terms(const TermMatcher& m, std::string_view text) {
    std::vector<uint32_t> ids;
    m.find_terms(text, ids);
    std::vector<std::string> out;
    for (uint32_t id : ids)
        out.push_back(m.term(id));
    return out;
}

std::set<std::string> as_set(const std::vector<std::string>& v) {
    return {v.begin(), v.end()};
}

struct Collect : TokenSink {
    std::vector<std::string> toks;
    void token(std::string_view t, bool hard, bool too_long) override {
        if (hard) toks.push_back("|");
        toks.push_back(too_long ? std::string("#long#") : std::string(t));
    }
};

std::vector<std::string> fast_tokens(std::string_view text) {
    Collect c;
    tokenize(text, c);
    return c.toks;
}

TEST(Tokenizer, Basics) {
    using V = std::vector<std::string>;
    EXPECT_EQ(fast_tokens("Axial CT of the Thorax."), (V{"axial", "ct", "of", "the", "thorax"}));
    EXPECT_EQ(fast_tokens("lung. Cancer"), (V{"lung", "|", "cancer"}));
    EXPECT_EQ(fast_tokens("x-ray\n\t x  ray"), (V{"x", "ray", "x", "ray"}));
    EXPECT_EQ(fast_tokens("Crohn's disease; T1/T2 3.5 cm"),
              (V{"crohn", "disease", "|", "t1/t2", "3.5", "cm"}));
    EXPECT_EQ(fast_tokens("Crohn\xE2\x80\x99s"), (V{"crohn"}));           // U+2019
    EXPECT_EQ(fast_tokens("non\xE2\x80\x93small"), (V{"non", "small"}));  // en dash
    EXPECT_EQ(fast_tokens("a\xC2\xA0"
                          "b"),
              (V{"a", "b"}));                                               // nbsp
    EXPECT_EQ(fast_tokens("\xC3\x89PENDYMOMA"), (V{"\xC3\xA9pendymoma"}));  // É -> é
    EXPECT_EQ(fast_tokens("5 \xC2\xB5m"), (V{"5", "\xC2\xB5m"}));           // µ is a letter
    EXPECT_EQ(fast_tokens("5\xC2\xB0"
                          "C"),
              (V{"5", "|", "c"}));  // ° is a break
    EXPECT_EQ(fast_tokens("(arrow)"), (V{"arrow"}));
    EXPECT_EQ(fast_tokens(""), V{});
    EXPECT_EQ(fast_tokens("'s"), V{"s"});
    EXPECT_EQ(canonical_term_key("Non-Small-Cell  Lung\nCancer"), "non small cell lung cancer");
}

TEST(Tokenizer, LongTokensAndInvalidUtf8) {
    std::string lng(200, 'a');
    auto t = fast_tokens("lung " + lng + " cancer");
    ASSERT_EQ(t.size(), 3u);
    EXPECT_EQ(t[1], "#long#");
    auto bad = fast_tokens("lu\xFFng \xE2\x80 x");
    EXPECT_EQ(bad, naive_tokens("lu\xFFng \xE2\x80 x"));
}

TEST(TermMatcher, WordBoundaries) {
    auto lex = make_lexicon({"CT", "thorax", "nodule"});
    TermMatcher m(lex);
    EXPECT_TRUE(found_terms(m, "an act of faith").empty());  // "ct" inside "act"
    EXPECT_TRUE(found_terms(m, "octopus").empty());
    EXPECT_EQ(found_terms(m, "CT-guided biopsy"), std::vector<std::string>{"ct"});
    EXPECT_EQ(found_terms(m, "(CT)"), std::vector<std::string>{"ct"});
    EXPECT_TRUE(found_terms(m, "thoraxes2").empty());
    EXPECT_TRUE(found_terms(m, "nodulectomy").empty());
}

TEST(TermMatcher, PluralsCountOnce) {
    auto lex = make_lexicon({"nodule", "nucleus", "carcinoma", "vertebra", "diagnosis", "ganglion",
                             "apex", "cervix", "foramen", "artery", "bacterium", "sinus", "thorax",
                             "abscess", "CT"});
    TermMatcher m(lex);
    EXPECT_EQ(found_terms(m, "nodule, Nodules and NODULES"), std::vector<std::string>{"nodule"});
    std::set<std::string> all = as_set(found_terms(
        m,
        "nuclei carcinomata vertebrae diagnoses ganglia apices cervices foramina arteries "
        "bacteria sinuses thoraces abscesses CTs"));
    EXPECT_EQ(all, (std::set<std::string>{"nucleus", "carcinoma", "vertebra", "diagnosis",
                                          "ganglion", "apex", "cervix", "foramen", "artery",
                                          "bacterium", "sinus", "thorax", "abscess", "ct"}));
    EXPECT_EQ(m.count_distinct("carcinoma carcinomas carcinomata"), 1u);
    EXPECT_TRUE(found_terms(m, "nodulesque").empty());
}

TEST(TermMatcher, MultiWordAcrossWhitespaceAndHyphens) {
    auto lex = make_lexicon({"pleural effusion", "x-ray", "non-small cell lung cancer"});
    TermMatcher m(lex);
    EXPECT_EQ(found_terms(m, "right pleural\n   effusion"),
              std::vector<std::string>{"pleural effusion"});
    EXPECT_EQ(found_terms(m, "bilateral pleural effusions"),
              std::vector<std::string>{"pleural effusion"});
    EXPECT_EQ(found_terms(m, "pleural-effusion"), std::vector<std::string>{"pleural effusion"});
    EXPECT_TRUE(found_terms(m, "pleural. Effusion").empty());
    EXPECT_TRUE(found_terms(m, "pleural (effusion)").empty());
    EXPECT_EQ(m.count_distinct("X-ray, x ray, X\nray, xray, X-rays, xrays"), 1u);
    EXPECT_EQ(found_terms(m, "Non-small-cell lung cancer"),
              std::vector<std::string>{"non-small cell lung cancer"});
    EXPECT_EQ(found_terms(m,
                          "non small\xE2\x80\x94"
                          "cell lung cancers"),
              std::vector<std::string>{"non-small cell lung cancer"});
}

TEST(TermMatcher, JoinedSpellingOnlyFromHyphenatedTerm) {
    auto lex = make_lexicon({"xray"});
    TermMatcher m(lex);
    EXPECT_EQ(m.count_distinct("xray"), 1u);
    EXPECT_EQ(m.count_distinct("x-ray"), 0u);
}

TEST(TermMatcher, OverlappingTermsAllCount) {
    auto lex = make_lexicon({"lung", "cancer", "lung cancer", "small cell lung cancer", "cell"});
    TermMatcher m(lex);
    EXPECT_EQ(
        as_set(found_terms(m, "small cell lung cancer")),
        (std::set<std::string>{"lung", "cancer", "lung cancer", "small cell lung cancer", "cell"}));
    EXPECT_EQ(as_set(found_terms(m, "small cell, lung cancer")),
              (std::set<std::string>{"lung", "cancer", "lung cancer", "cell"}));
}

TEST(TermMatcher, UnicodeText) {
    auto lex = make_lexicon({"épendymoma", "crohn disease", "Sjögren syndrome"});
    TermMatcher m(lex);
    EXPECT_EQ(m.count_distinct("An \xC3\x89PENDYMOMA in a patient with Crohn\xE2\x80\x99s disease"),
              2u);
    EXPECT_EQ(m.count_distinct("Sj\xC3\x96GREN SYNDROME"), 1u);
    EXPECT_EQ(m.count_distinct("\xE8\x82\xBA\xE7\x99\x8C (lung cancer in Chinese) "), 0u);
}

TEST(TermMatcher, AccumulatesDistinctAcrossCalls) {
    auto lex = make_lexicon({"thorax", "nodule", "lung"});
    TermMatcher m(lex);
    std::vector<uint32_t> ids;
    m.find_terms("thorax nodule", ids);
    m.find_terms("nodules of the lung", ids);
    EXPECT_EQ(ids.size(), 3u);
}

TEST(TermMatcher, VariantsDoNotShadowOtherTerms) {
    // "data" is a term of its own and the plural of "datum": it must stay "data".
    auto lex = make_lexicon({"datum", "data"});
    TermMatcher m(lex);
    EXPECT_EQ(found_terms(m, "data"), std::vector<std::string>{"data"});
    EXPECT_EQ(found_terms(m, "datum"), std::vector<std::string>{"datum"});
}

// ---- randomized parity with the naive reference ----

std::string random_text(std::mt19937& rng, const std::vector<std::string>& vocab, size_t n_words) {
    static const std::vector<std::string> seps = {
        " ",        " ", " ",    "  ",  "\n", "-",   " - ",          ", ",           ". ",
        "; ",       "(", ")",    "/",   "'",  "'s ", "\xE2\x80\x93", "\xE2\x80\x99", "\xC2\xA0",
        "\xC2\xB0", ":", "\xFF", "\t\n"};
    std::string t;
    for (size_t i = 0; i < n_words; ++i) {
        std::string w = vocab[rng() % vocab.size()];
        if (rng() % 5 == 0)
            w[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(w[0])));
        if (rng() % 9 == 0) w += (rng() % 2) ? "s" : "es";
        t += w;
        t += seps[rng() % seps.size()];
    }
    return t;
}

TEST(TermMatcherParity, RandomizedAgainstNaive) {
    std::mt19937 rng(12345);
    std::vector<std::string> syll = {"lu",   "ng",   "ca", "ncer", "cell",    "no",
                                     "dule", "thor", "ax", "us",   "um",      "a",
                                     "is",   "on",   "x",  "y",    "\xC3\xA9"};
    std::vector<std::string> vocab;
    for (int i = 0; i < 60; ++i) {
        std::string w;
        int k = 1 + rng() % 3;
        for (int j = 0; j < k; ++j)
            w += syll[rng() % syll.size()];
        vocab.push_back(w);
    }
    Lexicon lex;
    for (int i = 0; i < 400; ++i) {
        std::string term;
        int words = 1 + (rng() % 4 == 0 ? rng() % 3 : 0);
        for (int j = 0; j < words; ++j) {
            if (j) term += (rng() % 3 == 0) ? "-" : " ";
            term += vocab[rng() % vocab.size()];
        }
        lex.add(term);
    }
    TermMatcher fast(lex);
    NaiveTermMatcher naive(lex);
    ASSERT_EQ(fast.n_terms(), naive.n_terms());
    size_t total_found = 0;
    for (int iter = 0; iter < 1500; ++iter) {
        std::string text = random_text(rng, vocab, 1 + rng() % 60);
        ASSERT_EQ(fast_tokens(text), naive_tokens(text)) << text;
        std::vector<uint32_t> a;
        fast.find_terms(text, a);
        std::vector<uint32_t> b = naive.find_terms(text);
        std::sort(a.begin(), a.end());
        std::sort(b.begin(), b.end());
        ASSERT_EQ(a, b) << "text: " << text;
        total_found += a.size();
    }
    EXPECT_GT(total_found, 3000u);  // the test exercises matches, not just misses
}

TEST(TermMatcherParity, RandomBytesTokenizer) {
    std::mt19937 rng(7);
    const std::string alphabet =
        "aZ09 -.,'/\n\t()\xC2\xA0\xB5\xC3\x89\x97\xE2\x80\x93\x99\xE3\xFF\x80";
    for (int iter = 0; iter < 3000; ++iter) {
        std::string t;
        size_t n = rng() % 40;
        for (size_t i = 0; i < n; ++i)
            t += alphabet[rng() % alphabet.size()];
        ASSERT_EQ(fast_tokens(t), naive_tokens(t)) << "bytes: " << t;
    }
}

TEST(TermMatcherParity, RealLexiconOnRealCaptions) {
    auto terms = read_lexicon_terms(LexiconFormat::kHunspell,
                                    test::shared_data() / "vocab" / "hunspell_en_med_glut.dic");
    ASSERT_TRUE(terms.ok());
    Lexicon lex;
    for (const auto& t : *terms)
        lex.add(t);
    auto mesh = read_lexicon_terms(LexiconFormat::kMeshTree,
                                   test::shared_data() / "vocab" / "mesh_2017_tree.tsv");
    ASSERT_TRUE(mesh.ok());
    for (const auto& t : *mesh)
        lex.add(t);
    TermMatcher fast(lex);
    NaiveTermMatcher naive(lex);
    const char* captions[] = {
        "Chest X-ray. Cardiomegaly with diffuse bilateral interstitial infiltrates and a "
        "right-sided pleural effusion.",
        "Figure 2. Abdominal CT image of a rabbit reveals a low-attenuated tumor in the left lobe "
        "of the liver (arrow). CT, computed tomography.",
        "Axial T1-weighted MRI image of sacrum. Note: Patchy, low-intensity edema evident "
        "(arrows). Squamous cell carcinomas of the lymph nodes."};
    for (const char* c : captions) {
        std::vector<uint32_t> a;
        fast.find_terms(c, a);
        auto b = naive.find_terms(c);
        std::sort(a.begin(), a.end());
        std::sort(b.begin(), b.end());
        EXPECT_EQ(a, b) << c;
        EXPECT_GE(a.size(), 3u) << c;
    }
}

}  // namespace
}  // namespace mf::curate
