// Byte-level BPE tokenizer loaded from a Hugging Face tokenizer.json (Qwen2/Qwen3, LLaMA-3, GPT-2
// style). Implements the common io::Tokenizer interface (io/tokenizer.h). See docs/tokenizer.md.
//
// Contract:
//  - load()/from_json() accept model.type "BPE" with vocab, merges ("a b" strings or [a, b]
//    arrays), added_tokens, a normalizer of null / NFC / Sequence of those, a pre_tokenizer of
//    ByteLevel or Sequence[Split(Regex|String, behavior Isolated)..., ByteLevel], and a ByteLevel
//    decoder. Anything else is an error whose message names the field ("model.merges[3]: ...").
//  - encode() splits the text on added tokens first (longest match, lstrip/rstrip honoured), then
//    normalizes, pre-tokenizes (PCRE2, UTF+UCP, JIT), maps bytes to GPT-2 unicode and applies BPE
//    merges by rank (ignore_merges: a whole word found in the vocab is emitted as is). Invalid
//    UTF-8 in the input is replaced by U+FFFD first. The output matches Hugging Face tokenizers /
//    transformers.js ids (golden tests in tests/io/bpe_tokenizer_test.cpp).
//  - decode() maps ids back to bytes (the raw byte string, not re-validated); added tokens are
//    emitted as their content unless skip_special and the token is special. Unknown ids are
//    skipped.
//  - A loaded tokenizer is immutable apart from an internal word cache guarded by a mutex:
//    encode/decode may be called from many threads.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "io/tokenizer.h"

namespace mf::io {

class BpeTokenizer final : public Tokenizer {
  public:
    static Result<BpeTokenizer> load(const std::filesystem::path& tokenizer_json);
    // `origin` names the source in error messages (a path or "<memory>").
    static Result<BpeTokenizer> from_json(std::string_view json, std::string_view origin);

    BpeTokenizer(BpeTokenizer&&) noexcept;
    BpeTokenizer& operator=(BpeTokenizer&&) noexcept;
    ~BpeTokenizer() override;

    // add_special: apply the file's TemplateProcessing post-processor (e.g. a BOS token); a
    // ByteLevel or absent post-processor adds nothing.
    std::vector<int32_t> encode(std::string_view text, bool add_special = false) const override;
    std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const override;

    std::optional<int32_t> token_to_id(std::string_view token) const override;
    // The token string (byte-level unicode form for vocab tokens); nullopt for unknown ids.
    std::optional<std::string> id_to_token(int32_t id) const override;
    size_t vocab_size() const override;  // largest id + 1
    bool is_special(int32_t id) const override;
    std::string_view kind() const override { return "bpe-byte-level"; }

    // BPE of one pre-tokenized word given in byte-level unicode form, bypassing the cache (used
    // by tests and the bench to compare with a naive reference).
    std::vector<int32_t> bpe_word(std::string_view byte_level_word) const;
    // Naive reference: repeatedly scans all adjacent pairs and merges the lowest rank. Slow.
    std::vector<int32_t> bpe_word_naive(std::string_view byte_level_word) const;
    // Maps raw bytes to GPT-2 byte-level unicode (UTF-8 encoded).
    static std::string bytes_to_unicode(std::string_view bytes);

    struct Impl;

  private:
    explicit BpeTokenizer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace mf::io
