// WordPiece tokenizer. See wordpiece_tokenizer.h for the contract.
#include "io/wordpiece_tokenizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <unordered_map>

#include "core/text.h"
#include "io/file.h"
#include "io/spm_tokenizer.h"
#include "io/tokenizer_internal.h"

namespace mf::io {

using tok::field_error;
using tok::json;
using tok::parse_vocab;

namespace {

utf8proc_category_t category(char32_t cp) {
    return static_cast<utf8proc_category_t>(
        utf8proc_get_property(static_cast<utf8proc_int32_t>(cp))->category);
}

bool is_control(char32_t cp) {
    if (cp == '\t' || cp == '\n' || cp == '\r') return false;
    auto c = category(cp);
    return c == UTF8PROC_CATEGORY_CC || c == UTF8PROC_CATEGORY_CF || c == UTF8PROC_CATEGORY_CO ||
           c == UTF8PROC_CATEGORY_CS;
}

bool is_punct(char32_t cp) {
    if ((cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) || (cp >= 0x5B && cp <= 0x60) ||
        (cp >= 0x7B && cp <= 0x7E)) {
        return true;
    }
    auto c = category(cp);
    return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}

bool is_cjk(char32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

bool is_cased(char32_t cp) {
    auto c = static_cast<utf8proc_int32_t>(cp);
    return utf8proc_tolower(c) != c || utf8proc_toupper(c) != c ||
           category(cp) == UTF8PROC_CATEGORY_LT;
}

bool case_ignorable(char32_t cp) {
    auto c = category(cp);
    return c == UTF8PROC_CATEGORY_MN || c == UTF8PROC_CATEGORY_ME || c == UTF8PROC_CATEGORY_CF ||
           c == UTF8PROC_CATEGORY_LM || c == UTF8PROC_CATEGORY_SK || cp == '\'' || cp == '.' ||
           cp == ':' || cp == 0x2019 || cp == 0xB7;
}

// Full Unicode lowercase as JavaScript's String.prototype.toLowerCase: simple mappings plus
// U+0130 -> "i\u0307" and the final-sigma rule.
std::vector<char32_t> to_lower(const std::vector<char32_t>& in) {
    std::vector<char32_t> out;
    out.reserve(in.size());
    for (size_t i = 0; i < in.size(); ++i) {
        char32_t c = in[i];
        if (c == 0x130) {
            out.push_back('i');
            out.push_back(0x307);
            continue;
        }
        if (c == 0x3A3) {
            bool before = false, after = false;
            for (size_t k = i; k-- > 0;) {
                if (case_ignorable(in[k])) continue;
                before = is_cased(in[k]);
                break;
            }
            for (size_t k = i + 1; k < in.size(); ++k) {
                if (case_ignorable(in[k])) continue;
                after = is_cased(in[k]);
                break;
            }
            out.push_back(before && !after ? 0x3C2 : 0x3C3);
            continue;
        }
        out.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
    }
    return out;
}

// NFD, then drop nonspacing marks (Mn).
std::vector<char32_t> strip_accents(const std::vector<char32_t>& in) {
    std::vector<char32_t> out;
    out.reserve(in.size());
    utf8proc_int32_t buf[32];
    for (char32_t c : in) {
        int last = 0;
        utf8proc_ssize_t n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), buf, 32,
                                                     UTF8PROC_DECOMPOSE, &last);
        if (n < 0 || n > 32) {
            out.push_back(c);
            continue;
        }
        for (utf8proc_ssize_t k = 0; k < n; ++k) {
            auto d = static_cast<char32_t>(buf[k]);
            if (category(d) != UTF8PROC_CATEGORY_MN) out.push_back(d);
        }
    }
    return out;
}

}  // namespace

struct WordPieceTokenizer::Impl {
    std::unordered_map<std::string, int32_t> vocab;  // model vocab + added tokens
    std::vector<std::string> id_to_tok;
    std::vector<uint8_t> special;
    tok::AddedTokens added;
    int32_t unk = 0;
    std::string prefix = "##";
    size_t max_chars = 100;
    // BertNormalizer (all off when the normalizer is null).
    bool clean_text = false, chinese = false, lowercase = false, strip = false;
    tok::PostProcessor post;
    bool dec_wordpiece = true;
    std::string dec_prefix = "##";
    bool dec_cleanup = true;
    bool cleanup_spaces = true;

    std::vector<char32_t> normalize(std::string_view text) const;
    void encode_section(std::string_view text, std::vector<int32_t>& out) const;
    void encode_word(const std::vector<char32_t>& w, std::vector<int32_t>& out) const;
};

std::vector<char32_t> WordPieceTokenizer::Impl::normalize(std::string_view text) const {
    std::vector<char32_t> cps = tok::to_code_points(text);
    if (clean_text) {
        std::vector<char32_t> o;
        o.reserve(cps.size());
        for (char32_t c : cps) {
            if (c == 0 || c == 0xFFFD || is_control(c)) continue;
            o.push_back(tok::js_space(c) ? U' ' : c);
        }
        cps = std::move(o);
    }
    if (chinese) {
        std::vector<char32_t> o;
        o.reserve(cps.size());
        for (char32_t c : cps) {
            if (is_cjk(c)) {
                o.push_back(' ');
                o.push_back(c);
                o.push_back(' ');
            } else {
                o.push_back(c);
            }
        }
        cps = std::move(o);
    }
    if (lowercase) cps = to_lower(cps);
    if (strip) cps = strip_accents(cps);
    return cps;
}

void WordPieceTokenizer::Impl::encode_word(const std::vector<char32_t>& w,
                                           std::vector<int32_t>& out) const {
    if (w.size() > max_chars) {
        out.push_back(unk);
        return;
    }
    size_t mark = out.size();
    size_t start = 0;
    std::string sub;
    while (start < w.size()) {
        size_t end = w.size();
        int32_t found = -1;
        while (start < end) {
            sub = start > 0 ? prefix : std::string();
            for (size_t k = start; k < end; ++k)
                tok::append_utf8(sub, w[k]);
            auto it = vocab.find(sub);
            if (it != vocab.end()) {
                found = it->second;
                break;
            }
            --end;
        }
        if (found < 0) {
            out.resize(mark);
            out.push_back(unk);
            return;
        }
        out.push_back(found);
        start = end;
    }
}

void WordPieceTokenizer::Impl::encode_section(std::string_view text,
                                              std::vector<int32_t>& out) const {
    std::vector<char32_t> cps = normalize(text);
    // BertPreTokenizer: words are runs of non-space, non-punctuation; each punctuation mark is
    // a word of its own.
    std::vector<char32_t> word;
    for (char32_t c : cps) {
        if (tok::js_space(c) || is_punct(c)) {
            if (!word.empty()) encode_word(word, out);
            word.clear();
            if (is_punct(c)) encode_word({c}, out);
            continue;
        }
        word.push_back(c);
    }
    if (!word.empty()) encode_word(word, out);
}

// ---- public API ---------------------------------------------------------------------------------

WordPieceTokenizer::WordPieceTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WordPieceTokenizer::WordPieceTokenizer(WordPieceTokenizer&&) noexcept = default;
WordPieceTokenizer& WordPieceTokenizer::operator=(WordPieceTokenizer&&) noexcept = default;
WordPieceTokenizer::~WordPieceTokenizer() = default;

std::vector<int32_t> WordPieceTokenizer::encode(std::string_view text, bool add_special) const {
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
            m.encode_section(p.text, out);
        }
    }
    if (add_special) out.insert(out.end(), m.post.suffix.begin(), m.post.suffix.end());
    return out;
}

std::string WordPieceTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
    const Impl& m = *impl_;
    std::string out;
    bool first = true;
    for (int32_t id : ids) {
        if (id < 0 || static_cast<size_t>(id) >= m.id_to_tok.size()) continue;
        if (skip_special && m.special[id]) continue;
        std::string t = m.id_to_tok[id];
        if (!m.dec_wordpiece) {
            if (!first) out += ' ';
            out += t;
            first = false;
            continue;
        }
        if (!first) {
            if (t.compare(0, m.dec_prefix.size(), m.dec_prefix) == 0) {
                t.erase(0, m.dec_prefix.size());
            } else {
                t.insert(t.begin(), ' ');
            }
        }
        if (m.dec_cleanup) t = clean_up_tokenization(std::move(t));
        out += t;
        first = false;
    }
    if (m.cleanup_spaces) out = clean_up_tokenization(std::move(out));
    return out;
}

std::optional<int32_t> WordPieceTokenizer::token_to_id(std::string_view token) const {
    auto it = impl_->vocab.find(std::string(token));
    if (it == impl_->vocab.end()) return std::nullopt;
    return it->second;
}

std::optional<std::string> WordPieceTokenizer::id_to_token(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= impl_->id_to_tok.size()) return std::nullopt;
    if (impl_->id_to_tok[id].empty()) return std::nullopt;
    return impl_->id_to_tok[id];
}

size_t WordPieceTokenizer::vocab_size() const {
    return impl_->id_to_tok.size();
}

bool WordPieceTokenizer::is_special(int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < impl_->special.size() && impl_->special[id];
}

void WordPieceTokenizer::set_cleanup_spaces(bool on) {
    impl_->cleanup_spaces = on;
}

std::string WordPieceTokenizer::normalize(std::string_view text) const {
    auto cps = impl_->normalize(text);
    return tok::to_utf8(cps, 0, cps.size());
}

// ---- loading ------------------------------------------------------------------------------------

Result<WordPieceTokenizer> WordPieceTokenizer::load(const std::filesystem::path& tokenizer_json) {
    MF_ASSIGN_OR_RETURN(std::string text, read_file(tokenizer_json));
    return from_json(text, tokenizer_json.string());
}

Result<WordPieceTokenizer> WordPieceTokenizer::from_json(std::string_view text,
                                                         std::string_view origin) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        return Status::invalid_argument(std::string(origin) +
                                        ": not a JSON object (is this a tokenizer.json?)");
    }
    auto m = std::make_unique<Impl>();
    const json& model = j.value("model", json());
    if (!model.is_object()) return field_error(origin, "model", "missing or not an object");
    std::string type = model.value("type", std::string());
    if (type != "WordPiece") {
        return field_error(origin, "model.type",
                           "'" + type + "' is not supported (WordPiece only)");
    }
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
    std::string unk = model.value("unk_token", std::string("[UNK]"));
    auto uit = m->vocab.find(unk);
    if (uit == m->vocab.end()) {
        return field_error(origin, "model.unk_token", "'" + unk + "' is not in model.vocab");
    }
    m->unk = uit->second;
    m->prefix = model.value("continuing_subword_prefix", std::string("##"));
    int64_t max_chars = model.value("max_input_chars_per_word", int64_t{100});
    if (max_chars <= 0) {
        return field_error(origin, "model.max_input_chars_per_word", "must be positive");
    }
    m->max_chars = static_cast<size_t>(max_chars);

    const json& norm = j.value("normalizer", json());
    if (!norm.is_null()) {
        std::string nt = norm.is_object() ? norm.value("type", std::string()) : std::string();
        if (nt != "BertNormalizer") {
            return field_error(origin, "normalizer.type",
                               "unsupported '" + nt + "' (BertNormalizer or null)");
        }
        m->clean_text = norm.value("clean_text", true);
        m->chinese = norm.value("handle_chinese_chars", true);
        m->lowercase = norm.value("lowercase", true);
        const json& sa = norm.value("strip_accents", json());
        // null follows lowercase (as in BERT's BasicTokenizer).
        m->strip = sa.is_boolean() ? sa.get<bool>() : m->lowercase;
    }
    const json& pt = j.value("pre_tokenizer", json());
    if (!pt.is_null() &&
        (!pt.is_object() || pt.value("type", std::string()) != "BertPreTokenizer")) {
        return field_error(origin, "pre_tokenizer.type", "unsupported (BertPreTokenizer or null)");
    }
    const json& dec = j.value("decoder", json());
    if (!dec.is_null()) {
        std::string dt = dec.is_object() ? dec.value("type", std::string()) : std::string();
        if (dt != "WordPiece") {
            return field_error(origin, "decoder.type",
                               "unsupported '" + dt + "' (WordPiece or null)");
        }
        m->dec_prefix = dec.value("prefix", std::string("##"));
        m->dec_cleanup = dec.value("cleanup", true);
    } else {
        m->dec_wordpiece = false;
        m->dec_cleanup = false;
    }
    MF_ASSIGN_OR_RETURN(
        m->post, tok::parse_post_processor(j.value("post_processor", json()), m->vocab, origin));
    return WordPieceTokenizer(std::move(m));
}

Result<WordPieceTokenizer> WordPieceTokenizer::from_vocab_txt(std::string_view vocab_txt,
                                                              bool lowercase,
                                                              std::string_view origin) {
    json vocab = json::object();
    int32_t id = 0;
    if (!vocab_txt.empty() && vocab_txt.back() == '\n') vocab_txt.remove_suffix(1);
    for (std::string_view line : text::split(vocab_txt, '\n')) {
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        std::string t(line);
        if (!t.empty() && !vocab.contains(t)) vocab[t] = id;
        ++id;
    }
    if (vocab.empty()) {
        return Status::invalid_argument(std::string(origin) + ": empty vocab.txt");
    }
    json j;
    json added = json::array();
    // MPNet's vocab.txt holds BERT's [CLS]... after its own <s> <pad> </s> <unk>: the latter are
    // its special tokens.
    bool mpnet = vocab.contains("<s>") && vocab.contains("</s>");
    std::vector<const char*> names = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    if (mpnet) names = {"<s>", "<pad>", "</s>", "<unk>", "<mask>"};
    for (const char* s : names) {
        if (vocab.contains(s)) {
            added.push_back({{"id", vocab[s]},
                             {"content", s},
                             {"special", true},
                             {"lstrip", std::string(s) == "<mask>"},
                             {"rstrip", false}});
        }
    }
    std::string unk = vocab.contains("[UNK]") ? "[UNK]" : "<unk>";
    if (!vocab.contains(unk)) {
        return Status::invalid_argument(std::string(origin) +
                                        ": vocab.txt has neither [UNK] nor <unk>");
    }
    j["added_tokens"] = added;
    j["normalizer"] = {{"type", "BertNormalizer"},
                       {"clean_text", true},
                       {"handle_chinese_chars", true},
                       {"strip_accents", nullptr},
                       {"lowercase", lowercase}};
    j["pre_tokenizer"] = {{"type", "BertPreTokenizer"}};
    if (mpnet) {
        j["post_processor"] = {{"type", "RobertaProcessing"},
                               {"cls", json::array({"<s>", vocab["<s>"]})},
                               {"sep", json::array({"</s>", vocab["</s>"]})}};
    } else if (vocab.contains("[CLS]") && vocab.contains("[SEP]")) {
        j["post_processor"] = {{"type", "BertProcessing"},
                               {"cls", json::array({"[CLS]", vocab["[CLS]"]})},
                               {"sep", json::array({"[SEP]", vocab["[SEP]"]})}};
    }
    j["decoder"] = {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}};
    j["model"] = {{"type", "WordPiece"},
                  {"unk_token", unk},
                  {"continuing_subword_prefix", "##"},
                  {"max_input_chars_per_word", 100},
                  {"vocab", vocab}};
    return from_json(j.dump(), origin);
}

}  // namespace mf::io
