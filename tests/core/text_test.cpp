#include "core/text.h"

#include <gtest/gtest.h>

namespace mf::text {
namespace {

TEST(Text, Utf8Validation) {
    EXPECT_TRUE(valid_utf8("plain ascii"));
    EXPECT_TRUE(
        valid_utf8("caf\xC3\xA9 \xE8\x82\xBA\xE7\x82\x8E \xF0\x9F\xA9\xBB"));  // café 肺炎 🩻
    EXPECT_FALSE(valid_utf8("\xC3"));                                          // truncated
    EXPECT_FALSE(valid_utf8("\xC0\xAF"));                                      // overlong '/'
    EXPECT_FALSE(valid_utf8("\xED\xA0\x80"));                                  // surrogate
    EXPECT_FALSE(valid_utf8("\xF4\x90\x80\x80"));                              // > U+10FFFF
    EXPECT_FALSE(valid_utf8("ok\xFFok"));
    EXPECT_EQ(first_invalid_utf8("ok\xFFok"), 2u);
    EXPECT_EQ(sanitize_utf8("ok\xFFok"), "ok\xEF\xBF\xBDok");
}

TEST(Text, JsonQuote) {
    EXPECT_EQ(json_quote("a\"b\\c"), R"("a\"b\\c")");
    EXPECT_EQ(json_quote("line1\nline2\t\x01"), R"("line1\nline2\t\u0001")");
    EXPECT_EQ(json_quote("caf\xC3\xA9"), "\"caf\xC3\xA9\"");
}

TEST(Text, Whitespace) {
    EXPECT_EQ(collapse_whitespace("  a \n\t b  c "), "a b c");
    EXPECT_EQ(collapse_whitespace(""), "");
    EXPECT_EQ(trim("  x y \n"), "x y");
    EXPECT_EQ(ascii_lower("CT Thorax"), "ct thorax");
    auto parts = split("a/b//c", '/');
    ASSERT_EQ(parts.size(), 4u);
    EXPECT_EQ(parts[2], "");
}

}  // namespace
}  // namespace mf::text
