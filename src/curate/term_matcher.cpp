#include "curate/term_matcher.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>

#include "curate/lexicon.h"

namespace mf::curate {

namespace {

enum Cls : uint8_t { kWord, kSoft, kJoin, kHard };

constexpr std::array<uint8_t, 128> make_ascii_table() {
    std::array<uint8_t, 128> t{};
    for (int c = 0; c < 128; ++c) {
        uint8_t k = kHard;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) k = kWord;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == '-')
            k = kSoft;
        if (c == '\'' || c == '.' || c == ',' || c == '/' || c == ':' || c == '+' || c == '&' ||
            c == '_')
            k = kJoin;
        t[c] = k;
    }
    return t;
}
constexpr std::array<uint8_t, 128> kAscii = make_ascii_table();

constexpr std::array<unsigned char, 128> make_lower_table() {
    std::array<unsigned char, 128> t{};
    for (int c = 0; c < 128; ++c)
        t[c] = static_cast<unsigned char>((c >= 'A' && c <= 'Z') ? c + 32 : c);
    return t;
}
constexpr std::array<unsigned char, 128> kLower = make_lower_table();

inline bool cont(unsigned char b) {
    return (b & 0xC0) == 0x80;
}

// Class of the character at p (n >= 1 bytes left). *len: bytes it takes. For a joiner, *out is
// the byte it is written as inside a token. Non-special non-ASCII bytes are word bytes, one
// byte at a time (so invalid UTF-8 is harmless).
inline Cls classify(const unsigned char* p, size_t n, size_t* len, unsigned char* out) {
    unsigned char c = p[0];
    if (c < 0x80) {
        *len = 1;
        *out = (c >= 'A' && c <= 'Z') ? static_cast<unsigned char>(c + 32) : c;
        return static_cast<Cls>(kAscii[c]);
    }
    *len = 1;
    *out = c;
    if (c == 0xC2 && n >= 2 && cont(p[1])) {
        unsigned char b = p[1];
        if (b == 0xAA || b == 0xB5 || b == 0xBA) return kWord;  // ª µ º
        *len = 2;
        return b == 0xA0 ? kSoft : kHard;  // nbsp; U+0080..U+00BF
    }
    if (c == 0xC3 && n >= 2 && (p[1] == 0x97 || p[1] == 0xB7)) {  // × ÷
        *len = 2;
        return kHard;
    }
    if (c == 0xE2 && n >= 3 && (p[1] == 0x80 || p[1] == 0x81) && cont(p[2])) {
        unsigned cp = 0x2000u + ((p[1] & 0x3Fu) << 6) + (p[2] & 0x3Fu);
        *len = 3;
        if (cp <= 0x200B || cp == 0x202F || cp == 0x205F) return kSoft;
        if (cp >= 0x2010 && cp <= 0x2015) return kSoft;
        if (cp == 0x2018 || cp == 0x2019) {
            *out = '\'';
            return kJoin;
        }
        return kHard;
    }
    if (c == 0xE3 && n >= 3 && p[1] == 0x80 && p[2] == 0x80) {  // ideographic space
        *len = 3;
        return kSoft;
    }
    return kWord;
}

// Lower-cases a word byte at p: Latin-1 capitals U+00C0..U+00DE (C3 80..C3 9E) -> +0x20.
// Returns the bytes to append (1 or 2) in buf.
inline size_t word_bytes(const unsigned char* p, size_t n, unsigned char* buf) {
    unsigned char c = p[0];
    if (c < 0x80) {
        buf[0] = (c >= 'A' && c <= 'Z') ? static_cast<unsigned char>(c + 32) : c;
        return 1;
    }
    if (c == 0xC3 && n >= 2 && p[1] >= 0x80 && p[1] <= 0x9E && p[1] != 0x97) {
        buf[0] = 0xC3;
        buf[1] = static_cast<unsigned char>(p[1] + 0x20);
        return 2;
    }
    buf[0] = c;
    return 1;
}

// The tokenizer. fn(std::string_view tok, bool hard_before, bool too_long).
template <class F>
inline void tokenize_impl(std::string_view text, F&& fn) {
    constexpr size_t kCap = kMaxTokenBytes + 2;
    unsigned char tok[kCap + 4];
    size_t tlen = 0;  // bytes stored
    size_t full = 0;  // full token length
    bool in_tok = false;
    bool hard = false;  // hard break seen since the last token
    bool any = false;   // a token was emitted
    bool tok_hard = false;
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const size_t n = text.size();

    auto finish = [&]() {
        if (!in_tok) return;
        size_t len = full;
        if (len > 2 && len <= kCap && tok[len - 2] == '\'' && tok[len - 1] == 's') len -= 2;
        bool too_long = len > kMaxTokenBytes;
        fn(std::string_view(reinterpret_cast<const char*>(tok), std::min(len, kMaxTokenBytes)),
           tok_hard && any, too_long);
        any = true;
        in_tok = false;
        hard = false;
    };
    auto push = [&](const unsigned char* b, size_t k) {
        for (size_t j = 0; j < k; ++j) {
            if (tlen < kCap) tok[tlen++] = b[j];
        }
        full += k;
    };

    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c < 0x80 && kAscii[c] == kWord) {
            if (!in_tok) {
                in_tok = true;
                tlen = full = 0;
                tok_hard = hard;
            }
            // Tight loop over a run of ASCII letters/digits (the common case).
            size_t j = i;
            do {
                unsigned char d = p[j];
                if (tlen < kCap) tok[tlen++] = kLower[d];
                ++j;
            } while (j < n && p[j] < 0x80 && kAscii[p[j]] == kWord);
            full += j - i;
            i = j;
            continue;
        }
        size_t len;
        unsigned char out;
        Cls k = classify(p + i, n - i, &len, &out);
        if (k == kWord) {
            if (!in_tok) {
                in_tok = true;
                tlen = full = 0;
                tok_hard = hard;
            }
            unsigned char buf[2];
            size_t m = word_bytes(p + i, n - i, buf);
            push(buf, m);
            i += m;
            continue;
        }
        if (k == kJoin && in_tok && i + len < n) {
            size_t l2;
            unsigned char o2;
            if (classify(p + i + len, n - i - len, &l2, &o2) == kWord) {
                push(&out, 1);
                i += len;
                continue;
            }
        }
        finish();
        if (k != kSoft) hard = true;
        i += len;
    }
    finish();
}

// Splits a canonical key on ' '.
std::vector<std::string_view> split_key(std::string_view key) {
    std::vector<std::string_view> out;
    size_t s = 0;
    while (s <= key.size()) {
        size_t e = key.find(' ', s);
        if (e == std::string_view::npos) e = key.size();
        if (e > s) out.push_back(key.substr(s, e - s));
        s = e + 1;
    }
    return out;
}

bool ends_with(std::string_view s, std::string_view x) {
    return s.size() >= x.size() && s.substr(s.size() - x.size()) == x;
}

bool is_vowel(char c) {
    return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
}

// Terms (canonical keys) and all patterns (key or variant -> term id), shared by both matchers.
void build_patterns(const Lexicon& lex, std::vector<std::string>* terms,
                    std::vector<std::pair<std::string, uint32_t>>* patterns, size_t max_tokens) {
    std::unordered_map<std::string, uint32_t> seen;
    std::vector<std::string> keys;
    auto usable = [&](const std::string& key) {
        if (key.empty()) return false;
        auto toks = split_key(key);
        if (toks.size() > max_tokens) return false;
        for (auto t : toks)
            if (t.size() > kMaxTokenBytes) return false;
        return true;
    };
    for (const std::string& raw : lex.terms()) {
        std::string key = canonical_term_key(raw);
        if (!usable(key) || seen.count(key)) continue;
        uint32_t id = static_cast<uint32_t>(terms->size());
        seen.emplace(key, id);
        terms->push_back(raw);
        keys.push_back(key);
        patterns->emplace_back(key, id);
    }
    for (uint32_t id = 0; id < keys.size(); ++id) {
        for (std::string& v : term_variants(keys[id], (*terms)[id])) {
            if (!usable(v) || seen.count(v)) continue;
            seen.emplace(v, id);
            patterns->emplace_back(std::move(v), id);
        }
    }
}

constexpr size_t kMaxTermTokens = 32;

inline uint64_t hash_bytes(const char* s, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
    while (n >= 8) {
        uint64_t w;
        std::memcpy(&w, s, 8);
        h = (h ^ w) * 0x9E3779B97F4A7C15ull;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    // Tail of 0..7 bytes read with at most two (overlapping) loads, never byte by byte: a byte-wise
    // copy into a word stalls on store forwarding in the hot loop.
    uint64_t w = 0;
    if (n >= 4) {
        uint32_t a, b;
        std::memcpy(&a, s, 4);
        std::memcpy(&b, s + n - 4, 4);
        w = a | (uint64_t(b) << 32);
    } else if (n > 0) {
        w = uint64_t(uint8_t(s[0])) | (uint64_t(uint8_t(s[n / 2])) << 8) |
            (uint64_t(uint8_t(s[n - 1])) << 16);
    }
    h = (h ^ w) * 0xC2B2AE3D27D4EB4Full;
    h ^= h >> 32;
    return h;
}

}  // namespace

void tokenize(std::string_view text, TokenSink& sink) {
    tokenize_impl(
        text, [&](std::string_view t, bool hard, bool too_long) { sink.token(t, hard, too_long); });
}

std::string canonical_term_key(std::string_view text) {
    std::string out;
    tokenize_impl(text, [&](std::string_view t, bool, bool) {
        if (!out.empty()) out += ' ';
        out.append(t);
    });
    return out;
}

std::vector<std::string> term_variants(std::string_view key, std::string_view raw) {
    std::vector<std::string> out;
    auto plurals = [&](std::string_view k) {
        size_t sp = k.rfind(' ');
        std::string prefix(sp == std::string_view::npos ? std::string_view() : k.substr(0, sp + 1));
        std::string w(sp == std::string_view::npos ? k : k.substr(sp + 1));
        if (w.size() < 2 || w.back() < 'a' || w.back() > 'z') return;
        auto add = [&](std::string s) { out.push_back(prefix + s); };
        auto stem = [&](size_t drop) { return w.substr(0, w.size() - drop); };
        if (ends_with(w, "s") || ends_with(w, "x") || ends_with(w, "z") || ends_with(w, "ch") ||
            ends_with(w, "sh"))
            add(w + "es");
        else
            add(w + "s");
        if (ends_with(w, "o")) add(w + "es");
        if (w.size() >= 3 && w.back() == 'y' && !is_vowel(w[w.size() - 2])) add(stem(1) + "ies");
        if (w.size() < 4) return;
        if (ends_with(w, "us")) add(stem(2) + "i");
        if (ends_with(w, "um")) add(stem(2) + "a");
        if (ends_with(w, "is")) add(stem(2) + "es");
        if (ends_with(w, "on")) add(stem(2) + "a");
        if (ends_with(w, "ix") || ends_with(w, "ex")) add(stem(2) + "ices");
        if (ends_with(w, "ax")) add(stem(2) + "aces");
        if (ends_with(w, "nx")) add(stem(1) + "ges");
        if (ends_with(w, "ma")) add(w + "ta");
        if (ends_with(w, "a")) add(w + "e");
        if (ends_with(w, "men")) add(stem(2) + "ina");
    };
    plurals(key);
    if (raw.find('-') != std::string_view::npos) {
        std::string joined_raw;
        for (char c : raw)
            if (c != '-') joined_raw += c;
        std::string joined = canonical_term_key(joined_raw);
        if (!joined.empty() && joined != key) {
            out.push_back(joined);
            plurals(joined);
        }
    }
    return out;
}

// ---- TermMatcher ----

struct TermMatcher::TokenTable {
    // Open addressing, 8-byte slots (hash tag with the length + token id) so probes touch few
    // cache lines; token bytes live in `pool` at off_of_id[id]. A Bloom bitset (2 bits per token,
    // ~16 bits of space per token) in front rejects most tokens that no term uses (common words)
    // without touching the table.
    struct Slot {
        uint32_t tag = 0;
        uint32_t id = UINT32_MAX;
    };
    std::vector<Slot> slots;
    std::vector<uint32_t> off, len, ids;  // per token, in insertion order
    std::vector<uint32_t> off_of_id;      // token bytes offset by id (ids are sparse)
    std::string pool;
    size_t mask = 0;
    std::vector<uint64_t> bloom;
    uint64_t bloom_mask = 0;

    TokenTable() { rehash(1024); }
    // Tag: 24 hash bits and the token length (tokens are <= kMaxTokenBytes < 256 bytes), so a
    // probe compares tag and length without touching the token arrays.
    static uint32_t tag_of(uint64_t h, size_t n) {
        return (static_cast<uint32_t>(h >> 40) << 8) | static_cast<uint32_t>(n & 0xFF);
    }
    void rehash(size_t cap) {
        slots.assign(cap, Slot{});
        mask = cap - 1;
        for (size_t k = 0; k < off.size(); ++k) {
            uint64_t h = hash_bytes(pool.data() + off[k], len[k]);
            place(tag_of(h, len[k]), h, ids[k]);
        }
    }
    void place(uint32_t tag, uint64_t h, uint32_t id) {
        size_t i = h & mask;
        while (slots[i].id != UINT32_MAX)
            i = (i + 1) & mask;
        slots[i] = Slot{tag, id};
    }
    // Blocked Bloom filter: both bits in one 64-bit word, so a lookup touches one cache line.
    bool bloom_has(uint64_t h) const {
        uint64_t w = bloom[(h >> 7) & bloom_mask];
        uint64_t bits = (1ull << ((h >> 40) & 63)) | (1ull << ((h >> 46) & 63));
        return (w & bits) == bits;
    }
    void build_bloom() {
        size_t words = 1 << 10;
        while (words * 64 < off.size() * 12)
            words <<= 1;  // >= 12 bits per token
        bloom.assign(words, 0);
        bloom_mask = words - 1;
        for (size_t k = 0; k < off.size(); ++k) {
            uint64_t h = hash_bytes(pool.data() + off[k], len[k]);
            bloom[(h >> 7) & bloom_mask] |= (1ull << ((h >> 40) & 63)) | (1ull << ((h >> 46) & 63));
        }
    }
    uint32_t probe(const char* p, size_t n, uint64_t h) const {
        uint32_t tag = tag_of(h, n);
        size_t i = h & mask;
        for (;;) {
            const Slot& s = slots[i];
            if (s.id == UINT32_MAX) return UINT32_MAX;
            if (s.tag == tag && std::memcmp(pool.data() + off_of_id[s.id], p, n) == 0) return s.id;
            i = (i + 1) & mask;
        }
    }
    uint32_t find(const char* p, size_t n, uint64_t h) const {
        if (!bloom_has(h)) return UINT32_MAX;
        return probe(p, n, h);
    }
    uint32_t insert(std::string_view t, uint32_t id) {
        uint64_t h = hash_bytes(t.data(), t.size());
        uint32_t f = probe(t.data(), t.size(), h);
        if (f != UINT32_MAX) return f;
        off.push_back(static_cast<uint32_t>(pool.size()));
        len.push_back(static_cast<uint32_t>(t.size()));
        ids.push_back(id);
        if (off_of_id.size() <= id) off_of_id.resize(id + 1, 0);
        off_of_id[id] = off.back();
        pool.append(t);
        if (off.size() * 2 > slots.size())
            rehash(slots.size() * 2);
        else
            place(tag_of(h, t.size()), h, id);
        return id;
    }
};

struct TermMatcher::EdgeTable {
    // Open addressing on 64-bit keys; ~12 bytes per slot, load factor <= 1/2.
    std::vector<uint64_t> keys;
    std::vector<uint32_t> vals;
    size_t mask = 0, used = 0;
    static constexpr uint64_t kEmpty = UINT64_MAX;

    EdgeTable() { resize(1024); }
    static size_t slot_of(uint64_t k) { return (k * 0x9E3779B97F4A7C15ull) >> 20; }
    void resize(size_t cap) {
        std::vector<uint64_t> ok = std::move(keys);
        std::vector<uint32_t> ov = std::move(vals);
        keys.assign(cap, kEmpty);
        vals.assign(cap, 0);
        mask = cap - 1;
        for (size_t i = 0; i < ok.size(); ++i)
            if (ok[i] != kEmpty) put(ok[i], ov[i]);
    }
    void put(uint64_t k, uint32_t v) {
        size_t i = slot_of(k) & mask;
        while (keys[i] != kEmpty)
            i = (i + 1) & mask;
        keys[i] = k;
        vals[i] = v;
    }
    uint32_t get(uint64_t k) const {
        size_t i = slot_of(k) & mask;
        for (;;) {
            uint64_t x = keys[i];
            if (x == k) return vals[i];
            if (x == kEmpty) return UINT32_MAX;
            i = (i + 1) & mask;
        }
    }
    void insert(uint64_t k, uint32_t v) {
        if ((used + 1) * 2 > keys.size()) resize(keys.size() * 2);
        put(k, v);
        ++used;
    }
};

// Every lexicon token has a node of its own: the trie node reached from the root by that token.
// The token table maps a token straight to that node id, which also serves as the token's id in
// the edge keys, so one table probe gives the token, its first-level node and (from node_info_)
// its term, without further lookups.
uint32_t TermMatcher::add_token(std::string_view tok) {
    uint32_t next_node = static_cast<uint32_t>(node_info_.size());
    uint32_t id = tokens_->insert(tok, next_node);
    if (id == next_node) {
        ++n_tokens_;
        node_info_.push_back(kNoTerm);
    }
    return id;
}

void TermMatcher::add_pattern(const std::string& key, uint32_t term_id) {
    auto toks = split_key(key);
    uint32_t node = add_token(toks[0]);
    for (size_t d = 1; d < toks.size(); ++d) {
        uint32_t tid = add_token(toks[d]);
        uint64_t k = (uint64_t(node) << 32) | tid;
        uint32_t child = edges_->get(k);
        if (child == kNone) {
            child = static_cast<uint32_t>(node_info_.size());
            node_info_.push_back(kNoTerm);
            edges_->insert(k, child);
            node_info_[node] |= kHasChildren;
        }
        node = child;
    }
    if ((node_info_[node] & kNoTerm) == kNoTerm)
        node_info_[node] = (node_info_[node] & kHasChildren) | term_id;
    max_depth_ = std::max(max_depth_, toks.size());
    ++n_patterns_;
}

TermMatcher::TermMatcher(const Lexicon& lexicon)
    : tokens_(std::make_unique<TokenTable>()), edges_(std::make_unique<EdgeTable>()) {
    std::vector<std::pair<std::string, uint32_t>> patterns;
    build_patterns(lexicon, &terms_, &patterns, kMaxTermTokens);
    for (const auto& [key, id] : patterns)
        add_pattern(key, id);
    tokens_->build_bloom();
}

TermMatcher::~TermMatcher() = default;

void TermMatcher::find_terms(std::string_view text, std::vector<uint32_t>& found) const {
    uint32_t active[kMaxTermTokens + 1];
    uint32_t next[kMaxTermTokens + 1];
    size_t n_active = 0;
    const TokenTable& table = *tokens_;
    auto record = [&](uint32_t info) {
        uint32_t t = info & kNoTerm;
        if (t == kNoTerm) return;
        for (uint32_t f : found)
            if (f == t) return;
        found.push_back(t);
    };
    tokenize_impl(text, [&](std::string_view tok, bool hard, bool too_long) {
        if (hard) n_active = 0;
        uint32_t tid = too_long
                           ? kNone
                           : table.find(tok.data(), tok.size(), hash_bytes(tok.data(), tok.size()));
        if (tid == kNone) {
            n_active = 0;
            return;
        }
        size_t n_next = 0;
        for (size_t a = 0; a < n_active; ++a) {
            uint32_t c = edges_->get((uint64_t(active[a]) << 32) | tid);
            if (c == kNone) continue;
            uint32_t info = node_info_[c];
            record(info);
            if ((info & kHasChildren) && n_next < kMaxTermTokens) next[n_next++] = c;
        }
        uint32_t info = node_info_[tid];  // the token's own first-level node
        record(info);
        if ((info & kHasChildren) && n_next < kMaxTermTokens) next[n_next++] = tid;
        std::memcpy(active, next, n_next * sizeof(uint32_t));
        n_active = n_next;
    });
}

size_t TermMatcher::count_distinct(std::string_view text) const {
    std::vector<uint32_t> found;
    find_terms(text, found);
    return found.size();
}

// ---- naive reference ----

namespace {

// Decodes one UTF-8 code point strictly; returns its length, or 0 when invalid.
size_t decode(std::string_view s, size_t i, uint32_t* cp) {
    auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
    unsigned char c = b(0);
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (len == 0 || c > 0xF4 || i + len > s.size()) return 0;
    uint32_t v = c & (0x7F >> len);
    for (size_t k = 1; k < len; ++k) {
        if ((b(k) & 0xC0) != 0x80) return 0;
        v = (v << 6) | (b(k) & 0x3F);
    }
    if ((len == 3 && v < 0x800) || (len == 4 && v < 0x10000) || v > 0x10FFFF ||
        (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

struct NChar {
    Cls cls;
    std::string text;  // lower-cased bytes (word), or the joiner byte
};

NChar naive_char(uint32_t cp) {
    std::string ascii_join = "'.,/:+&_";
    if (cp < 0x80) {
        char c = static_cast<char>(cp);
        if (std::isalnum(static_cast<unsigned char>(c)))
            return {kWord,
                    std::string(1, static_cast<char>(std::tolower(static_cast<unsigned char>(c))))};
        if (c == '-' || std::isspace(static_cast<unsigned char>(c))) return {kSoft, ""};
        if (ascii_join.find(c) != std::string::npos) return {kJoin, std::string(1, c)};
        return {kHard, ""};
    }
    if (cp == 0xA0 || cp == 0x3000 || (cp >= 0x2000 && cp <= 0x200B) || cp == 0x202F ||
        cp == 0x205F || (cp >= 0x2010 && cp <= 0x2015))
        return {kSoft, ""};
    if (cp == 0x2018 || cp == 0x2019) return {kJoin, "'"};
    if (cp == 0xD7 || cp == 0xF7) return {kHard, ""};
    if (cp >= 0x80 && cp <= 0xBF && cp != 0xAA && cp != 0xB5 && cp != 0xBA) return {kHard, ""};
    if (cp >= 0x2000 && cp <= 0x207F) return {kHard, ""};
    std::string s;
    append_utf8(s, (cp >= 0xC0 && cp <= 0xDE) ? cp + 0x20 : cp);
    return {kWord, s};
}

}  // namespace

std::vector<std::string> naive_tokens(std::string_view text) {
    std::vector<NChar> chars;
    for (size_t i = 0; i < text.size();) {
        uint32_t cp = 0;
        size_t len = decode(text, i, &cp);
        if (len == 0) {
            chars.push_back({kWord, std::string(1, text[i])});
            ++i;
        } else {
            chars.push_back(naive_char(cp));
            i += len;
        }
    }
    std::vector<std::string> out;
    std::string cur;
    bool hard = false;
    auto end_token = [&]() {
        if (cur.empty()) return;
        if (cur.size() > 2 && cur.substr(cur.size() - 2) == "'s") cur.resize(cur.size() - 2);
        if (hard && !out.empty()) out.push_back("|");
        out.push_back(cur);
        cur.clear();
        hard = false;
    };
    for (size_t i = 0; i < chars.size(); ++i) {
        const NChar& c = chars[i];
        if (c.cls == kWord) {
            cur += c.text;
        } else if (c.cls == kJoin && !cur.empty() && i + 1 < chars.size() &&
                   chars[i + 1].cls == kWord) {
            cur += c.text;
        } else {
            end_token();
            if (c.cls != kSoft) hard = true;
        }
    }
    end_token();
    return out;
}

NaiveTermMatcher::NaiveTermMatcher(const Lexicon& lexicon) {
    build_patterns(lexicon, &terms_, &patterns_, kMaxTermTokens);
}

std::vector<uint32_t> NaiveTermMatcher::find_terms(std::string_view text) const {
    std::string hay = " ";
    for (const auto& t : naive_tokens(text)) {
        if (t.size() > kMaxTokenBytes) {
            hay += "#too-long# ";  // never equal to a pattern token
            continue;
        }
        hay += t;
        hay += ' ';
    }
    // (position of the end of the match, term) so that the order of first occurrence matches
    // the streaming matcher, which reports a term when its last token is read.
    std::vector<std::pair<size_t, uint32_t>> hits;
    for (const auto& [pat, id] : patterns_) {
        std::string needle = " " + pat + " ";
        size_t pos = hay.find(needle);
        if (pos != std::string::npos) hits.emplace_back(pos + needle.size(), id);
    }
    std::sort(hits.begin(), hits.end());
    std::vector<uint32_t> out;
    for (const auto& [end, id] : hits) {
        (void)end;
        if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
    }
    return out;
}

}  // namespace mf::curate
