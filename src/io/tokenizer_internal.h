// Helpers shared by the tokenizer implementations (not a public API): UTF-8 code points, the
// added-token splitter, post-processor and tokenizer_config.json parsing.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "io/tokenizer.h"

namespace mf::io::tok {

using json = nlohmann::json;

// Decodes valid UTF-8 (callers sanitize first) into code points.
std::vector<char32_t> to_code_points(std::string_view s);
void append_utf8(std::string& out, char32_t cp);
std::string to_utf8(const std::vector<char32_t>& cps, size_t begin, size_t end);
// JavaScript's \s (what transformers.js trims and splits on).
bool js_space(char32_t cp);
// Decodes bytes as the WHATWG TextDecoder does (what transformers.js uses): each maximal invalid
// subpart becomes one U+FFFD.
std::string utf8_lossy(std::string_view bytes);
// Trims JavaScript whitespace from the left / right of a UTF-8 string view.
std::string_view trim_start(std::string_view s);
std::string_view trim_end(std::string_view s);

Status field_error(std::string_view origin, const std::string& field, const std::string& what);

// Key of a token-id pair in a merge table.
inline uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

// Reads tokenizer.json's model.vocab ({token: id}, ids >= 0) into `vocab`; `max_id` becomes the
// largest id seen (or stays as given). Errors name model.vocab["token"].
Status parse_vocab(const json& model, std::string_view origin,
                   std::unordered_map<std::string, int32_t>& vocab, int32_t& max_id);

// One entry of model.merges ("a b" or ["a", "b"]) as vocabulary ids; rank = its position.
struct MergeRule {
    int32_t rank, left, right, merged;
};
// Parses model.merges against `vocab`; errors name model.merges[i] and the missing token.
Result<std::vector<MergeRule>> parse_merges(const json& model,
                                            const std::unordered_map<std::string, int32_t>& vocab,
                                            std::string_view origin);

struct AddedToken {
    int32_t id = 0;
    std::string content;
    bool special = false, lstrip = false, rstrip = false;
};

// A piece of the input after splitting on added tokens: either an added token (added >= 0, an
// index into AddedTokens::tokens) or a text section. `index` is the piece's position in the
// split (used by Metaspace's prepend_scheme "first").
struct Piece {
    std::string_view text;
    int added = -1;
    size_t index = 0;
};

// Added tokens matched on the raw text as transformers.js does: at each position the longest
// token that starts there wins (leftmost first); lstrip/rstrip trim the whitespace of the
// neighbouring text. Empty text pieces are dropped (their index still counts).
class AddedTokens {
  public:
    // Parses tokenizer.json's "added_tokens"; ids must be >= 0.
    Status parse(const json& added, std::string_view origin);
    void add(AddedToken t);
    std::vector<Piece> split(std::string_view text) const;
    const std::vector<AddedToken>& tokens() const { return tokens_; }
    const AddedToken* find(std::string_view content) const;

  private:
    std::vector<AddedToken> tokens_;
    std::vector<std::vector<int>> by_first_ = std::vector<std::vector<int>>(256);
};

// Post-processor of tokenizer.json ("single" sequence only): TemplateProcessing, BertProcessing,
// RobertaProcessing, or a Sequence holding one of those (ByteLevel steps add nothing).
struct PostProcessor {
    std::vector<int32_t> prefix, suffix;
};
Result<PostProcessor> parse_post_processor(const json& pp,
                                           const std::unordered_map<std::string, int32_t>& vocab,
                                           std::string_view origin);

// Reads a special token name from tokenizer_config.json: a string or {"content": ...}.
std::optional<std::string> config_token(const json& config, const char* key);

}  // namespace mf::io::tok
