// `medforge lexicon build|stats|match` as a user runs them.
#include <gtest/gtest.h>

#include "test_util.h"

namespace mf {
namespace {

using test::fixtures;
using test::run_medforge;

TEST(LexiconCli, BuildStatsMatch) {
    test::TempDir tmp;
    std::string lex = (tmp / "lex.txt").string();
    auto b = run_medforge(
        "lexicon build --from hunspell:" + (fixtures() / "lexicon" / "med_sample.dic").string() +
        " --add specialist:" + (fixtures() / "lexicon" / "LEXICON_sample").string() + " --stop " +
        (fixtures() / "lexicon" / "stop_sample.txt").string() + " --out " + lex);
    ASSERT_EQ(b.exit_code, 0) << b.output;
    EXPECT_NE(b.output.find("removed 1 terms"), std::string::npos) << b.output;
    auto lines = test::read_lines(lex);
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines[0][0], '#');
    EXPECT_EQ(std::count(lines.begin(), lines.end(), "lung"), 0);
    EXPECT_EQ(std::count(lines.begin(), lines.end(), "thorax"), 1);
    EXPECT_EQ(std::count(lines.begin(), lines.end(), "ct"), 1);

    auto s = run_medforge("lexicon stats " + lex);
    ASSERT_EQ(s.exit_code, 0) << s.output;
    EXPECT_NE(s.output.find("terms:          " + std::to_string(lines.size() - 1)),
              std::string::npos)
        << s.output;

    auto m =
        run_medforge("lexicon match " + lex +
                     " 'Abdominal CT: thorax nodules and the abdominal aorta under anaesthesia'");
    ASSERT_EQ(m.exit_code, 0) << m.output;
    EXPECT_NE(m.output.find("abdominal aorta\n"), std::string::npos) << m.output;
    EXPECT_NE(m.output.find("nodule\n"), std::string::npos);
    EXPECT_NE(m.output.find("7 distinct medical terms (keep with --min-terms 5)"),
              std::string::npos)
        << m.output;
}

TEST(LexiconCli, Errors) {
    auto bad = run_medforge("lexicon build --from nosuchformat:/x --out /tmp/never.txt");
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.output.find("unknown lexicon format 'nosuchformat'"), std::string::npos)
        << bad.output;
    auto missing = run_medforge("lexicon match /no/such/lexicon.txt 'text'");
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_NE(missing.output.find("/no/such/lexicon.txt"), std::string::npos) << missing.output;
    auto usage = run_medforge("lexicon");
    EXPECT_EQ(usage.exit_code, 2);
}

}  // namespace
}  // namespace mf
