// Answer extraction: difflib ratio, the official match_choice3 and the robust extractor.
#include <locale.h>
#include <wctype.h>

#include <algorithm>
#include <cctype>
#include <regex>
#include <unordered_map>

#include "core/text.h"
#include "eval/eval.h"

namespace mf::eval {

using namespace ::mf::text;  // NOLINT

namespace {

// UTF-8 to code points; an invalid byte becomes U+FFFD.
std::u32string to_u32(std::string_view s) {
    std::u32string out;
    out.reserve(s.size());
    size_t i = 0;
    while (i < s.size()) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        char32_t cp = 0;
        int n = 0;
        if (c < 0x80) {
            cp = c;
            n = 1;
        } else if ((c & 0xE0) == 0xC0) {
            cp = c & 0x1F;
            n = 2;
        } else if ((c & 0xF0) == 0xE0) {
            cp = c & 0x0F;
            n = 3;
        } else if ((c & 0xF8) == 0xF0) {
            cp = c & 0x07;
            n = 4;
        } else {
            out.push_back(0xFFFD);
            ++i;
            continue;
        }
        if (i + n > s.size()) {
            out.push_back(0xFFFD);
            ++i;
            continue;
        }
        bool ok = true;
        for (int k = 1; k < n; ++k) {
            unsigned char d = static_cast<unsigned char>(s[i + k]);
            if ((d & 0xC0) != 0x80) ok = false;
            cp = (cp << 6) | (d & 0x3F);
        }
        if (!ok) {
            out.push_back(0xFFFD);
            ++i;
            continue;
        }
        out.push_back(cp);
        i += n;
    }
    return out;
}

// Python's \w for str patterns: alphanumeric (Unicode) or '_'. Non-ASCII uses glibc's C.UTF-8
// classification (letters and digits of every script), which matches str.isalnum() for the
// scripts model outputs use (Latin, Greek, Cyrillic, CJK).
bool is_word(char32_t c) {
    if (c < 0x80)
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               c == '_';
    static locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
    if (loc == static_cast<locale_t>(0)) return true;  // no Unicode tables: treat as letter
    return iswalnum_l(static_cast<wint_t>(c), loc) != 0;
}

std::string lower_ascii(std::string_view s) {
    return ascii_lower(s);
}

// Python str.lower() for the characters that matter here (ASCII + Latin-1/Greek/Cyrillic via
// towlower in C.UTF-8). Returned as code points.
std::u32string lower_u32(std::u32string s) {
    static locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
    for (auto& c : s) {
        if (c < 0x80) {
            if (c >= 'A' && c <= 'Z') c = c - 'A' + 'a';
        } else if (loc != static_cast<locale_t>(0)) {
            c = static_cast<char32_t>(towlower_l(static_cast<wint_t>(c), loc));
        }
    }
    return s;
}

double ratio_u32(const std::u32string& a, const std::u32string& b) {
    const size_t la = a.size();
    const size_t lb = b.size();
    if (la + lb == 0) return 1.0;
    // b2j with autojunk (no isjunk function, so bjunk is empty).
    std::unordered_map<char32_t, std::vector<int>> b2j;
    for (size_t j = 0; j < lb; ++j)
        b2j[b[j]].push_back(static_cast<int>(j));
    if (lb >= 200) {
        const size_t ntest = lb / 100 + 1;
        for (auto it = b2j.begin(); it != b2j.end();) {
            if (it->second.size() > ntest)
                it = b2j.erase(it);
            else
                ++it;
        }
    }
    auto longest = [&](int alo, int ahi, int blo, int bhi, int& bi, int& bj, int& bs) {
        bi = alo;
        bj = blo;
        bs = 0;
        std::unordered_map<int, int> j2len;
        std::unordered_map<int, int> newj2len;
        for (int i = alo; i < ahi; ++i) {
            newj2len.clear();
            auto it = b2j.find(a[i]);
            if (it != b2j.end()) {
                for (int j : it->second) {
                    if (j < blo) continue;
                    if (j >= bhi) break;
                    auto prev = j2len.find(j - 1);
                    int k = (prev == j2len.end() ? 0 : prev->second) + 1;
                    newj2len[j] = k;
                    if (k > bs) {
                        bi = i - k + 1;
                        bj = j - k + 1;
                        bs = k;
                    }
                }
            }
            std::swap(j2len, newj2len);
        }
        // Extend over equal elements (popular ones included: they are not "junk").
        while (bi > alo && bj > blo && a[bi - 1] == b[bj - 1]) {
            --bi;
            --bj;
            ++bs;
        }
        while (bi + bs < ahi && bj + bs < bhi && a[bi + bs] == b[bj + bs])
            ++bs;
    };
    struct Range {
        int alo, ahi, blo, bhi;
    };
    std::vector<Range> queue{{0, static_cast<int>(la), 0, static_cast<int>(lb)}};
    int64_t matches = 0;
    while (!queue.empty()) {
        Range r = queue.back();
        queue.pop_back();
        int i = 0, j = 0, k = 0;
        longest(r.alo, r.ahi, r.blo, r.bhi, i, j, k);
        if (k > 0) {
            matches += k;
            if (r.alo < i && r.blo < j) queue.push_back({r.alo, i, r.blo, j});
            if (i + k < r.ahi && j + k < r.bhi) queue.push_back({i + k, r.ahi, j + k, r.bhi});
        }
    }
    return 2.0 * static_cast<double>(matches) / static_cast<double>(la + lb);
}

// Python str.rfind over code points; -1 when absent.
int64_t rfind_u32(const std::u32string& hay, const std::u32string& needle) {
    auto pos = hay.rfind(needle);
    return pos == std::u32string::npos ? -1 : static_cast<int64_t>(pos);
}

bool is_yes_no(const std::vector<std::string>& options) {
    if (options.size() != 2) return false;
    auto a = lower_ascii(trim(options[0]));
    auto b = lower_ascii(trim(options[1]));
    return (a == "yes" && b == "no") || (a == "no" && b == "yes");
}

}  // namespace

double difflib_ratio(std::string_view a, std::string_view b) {
    return ratio_u32(to_u32(a), to_u32(b));
}

std::string match_choice3(std::string_view text_in, const std::vector<std::string>& options) {
    // Regex pass: (is |是|\*|\W|\ |\(|为|^|'|\"|#)(?![aA] )([a-nA-N])(\W|$), first match.
    // Every listed single-character prefix is itself \W, and "is " ends in a space, so the
    // left-most match is the left-most letter p with: p == 0, or text[p-1] is \W, 是 or 为;
    // not "a "/"A "; followed by \W or the end.
    const std::u32string t = to_u32(text_in);
    for (size_t p = 0; p < t.size(); ++p) {
        char32_t c = t[p];
        bool letter = (c >= 'a' && c <= 'n') || (c >= 'A' && c <= 'N');
        if (!letter) continue;
        bool pre = p == 0 || !is_word(t[p - 1]) || t[p - 1] == U'是' || t[p - 1] == U'为';
        if (!pre) continue;
        if ((c == 'a' || c == 'A') && p + 1 < t.size() && t[p + 1] == ' ') continue;
        bool post = p + 1 == t.size() || !is_word(t[p + 1]);
        if (!post) continue;
        return std::string(1, static_cast<char>(c));
    }
    if (options.empty()) return "";
    // Intended fallback.
    const std::u32string low = lower_u32(t);
    int best = -1;
    int64_t best_pos = -1;
    for (size_t i = 0; i < options.size(); ++i) {
        int64_t pos = rfind_u32(low, lower_u32(to_u32(options[i])));
        if (pos > best_pos) {  // sorted(..., reverse=True) is stable: ties keep the earlier
            best_pos = pos;
            best = static_cast<int>(i);
        }
    }
    if (best < 0) {
        double hi = 0;
        best = 0;
        for (size_t i = 0; i < options.size(); ++i) {
            double r = ratio_u32(lower_u32(to_u32(options[i])), low);
            if (r >= hi) {
                hi = r;
                best = static_cast<int>(i);
            }
        }
    }
    return std::string(1, kLetters[std::min<size_t>(static_cast<size_t>(best), 13)]);
}

const char* extractor_name(Extractor e) {
    return e == Extractor::kOfficial ? "official" : "robust";
}

std::optional<Extractor> parse_extractor(std::string_view name) {
    if (name == "robust") return Extractor::kRobust;
    if (name == "official") return Extractor::kOfficial;
    return std::nullopt;
}

Extraction extract_official(std::string_view text, const std::vector<std::string>& options) {
    Extraction ex;
    ex.letter = match_choice3(text, options);
    ex.method = "match_choice3";
    if (ex.letter.size() == 1 && ex.letter[0] >= 'A' && ex.letter[0] <= 'N') {
        int idx = ex.letter[0] - 'A';
        if (idx < static_cast<int>(options.size())) ex.index = idx;
    }
    return ex;
}

namespace {

// Normalised text for option matching: lower case, non-alphanumerics to single spaces.
std::string squash(std::string_view s) {
    std::string out;
    bool space = true;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c >= 0x80) {
            out.push_back(static_cast<char>(std::tolower(c)));
            space = false;
        } else if (!space) {
            out.push_back(' ');
            space = true;
        }
    }
    while (!out.empty() && out.back() == ' ')
        out.pop_back();
    return out;
}

// Whole-word occurrences of `needle` (squashed) in `hay` (squashed); positions.
std::vector<size_t> word_hits(const std::string& hay, const std::string& needle) {
    std::vector<size_t> hits;
    if (needle.empty()) return hits;
    size_t pos = 0;
    while ((pos = hay.find(needle, pos)) != std::string::npos) {
        bool left = pos == 0 || hay[pos - 1] == ' ';
        bool right = pos + needle.size() == hay.size() || hay[pos + needle.size()] == ' ';
        if (left && right) hits.push_back(pos);
        ++pos;
    }
    return hits;
}

int letter_index(char c, size_t n) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c < 'A' || c > 'Z') return -1;
    int idx = c - 'A';
    return idx < static_cast<int>(n) ? idx : -1;
}

}  // namespace

Extraction extract_robust(std::string_view text_in, const std::vector<std::string>& options) {
    Extraction ex;
    const size_t n = options.size();
    // Strip markdown emphasis and surrounding whitespace.
    std::string text;
    for (char c : text_in)
        if (c != '*' && c != '`') text.push_back(c);
    std::string t(trim(text));
    auto found = [&](int idx, const char* method) {
        ex.index = idx;
        ex.letter = std::string(1, kLetters[idx]);
        ex.method = method;
        return ex;
    };
    if (n == 0) {
        ex.method = "no_options";
        return ex;
    }
    std::smatch m;
    // 1. The whole answer is a letter: "B", "(B)", "B.", "B)", "b", "[B]".
    static const std::regex whole(R"(^[\(\[]?([A-Za-z])[\)\]]?[.:)]?$)");
    if (std::regex_match(t, m, whole)) {
        int idx = letter_index(m[1].str()[0], n);
        if (idx >= 0) return found(idx, "letter");
    }
    // 2. Leading letter with a delimiter: "B. Pneumonia", "(B) ...", "B) ...", "B: ...", "B - x".
    static const std::regex lead(R"(^[\(\[]?([A-Z])(?:[\)\]]|[.:]|\s+-)(?:\s|$))");
    if (std::regex_search(t, m, lead)) {
        int idx = letter_index(m[1].str()[0], n);
        if (idx >= 0) return found(idx, "letter");
    }
    // 3. Explicit phrases anywhere: "option B", "answer is B", "answer: (B)", "choice B".
    static const std::regex phrase(
        R"((?:answer|option|choice)(?:\s+is)?(?:\s*[:=]\s*|\s+)(?:option\s+|choice\s+)?[\(\[]?([A-Za-z])(?:[\)\]]|\b)(?![A-Za-z'-]))",
        std::regex::icase);
    if (std::regex_search(t, m, phrase)) {
        char c = m[1].str()[0];
        // A lower-case bare letter after "answer is" is likely an article ("answer is a mass").
        bool ok = (c >= 'A' && c <= 'Z') || m[0].str().find('(') != std::string::npos;
        if (ok || (c != 'a' && c != 'i')) {
            int idx = letter_index(c, n);
            if (idx >= 0) return found(idx, "letter_phrase");
        }
    }
    // 4. "(B)" anywhere.
    static const std::regex paren(R"(\(([A-Z])\))");
    if (std::regex_search(t, m, paren)) {
        int idx = letter_index(m[1].str()[0], n);
        if (idx >= 0) return found(idx, "letter_paren");
    }
    // 5. The option's own text (whole words); the longest option that occurs wins (so
    // "left lung" beats "lung"); equal length -> the first occurrence in the answer.
    const std::string st = squash(t);
    int best = -1;
    size_t best_len = 0;
    size_t best_pos = 0;
    bool yn = is_yes_no(options);
    if (!yn) {
        for (size_t i = 0; i < n; ++i) {
            std::string o = squash(options[i]);
            auto hits = word_hits(st, o);
            if (hits.empty()) continue;
            if (o.size() > best_len || (o.size() == best_len && hits[0] < best_pos)) {
                best = static_cast<int>(i);
                best_len = o.size();
                best_pos = hits[0];
            }
        }
        if (best >= 0) return found(best, "option_text");
    } else {
        // 6. yes/no on word boundaries: the first of "yes"/"no" in the answer ("unknown" is not
        // "no"; "No, there is no ..." is no).
        auto y = word_hits(st, "yes");
        auto no = word_hits(st, "no");
        size_t ypos = y.empty() ? std::string::npos : y[0];
        size_t npos_ = no.empty() ? std::string::npos : no[0];
        if (ypos != npos_) {
            bool is_yes = ypos < npos_;
            for (size_t i = 0; i < n; ++i) {
                if (lower_ascii(trim(options[i])) == (is_yes ? "yes" : "no"))
                    return found(static_cast<int>(i), "yes_no");
            }
        }
    }
    // 7. A single distinct stand-alone upper-case letter within range ("It is B", "#B",
    // "答案为C"); "A" before a lower-case word is the article and "I" the pronoun.
    int only = -1;
    bool several = false;
    for (size_t p = 0; p < t.size(); ++p) {
        char c = t[p];
        if (c < 'A' || c > 'Z') continue;
        unsigned char prev = p == 0 ? ' ' : static_cast<unsigned char>(t[p - 1]);
        unsigned char next = p + 1 < t.size() ? static_cast<unsigned char>(t[p + 1]) : ' ';
        if (p > 0 && prev < 0x80 && std::isalnum(prev)) continue;
        if (p + 1 < t.size() && next < 0x80 && std::isalnum(next)) continue;
        if (c == 'A' && next == ' ' && p + 2 < t.size() &&
            std::islower(static_cast<unsigned char>(t[p + 2])))
            continue;
        if (c == 'I' && (next == ' ' || next == '\'')) continue;
        int idx = letter_index(c, n);
        if (idx < 0) continue;
        if (only >= 0 && only != idx) several = true;
        only = idx;
    }
    if (only >= 0 && !several) return found(only, "letter_standalone");
    ex.method = "unresolved";
    return ex;
}

Extraction extract(Extractor e, std::string_view text, const std::vector<std::string>& options) {
    return e == Extractor::kOfficial ? extract_official(text, options)
                                     : extract_robust(text, options);
}

}  // namespace mf::eval
