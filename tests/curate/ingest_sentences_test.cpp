// The sentence splitter used for JATS inline mentions.
#include <gtest/gtest.h>

#include "curate/ingest_internal.h"

namespace mf::curate::ingest_detail {
namespace {

using V = std::vector<std::string>;

TEST(SentenceSplit, PlainSentences) {
    EXPECT_EQ(split_sentences("One is here. Two is there! Three? Yes."),
              (V{"One is here.", "Two is there!", "Three?", "Yes."}));
    EXPECT_EQ(split_sentences(""), V{});
    EXPECT_EQ(split_sentences("   "), V{});
    EXPECT_EQ(split_sentences("No final stop"), V{"No final stop"});
}

TEST(SentenceSplit, Abbreviations) {
    EXPECT_EQ(split_sentences("As shown in Fig. 2 the mass grew. It was removed."),
              (V{"As shown in Fig. 2 the mass grew.", "It was removed."}));
    EXPECT_EQ(split_sentences("See Figs. 3 and 4. Then stop."),
              (V{"See Figs. 3 and 4.", "Then stop."}));
    EXPECT_EQ(split_sentences("Smith et al. Reported it first. Later work agreed."),
              (V{"Smith et al. Reported it first.", "Later work agreed."}));
    EXPECT_EQ(split_sentences("Lesions (e.g. Cysts) and masses, i.e. Solid ones. Done."),
              (V{"Lesions (e.g. Cysts) and masses, i.e. Solid ones.", "Done."}));
    EXPECT_EQ(split_sentences("Compare vs. Controls. Eq. 3 holds. Dr. Who agreed."),
              (V{"Compare vs. Controls.", "Eq. 3 holds.", "Dr. Who agreed."}));
    // An initial is not a sentence end.
    EXPECT_EQ(split_sentences("Infection with A. Fumigatus was proven. Treatment followed."),
              (V{"Infection with A. Fumigatus was proven.", "Treatment followed."}));
}

TEST(SentenceSplit, DecimalsAndLowerCase) {
    EXPECT_EQ(split_sentences("The value was 0.05 and 1.5 cm. Next sentence."),
              (V{"The value was 0.05 and 1.5 cm.", "Next sentence."}));
    // A lower-case word after a period continues the sentence.
    EXPECT_EQ(split_sentences("It measured 3 cm. in diameter. Then it shrank."),
              (V{"It measured 3 cm. in diameter.", "Then it shrank."}));
    // Digits and brackets can start a sentence.
    EXPECT_EQ(split_sentences("It ended in 2010. 25 patients were seen. (Data not shown.) Fine."),
              (V{"It ended in 2010.", "25 patients were seen.", "(Data not shown.)", "Fine."}));
}

TEST(SentenceSplit, ClosersAndSpans) {
    EXPECT_EQ(split_sentences("He said \"stop.\" Then left."),
              (V{"He said \"stop.\"", "Then left."}));
    EXPECT_EQ(split_sentences("Really?! Yes... Ok."), (V{"Really?!", "Yes...", "Ok."}));
    std::string t = "  First one.   Second one.  ";
    auto spans = sentence_spans(t);
    ASSERT_EQ(spans.size(), 2u);
    EXPECT_EQ(t.substr(spans[0].begin, spans[0].end - spans[0].begin), "First one.");
    EXPECT_EQ(t.substr(spans[1].begin, spans[1].end - spans[1].begin), "Second one.");
    EXPECT_LT(spans[0].end, spans[1].begin);
}

TEST(SentenceSplit, NonAsciiStart) {
    EXPECT_EQ(split_sentences("Fever resolved. \xCE\x91-waves were seen."),
              (V{"Fever resolved.", "\xCE\x91-waves were seen."}));
}

}  // namespace
}  // namespace mf::curate::ingest_detail
