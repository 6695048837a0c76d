// SentencePiece-style BPE tokenizer loaded from a Hugging Face tokenizer.json (LLaMA-2, Mistral,
// Yi, CodeLlama): model.type "BPE" over Unicode characters with "▁" for spaces, byte_fallback
// (<0xXX> tokens) and ranked merges. See docs/tokenizer.md.
//
// Contract:
//  - from_json() accepts: model BPE (vocab, merges as "a b" or [a, b], unk_token, byte_fallback,
//    fuse_unk); normalizer null / Prepend / Replace (String pattern) / Sequence of those (the
//    LLaMA-2 layout Prepend("▁") + Replace(" ", "▁")); pre_tokenizer null or Metaspace
//    (replacement, add_prefix_space, prepend_scheme always/first/never; the older layout);
//    decoder Replace / ByteFallback / Fuse / Strip / Metaspace or a Sequence of them;
//    post_processor TemplateProcessing (BOS). Anything else is an error naming the field.
//  - encode() follows transformers.js (@lenml/tokenizers 3.7.2, golden-tested): split on added
//    tokens (longest first), then each text section is normalized (so "▁" is prepended to every
//    section, also after "</s>"), and the whole section is one BPE word: adjacent symbols are
//    merged lowest rank first (leftmost on ties); a symbol outside the vocabulary becomes its
//    UTF-8 bytes <0xXX> (byte_fallback) or <unk> (consecutive <unk> fused when fuse_unk).
//  - decode() runs the decoder chain on the token strings ("▁" -> " ", <0xXX> runs -> UTF-8 with
//    U+FFFD for invalid bytes, strip one leading space) and, when set, the
//    clean_up_tokenization_spaces rules of transformers.js.
//  - Immutable after loading; encode/decode may be called from many threads.
#pragma once
#include <filesystem>
#include <memory>

#include "io/tokenizer.h"

namespace mf::io {

class SpmBpeTokenizer final : public Tokenizer {
  public:
    static Result<SpmBpeTokenizer> load(const std::filesystem::path& tokenizer_json);
    static Result<SpmBpeTokenizer> from_json(std::string_view json, std::string_view origin);

    SpmBpeTokenizer(SpmBpeTokenizer&&) noexcept;
    SpmBpeTokenizer& operator=(SpmBpeTokenizer&&) noexcept;
    ~SpmBpeTokenizer() override;

    std::vector<int32_t> encode(std::string_view text, bool add_special = false) const override;
    // No "▁" is prepended to the first section (it continues earlier text).
    std::vector<int32_t> encode_continuation(std::string_view text) const override;
    std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const override;
    std::optional<int32_t> token_to_id(std::string_view token) const override;
    std::optional<std::string> id_to_token(int32_t id) const override;
    size_t vocab_size() const override;
    bool is_special(int32_t id) const override;
    std::string_view kind() const override { return "bpe-sentencepiece"; }

    // transformers.js applies clean_up_tokenization (" ." -> "." ...) after decoding when
    // tokenizer_config.json says so (its default is true); from_json leaves it off.
    void set_cleanup_spaces(bool on);

    struct Impl;

  private:
    explicit SpmBpeTokenizer(std::unique_ptr<Impl> impl);
    std::vector<int32_t> encode_impl(std::string_view text, bool add_special,
                                     bool continuation) const;
    std::unique_ptr<Impl> impl_;
};

// transformers.js's clean_up_tokenization: " ." -> ".", " ?" -> "?", " !" -> "!", " ," -> ",",
// " ' " -> "'", " n't" -> "n't", " 'm" -> "'m", " 's" -> "'s", " 've" -> "'ve", " 're" -> "'re".
std::string clean_up_tokenization(std::string s);

}  // namespace mf::io
