// Common tokenizer interface and the single entry point that loads any supported tokenizer from a
// checkpoint folder. See docs/tokenizer.md.
//
// Implementations (all read Hugging Face tokenizer.json; ids match transformers.js / tokenizers):
//  - BpeTokenizer (io/bpe_tokenizer.h): byte-level BPE (Qwen2/Qwen3, LLaMA-3, GPT-2).
//  - SpmBpeTokenizer (io/spm_tokenizer.h): SentencePiece-style BPE with byte_fallback (LLaMA-2,
//    Mistral, Yi).
//  - WordPieceTokenizer (io/wordpiece_tokenizer.h): BERT / MPNet (also from a bare vocab.txt).
//
// load_tokenizer(dir) picks the implementation from tokenizer.json's model.type (and byte_fallback
// / decoder), or uses vocab.txt when there is no tokenizer.json, then reads tokenizer_config.json
// (bos/eos/pad/unk token names, add_bos_token/add_eos_token) to fill the special ids.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace mf::io {

// Special ids of a loaded tokenizer; unset when the checkpoint does not name the token.
struct SpecialTokenIds {
    std::optional<int32_t> bos, eos, pad, unk;
};

class Tokenizer {
  public:
    virtual ~Tokenizer() = default;

    // add_special: apply the file's post-processor (BOS for LLaMA-2, [CLS] ... [SEP] for BERT,
    // nothing for Qwen/LLaMA-3 whose post-processor is ByteLevel).
    virtual std::vector<int32_t> encode(std::string_view text, bool add_special = false) const = 0;
    // Ids of `text` when it continues a sequence that was encoded before it: the same as
    // encode(text) except for SentencePiece tokenizers, which do not prepend "▁" to the first
    // text section (it is not the start of the input). Used to tokenize chat templates segment
    // by segment.
    virtual std::vector<int32_t> encode_continuation(std::string_view text) const {
        return encode(text, false);
    }
    // skip_special: leave out tokens marked special (bos, eos, chat markers).
    virtual std::string decode(const std::vector<int32_t>& ids,
                               bool skip_special = false) const = 0;

    virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
    virtual std::optional<std::string> id_to_token(int32_t id) const = 0;
    virtual size_t vocab_size() const = 0;  // largest id + 1
    virtual bool is_special(int32_t id) const = 0;
    // "bpe-byte-level", "bpe-sentencepiece" or "wordpiece".
    virtual std::string_view kind() const = 0;

    const SpecialTokenIds& special_ids() const { return special_; }
    std::optional<int32_t> bos_id() const { return special_.bos; }
    std::optional<int32_t> eos_id() const { return special_.eos; }
    std::optional<int32_t> pad_id() const { return special_.pad; }
    std::optional<int32_t> unk_id() const { return special_.unk; }
    void set_special_ids(const SpecialTokenIds& s) { special_ = s; }

  protected:
    Tokenizer() = default;
    Tokenizer(const Tokenizer&) = default;
    Tokenizer(Tokenizer&&) noexcept = default;
    Tokenizer& operator=(const Tokenizer&) = default;
    Tokenizer& operator=(Tokenizer&&) noexcept = default;

  private:
    SpecialTokenIds special_;
};

// Loads the tokenizer of a checkpoint folder: tokenizer.json (+ tokenizer_config.json), or
// vocab.txt (+ tokenizer_config.json: do_lower_case) for a WordPiece model without
// tokenizer.json. `dir` may also be the path of a tokenizer.json file.
Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::filesystem::path& dir);

// Same from memory. `config_json` is tokenizer_config.json's text or empty; `origin` names the
// source in error messages.
Result<std::unique_ptr<Tokenizer>> tokenizer_from_json(std::string_view tokenizer_json,
                                                       std::string_view config_json,
                                                       std::string_view origin);

}  // namespace mf::io
