#include <gtest/gtest.h>

#include "cli/commands.h"
#include "test_util.h"

namespace mf {
namespace {

TEST(Cli, HelpListsEveryCommand) {
    auto r = test::run_medforge("help");
    EXPECT_EQ(r.exit_code, 0);
    for (const auto& c : cli::commands())
        EXPECT_NE(r.output.find(c.name), std::string::npos) << c.name;
}

TEST(Cli, EveryCommandHasHelp) {
    for (const auto& c : cli::commands()) {
        auto r = test::run_medforge(std::string(c.name) + " --help");
        EXPECT_EQ(r.exit_code, 0) << c.name << ": " << r.output;
        EXPECT_NE(r.output.find("medforge " + std::string(c.name)), std::string::npos) << r.output;
        auto r2 = test::run_medforge(std::string("help ") + c.name);
        EXPECT_EQ(r2.exit_code, 0) << c.name;
    }
}

TEST(Cli, UnknownCommandAndBadOption) {
    auto r = test::run_medforge("frobnicate");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.output.find("unknown command 'frobnicate'"), std::string::npos);
    auto r2 = test::run_medforge("merge --no-such-flag x");
    EXPECT_EQ(r2.exit_code, 2) << r2.output;
}

TEST(Cli, MergeWithoutShardsFailsWithAHint) {
    test::TempDir d;
    auto r = test::run_medforge("merge " + d.path().string());
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("--shard"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace mf
