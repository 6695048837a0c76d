// SentencePiece-style BPE from tokenizer.json. See spm_tokenizer.h for the contract.
#include "io/spm_tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <queue>
#include <unordered_map>

#include "core/text.h"
#include "io/file.h"
#include "io/tokenizer_internal.h"

namespace mf::io {

using tok::field_error;
using tok::json;
using tok::MergeRule;
using tok::pair_key;
using tok::parse_merges;
using tok::parse_vocab;

namespace {

const char* kSpace = "\xe2\x96\x81";  // U+2581 "▁"

void replace_all(std::string& s, const std::string& from, const std::string& to) {
    if (from.empty()) return;
    std::string out;
    size_t pos = 0;
    for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
        out.append(s, pos, hit - pos);
        out += to;
    }
    out.append(s, pos, std::string::npos);
    s = std::move(out);
}

struct NormStep {
    bool prepend = false;  // else Replace
    std::string a, b;      // Prepend: a = prefix; Replace: a -> b
};

enum class DecKind { kReplace, kByteFallback, kFuse, kStrip, kMetaspace };
struct DecStep {
    DecKind kind;
    std::string a, b;  // Replace a -> b; Strip content a; Metaspace replacement a
    int start = 0, stop = 0;
    bool prefix = false;  // Metaspace add_prefix_space
};

// "<0xAB>" -> 0xAB, else -1.
int byte_token(const std::string& t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
    auto hex = [](char c) {
        return c >= '0' && c <= '9'   ? c - '0'
               : c >= 'A' && c <= 'F' ? c - 'A' + 10
               : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                      : -1;
    };
    int h = hex(t[3]), l = hex(t[4]);
    return h < 0 || l < 0 ? -1 : h * 16 + l;
}

}  // namespace

struct SpmBpeTokenizer::Impl {
    std::unordered_map<std::string, int32_t> vocab;  // model vocab + added tokens
    std::vector<std::string> id_to_tok;
    std::vector<uint8_t> special;
    tok::AddedTokens added;
    struct Merge {
        int32_t rank;
        int32_t merged;
    };
    std::unordered_map<uint64_t, Merge> merges;
    std::vector<NormStep> norm;
    bool metaspace = false;
    std::string ms_replacement = kSpace;
    bool ms_prefix = true;
    std::string ms_scheme = "always";
    bool byte_fallback = false;
    std::array<int32_t, 256> byte_ids{};
    bool have_all_bytes = false;
    std::optional<int32_t> unk;
    bool fuse_unk = false;
    std::vector<DecStep> dec;
    tok::PostProcessor post;
    bool cleanup = false;

    void encode_section(std::string_view text, size_t index, bool continuation,
                        std::vector<int32_t>& out) const;
    void bpe(const std::vector<char32_t>& cps, std::vector<int32_t>& out) const;
};

void SpmBpeTokenizer::Impl::bpe(const std::vector<char32_t>& cps, std::vector<int32_t>& out) const {
    const int n = static_cast<int>(cps.size());
    if (n == 0) return;
    std::vector<int32_t> id(n);
    std::vector<int> prev(n), next(n);
    std::string ch;
    for (int i = 0; i < n; ++i) {
        ch.clear();
        tok::append_utf8(ch, cps[i]);
        auto it = vocab.find(ch);
        id[i] = it == vocab.end() ? -1 : it->second;
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
        if (p < 0 || next[p] < 0 || id[p] < 0 || id[next[p]] < 0) return;
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
    bool last_unk = false;
    for (int i = 0; i >= 0 && i < n; i = next[i]) {
        if (id[i] >= 0) {
            out.push_back(id[i]);
            last_unk = unk && id[i] == *unk;
            continue;
        }
        // Only single characters stay outside the vocabulary (merges produce vocab tokens).
        if (byte_fallback && have_all_bytes) {
            ch.clear();
            tok::append_utf8(ch, cps[i]);
            for (char b : ch)
                out.push_back(byte_ids[static_cast<unsigned char>(b)]);
            last_unk = false;
            continue;
        }
        if (!unk) continue;  // no <unk> token: the character is dropped
        if (fuse_unk && last_unk) continue;
        out.push_back(*unk);
        last_unk = true;
    }
}

void SpmBpeTokenizer::Impl::encode_section(std::string_view text, size_t index, bool continuation,
                                           std::vector<int32_t>& out) const {
    std::string s(text);
    bool first = index == 0;
    for (const NormStep& st : norm) {
        if (st.prepend) {
            if (!(continuation && first)) s.insert(0, st.a);
        } else {
            replace_all(s, st.a, st.b);
        }
    }
    if (metaspace) {
        replace_all(s, " ", ms_replacement);
        bool want = ms_prefix && (ms_scheme == "always" || (ms_scheme == "first" && first)) &&
                    !(continuation && first);
        if (want && s.compare(0, ms_replacement.size(), ms_replacement) != 0) {
            s.insert(0, ms_replacement);
        }
    }
    bpe(tok::to_code_points(s), out);
}

// ---- public API ---------------------------------------------------------------------------------

SpmBpeTokenizer::SpmBpeTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SpmBpeTokenizer::SpmBpeTokenizer(SpmBpeTokenizer&&) noexcept = default;
SpmBpeTokenizer& SpmBpeTokenizer::operator=(SpmBpeTokenizer&&) noexcept = default;
SpmBpeTokenizer::~SpmBpeTokenizer() = default;

std::vector<int32_t> SpmBpeTokenizer::encode_impl(std::string_view text, bool add_special,
                                                  bool continuation) const {
    const Impl& m = *impl_;
    std::string clean;
    if (!text::valid_utf8(text)) {
        clean = text::sanitize_utf8(text);
        text = clean;
    }
    std::vector<int32_t> out;
    if (add_special) out = m.post.prefix;
    for (const tok::Piece& p : m.added.split(text)) {
        if (p.added >= 0) {
            out.push_back(m.added.tokens()[p.added].id);
        } else {
            m.encode_section(p.text, p.index, continuation, out);
        }
    }
    if (add_special) out.insert(out.end(), m.post.suffix.begin(), m.post.suffix.end());
    return out;
}

std::vector<int32_t> SpmBpeTokenizer::encode(std::string_view text, bool add_special) const {
    return encode_impl(text, add_special, false);
}

std::vector<int32_t> SpmBpeTokenizer::encode_continuation(std::string_view text) const {
    return encode_impl(text, false, true);
}

std::string SpmBpeTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
    const Impl& m = *impl_;
    std::vector<std::string> toks;
    toks.reserve(ids.size());
    for (int32_t id : ids) {
        if (id < 0 || static_cast<size_t>(id) >= m.id_to_tok.size()) continue;
        if (skip_special && m.special[id]) continue;
        toks.push_back(m.id_to_tok[id]);
    }
    for (const DecStep& d : m.dec) {
        switch (d.kind) {
            case DecKind::kReplace:
                for (auto& t : toks)
                    replace_all(t, d.a, d.b);
                break;
            case DecKind::kByteFallback: {
                std::vector<std::string> next;
                std::string bytes;
                bool in_run = false;
                for (auto& t : toks) {
                    int b = byte_token(t);
                    if (b >= 0) {
                        bytes.push_back(static_cast<char>(b));
                        in_run = true;
                        continue;
                    }
                    if (in_run) next.push_back(tok::utf8_lossy(bytes));
                    bytes.clear();
                    in_run = false;
                    next.push_back(std::move(t));
                }
                if (in_run) next.push_back(tok::utf8_lossy(bytes));
                toks = std::move(next);
                break;
            }
            case DecKind::kFuse: {
                std::string all;
                for (auto& t : toks)
                    all += t;
                toks.assign(1, std::move(all));
                break;
            }
            case DecKind::kStrip:
                for (auto& t : toks) {
                    size_t b = 0, e = t.size();
                    for (int i = 0; i < d.start && t.compare(b, d.a.size(), d.a) == 0; ++i)
                        b += d.a.size();
                    for (int i = 0; i < d.stop && e >= b + d.a.size() &&
                                    t.compare(e - d.a.size(), d.a.size(), d.a) == 0;
                         ++i)
                        e -= d.a.size();
                    t = t.substr(b, e - b);
                }
                break;
            case DecKind::kMetaspace:
                for (size_t i = 0; i < toks.size(); ++i) {
                    replace_all(toks[i], d.a, " ");
                    if (d.prefix && i == 0 && !toks[i].empty() && toks[i][0] == ' ') {
                        toks[i].erase(0, 1);
                    }
                }
                break;
        }
    }
    std::string out;
    for (auto& t : toks)
        out += t;
    if (m.cleanup) out = clean_up_tokenization(std::move(out));
    return out;
}

std::optional<int32_t> SpmBpeTokenizer::token_to_id(std::string_view token) const {
    auto it = impl_->vocab.find(std::string(token));
    if (it == impl_->vocab.end()) return std::nullopt;
    return it->second;
}

std::optional<std::string> SpmBpeTokenizer::id_to_token(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= impl_->id_to_tok.size()) return std::nullopt;
    if (impl_->id_to_tok[id].empty()) return std::nullopt;
    return impl_->id_to_tok[id];
}

size_t SpmBpeTokenizer::vocab_size() const {
    return impl_->id_to_tok.size();
}

bool SpmBpeTokenizer::is_special(int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < impl_->special.size() && impl_->special[id];
}

void SpmBpeTokenizer::set_cleanup_spaces(bool on) {
    impl_->cleanup = on;
}

std::string clean_up_tokenization(std::string s) {
    static const std::pair<const char*, const char*> kRules[] = {
        {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
        {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
    for (const auto& [from, to] : kRules)
        replace_all(s, from, to);
    return s;
}

// ---- loading ------------------------------------------------------------------------------------

Result<SpmBpeTokenizer> SpmBpeTokenizer::load(const std::filesystem::path& tokenizer_json) {
    MF_ASSIGN_OR_RETURN(std::string text, read_file(tokenizer_json));
    return from_json(text, tokenizer_json.string());
}

namespace {

Result<std::string> string_pattern(const json& p, const std::string& field,
                                   std::string_view origin) {
    const json& pat = p.value("pattern", json());
    if (pat.is_object() && pat.contains("String") && pat["String"].is_string()) {
        return pat["String"].get<std::string>();
    }
    return field_error(origin, field + ".pattern",
                       "expected {\"String\": ...} (regex patterns are not supported here)");
}

Status parse_norm(const json& n, const std::string& field, std::string_view origin,
                  std::vector<NormStep>& out) {
    if (n.is_null()) return Status::ok_status();
    std::string type = n.is_object() ? n.value("type", std::string()) : std::string();
    if (type == "Sequence") {
        const json& list = n.value("normalizers", json());
        if (!list.is_array()) {
            return field_error(origin, field + ".normalizers", "missing or not an array");
        }
        for (size_t i = 0; i < list.size(); ++i) {
            MF_RETURN_IF_ERROR(parse_norm(
                list[i], field + ".normalizers[" + std::to_string(i) + "]", origin, out));
        }
        return Status::ok_status();
    }
    if (type == "Prepend") {
        if (!n.contains("prepend") || !n["prepend"].is_string()) {
            return field_error(origin, field + ".prepend", "missing or not a string");
        }
        out.push_back({true, n["prepend"].get<std::string>(), ""});
        return Status::ok_status();
    }
    if (type == "Replace") {
        MF_ASSIGN_OR_RETURN(std::string from, string_pattern(n, field, origin));
        if (!n.contains("content") || !n["content"].is_string()) {
            return field_error(origin, field + ".content", "missing or not a string");
        }
        out.push_back({false, from, n["content"].get<std::string>()});
        return Status::ok_status();
    }
    return field_error(origin, field + ".type",
                       "unsupported normalizer '" + type + "' (Prepend, Replace, Sequence, null)");
}

Status parse_dec(const json& d, const std::string& field, std::string_view origin,
                 std::vector<DecStep>& out) {
    if (d.is_null()) return Status::ok_status();
    std::string type = d.is_object() ? d.value("type", std::string()) : std::string();
    if (type == "Sequence") {
        const json& list = d.value("decoders", json());
        if (!list.is_array()) {
            return field_error(origin, field + ".decoders", "missing or not an array");
        }
        for (size_t i = 0; i < list.size(); ++i) {
            MF_RETURN_IF_ERROR(
                parse_dec(list[i], field + ".decoders[" + std::to_string(i) + "]", origin, out));
        }
        return Status::ok_status();
    }
    DecStep s;
    if (type == "Replace") {
        s.kind = DecKind::kReplace;
        MF_ASSIGN_OR_RETURN(s.a, string_pattern(d, field, origin));
        if (!d.contains("content") || !d["content"].is_string()) {
            return field_error(origin, field + ".content", "missing or not a string");
        }
        s.b = d["content"].get<std::string>();
    } else if (type == "ByteFallback") {
        s.kind = DecKind::kByteFallback;
    } else if (type == "Fuse") {
        s.kind = DecKind::kFuse;
    } else if (type == "Strip") {
        s.kind = DecKind::kStrip;
        s.a = d.value("content", std::string(" "));
        s.start = d.value("start", 0);
        s.stop = d.value("stop", 0);
        if (s.a.empty()) return field_error(origin, field + ".content", "empty");
    } else if (type == "Metaspace") {
        s.kind = DecKind::kMetaspace;
        s.a = d.value("replacement", std::string(kSpace));
        s.prefix = d.value("add_prefix_space",
                           d.value("prepend_scheme", std::string("always")) != "never");
    } else {
        return field_error(origin, field + ".type",
                           "unsupported decoder '" + type +
                               "' (Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence)");
    }
    out.push_back(std::move(s));
    return Status::ok_status();
}

}  // namespace

Result<SpmBpeTokenizer> SpmBpeTokenizer::from_json(std::string_view text, std::string_view origin) {
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
    m->byte_fallback = model.value("byte_fallback", false);
    m->fuse_unk = model.value("fuse_unk", false);
    int32_t max_id = -1;
    MF_RETURN_IF_ERROR(parse_vocab(model, origin, m->vocab, max_id));
    MF_RETURN_IF_ERROR(m->added.parse(j.value("added_tokens", json::array()), origin));
    for (const auto& t : m->added.tokens()) {
        m->vocab[t.content] = t.id;
        max_id = std::max(max_id, t.id);
    }
    m->id_to_tok.assign(static_cast<size_t>(max_id) + 1, std::string());
    m->special.assign(m->id_to_tok.size(), 0);
    for (auto& [t, id] : m->vocab)
        m->id_to_tok[id] = t;
    for (const auto& t : m->added.tokens()) {
        m->id_to_tok[t.id] = t.content;
        m->special[t.id] = t.special ? 1 : 0;
    }
    if (model.contains("unk_token") && model["unk_token"].is_string()) {
        auto it = m->vocab.find(model["unk_token"].get<std::string>());
        if (it == m->vocab.end()) {
            return field_error(origin, "model.unk_token", "not in model.vocab");
        }
        m->unk = it->second;
    }
    m->have_all_bytes = true;
    for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", b);
        auto it = m->vocab.find(name);
        if (it == m->vocab.end()) {
            m->have_all_bytes = false;
            break;
        }
        m->byte_ids[b] = it->second;
    }
    if (m->byte_fallback && !m->have_all_bytes && !m->unk) {
        return field_error(origin, "model.byte_fallback",
                           "true but the vocabulary lacks <0x00>..<0xFF> and has no unk_token");
    }
    MF_ASSIGN_OR_RETURN(std::vector<MergeRule> rules, parse_merges(model, m->vocab, origin));
    m->merges.reserve(rules.size() * 2);
    // The first (lowest-rank) occurrence of a pair wins.
    for (const auto& r : rules)
        m->merges.emplace(pair_key(r.left, r.right), Impl::Merge{r.rank, r.merged});
    MF_RETURN_IF_ERROR(parse_norm(j.value("normalizer", json()), "normalizer", origin, m->norm));
    const json& pt = j.value("pre_tokenizer", json());
    if (!pt.is_null()) {
        std::string pt_type = pt.is_object() ? pt.value("type", std::string()) : std::string();
        if (pt_type != "Metaspace") {
            return field_error(origin, "pre_tokenizer.type",
                               "unsupported '" + pt_type + "' (Metaspace or null)");
        }
        m->metaspace = true;
        m->ms_replacement = pt.value("replacement", std::string(kSpace));
        m->ms_scheme = pt.value("prepend_scheme", std::string("always"));
        if (m->ms_scheme != "always" && m->ms_scheme != "first" && m->ms_scheme != "never") {
            return field_error(origin, "pre_tokenizer.prepend_scheme",
                               "'" + m->ms_scheme + "' (always, first or never)");
        }
        m->ms_prefix = pt.value("add_prefix_space", m->ms_scheme != "never");
    }
    MF_RETURN_IF_ERROR(parse_dec(j.value("decoder", json()), "decoder", origin, m->dec));
    MF_ASSIGN_OR_RETURN(
        m->post, tok::parse_post_processor(j.value("post_processor", json()), m->vocab, origin));
    return SpmBpeTokenizer(std::move(m));
}

}  // namespace mf::io
