// Chat templates: turn a conversation (role + text, "<image>" marking each image) into the prompt
// string a checkpoint was trained on, and, for training, into token ids with a mask that is true
// only on the tokens the model must learn (assistant content + its end-of-turn token). See
// docs/tokenizer.md ("Chat templates").
//
// Formats (exact strings in docs/tokenizer.md):
//  - kHuatuo  HuatuoGPT-Vision (llava/cli.py of FreedomIntelligence/HuatuoGPT-Vision):
//             "<|user|>\n{user}\n<|assistant|>\n{assistant} \n"..., no system prompt.
//  - kChatML  Qwen2 / Qwen2.5 / Qwen3: "<|im_start|>{role}\n{text}<|im_end|>\n", with the
//             default system prompt "You are a helpful assistant." (Qwen2) unless disabled.
//  - kLlama3  "<|begin_of_text|><|start_header_id|>{role}<|end_header_id|>\n\n{text}<|eot_id|>".
//  - kLlama2  "<s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s>".
//  - kPlain   LLaVA pretraining: "{user}{assistant}\n" (user = the "<image>" markers).
//
// The model side replaces each "<image>" with the image's embeddings; tokenize() can emit one
// placeholder id per "<image>" (LLaVA's IMAGE_TOKEN_INDEX = -200) instead of tokenizing it.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "io/tokenizer.h"

namespace mf::io {

enum class ChatFormat { kPlain, kHuatuo, kChatML, kLlama3, kLlama2 };

std::string_view chat_format_name(ChatFormat f);  // "plain", "huatuo", "chatml", ...
Result<ChatFormat> parse_chat_format(std::string_view name);

struct ChatMessage {
    std::string role;  // "system", "user" or "assistant"
    std::string text;  // "<image>" marks each image position
};

// A piece of the rendered conversation. `train` is true on assistant content and its
// end-of-turn marker (the tokens a supervised fine-tune learns).
struct ChatSegment {
    std::string text;
    bool train = false;
};

struct TokenizedChat {
    std::vector<int32_t> ids;
    std::vector<uint8_t> mask;  // 1 = train on this token (assistant content + end of turn)
    size_t images = 0;          // number of image placeholders emitted
    // True when tokenizing the whole rendered string gives other ids than the segment-by-segment
    // tokenization (LLaVA's "tokenization mismatch"): the segment boundaries cut a token.
    bool mismatch = false;
};

struct ChatTokenizeOptions {
    bool add_generation_prompt = false;
    // When set, each "<image>" in user/system text becomes this id (mask 0) instead of text.
    std::optional<int32_t> image_token_id;
    // Check the segment tokenization against the whole string (sets TokenizedChat::mismatch).
    bool verify = true;
};

inline constexpr int32_t kLlavaImageTokenIndex = -200;
inline constexpr std::string_view kImageMarker = "<image>";

class ChatTemplate {
  public:
    explicit ChatTemplate(ChatFormat f);
    ChatFormat format() const { return format_; }
    // ChatML only: the system prompt used when the conversation has none ("" = none).
    const std::string& default_system() const { return default_system_; }
    void set_default_system(std::string s) { default_system_ = std::move(s); }

    // Splits the rendered conversation into segments. `eos_text` is the tokenizer's EOS token
    // string: HuatuoGPT-Vision's turns have no end-of-turn marker in the text, so training
    // appends EOS after each assistant reply (empty = none; ignored by other formats).
    // Errors: unknown role, a system message where the format has none (Huatuo, plain) or not
    // first, two user or two assistant messages in a row, an empty conversation.
    Result<std::vector<ChatSegment>> segments(const std::vector<ChatMessage>& messages,
                                              bool add_generation_prompt,
                                              std::string_view eos_text = {}) const;
    // The concatenated segments.
    Result<std::string> render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                               std::string_view eos_text = {}) const;
    // Token ids + training mask, tokenizing segment by segment (a segment that continues plain
    // text uses Tokenizer::encode_continuation). EOS text for Huatuo comes from tok.eos_id().
    Result<TokenizedChat> tokenize(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                                   const ChatTokenizeOptions& opt = {}) const;

    // Ids that end a generated reply: the format's end-of-turn token (<|im_end|>, <|eot_id|>,
    // </s>) when the tokenizer has it, and the tokenizer's EOS. Deduplicated, in that order.
    std::vector<int32_t> stop_ids(const Tokenizer& tok) const;

  private:
    ChatFormat format_;
    std::string default_system_;
};

// Recognises a Jinja chat_template (tokenizer_config.json) by its markers: "<|im_start|>" ->
// ChatML (default system prompt kept when the template has "You are a helpful assistant"),
// "<|start_header_id|>" -> LLaMA-3, "[INST]" -> LLaMA-2, "<|user|>" + "<|assistant|>" -> Huatuo.
std::optional<ChatTemplate> chat_template_from_jinja(std::string_view jinja);

// Picks the template of a checkpoint folder: tokenizer_config.json "chat_template" (string or a
// list of {name, template}; "default" first), else chat_template.jinja / chat_template.json,
// else config.json "model_type": llava_qwen2 / llava_llama (HuatuoGPT-Vision's LLaVA code) ->
// Huatuo, qwen2* / qwen3* -> ChatML, llama (vocab_size >= 128000) -> LLaMA-3, llama / mistral ->
// LLaMA-2. NotFound when nothing matches.
Result<ChatTemplate> detect_chat_template(const std::filesystem::path& dir);

}  // namespace mf::io
