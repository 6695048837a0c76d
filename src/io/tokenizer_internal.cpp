// Shared tokenizer helpers. See tokenizer_internal.h.
#include "io/tokenizer_internal.h"

#include <algorithm>

namespace mf::io::tok {

std::vector<char32_t> to_code_points(std::string_view s) {
    std::vector<char32_t> out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        int len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
        for (int k = 1; k < len && i + k < s.size(); ++k) {
            cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
        }
        out.push_back(cp);
        i += len;
    }
    return out;
}

void append_utf8(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

std::string to_utf8(const std::vector<char32_t>& cps, size_t begin, size_t end) {
    std::string s;
    for (size_t i = begin; i < end; ++i)
        append_utf8(s, cps[i]);
    return s;
}

bool js_space(char32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000 || c == 0xFEFF;
}

std::string utf8_lossy(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    const size_t n = s.size();
    for (size_t i = 0; i < n;) {
        auto b = static_cast<unsigned char>(s[i]);
        if (b < 0x80) {
            out.push_back(static_cast<char>(b));
            ++i;
            continue;
        }
        int need = 0;
        unsigned lo = 0x80, hi = 0xBF;
        if (b >= 0xC2 && b <= 0xDF) {
            need = 1;
        } else if (b >= 0xE0 && b <= 0xEF) {
            need = 2;
            if (b == 0xE0) lo = 0xA0;
            if (b == 0xED) hi = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3;
            if (b == 0xF0) lo = 0x90;
            if (b == 0xF4) hi = 0x8F;
        } else {
            out.append("\xEF\xBF\xBD");
            ++i;
            continue;
        }
        size_t j = i + 1;
        bool ok = true;
        for (int k = 0; k < need; ++k, ++j) {
            if (j >= n) {
                ok = false;
                break;
            }
            auto c = static_cast<unsigned char>(s[j]);
            if (c < lo || c > hi) {
                ok = false;
                break;
            }
            lo = 0x80;
            hi = 0xBF;
        }
        if (ok) {
            out.append(s.substr(i, j - i));
        } else {
            out.append("\xEF\xBF\xBD");
        }
        i = j;
    }
    return out;
}

namespace {
// Length of the UTF-8 sequence that ends at s[end-1].
size_t last_cp_len(std::string_view s, size_t end) {
    size_t k = end - 1;
    while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80)
        --k;
    return end - k;
}
}  // namespace

std::string_view trim_start(std::string_view s) {
    while (!s.empty()) {
        auto c = static_cast<unsigned char>(s[0]);
        size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        len = std::min(len, s.size());
        auto cps = to_code_points(s.substr(0, len));
        if (cps.empty() || !js_space(cps[0])) break;
        s.remove_prefix(len);
    }
    return s;
}

std::string_view trim_end(std::string_view s) {
    while (!s.empty()) {
        size_t len = last_cp_len(s, s.size());
        auto cps = to_code_points(s.substr(s.size() - len));
        if (cps.empty() || !js_space(cps[0])) break;
        s.remove_suffix(len);
    }
    return s;
}

Status field_error(std::string_view origin, const std::string& field, const std::string& what) {
    return Status::invalid_argument(std::string(origin) + ": field " + field + ": " + what);
}

Status AddedTokens::parse(const json& added, std::string_view origin) {
    if (added.is_null()) return Status::ok_status();
    if (!added.is_array()) return field_error(origin, "added_tokens", "not an array");
    if (added.size() > 30000) return field_error(origin, "added_tokens", "too many (> 30000)");
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
        add(std::move(t));
    }
    return Status::ok_status();
}

void AddedTokens::add(AddedToken t) {
    auto first = static_cast<unsigned char>(t.content[0]);
    tokens_.push_back(std::move(t));
    auto& list = by_first_[first];
    list.push_back(static_cast<int>(tokens_.size() - 1));
    std::stable_sort(list.begin(), list.end(), [&](int a, int b) {
        return tokens_[a].content.size() > tokens_[b].content.size();
    });
}

const AddedToken* AddedTokens::find(std::string_view content) const {
    for (const AddedToken& t : tokens_) {
        if (t.content == content) return &t;
    }
    return nullptr;
}

std::vector<Piece> AddedTokens::split(std::string_view text) const {
    std::vector<Piece> pieces;
    size_t start = 0;
    for (size_t i = 0; i < text.size();) {
        int hit = -1;
        if (!tokens_.empty()) {
            for (int k : by_first_[static_cast<unsigned char>(text[i])]) {
                const std::string& c = tokens_[k].content;
                if (text.compare(i, c.size(), c) == 0) {
                    hit = k;
                    break;
                }
            }
        }
        if (hit < 0) {
            ++i;
            continue;
        }
        if (i > start) pieces.push_back({text.substr(start, i - start), -1, 0});
        pieces.push_back({text.substr(i, tokens_[hit].content.size()), hit, 0});
        i += tokens_[hit].content.size();
        start = i;
    }
    if (start < text.size()) pieces.push_back({text.substr(start), -1, 0});
    for (size_t p = 0; p < pieces.size(); ++p) {
        pieces[p].index = p;
        if (pieces[p].added < 0) continue;
        const AddedToken& t = tokens_[pieces[p].added];
        if (t.lstrip && p > 0 && pieces[p - 1].added < 0) {
            pieces[p - 1].text = trim_end(pieces[p - 1].text);
        }
        if (t.rstrip && p + 1 < pieces.size() && pieces[p + 1].added < 0) {
            pieces[p + 1].text = trim_start(pieces[p + 1].text);
        }
    }
    std::erase_if(pieces, [](const Piece& p) { return p.added < 0 && p.text.empty(); });
    return pieces;
}

namespace {
Result<int32_t> special_id(const json& value, const std::string& field,
                           const std::unordered_map<std::string, int32_t>& vocab,
                           std::string_view origin) {
    // BertProcessing / RobertaProcessing: ["[CLS]", 101].
    if (value.is_array() && value.size() == 2 && value[1].is_number_integer()) {
        return value[1].get<int32_t>();
    }
    if (value.is_string()) {
        auto it = vocab.find(value.get<std::string>());
        if (it != vocab.end()) return it->second;
    }
    return field_error(origin, field, "expected [\"token\", id] or a token of the vocabulary");
}
}  // namespace

Result<PostProcessor> parse_post_processor(const json& pp,
                                           const std::unordered_map<std::string, int32_t>& vocab,
                                           std::string_view origin) {
    PostProcessor out;
    std::vector<const json*> procs;
    if (pp.is_object() && pp.value("type", std::string()) == "Sequence" &&
        pp.contains("processors") && pp["processors"].is_array()) {
        for (const json& p : pp["processors"])
            procs.push_back(&p);
    } else if (pp.is_object()) {
        procs.push_back(&pp);
    } else if (!pp.is_null()) {
        return field_error(origin, "post_processor", "not an object");
    }
    for (const json* p : procs) {
        std::string type = p->is_object() ? p->value("type", std::string()) : std::string();
        if (type == "BertProcessing" || type == "RobertaProcessing") {
            MF_ASSIGN_OR_RETURN(int32_t cls, special_id(p->value("cls", json()),
                                                        "post_processor.cls", vocab, origin));
            MF_ASSIGN_OR_RETURN(int32_t sep, special_id(p->value("sep", json()),
                                                        "post_processor.sep", vocab, origin));
            out.prefix = {cls};
            out.suffix = {sep};
            continue;
        }
        if (type == "ByteLevel") continue;
        if (type != "TemplateProcessing") {
            return field_error(origin, "post_processor.type",
                               "unsupported '" + type +
                                   "' (TemplateProcessing, BertProcessing, RobertaProcessing, "
                                   "ByteLevel, Sequence)");
        }
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
            } else if (auto it = vocab.find(name); it != vocab.end()) {
                ids.push_back(it->second);
            } else {
                return field_error(origin, "post_processor.special_tokens",
                                   "'" + name + "' has no id");
            }
            auto& dst = seen_a ? out.suffix : out.prefix;
            dst.insert(dst.end(), ids.begin(), ids.end());
        }
    }
    return out;
}

std::optional<std::string> config_token(const json& config, const char* key) {
    if (!config.is_object() || !config.contains(key)) return std::nullopt;
    const json& v = config[key];
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string()) {
        return v["content"].get<std::string>();
    }
    return std::nullopt;
}

Status parse_vocab(const json& model, std::string_view origin,
                   std::unordered_map<std::string, int32_t>& vocab, int32_t& max_id) {
    const json& v = model.value("vocab", json());
    if (!v.is_object() || v.empty()) {
        return field_error(origin, "model.vocab", "missing, empty or not an object");
    }
    vocab.reserve(v.size() * 2);
    for (auto it = v.begin(); it != v.end(); ++it) {
        if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
            it.value().get<int64_t>() > INT32_MAX / 2) {
            return field_error(origin, "model.vocab[\"" + it.key() + "\"]",
                               "id must be a non-negative integer");
        }
        auto id = static_cast<int32_t>(it.value().get<int64_t>());
        vocab[it.key()] = id;
        max_id = std::max(max_id, id);
    }
    return Status::ok_status();
}

Result<std::vector<MergeRule>> parse_merges(const json& model,
                                            const std::unordered_map<std::string, int32_t>& vocab,
                                            std::string_view origin) {
    const json& merges = model.value("merges", json());
    if (!merges.is_array()) return field_error(origin, "model.merges", "missing or not an array");
    std::vector<MergeRule> out;
    out.reserve(merges.size());
    for (size_t i = 0; i < merges.size(); ++i) {
        const json& mg = merges[i];
        std::string f = "model.merges[" + std::to_string(i) + "]";
        std::string a, b;
        if (mg.is_string()) {
            const std::string& s = mg.get_ref<const std::string&>();
            size_t sp = s.find(' ');
            if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
                return field_error(origin, f, "expected \"a b\" (two tokens, one space)");
            }
            a = s.substr(0, sp);
            b = s.substr(sp + 1);
        } else if (mg.is_array() && mg.size() == 2 && mg[0].is_string() && mg[1].is_string()) {
            a = mg[0];
            b = mg[1];
        } else {
            return field_error(origin, f, "expected \"a b\" or [\"a\", \"b\"]");
        }
        auto ia = vocab.find(a), ib = vocab.find(b), iab = vocab.find(a + b);
        if (ia == vocab.end() || ib == vocab.end() || iab == vocab.end()) {
            std::string missing = ia == vocab.end() ? a : ib == vocab.end() ? b : a + b;
            return field_error(origin, f, "token '" + missing + "' is not in model.vocab");
        }
        out.push_back({static_cast<int32_t>(i), ia->second, ib->second, iab->second});
    }
    return out;
}

}  // namespace mf::io::tok
