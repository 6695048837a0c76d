// Byte-level BPE from tokenizer.json. See bpe_tokenizer.h for the contract.
#include "io/bpe_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <unordered_map>

#include "core/text.h"
#include "io/file.h"
#include "io/tokenizer_internal.h"

namespace mf::io {
namespace {

using json = nlohmann::json;
using tok::field_error;
using tok::MergeRule;
using tok::pair_key;
using tok::parse_merges;
using tok::parse_vocab;

// GPT-2's byte <-> unicode table: printable bytes map to themselves, the rest to U+0100 + n.
struct ByteTable {
    std::array<std::string, 256> byte_to_utf8;
    std::array<int, 512> cp_to_byte{};  // -1 when the code point is not a byte-level char
    ByteTable() {
        cp_to_byte.fill(-1);
        int n = 0;
        for (int b = 0; b < 256; ++b) {
            bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
            int cp = keep ? b : 256 + n++;
            std::string s;
            if (cp < 0x80) {
                s.push_back(static_cast<char>(cp));
            } else {
                s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
                s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
            }
            byte_to_utf8[b] = s;
            cp_to_byte[cp] = b;
        }
    }
};
const ByteTable& byte_table() {
    static const ByteTable t;
    return t;
}

// Decodes one UTF-8 code point at s[i] (input assumed valid); advances i.
uint32_t next_cp(std::string_view s, size_t& i) {
    auto c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k < len && i + k < s.size(); ++k) {
        cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    }
    i += len;
    return cp;
}

// Maps byte-level unicode back to bytes (chars outside the table are kept as UTF-8).
std::string unicode_to_bytes_(std::string_view s) {
    const ByteTable& bt = byte_table();
    std::string out;
    for (size_t i = 0; i < s.size();) {
        size_t b = i;
        uint32_t cp = next_cp(s, i);
        if (cp < bt.cp_to_byte.size() && bt.cp_to_byte[cp] >= 0) {
            out.push_back(static_cast<char>(bt.cp_to_byte[cp]));
        } else {
            out.append(s.substr(b, std::min(i, s.size()) - b));
        }
    }
    return out;
}

struct Regex {
    pcre2_code* code = nullptr;
    ~Regex() {
        if (code != nullptr) pcre2_code_free(code);
    }
};

enum class SplitBehavior { kIsolated, kRemoved };
struct PreStep {
    bool byte_level = false;  // ByteLevel step
    bool add_prefix_space = false;
    std::shared_ptr<Regex> regex;  // Split pattern, or the GPT-2 pattern for ByteLevel+use_regex
    SplitBehavior behavior = SplitBehavior::kIsolated;
};

struct AddedToken {
    int32_t id = 0;
    std::string content;
    bool special = false, lstrip = false, rstrip = false, single_word = false;
};

const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

Result<std::shared_ptr<Regex>> compile(const std::string& pattern, bool literal,
                                       const std::string& field) {
    int err = 0;
    PCRE2_SIZE off = 0;
    uint32_t opts = PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0);
    auto r = std::make_shared<Regex>();
    r->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), opts,
                            &err, &off, nullptr);
    if (r->code == nullptr) {
        PCRE2_UCHAR buf[256];
        pcre2_get_error_message(err, buf, sizeof(buf));
        return Status::invalid_argument(field + ": regex does not compile at offset " +
                                        std::to_string(off) + ": " + reinterpret_cast<char*>(buf));
    }
    pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter on failure
    return r;
}

bool is_space_byte(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

}  // namespace

struct BpeTokenizer::Impl {
    std::unordered_map<std::string, int32_t> vocab;  // token string (byte-level form) -> id
    std::vector<std::string> id_to_tok;
    std::vector<uint8_t> special;        // by id
    std::vector<int16_t> added_index;    // by id: index into added, -1 if none
    std::array<int32_t, 256> byte_id{};  // id of each single byte
    struct Merge {
        int32_t rank;
        int32_t merged;
    };
    std::unordered_map<uint64_t, Merge> merges;
    std::vector<AddedToken> added;
    std::array<std::vector<int>, 256> added_by_first;  // indexes into added, longest first
    bool nfc = false;
    bool ignore_merges = false;
    std::vector<PreStep> steps;
    std::vector<int32_t> prefix_ids, suffix_ids;  // TemplateProcessing "single"

    mutable std::mutex cache_mu;
    mutable std::unordered_map<std::string, std::vector<int32_t>> cache;

    std::vector<int32_t> bpe(std::string_view bytes) const;
    std::vector<int32_t> bpe_naive(std::string_view bytes) const;
    void encode_word(std::string_view bytes, std::vector<int32_t>& out) const;
    void encode_section(std::string_view text, std::vector<int32_t>& out) const;
};

// ---- BPE ----------------------------------------------------------------------------------------

std::vector<int32_t> BpeTokenizer::Impl::bpe(std::string_view bytes) const {
    const int n = static_cast<int>(bytes.size());
    std::vector<int32_t> id(n);
    std::vector<int> prev(n), next(n);
    for (int i = 0; i < n; ++i) {
        id[i] = byte_id[static_cast<unsigned char>(bytes[i])];
        prev[i] = i - 1;
        next[i] = i + 1 < n ? i + 1 : -1;
    }
    struct Cand {
        int32_t rank;
        int pos;
        int32_t left, right;
        bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
    auto push = [&](int p) {
        if (p < 0 || next[p] < 0) return;
        auto it = merges.find(pair_key(id[p], id[next[p]]));
        if (it != merges.end()) heap.push({it->second.rank, p, id[p], id[next[p]]});
    };
    for (int i = 0; i + 1 < n; ++i)
        push(i);
    std::vector<uint8_t> dead(n, 0);
    while (!heap.empty()) {
        Cand c = heap.top();
        heap.pop();
        int p = c.pos;
        if (dead[p] || id[p] != c.left || next[p] < 0 || id[next[p]] != c.right) continue;
        int q = next[p];
        id[p] = merges.at(pair_key(c.left, c.right)).merged;
        dead[q] = 1;
        next[p] = next[q];
        if (next[q] >= 0) prev[next[q]] = p;
        push(prev[p]);
        push(p);
    }
    std::vector<int32_t> out;
    for (int i = 0; i >= 0 && i < n; i = next[i])
        out.push_back(id[i]);
    return out;
}

std::vector<int32_t> BpeTokenizer::Impl::bpe_naive(std::string_view bytes) const {
    std::vector<int32_t> ids;
    for (char c : bytes)
        ids.push_back(byte_id[static_cast<unsigned char>(c)]);
    while (ids.size() > 1) {
        int32_t best_rank = INT32_MAX;
        size_t best = 0;
        for (size_t i = 0; i + 1 < ids.size(); ++i) {
            auto it = merges.find(pair_key(ids[i], ids[i + 1]));
            if (it != merges.end() && it->second.rank < best_rank) {
                best_rank = it->second.rank;
                best = i;
            }
        }
        if (best_rank == INT32_MAX) break;
        ids[best] = merges.at(pair_key(ids[best], ids[best + 1])).merged;
        ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    }
    return ids;
}

void BpeTokenizer::Impl::encode_word(std::string_view bytes, std::vector<int32_t>& out) const {
    if (bytes.empty()) return;
    if (bytes.size() == 1) {
        out.push_back(byte_id[static_cast<unsigned char>(bytes[0])]);
        return;
    }
    std::string key(bytes);
    {
        std::lock_guard<std::mutex> lock(cache_mu);
        auto it = cache.find(key);
        if (it != cache.end()) {
            out.insert(out.end(), it->second.begin(), it->second.end());
            return;
        }
    }
    std::vector<int32_t> ids;
    if (ignore_merges) {
        auto it = vocab.find(bytes_to_unicode(bytes));
        if (it != vocab.end()) ids.push_back(it->second);
    }
    if (ids.empty()) ids = bpe(bytes);
    out.insert(out.end(), ids.begin(), ids.end());
    std::lock_guard<std::mutex> lock(cache_mu);
    if (cache.size() >= (1u << 17)) cache.clear();
    cache.emplace(std::move(key), std::move(ids));
}

// ---- pre-tokenization ---------------------------------------------------------------------------

namespace {

// Splits `s` by `re`, appending pieces to `out` (Isolated: matches and gaps; Removed: gaps).
void regex_split(const Regex& re, SplitBehavior behavior, std::string_view s,
                 std::vector<std::string>& out) {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(re.code, nullptr);
    pcre2_match_context* mc = pcre2_match_context_create(nullptr);
    pcre2_jit_stack* js = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
    pcre2_jit_stack_assign(mc, nullptr, js);
    auto subject = reinterpret_cast<PCRE2_SPTR>(s.data());
    size_t pos = 0, gap_start = 0;
    while (pos <= s.size()) {
        int rc = pcre2_match(re.code, subject, s.size(), pos, PCRE2_NO_UTF_CHECK, md, mc);
        if (rc < 0) break;  // no match (or a resource error): the rest is one gap
        PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        size_t b = ov[0], e = ov[1];
        if (e == b) {  // empty match: step one code point
            if (b >= s.size()) break;
            size_t k = b;
            next_cp(s, k);
            pos = k;
            continue;
        }
        if (b > gap_start) out.emplace_back(s.substr(gap_start, b - gap_start));
        if (behavior == SplitBehavior::kIsolated) out.emplace_back(s.substr(b, e - b));
        gap_start = pos = e;
    }
    if (gap_start < s.size()) out.emplace_back(s.substr(gap_start));
    pcre2_jit_stack_free(js);
    pcre2_match_context_free(mc);
    pcre2_match_data_free(md);
}

std::string nfc_normalize(std::string_view s) {
    bool ascii = std::all_of(s.begin(), s.end(), [](char c) { return (c & 0x80) == 0; });
    if (ascii) return std::string(s);
    utf8proc_uint8_t* out = nullptr;
    utf8proc_ssize_t n =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                     static_cast<utf8proc_ssize_t>(s.size()), &out,
                     static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    if (n < 0) return std::string(s);
    std::string r(reinterpret_cast<char*>(out), static_cast<size_t>(n));
    std::free(out);
    return r;
}

}  // namespace

void BpeTokenizer::Impl::encode_section(std::string_view text, std::vector<int32_t>& out) const {
    if (text.empty()) return;
    std::vector<std::string> pieces{nfc ? nfc_normalize(text) : std::string(text)};
    for (const PreStep& step : steps) {
        std::vector<std::string> next;
        for (std::string& p : pieces) {
            if (step.byte_level && step.add_prefix_space && (p.empty() || p[0] != ' ')) {
                p.insert(p.begin(), ' ');
            }
            if (step.regex) {
                regex_split(*step.regex, step.behavior, p, next);
            } else {
                next.push_back(std::move(p));
            }
        }
        pieces = std::move(next);
    }
    for (const std::string& p : pieces)
        encode_word(p, out);
}

// ---- public API ---------------------------------------------------------------------------------

BpeTokenizer::BpeTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BpeTokenizer::BpeTokenizer(BpeTokenizer&&) noexcept = default;
BpeTokenizer& BpeTokenizer::operator=(BpeTokenizer&&) noexcept = default;
BpeTokenizer::~BpeTokenizer() = default;

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, bool add_special) const {
    const Impl& m = *impl_;
    std::string clean;
    if (!text::valid_utf8(text)) {
        clean = text::sanitize_utf8(text);
        text = clean;
    }
    // Split on added tokens: (begin, end, added index or -1).
    struct Sec {
        size_t b, e;
        int added;
    };
    std::vector<Sec> secs;
    size_t start = 0;
    for (size_t i = 0; i < text.size();) {
        int hit = -1;
        for (int k : m.added_by_first[static_cast<unsigned char>(text[i])]) {
            const std::string& c = m.added[k].content;
            if (text.compare(i, c.size(), c) != 0) continue;
            if (m.added[k].single_word) {
                auto word = [](char ch) {
                    return std::isalnum(static_cast<unsigned char>(ch)) || (ch & 0x80);
                };
                if ((i > 0 && word(text[i - 1])) ||
                    (i + c.size() < text.size() && word(text[i + c.size()]))) {
                    continue;
                }
            }
            hit = k;
            break;
        }
        if (hit < 0) {
            ++i;
            continue;
        }
        if (i > start) secs.push_back({start, i, -1});
        secs.push_back({i, i + m.added[hit].content.size(), hit});
        i += m.added[hit].content.size();
        start = i;
    }
    if (start < text.size()) secs.push_back({start, text.size(), -1});
    for (size_t s = 0; s < secs.size(); ++s) {
        if (secs[s].added < 0) continue;
        const AddedToken& t = m.added[secs[s].added];
        if (t.lstrip && s > 0 && secs[s - 1].added < 0) {
            while (secs[s - 1].e > secs[s - 1].b && is_space_byte(text[secs[s - 1].e - 1])) {
                --secs[s - 1].e;
            }
        }
        if (t.rstrip && s + 1 < secs.size() && secs[s + 1].added < 0) {
            while (secs[s + 1].b < secs[s + 1].e && is_space_byte(text[secs[s + 1].b])) {
                ++secs[s + 1].b;
            }
        }
    }
    std::vector<int32_t> out;
    if (add_special) out = m.prefix_ids;
    for (const Sec& s : secs) {
        if (s.added >= 0) {
            out.push_back(m.added[s.added].id);
        } else {
            m.encode_section(text.substr(s.b, s.e - s.b), out);
        }
    }
    if (add_special) out.insert(out.end(), m.suffix_ids.begin(), m.suffix_ids.end());
    return out;
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
    const Impl& m = *impl_;
    const ByteTable& bt = byte_table();
    std::string out;
    for (int32_t id : ids) {
        if (id < 0 || static_cast<size_t>(id) >= m.id_to_tok.size()) continue;
        if (m.added_index[id] >= 0) {
            if (skip_special && m.special[id]) continue;
            out += m.added[m.added_index[id]].content;
            continue;
        }
        const std::string& tok = m.id_to_tok[id];
        for (size_t i = 0; i < tok.size();) {
            size_t b = i;
            uint32_t cp = next_cp(tok, i);
            if (cp < bt.cp_to_byte.size() && bt.cp_to_byte[cp] >= 0) {
                out.push_back(static_cast<char>(bt.cp_to_byte[cp]));
            } else {
                out.append(tok, b, i - b);
            }
        }
    }
    return out;
}

std::optional<int32_t> BpeTokenizer::token_to_id(std::string_view token) const {
    auto it = impl_->vocab.find(std::string(token));
    if (it == impl_->vocab.end()) return std::nullopt;
    return it->second;
}

std::optional<std::string> BpeTokenizer::id_to_token(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= impl_->id_to_tok.size()) return std::nullopt;
    if (impl_->id_to_tok[id].empty() && impl_->added_index[id] < 0) return std::nullopt;
    return impl_->id_to_tok[id];
}

size_t BpeTokenizer::vocab_size() const {
    return impl_->id_to_tok.size();
}

bool BpeTokenizer::is_special(int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < impl_->special.size() && impl_->special[id];
}

std::vector<int32_t> BpeTokenizer::bpe_word(std::string_view byte_level_word) const {
    std::string bytes = unicode_to_bytes_(byte_level_word);
    return impl_->bpe(bytes);
}

std::vector<int32_t> BpeTokenizer::bpe_word_naive(std::string_view byte_level_word) const {
    std::string bytes = unicode_to_bytes_(byte_level_word);
    return impl_->bpe_naive(bytes);
}

std::string BpeTokenizer::bytes_to_unicode(std::string_view bytes) {
    const ByteTable& bt = byte_table();
    std::string out;
    out.reserve(bytes.size() * 2);
    for (char c : bytes)
        out += bt.byte_to_utf8[static_cast<unsigned char>(c)];
    return out;
}

// ---- loading ------------------------------------------------------------------------------------

Result<BpeTokenizer> BpeTokenizer::load(const std::filesystem::path& tokenizer_json) {
    MF_ASSIGN_OR_RETURN(std::string text, read_file(tokenizer_json));
    return from_json(text, tokenizer_json.string());
}

namespace {

Result<std::vector<PreStep>> parse_pre_tokenizer(const json& pt, const std::string& field,
                                                 std::string_view origin) {
    std::vector<PreStep> steps;
    if (pt.is_null()) return steps;
    if (!pt.is_object() || !pt.contains("type") || !pt["type"].is_string()) {
        return field_error(origin, field + ".type", "missing or not a string");
    }
    std::string type = pt["type"];
    if (type == "Sequence") {
        const json& list = pt.value("pretokenizers", json());
        if (!list.is_array()) {
            return field_error(origin, field + ".pretokenizers", "missing or not an array");
        }
        for (size_t i = 0; i < list.size(); ++i) {
            MF_ASSIGN_OR_RETURN(
                auto sub,
                parse_pre_tokenizer(list[i], field + ".pretokenizers[" + std::to_string(i) + "]",
                                    origin));
            steps.insert(steps.end(), sub.begin(), sub.end());
        }
        return steps;
    }
    PreStep step;
    if (type == "ByteLevel") {
        step.byte_level = true;
        step.add_prefix_space = pt.value("add_prefix_space", false);
        if (pt.value("use_regex", true)) {
            MF_ASSIGN_OR_RETURN(step.regex, compile(kGpt2Pattern, false, field));
        }
    } else if (type == "Split") {
        const json& pat = pt.value("pattern", json());
        std::string behavior = pt.value("behavior", std::string());
        if (behavior == "Isolated") {
            step.behavior = SplitBehavior::kIsolated;
        } else if (behavior == "Removed") {
            step.behavior = SplitBehavior::kRemoved;
        } else {
            return field_error(origin, field + ".behavior",
                               "unsupported '" + behavior + "' (Isolated or Removed)");
        }
        if (pt.value("invert", false)) {
            return field_error(origin, field + ".invert", "true is not supported");
        }
        if (pat.is_object() && pat.contains("Regex") && pat["Regex"].is_string()) {
            MF_ASSIGN_OR_RETURN(
                step.regex, compile(pat["Regex"].get<std::string>(), false,
                                    std::string(origin) + ": field " + field + ".pattern.Regex"));
        } else if (pat.is_object() && pat.contains("String") && pat["String"].is_string()) {
            MF_ASSIGN_OR_RETURN(step.regex, compile(pat["String"].get<std::string>(), true,
                                                    field + ".pattern.String"));
        } else {
            return field_error(origin, field + ".pattern",
                               "expected {\"Regex\": ...} or {\"String\": ...}");
        }
    } else {
        return field_error(origin, field + ".type",
                           "unsupported pre-tokenizer '" + type + "' (ByteLevel, Split, Sequence)");
    }
    steps.push_back(std::move(step));
    return steps;
}

Result<bool> parse_normalizer(const json& n, const std::string& field, std::string_view origin) {
    if (n.is_null()) return false;
    std::string type = n.is_object() ? n.value("type", std::string()) : std::string();
    if (type == "NFC") return true;
    if (type == "Sequence") {
        const json& list = n.value("normalizers", json());
        if (!list.is_array()) {
            return field_error(origin, field + ".normalizers", "missing or not an array");
        }
        bool any = false;
        for (size_t i = 0; i < list.size(); ++i) {
            MF_ASSIGN_OR_RETURN(
                bool sub, parse_normalizer(
                              list[i], field + ".normalizers[" + std::to_string(i) + "]", origin));
            any = any || sub;
        }
        return any;
    }
    return field_error(origin, field + ".type",
                       "unsupported normalizer '" + type + "' (null, NFC or Sequence of NFC)");
}

}  // namespace

Result<BpeTokenizer> BpeTokenizer::from_json(std::string_view text, std::string_view origin) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        return Status::invalid_argument(std::string(origin) +
                                        ": not a JSON object (is this a tokenizer.json?)");
    }
    auto m = std::make_unique<Impl>();
    const json& model = j.value("model", json());
    if (!model.is_object()) return field_error(origin, "model", "missing or not an object");
    std::string type = model.value("type", std::string("BPE"));
    if (type != "BPE") {
        return field_error(origin, "model.type", "'" + type + "' is not supported (BPE only)");
    }
    if (model.value("byte_fallback", false)) {
        return field_error(origin, "model.byte_fallback", "true is not supported (byte-level)");
    }
    m->ignore_merges = model.value("ignore_merges", false);
    int32_t max_id = -1;
    MF_RETURN_IF_ERROR(parse_vocab(model, origin, m->vocab, max_id));
    const json& added = j.value("added_tokens", json::array());
    if (!added.is_array()) return field_error(origin, "added_tokens", "not an array");
    for (size_t i = 0; i < added.size(); ++i) {
        const json& a = added[i];
        std::string f = "added_tokens[" + std::to_string(i) + "]";
        if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() ||
            a["id"].get<int64_t>() < 0 || a["id"].get<int64_t>() > INT32_MAX / 2) {
            return field_error(origin, f + ".id", "missing or not a non-negative integer");
        }
        if (!a.contains("content") || !a["content"].is_string() ||
            a["content"].get<std::string>().empty()) {
            return field_error(origin, f + ".content", "missing, empty or not a string");
        }
        AddedToken t;
        t.id = static_cast<int32_t>(a["id"].get<int64_t>());
        t.content = a["content"];
        t.special = a.value("special", false);
        t.lstrip = a.value("lstrip", false);
        t.rstrip = a.value("rstrip", false);
        t.single_word = a.value("single_word", false);
        m->vocab[t.content] = t.id;
        max_id = std::max(max_id, t.id);
        m->added.push_back(std::move(t));
    }
    if (m->added.size() > 30000) return field_error(origin, "added_tokens", "too many (> 30000)");
    m->id_to_tok.assign(static_cast<size_t>(max_id) + 1, std::string());
    m->special.assign(m->id_to_tok.size(), 0);
    m->added_index.assign(m->id_to_tok.size(), -1);
    for (auto& [tok, id] : m->vocab)
        m->id_to_tok[id] = tok;
    for (size_t k = 0; k < m->added.size(); ++k) {
        const AddedToken& t = m->added[k];
        m->id_to_tok[t.id] = t.content;
        m->special[t.id] = t.special ? 1 : 0;
        m->added_index[t.id] = static_cast<int16_t>(k);
        m->added_by_first[static_cast<unsigned char>(t.content[0])].push_back(static_cast<int>(k));
    }
    for (auto& list : m->added_by_first) {
        std::stable_sort(list.begin(), list.end(), [&](int a, int b) {
            return m->added[a].content.size() > m->added[b].content.size();
        });
    }
    const ByteTable& bt = byte_table();
    for (int b = 0; b < 256; ++b) {
        auto it = m->vocab.find(bt.byte_to_utf8[b]);
        if (it == m->vocab.end()) {
            char hex[8];
            std::snprintf(hex, sizeof(hex), "0x%02X", b);
            return field_error(
                origin, "model.vocab",
                std::string("no token for byte ") + hex + " (not a byte-level BPE vocabulary)");
        }
        m->byte_id[b] = it->second;
    }
    MF_ASSIGN_OR_RETURN(std::vector<MergeRule> rules, parse_merges(model, m->vocab, origin));
    m->merges.reserve(rules.size() * 2);
    // The first (lowest-rank) occurrence of a pair wins.
    for (const auto& r : rules)
        m->merges.emplace(pair_key(r.left, r.right), Impl::Merge{r.rank, r.merged});
    MF_ASSIGN_OR_RETURN(m->nfc,
                        parse_normalizer(j.value("normalizer", json()), "normalizer", origin));
    MF_ASSIGN_OR_RETURN(
        m->steps, parse_pre_tokenizer(j.value("pre_tokenizer", json()), "pre_tokenizer", origin));
    const json& dec = j.value("decoder", json());
    if (!dec.is_null() && dec.value("type", std::string()) != "ByteLevel") {
        return field_error(
            origin, "decoder.type",
            "unsupported decoder '" + dec.value("type", std::string()) + "' (ByteLevel only)");
    }
    // Post-processor: TemplateProcessing "single" (possibly inside a Sequence) gives the ids
    // add_special puts around the text.
    std::vector<const json*> procs;
    const json& pp = j.value("post_processor", json());
    if (pp.is_object() && pp.value("type", std::string()) == "Sequence" &&
        pp.contains("processors") && pp["processors"].is_array()) {
        for (const json& p : pp["processors"])
            procs.push_back(&p);
    } else if (pp.is_object()) {
        procs.push_back(&pp);
    }
    for (const json* p : procs) {
        if (!p->is_object() || p->value("type", std::string()) != "TemplateProcessing") continue;
        const json& single = p->value("single", json());
        const json& st = p->value("special_tokens", json::object());
        if (!single.is_array()) {
            return field_error(origin, "post_processor.single", "missing or not an array");
        }
        bool seen_a = false;
        for (const json& piece : single) {
            if (piece.contains("Sequence")) {
                seen_a = true;
                continue;
            }
            if (!piece.contains("SpecialToken")) continue;
            std::string name = piece["SpecialToken"].value("id", std::string());
            std::vector<int32_t> ids;
            if (st.contains(name) && st[name].contains("ids") && st[name]["ids"].is_array()) {
                for (const json& v : st[name]["ids"])
                    ids.push_back(v.get<int32_t>());
            } else if (auto it = m->vocab.find(name); it != m->vocab.end()) {
                ids.push_back(it->second);
            } else {
                return field_error(origin, "post_processor.special_tokens",
                                   "'" + name + "' has no id");
            }
            auto& dst = seen_a ? m->suffix_ids : m->prefix_ids;
            dst.insert(dst.end(), ids.begin(), ids.end());
        }
    }
    return BpeTokenizer(std::move(m));
}

}  // namespace mf::io
