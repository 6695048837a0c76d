// Sentence splitting for inline mentions (see ingest_internal.h for the rules).
#include <array>
#include <string>
#include <string_view>

#include "core/text.h"
#include "curate/ingest_internal.h"

namespace mf::curate::ingest_detail {

namespace {

bool is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}
bool is_upper(unsigned char c) {
    return c >= 'A' && c <= 'Z';
}
bool is_lower(unsigned char c) {
    return c >= 'a' && c <= 'z';
}
bool is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}
bool is_alpha(unsigned char c) {
    return is_upper(c) || is_lower(c);
}

// Lower-cased words that end with '.' without ending the sentence. Compared without the final
// '.', so "e.g" matches "e.g." and "al" matches "et al.".
constexpr std::array<std::string_view, 38> kAbbreviations = {
    "fig",  "figs",  "e.g", "i.e",  "al",   "vs",   "cf",  "approx", "ca",  "dr",
    "mr",   "mrs",   "ms",  "prof", "no",   "nos",  "vol", "eq",     "eqs", "ref",
    "refs", "suppl", "tab", "resp", "st",   "jr",   "sr",  "inc",    "ltd", "co",
    "sp",   "spp",   "var", "viz",  "dept", "univ", "nr",  "ed"};

bool is_abbreviation(std::string_view word) {
    std::string w = text::ascii_lower(word);
    for (auto a : kAbbreviations)
        if (w == a) return true;
    return false;
}

// Characters that may close a sentence after its final punctuation.
bool is_closer(unsigned char c) {
    return c == ')' || c == ']' || c == '"' || c == '\'';
}

// Whether the byte at `i` can start a new sentence.
bool can_start(std::string_view s, size_t i) {
    unsigned char c = s[i];
    if (is_upper(c) || is_digit(c)) return true;
    if (c == '(' || c == '[' || c == '"' || c == '\'') return true;
    if (c >= 0x80) {
        // Typographic quotes (U+201C/U+2018) and other non-ASCII letters (Greek, accented
        // capitals): treat as a possible start.
        return true;
    }
    return false;
}

}  // namespace

std::vector<Span> sentence_spans(std::string_view s) {
    std::vector<Span> out;
    size_t start = 0;
    auto push = [&](size_t b, size_t e) {
        while (b < e && is_space(s[b]))
            ++b;
        while (e > b && is_space(s[e - 1]))
            --e;
        if (e > b) out.push_back({b, e});
    };
    for (size_t i = 0; i < s.size(); ++i) {
        unsigned char c = s[i];
        if (c != '.' && c != '!' && c != '?') continue;
        // Include runs of terminal punctuation and closers ("...", "?!", ".)").
        size_t end = i + 1;
        while (end < s.size() && (s[end] == '.' || s[end] == '!' || s[end] == '?'))
            ++end;
        while (end < s.size() && is_closer(static_cast<unsigned char>(s[end])))
            ++end;
        // Must be followed by whitespace, then a sentence start.
        if (end >= s.size() || !is_space(static_cast<unsigned char>(s[end]))) {
            i = end - 1;
            continue;
        }
        size_t next = end;
        while (next < s.size() && is_space(static_cast<unsigned char>(s[next])))
            ++next;
        if (next >= s.size()) break;  // trailing punctuation: the final push covers it
        if (!can_start(s, next)) {
            i = end - 1;
            continue;
        }
        if (c == '.' && end == i + 1) {
            // The word before the period: letters, digits and inner periods ("e.g").
            size_t w = i;
            while (w > start && (is_alpha(static_cast<unsigned char>(s[w - 1])) ||
                                 is_digit(static_cast<unsigned char>(s[w - 1])) || s[w - 1] == '.'))
                --w;
            std::string_view word = s.substr(w, i - w);
            bool initial = word.size() == 1 && is_upper(static_cast<unsigned char>(word[0]));
            if (is_abbreviation(word) || initial) {
                i = end - 1;
                continue;
            }
        }
        push(start, end);
        start = next;
        i = next - 1;
    }
    push(start, s.size());
    return out;
}

std::vector<std::string> split_sentences(std::string_view text) {
    std::vector<std::string> out;
    for (const Span& sp : sentence_spans(text))
        out.emplace_back(text.substr(sp.begin, sp.end - sp.begin));
    return out;
}

}  // namespace mf::curate::ingest_detail
