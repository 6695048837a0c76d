#include "reformat/validate.h"

#include <fmt/core.h>

#include "core/text.h"

namespace mf::reformat {

namespace {

using nlohmann::json;

// The content of the first ``` fenced block that holds a '{', else the whole reply.
std::string_view strip_fences(std::string_view s) {
    size_t pos = 0;
    while (true) {
        size_t open = s.find("```", pos);
        if (open == std::string_view::npos) return s;
        size_t body = s.find('\n', open + 3);
        if (body == std::string_view::npos) return s;
        size_t close = s.find("```", body + 1);
        std::string_view block = close == std::string_view::npos
                                     ? s.substr(body + 1)
                                     : s.substr(body + 1, close - body - 1);
        if (block.find('{') != std::string_view::npos) return block;
        if (close == std::string_view::npos) return s;
        pos = close + 3;
    }
}

// The first balanced {...} (string-aware), or npos length when unbalanced.
std::string_view balanced_object(std::string_view s, size_t start) {
    int depth = 0;
    bool in_str = false, esc = false;
    for (size_t i = start; i < s.size(); ++i) {
        char c = s[i];
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"')
            in_str = true;
        else if (c == '{')
            ++depth;
        else if (c == '}' && --depth == 0)
            return s.substr(start, i - start + 1);
    }
    return {};
}

// Escapes raw control characters inside strings and drops a trailing comma before } or ].
std::string repair(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 16);
    bool in_str = false, esc = false;
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (in_str) {
            if (esc) {
                esc = false;
            } else if (c == '\\') {
                esc = true;
            } else if (c == '"') {
                in_str = false;
            } else if (c == '\n') {
                out += "\\n";
                continue;
            } else if (c == '\r') {
                out += "\\r";
                continue;
            } else if (c == '\t') {
                out += "\\t";
                continue;
            }
            out += c;
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == ',') {
            size_t j = i + 1;
            while (j < s.size() && (s[j] == ' ' || s[j] == '\n' || s[j] == '\r' || s[j] == '\t'))
                ++j;
            if (j < s.size() && (s[j] == '}' || s[j] == ']')) continue;
        }
        out += c;
    }
    return out;
}

bool parse_object(std::string_view s, json* out) {
    json j = json::parse(s.begin(), s.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) return false;
    *out = std::move(j);
    return true;
}

Result<json> extract_impl(std::string_view reply, int depth) {
    std::string_view s = text::trim(strip_fences(reply));
    // A whole reply that is a JSON string holding the object ("{\"a\": ...}" quoted).
    if (!s.empty() && s.front() == '"' && depth == 0) {
        json str = json::parse(s.begin(), s.end(), nullptr, false);
        if (!str.is_discarded() && str.is_string())
            return extract_impl(str.get<std::string>(), depth + 1);
    }
    size_t open = s.find('{');
    if (open == std::string_view::npos)
        return Status::invalid_argument("no_json: the reply contains no JSON object");
    std::vector<std::string_view> candidates;
    std::string_view bal = balanced_object(s, open);
    if (!bal.empty()) candidates.push_back(bal);
    size_t last = s.rfind('}');
    if (last != std::string_view::npos && last > open) {
        std::string_view wide = s.substr(open, last - open + 1);
        if (wide != bal) candidates.push_back(wide);
    }
    if (candidates.empty())
        return Status::invalid_argument(
            "bad_json: the JSON object is not closed (reply cut off? raise --max-tokens)");
    json j;
    for (std::string_view c : candidates) {
        if (parse_object(c, &j)) return j;
        if (parse_object(repair(c), &j)) return j;
    }
    // An object whose quotes are all escaped: {\"a\": \"b\"}.
    if (depth == 0) {
        for (std::string_view c : candidates) {
            if (c.find("\\\"") == std::string_view::npos) continue;
            std::string quoted = "\"" + std::string(c) + "\"";
            json str = json::parse(quoted, nullptr, false);
            if (!str.is_discarded() && str.is_string()) {
                auto inner = extract_impl(str.get<std::string>(), depth + 1);
                if (inner.ok()) return inner;
            }
        }
    }
    return Status::invalid_argument("bad_json: the JSON object in the reply does not parse");
}

std::string norm_key(std::string_view k) {
    std::string out;
    for (char c : k) {
        unsigned char u = static_cast<unsigned char>(c);
        if (std::isalnum(u)) out += static_cast<char>(std::tolower(u));
    }
    return out;
}

enum class Field { kNone, kDescription, kQuestion, kAnswer };

Field field_of(std::string_view key) {
    std::string k = norm_key(key);
    if (k == "imagedescription" || k == "description" || k == "imagedesc" || k == "caption")
        return Field::kDescription;
    if (k == "question" || k == "qaquery" || k == "query" || k == "qaquestion")
        return Field::kQuestion;
    if (k == "answer" || k == "qaanswer") return Field::kAnswer;
    return Field::kNone;
}

struct Found {
    const json* v[4] = {nullptr, nullptr, nullptr, nullptr};
};

void collect(const json& obj, Found* f, int depth) {
    for (auto it = obj.begin(); it != obj.end(); ++it) {
        Field fld = field_of(it.key());
        if (fld != Field::kNone && !f->v[static_cast<int>(fld)])
            f->v[static_cast<int>(fld)] = &it.value();
        else if (fld == Field::kNone && it.value().is_object() && depth == 0)
            collect(it.value(), f, depth + 1);
    }
}

bool check_field(const json* v, const char* name, size_t min_len, size_t max_len, std::string* out,
                 ValidationError* err) {
    if (!v) {
        *err = {"missing_field", fmt::format("the JSON object has no \"{}\" field", name)};
        return false;
    }
    if (!v->is_string()) {
        *err = {"missing_field", fmt::format("\"{}\" must be a string", name)};
        return false;
    }
    std::string s(text::trim(v->get_ref<const std::string&>()));
    if (s.empty()) {
        *err = {"empty_field", fmt::format("\"{}\" is empty", name)};
        return false;
    }
    if (s.size() < min_len) {
        *err = {"too_short", fmt::format("\"{}\" has {} characters; write at least {}", name,
                                         s.size(), min_len)};
        return false;
    }
    if (s.size() > max_len) {
        *err = {"too_long",
                fmt::format("\"{}\" has {} characters; keep it under {}", name, s.size(), max_len)};
        return false;
    }
    *out = std::move(s);
    return true;
}

}  // namespace

Result<nlohmann::json> extract_json_object(std::string_view reply) {
    return extract_impl(reply, 0);
}

const std::vector<std::string_view>& reference_phrases() {
    // Phrases, not single words: "in the context of cirrhosis", "within the reference range" and
    // "passage of contrast" are ordinary medical writing and must pass.
    static const std::vector<std::string_view> k = {
        "<reference",
        "</reference",
        "reference text",
        "reference information",
        "reference provided",
        "provided reference",
        "the reference says",
        "the reference states",
        "the reference mentions",
        "according to the reference",
        "based on the reference",
        "in the reference",
        "caption",
        "provided text",
        "text provided",
        "given text",
        "the text states",
        "the text says",
        "according to the text",
        "based on the text",
        "provided context",
        "context provided",
        "given context",
        "according to the context",
        "based on the context",
        "the context says",
        "the context states",
        "contextual information",
        "provided information",
        "information provided",
        "as mentioned",
        "mentioned in the",
        "the article",
        "figure legend",
        "description provided",
        "provided description",
    };
    return k;
}

std::string_view find_reference_mention(std::string_view text) {
    std::string lower = text::ascii_lower(text);
    auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
    for (std::string_view p : reference_phrases()) {
        // Whole words: the phrase starts and ends at a word boundary (a plural 's' may follow,
        // so "captions" counts; "within the reference range" does not match "in the ...").
        for (size_t at = lower.find(p); at != std::string::npos; at = lower.find(p, at + 1)) {
            bool start_ok = at == 0 || !word(p.front()) || !word(lower[at - 1]);
            size_t end = at + p.size();
            bool end_ok =
                end >= lower.size() || !word(p.back()) || !word(lower[end]) || lower[end] == 's';
            if (start_ok && end_ok) return p;
        }
    }
    return {};
}

bool validate_reply(std::string_view reply, const ValidationParams& p, Generated* out,
                    ValidationError* err) {
    auto j = extract_json_object(reply);
    if (!j.ok()) {
        const std::string& m = j.status().message();
        size_t colon = m.find(':');
        *err = {m.substr(0, colon), std::string(text::trim(m.substr(colon + 1)))};
        return false;
    }
    Found f;
    collect(*j, &f, 0);
    Generated g;
    if (!check_field(f.v[1], "image_description", p.min_description, p.max_description,
                     &g.description, err))
        return false;
    if (p.need_qa) {
        if (!check_field(f.v[2], "question", p.min_question, p.max_question, &g.question, err))
            return false;
        if (!check_field(f.v[3], "answer", p.min_answer, p.max_answer, &g.answer, err))
            return false;
    }
    const std::pair<const char*, const std::string*> fields[] = {
        {"image_description", &g.description}, {"question", &g.question}, {"answer", &g.answer}};
    for (const auto& [name, value] : fields) {
        std::string_view hit = find_reference_mention(*value);
        if (!hit.empty()) {
            *err = {"mentions_reference",
                    fmt::format("\"{}\" mentions \"{}\"; write as if you only saw the image and "
                                "never refer to a caption, context or reference text",
                                name, hit)};
            return false;
        }
    }
    *out = std::move(g);
    return true;
}

}  // namespace mf::reformat
