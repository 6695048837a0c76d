#include "core/status.h"

#include <gtest/gtest.h>

namespace mf {
namespace {

Result<int> parse_positive(int v) {
    if (v <= 0) return Status::invalid_argument("value must be positive, got " + std::to_string(v));
    return v;
}

Result<int> doubled(int v) {
    MF_ASSIGN_OR_RETURN(int x, parse_positive(v));
    return 2 * x;
}

Status check_all(int a, int b) {
    MF_RETURN_IF_ERROR(parse_positive(a).status());
    MF_RETURN_IF_ERROR(parse_positive(b).status());
    return {};
}

TEST(Status, OkAndErrors) {
    Status ok;
    EXPECT_TRUE(ok.ok());
    EXPECT_EQ(ok.to_string(), "OK");
    Status nf = Status::not_found("x.json: no such file");
    EXPECT_FALSE(nf.ok());
    EXPECT_EQ(nf.code(), StatusCode::kNotFound);
    EXPECT_EQ(nf.to_string(), "NotFound: x.json: no such file");
    EXPECT_EQ(nf.with_context("loading lexicon").message(),
              "loading lexicon: x.json: no such file");
    EXPECT_TRUE(ok.with_context("ctx").ok());
}

TEST(Status, ResultPropagation) {
    EXPECT_EQ(*doubled(4), 8);
    auto bad = doubled(-1);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(bad.status().message().find("-1"), std::string::npos);
    EXPECT_TRUE(check_all(1, 2).ok());
    EXPECT_EQ(check_all(1, 0).code(), StatusCode::kInvalidArgument);
}

TEST(Status, ResultMoveOnlyValue) {
    Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
    ASSERT_TRUE(r.ok());
    std::unique_ptr<int> p = std::move(r).value();
    EXPECT_EQ(*p, 7);
}

TEST(StatusDeathTest, ValueOnErrorAborts) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    Result<int> r = Status::internal("boom");
    EXPECT_DEATH((void)r.value(), "internal check failed");
}

}  // namespace
}  // namespace mf
