// Medical-term matching: finds the DISTINCT lexicon terms that occur in a text, in linear time.
//
// Text model (the same for lexicon terms and for captions, so both sides agree):
//   * Text is split into tokens: maximal runs of word characters (ASCII letters and digits, and
//     every non-ASCII code point that is not a space, dash or punctuation listed below).
//     Tokens are lower-cased (ASCII and Latin-1 capitals U+00C0..U+00DE in UTF-8).
//   * Joiners ' . , / : + & _ and U+2019 (written as ') stay inside a token when a word
//     character is on both sides: "crohn's", "1,25", "t1/t2", "3.5" are single tokens.
//   * A trailing possessive "'s" is dropped from a token: "Crohn's" -> "crohn".
//   * Soft separators: whitespace of any kind and length (newlines too), '-' and the Unicode
//     dashes U+2010..U+2015, no-break and Unicode spaces. "x-ray" == "x ray" == "X\n-\nray".
//   * Everything else (other punctuation, symbols, a joiner not between two word characters) is a
//     hard break: a multi-word term never matches across it ("lung. Cancer" is not "lung cancer").
//   * Invalid UTF-8 bytes are ordinary word bytes (never a crash, never a match by accident).
//
// Matching: a term matches a run of consecutive tokens equal to its own tokens, joined by soft
// separators only; so matches are always on word boundaries ("ct" never matches inside "act").
// Each term also matches its variants (same term id, counted once):
//   * plural forms of its last token: +s, +es (after s, x, z, ch, sh, o), consonant+y -> ies,
//     and the Latin/Greek plurals -us/-i, -um/-a, -is/-es, -on/-a, -ix/-ices, -ex/-ices,
//     -ax/-aces, -nx/-nges, -ma/-mata (carcinoma/carcinomata), -a/-ae, -men/-mina;
//   * for a term written with hyphens, its joined spelling ("x-ray" also matches "xray"; a term
//     written "xray" does not match "x-ray").
// A variant never shadows another lexicon term: exact terms are registered first.
// Overlapping terms all count: "lung cancer" in a text counts "lung", "cancer" (when they are
// terms) and "lung cancer".
//
// Implementation: tokens are looked up in a hash table of the tokens the lexicon uses, and a trie
// over token ids is walked with a small set of active states (bounded by the longest term in
// tokens), so the cost is linear in the text length. NaiveTermMatcher is the slow reference
// (string search per pattern) the tests compare against.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mf::curate {

class Lexicon;

// ---- tokenizer (shared definition of the text model above) ----

// Calls fn(token, hard_before) for every token of `text`; `hard_before` is true when a hard break
// lies between the previous token and this one (false for the first token).
// Tokens longer than kMaxTokenBytes are passed truncated with `too_long` set (they match nothing).
constexpr size_t kMaxTokenBytes = 96;

struct TokenSink {
    virtual ~TokenSink() = default;
    virtual void token(std::string_view tok, bool hard_before, bool too_long) = 0;
};
void tokenize(std::string_view text, TokenSink& sink);
// Convenience: the tokens of `text` joined by single spaces (hard breaks dropped). This is the
// canonical key of a lexicon term.
std::string canonical_term_key(std::string_view text);
// Variant keys of a canonical key (plural forms; see above), excluding the key itself.
// `raw` is the term as written (to detect hyphenated spellings for the joined variant).
std::vector<std::string> term_variants(std::string_view key, std::string_view raw);

// ---- fast matcher ----

class TermMatcher {
  public:
    explicit TermMatcher(const Lexicon& lexicon);
    ~TermMatcher();
    TermMatcher(const TermMatcher&) = delete;
    TermMatcher& operator=(const TermMatcher&) = delete;

    // Appends to `found` the ids of the terms occurring in `text` that are not in `found` yet,
    // in order of first occurrence. Call it again with another text to accumulate (caption then
    // mentions): a term is never appended twice. Thread-safe (const, no shared scratch).
    void find_terms(std::string_view text, std::vector<uint32_t>& found) const;
    // Number of distinct terms in `text`.
    size_t count_distinct(std::string_view text) const;

    // The term as listed in the lexicon (first spelling of its canonical key).
    const std::string& term(uint32_t id) const { return terms_[id]; }
    size_t n_terms() const { return terms_.size(); }
    size_t n_patterns() const { return n_patterns_; }  // terms + variants
    size_t n_tokens() const { return n_tokens_; }

  private:
    friend struct MatcherSink;
    struct TokenTable;
    uint32_t add_token(std::string_view tok);
    void add_pattern(const std::string& key, uint32_t term_id);

    std::vector<std::string> terms_;
    std::unique_ptr<TokenTable> tokens_;
    size_t n_tokens_ = 0;
    size_t n_patterns_ = 0;
    // Trie over tokens. A token's id is the id of its first-level node (see add_token).
    // node_info_[node] = term id (low 31 bits, kNoTerm when none) | kHasChildren.
    static constexpr uint32_t kNone = UINT32_MAX;
    static constexpr uint32_t kNoTerm = 0x7FFFFFFFu;
    static constexpr uint32_t kHasChildren = 0x80000000u;
    std::vector<uint32_t> node_info_;
    struct EdgeTable;  // (node << 32 | token) -> child, non-root edges
    std::unique_ptr<EdgeTable> edges_;
    size_t max_depth_ = 0;
};

// ---- naive reference matcher (tests and the benchmark baseline) ----

// For each pattern (term or variant), searches " pattern " in " tokens of the text joined by
// spaces, with '|' for hard breaks ". Quadratic-ish; only for checking TermMatcher.
class NaiveTermMatcher {
  public:
    explicit NaiveTermMatcher(const Lexicon& lexicon);
    // Distinct term ids found, in order of first occurrence (by position of the match start).
    std::vector<uint32_t> find_terms(std::string_view text) const;
    const std::string& term(uint32_t id) const { return terms_[id]; }
    size_t n_terms() const { return terms_.size(); }

  private:
    std::vector<std::string> terms_;
    std::vector<std::pair<std::string, uint32_t>> patterns_;
};

// A slow, independent re-implementation of the tokenizer (code point by code point), used by
// NaiveTermMatcher and by the tests to check tokenize(). Returns tokens with "|" entries for
// hard breaks between tokens.
std::vector<std::string> naive_tokens(std::string_view text);

}  // namespace mf::curate
