// Training data: record reading (rejects with file:line), label masks checked token by token,
// the tokenization-mismatch stop, truncation, length-grouped batches and data-parallel slices.
#include <gtest/gtest.h>

#include <set>

#include "io/chat_template.h"
#include "io/image.h"
#include "io/tokenizer.h"
#include "model/init.h"
#include "model/llava.h"
#include "test_util.h"
#include "train/data.h"

namespace mf::train {
namespace {

using mf::test::TempDir;
using mf::test::write_text;

struct Fixture {
    TempDir tmp;
    std::unique_ptr<io::Tokenizer> tok;
    Fixture() {
        auto v = model::write_tiny_tokenizer(tmp.path(), "qwen2", "");
        EXPECT_TRUE(v.ok());
        auto t = io::load_tokenizer(tmp.path());
        EXPECT_TRUE(t.ok()) << t.status().to_string();
        tok = std::move(*t);
        io::Image im{8, 8, std::vector<uint8_t>(8 * 8 * 3, 100)};
        write_text(tmp / "a.jpg", io::encode_jpeg(im));
    }
};

TEST(TrainData, ReadsJsonlAndRejectsBadLinesWithFileLine) {
    Fixture f;
    write_text(f.tmp / "d.jsonl",
               "{\"id\":\"ok1\",\"image\":\"a.jpg\",\"conversations\":[{\"from\":\"human\","
               "\"value\":\"<image>\\nWhat?\"},{\"from\":\"gpt\",\"value\":\"A chest X-ray.\"}]}\n"
               "not json\n"
               "\n"
               "{\"id\":\"bad2\",\"conversations\":[{\"from\":\"robot\",\"value\":\"x\"}]}\n"
               "{\"id\":\"ok2\",\"image\":[\"a.jpg\",\"a.jpg\"],\"conversations\":[{\"from\":"
               "\"human\",\"value\":\"Compare.\"},{\"from\":\"gpt\",\"value\":\"Same.\"}]}\n");
    std::vector<Reject> rej;
    auto r = read_records(f.tmp / "d.jsonl", rej);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    ASSERT_EQ(r->size(), 2u);
    EXPECT_EQ((*r)[1].images.size(), 2u);
    ASSERT_EQ(rej.size(), 2u);
    EXPECT_EQ(rej[0].where, (f.tmp / "d.jsonl").string() + ":2");
    EXPECT_EQ(rej[1].where, (f.tmp / "d.jsonl").string() + ":4");
    EXPECT_NE(rej[1].reason.find("robot"), std::string::npos);
}

TEST(TrainData, ReadsJsonArray) {
    Fixture f;
    write_text(f.tmp / "d.json",
               "[{\"id\":\"x\",\"image\":\"a.jpg\",\"conversations\":[{\"from\":\"human\","
               "\"value\":\"Q\"},{\"from\":\"gpt\",\"value\":\"A\"}]},"
               " {\"id\":\"y\"}]");
    std::vector<Reject> rej;
    auto r = read_records(f.tmp / "d.json", rej);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->size(), 1u);
    ASSERT_EQ(rej.size(), 1u);
    EXPECT_EQ(rej[0].where, (f.tmp / "d.json").string() + ":#2");
}

TEST(TrainData, LabelsCoverExactlyTheAssistantTokens) {
    Fixture f;
    Record r{"s1",
             "f:1",
             {"a.jpg"},
             {{"user", "What is shown?"}, {"assistant", "A fracture of the left radius."}}};
    io::ChatTemplate t(io::ChatFormat::kChatML);
    TokenizeOptions o;
    o.image_tokens = 576;
    auto s = tokenize_record(r, *f.tok, t, f.tmp.path(), o);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    // one image marker, put in front of the user turn
    EXPECT_EQ(std::count(s->ids.begin(), s->ids.end(), model::kImageMarker), 1);
    EXPECT_EQ(s->length, static_cast<int64_t>(s->ids.size()) - 1 + 576);
    std::vector<int32_t> trained;
    for (size_t i = 0; i < s->ids.size(); ++i)
        if (s->labels[i] != kIgnore) {
            EXPECT_EQ(s->labels[i], s->ids[i]);
            trained.push_back(static_cast<int32_t>(s->ids[i]));
        }
    // ChatML trains the reply and its <|im_end|>, nothing of the prompt.
    EXPECT_EQ(f.tok->decode(trained, false), "A fracture of the left radius.<|im_end|>");
    EXPECT_EQ(s->trained_tokens, static_cast<int64_t>(trained.size()));
}

TEST(TrainData, PlainAlignTrainsTheCaptionOnly) {
    Fixture f;
    Record r{"s1",
             "f:1",
             {"a.jpg"},
             {{"user", "Describe the image."}, {"assistant", "Axial CT of the abdomen."}}};
    io::ChatTemplate t(io::ChatFormat::kPlain);
    TokenizeOptions o;
    o.image_tokens = 4;
    auto s = tokenize_record(r, *f.tok, t, f.tmp.path(), o);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    ASSERT_EQ(s->ids[0], model::kImageMarker);  // the user turn is just the image
    std::vector<int32_t> all(s->ids.begin() + 1, s->ids.end());
    EXPECT_EQ(f.tok->decode(all, false), "Axial CT of the abdomen.\n");
    for (size_t i = 1; i < s->ids.size(); ++i)
        EXPECT_EQ(s->labels[i], s->ids[i]);
}

TEST(TrainData, TokenizationMismatchStopsNamingTheSample) {
    Fixture f;
    // A user turn that ends inside a word: the turn-by-turn ids cannot equal the whole string's.
    io::ChatTemplate t(io::ChatFormat::kPlain);
    TokenizeOptions o;
    o.plain_user_is_images = false;
    int mismatches = 0;
    std::pair<std::string, std::string> bad;
    for (auto [a, b] : std::vector<std::pair<std::string, std::string>>{
             {"The patient has pneumo", "nia of the lung."},
             {"The the", "re is a tumour"},
             {"medic", "al imaging"}}) {
        Record r{"bad-sample", "data.jsonl:7", {}, {{"user", a}, {"assistant", b}}};
        auto s = tokenize_record(r, *f.tok, t, f.tmp.path(), o);
        if (!s.ok()) {
            ++mismatches;
            bad = {a, b};
            EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
            EXPECT_NE(s.status().message().find("bad-sample"), std::string::npos);
            EXPECT_NE(s.status().message().find("data.jsonl:7"), std::string::npos);
            EXPECT_NE(s.status().message().find("tokenization mismatch"), std::string::npos);
        }
    }
    EXPECT_GT(mismatches, 0);
    // load_samples stops on it instead of rejecting.
    write_text(f.tmp / "m.jsonl",
               "{\"id\":\"ok\",\"conversations\":[{\"from\":\"human\",\"value\":\"Hello\\n\"},"
               "{\"from\":\"gpt\",\"value\":\"Fine.\"}]}\n"
               "{\"id\":\"m1\",\"conversations\":[{\"from\":\"human\",\"value\":\"" +
                   bad.first + "\"},{\"from\":\"gpt\",\"value\":\"" + bad.second + "\"}]}\n");
    std::vector<Reject> rej;
    auto all = load_samples(f.tmp / "m.jsonl", *f.tok, t, f.tmp.path(), o, rej);
    ASSERT_FALSE(all.ok());
    EXPECT_EQ(all.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(all.status().message().find("m.jsonl:2"), std::string::npos)
        << all.status().message();
    EXPECT_NE(all.status().message().find("'m1'"), std::string::npos);
}

TEST(TrainData, BadRecordsAreRejectedWithReasons) {
    Fixture f;
    io::ChatTemplate t(io::ChatFormat::kChatML);
    TokenizeOptions o;
    o.image_tokens = 576;
    auto bad = [&](Record r, const std::string& why) {
        auto s = tokenize_record(r, *f.tok, t, f.tmp.path(), o);
        ASSERT_FALSE(s.ok()) << why;
        EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << s.status().to_string();
        EXPECT_NE(s.status().message().find(why), std::string::npos) << s.status().message();
    };
    bad({"a", "f:1", {"missing.jpg"}, {{"user", "Q"}, {"assistant", "A"}}}, "not found");
    bad({"b", "f:2", {"a.jpg"}, {{"user", "<image> <image> Q"}, {"assistant", "A"}}}, "markers");
    bad({"c", "f:3", {}, {{"user", "Q"}}}, "assistant");
    o.max_length = 20;  // the image alone does not fit
    bad({"d", "f:4", {"a.jpg"}, {{"user", "Q"}, {"assistant", "A"}}}, "max_length");
}

TEST(TrainData, TruncationKeepsWholeImagesAndCountsPositions) {
    Fixture f;
    io::ChatTemplate t(io::ChatFormat::kChatML);
    TokenizeOptions o;
    o.image_tokens = 4;
    Record r{"s",
             "f:1",
             {"a.jpg"},
             {{"user", "<image>\nQ"}, {"assistant", std::string(200, 'x') + " end"}}};
    auto full = tokenize_record(r, *f.tok, t, f.tmp.path(), o);
    ASSERT_TRUE(full.ok());
    o.max_length = full->length - 5;
    auto cut = tokenize_record(r, *f.tok, t, f.tmp.path(), o);
    ASSERT_TRUE(cut.ok()) << cut.status().to_string();
    EXPECT_TRUE(cut->truncated);
    EXPECT_EQ(cut->length, o.max_length);
    EXPECT_EQ(cut->ids.size(), full->ids.size() - 5);
    EXPECT_EQ(cut->images.size(), 1u);
}

TEST(TrainData, EpochBatchesAreAPermutationGroupedByLength) {
    std::vector<int64_t> len;
    for (int i = 0; i < 37; ++i)
        len.push_back((i * 7919) % 101);
    auto a = epoch_batches(len, 8, 1, 0), b = epoch_batches(len, 8, 1, 0),
         c = epoch_batches(len, 8, 1, 1);
    EXPECT_EQ(a, b);
    EXPECT_NE(a, c);
    ASSERT_EQ(a.size(), 5u);
    std::set<size_t> seen;
    for (auto& g : a) {
        for (size_t k = 0; k + 1 < g.size(); ++k)
            EXPECT_GE(len[g[k]], len[g[k + 1]]);
        seen.insert(g.begin(), g.end());
    }
    EXPECT_EQ(seen.size(), 37u);
    // 2 ranks x 2 micro-batches cover a global batch exactly once; rank r's micro k of world 2
    // equals micro (2k + r) of world 1 with accum 4.
    std::vector<size_t> g = a[0];
    std::vector<size_t> all;
    for (int k = 0; k < 2; ++k)
        for (int r = 0; r < 2; ++r) {
            auto s = micro_slice(g, 2, r, 2, k);
            EXPECT_EQ(s, micro_slice(g, 1, 0, 4, 2 * k + r));
            all.insert(all.end(), s.begin(), s.end());
        }
    EXPECT_EQ(all, g);
}

}  // namespace
}  // namespace mf::train
