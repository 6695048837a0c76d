#include "io/line_reader.h"

#include <gtest/gtest.h>

#include "io/file.h"
#include "test_util.h"

namespace mf::io {
namespace {

std::vector<std::string> read_all(const std::filesystem::path& p,
                                  std::vector<uint64_t>* nos = nullptr) {
    LineReader r;
    EXPECT_TRUE(r.open(p).ok());
    std::vector<std::string> out;
    std::string_view line;
    while (r.next(&line)) {
        out.emplace_back(line);
        if (nos) nos->push_back(r.line_no());
    }
    EXPECT_TRUE(r.status().ok());
    return out;
}

TEST(LineReader, LinesCrlfAndLastLineWithoutNewline) {
    test::TempDir d;
    test::write_text(d / "a.txt", "one\r\ntwo\n\nthree");
    std::vector<uint64_t> nos;
    auto lines = read_all(d / "a.txt", &nos);
    EXPECT_EQ(lines, (std::vector<std::string>{"one", "two", "", "three"}));
    EXPECT_EQ(nos, (std::vector<uint64_t>{1, 2, 3, 4}));
}

TEST(LineReader, LinesLongerThanTheBlock) {
    test::TempDir d;
    std::string big(9 << 20, 'x');  // longer than the 4 MiB block: the buffer must grow
    test::write_text(d / "b.txt", "short\n" + big + "\nend\n");
    auto lines = read_all(d / "b.txt");
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_EQ(lines[1].size(), big.size());
    EXPECT_EQ(lines[2], "end");
}

TEST(LineReader, MissingFileIsNotFound) {
    LineReader r;
    Status st = r.open("/nonexistent/medforge/x.jsonl");
    EXPECT_EQ(st.code(), StatusCode::kNotFound);
    EXPECT_NE(st.message().find("/nonexistent/medforge/x.jsonl"), std::string::npos);
}

TEST(File, AtomicWriteAndListSorted) {
    test::TempDir d;
    ASSERT_TRUE(write_file_atomic(d / "sub" / "z.json", "{}").ok());
    ASSERT_TRUE(write_file_atomic(d / "sub" / "a.JSON", "[]").ok());
    ASSERT_TRUE(write_file_atomic(d / "sub" / "m.txt", "x").ok());
    auto files = list_files(d.path(), {".json"});
    ASSERT_TRUE(files.ok());
    ASSERT_EQ(files->size(), 2u);
    EXPECT_EQ((*files)[0].filename(), "a.JSON");
    EXPECT_EQ(*read_file(d / "sub" / "z.json"), "{}");
    EXPECT_EQ(read_file(d / "nope").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace mf::io
