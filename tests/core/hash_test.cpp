#include "core/hash.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace mf {
namespace {

// Published XXH64 test values (seed 0) from the xxHash reference implementation.
TEST(Hash, Xxh64KnownValues) {
    EXPECT_EQ(xxh64(std::string_view("")), 0xEF46DB3751D8E999ULL);
    EXPECT_EQ(xxh64(std::string_view("a")), 0xD24EC4F1A98C6E5BULL);
    EXPECT_EQ(xxh64(std::string_view("abc")), 0x44BC2CF5AD770999ULL);
}

TEST(Hash, Xxh64LongInputsAndSeed) {
    std::string s(1000, 'x');
    for (size_t i = 0; i < s.size(); ++i)
        s[i] = static_cast<char>('a' + i % 26);
    // Every length crosses a different mix of the 32/8/4/1-byte paths; all must be distinct.
    std::set<uint64_t> seen;
    for (size_t n = 0; n <= 100; ++n)
        seen.insert(xxh64(std::string_view(s).substr(0, n)));
    EXPECT_EQ(seen.size(), 101u);
    EXPECT_NE(xxh64(s, 0), xxh64(s, 1));
    EXPECT_EQ(xxh64(s, 42), xxh64(s, 42));
}

TEST(Hash, Sha256KnownValues) {
    EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(sha256_hex("abc"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    Sha256 inc;
    inc.update("a", 1);
    inc.update("bc", 2);
    EXPECT_EQ(inc.hex_digest(), sha256_hex("abc"));
}

}  // namespace
}  // namespace mf
