// WordPiece tokenizer (BERT, MPNet / sentence-transformers) from a Hugging Face tokenizer.json or a
// bare vocab.txt. See docs/tokenizer.md.
//
// Contract:
//  - from_json() accepts model.type "WordPiece" (vocab, unk_token, continuing_subword_prefix,
//    max_input_chars_per_word), normalizer BertNormalizer (clean_text, handle_chinese_chars,
//    lowercase, strip_accents) or null, pre_tokenizer BertPreTokenizer (or null = the same),
//    post_processor TemplateProcessing / BertProcessing / RobertaProcessing, decoder WordPiece
//    (prefix, cleanup). Anything else is an error naming the field.
//  - encode() follows transformers.js (@lenml/tokenizers 3.7.2, golden-tested): added tokens
//    first (longest match, lstrip/rstrip), then per text section: clean text (drop NUL, U+FFFD,
//    control and format characters; whitespace -> " "), pad CJK ideographs with spaces,
//    lowercase (full Unicode, final sigma), strip accents (NFD, drop Mn), split on whitespace and
//    punctuation (Unicode P* and ASCII symbols), then greedy longest-match-first WordPiece with
//    "##" continuations; a word with an unmatched rest or longer than max_input_chars_per_word
//    becomes unk_token.
//  - decode(): tokens joined with spaces, "##" pieces glued, clean_up_tokenization applied (per
//    token when decoder.cleanup, and on the whole text unless set_cleanup_spaces(false)).
//  - Immutable after loading; thread-safe.
#pragma once
#include <filesystem>
#include <memory>

#include "io/tokenizer.h"

namespace mf::io {

class WordPieceTokenizer final : public Tokenizer {
  public:
    static Result<WordPieceTokenizer> load(const std::filesystem::path& tokenizer_json);
    static Result<WordPieceTokenizer> from_json(std::string_view json, std::string_view origin);
    // A bert-base-uncased style tokenizer around a vocab.txt (one token per line, id = line
    // number): specials [PAD] [UNK] [CLS] [SEP] [MASK] and [CLS] x [SEP] post-processing, or,
    // when the vocabulary has <s> and </s> (MPNet), <s> <pad> </s> <unk> <mask> and <s> x </s>.
    static Result<WordPieceTokenizer> from_vocab_txt(std::string_view vocab_txt, bool lowercase,
                                                     std::string_view origin);

    WordPieceTokenizer(WordPieceTokenizer&&) noexcept;
    WordPieceTokenizer& operator=(WordPieceTokenizer&&) noexcept;
    ~WordPieceTokenizer() override;

    std::vector<int32_t> encode(std::string_view text, bool add_special = false) const override;
    std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const override;
    std::optional<int32_t> token_to_id(std::string_view token) const override;
    std::optional<std::string> id_to_token(int32_t id) const override;
    size_t vocab_size() const override;
    bool is_special(int32_t id) const override;
    std::string_view kind() const override { return "wordpiece"; }

    // clean_up_tokenization_spaces of tokenizer_config.json (transformers.js default: true).
    void set_cleanup_spaces(bool on);
    // The normalizer alone (exposed for tests).
    std::string normalize(std::string_view text) const;

    struct Impl;

  private:
    explicit WordPieceTokenizer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace mf::io
