// Small text helpers shared by every stage: UTF-8 validation, JSON string escaping (the fast
// writer used for Sample JSONL), whitespace normalisation and ASCII case folding.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mf::text {

// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool valid_utf8(std::string_view s);
// Byte offset of the first invalid UTF-8 sequence, or npos.
size_t first_invalid_utf8(std::string_view s);
// Replaces invalid sequences with U+FFFD.
std::string sanitize_utf8(std::string_view s);

// Appends `s` as a JSON string literal (with quotes) to `out`. Escapes ", \, control chars;
// leaves valid UTF-8 as is.
void append_json_string(std::string& out, std::string_view s);
std::string json_quote(std::string_view s);

// Collapses runs of Unicode-agnostic ASCII whitespace to one space and trims both ends.
std::string collapse_whitespace(std::string_view s);
std::string_view trim(std::string_view s);
std::string ascii_lower(std::string_view s);
bool starts_with(std::string_view s, std::string_view prefix);
bool ends_with(std::string_view s, std::string_view suffix);
std::vector<std::string_view> split(std::string_view s, char sep);

}  // namespace mf::text
