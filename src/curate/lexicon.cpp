#include "curate/lexicon.h"

#include <fmt/core.h>

#include <algorithm>
#include <system_error>

#include "core/text.h"
#include "io/file.h"
#include "io/line_reader.h"

namespace mf::curate {

namespace {

bool is_word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// Lower-case (ASCII + Latin-1 capitals in UTF-8), collapse whitespace, trim punctuation at both
// ends, drop a possessive "'s". `allow_short`: keep results shorter than 3 bytes.
std::string normalize_impl(std::string_view raw, bool allow_short) {
    std::string s;
    s.reserve(raw.size());
    bool space = false;
    for (size_t i = 0; i < raw.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(raw[i]);
        if (is_space(static_cast<char>(c))) {
            space = true;
            continue;
        }
        if (space && !s.empty()) s += ' ';
        space = false;
        if (c >= 'A' && c <= 'Z') {
            s += static_cast<char>(c + 32);
        } else if (c == 0xC3 && i + 1 < raw.size()) {
            unsigned char d = static_cast<unsigned char>(raw[i + 1]);
            s += static_cast<char>(c);
            s += static_cast<char>((d >= 0x80 && d <= 0x9E && d != 0x97) ? d + 0x20 : d);
            ++i;
        } else {
            s += static_cast<char>(c);
        }
    }
    size_t b = 0, e = s.size();
    while (b < e && !is_word_byte(static_cast<unsigned char>(s[b])))
        ++b;
    while (e > b && !is_word_byte(static_cast<unsigned char>(s[e - 1])))
        --e;
    s = s.substr(b, e - b);
    if (s.size() > 2 && text::ends_with(s, "'s")) s.resize(s.size() - 2);
    if (!allow_short && s.size() < 3) {
        // Abbreviations written in capitals ("CT", "GI") are kept.
        std::string_view t = text::trim(raw);
        bool abbrev = t.size() >= 2;
        bool upper = false;
        for (char c : t) {
            if (c >= 'A' && c <= 'Z')
                upper = true;
            else if (!(c >= '0' && c <= '9'))
                abbrev = false;
        }
        if (!(abbrev && upper)) return {};
    }
    return s;
}

// "Carcinoma, Squamous Cell" -> "Squamous Cell Carcinoma"; last word made singular
// ("Lymph Nodes" -> "Lymph Node"). MeSH headings are inverted and plural by convention.
std::string mesh_natural(std::string_view term) {
    std::string t(text::trim(term));
    size_t comma = t.find(", ");
    if (comma != std::string::npos && t.find(',', comma + 1) == std::string::npos)
        t = t.substr(comma + 2) + " " + t.substr(0, comma);
    size_t sp = t.rfind(' ');
    size_t w0 = sp == std::string::npos ? 0 : sp + 1;
    std::string w = text::ascii_lower(std::string_view(t).substr(w0));
    bool alpha = !w.empty();
    for (char c : w)
        if (!(c >= 'a' && c <= 'z')) alpha = false;
    if (alpha && w.size() > 4 && text::ends_with(w, "ies")) {
        t = t.substr(0, t.size() - 3) + "y";
    } else if (alpha && w.size() > 3 && text::ends_with(w, "s") && !text::ends_with(w, "ss") &&
               !text::ends_with(w, "us") && !text::ends_with(w, "is")) {
        t.pop_back();
    }
    return t;
}

Status format_error(const fs::path& path, std::string what) {
    return Status::corruption(path.string() + ": " + what);
}

}  // namespace

std::string normalize_term(std::string_view raw) {
    return normalize_impl(raw, false);
}

bool Lexicon::add(std::string_view raw) {
    std::string t = normalize_term(raw);
    if (t.empty()) return false;
    return terms_.insert(std::move(t)).second;
}

bool Lexicon::add_normalized(std::string_view term) {
    std::string t = normalize_impl(term, true);
    if (t.empty()) return false;
    return terms_.insert(std::move(t)).second;
}

bool Lexicon::contains(std::string_view raw) const {
    return terms_.count(normalize_impl(raw, true)) > 0;
}

size_t Lexicon::remove(const std::unordered_set<std::string>& stop) {
    size_t n = 0;
    for (auto it = terms_.begin(); it != terms_.end();) {
        if (stop.count(*it)) {
            it = terms_.erase(it);
            ++n;
        } else {
            ++it;
        }
    }
    return n;
}

size_t Lexicon::remove_count(const std::unordered_set<std::string>& stop) const {
    size_t n = 0;
    for (const auto& t : terms_)
        n += stop.count(t);
    return n;
}

Status Lexicon::save(const fs::path& path) const {
    std::string out = fmt::format(
        "# medforge lexicon: {} terms (normalised, sorted, one per line; "
        "load with --lexicon or `--from lexicon:{}`)\n",
        terms_.size(), path.filename().string());
    for (const auto& t : terms_) {
        out += t;
        out += '\n';
    }
    if (path.has_parent_path()) MF_RETURN_IF_ERROR(io::ensure_dir(path.parent_path()));
    return io::write_file_atomic(path, out);
}

Result<Lexicon> Lexicon::load(const fs::path& path) {
    MF_ASSIGN_OR_RETURN(auto terms, read_lexicon_terms(LexiconFormat::kWords, path));
    Lexicon lex;
    for (const auto& t : terms)
        lex.add_normalized(t);
    if (lex.empty())
        return Status::invalid_argument(
            path.string() + ": lexicon has no terms; build one with `medforge lexicon build`");
    return lex;
}

Result<LexiconFormat> parse_lexicon_format(std::string_view name) {
    if (name == "words" || name == "wordlist" || name == "txt") return LexiconFormat::kWords;
    if (name == "lexicon") return LexiconFormat::kLexicon;
    if (name == "hunspell" || name == "dic") return LexiconFormat::kHunspell;
    if (name == "mesh-tree") return LexiconFormat::kMeshTree;
    if (name == "mesh" || name == "mesh-ascii") return LexiconFormat::kMeshAscii;
    if (name == "specialist" || name == "umls") return LexiconFormat::kSpecialist;
    return Status::invalid_argument("unknown lexicon format '" + std::string(name) +
                                    "': use words, hunspell, mesh-tree, mesh (ASCII d20XX.bin) "
                                    "or specialist (UMLS LEXICON)");
}

std::string_view lexicon_format_name(LexiconFormat f) {
    switch (f) {
        case LexiconFormat::kWords:
            return "words";
        case LexiconFormat::kHunspell:
            return "hunspell";
        case LexiconFormat::kMeshTree:
            return "mesh-tree";
        case LexiconFormat::kMeshAscii:
            return "mesh";
        case LexiconFormat::kSpecialist:
            return "specialist";
        case LexiconFormat::kLexicon:
            return "lexicon";
    }
    return "?";
}

Result<std::vector<std::string>> read_lexicon_terms(LexiconFormat format, const fs::path& path) {
    io::LineReader r;
    Status st = r.open(path);
    if (!st.ok()) return st.with_context("lexicon source");
    std::vector<std::string> out;
    std::string_view line;
    bool first = true;
    bool saw_record = false;
    while (r.next(&line)) {
        if (first && text::starts_with(line, "\xEF\xBB\xBF")) line.remove_prefix(3);  // BOM
        bool was_first = first;
        first = false;
        switch (format) {
            case LexiconFormat::kWords:
            case LexiconFormat::kLexicon: {
                std::string_view t = text::trim(line);
                if (t.empty() || t[0] == '#') continue;
                out.emplace_back(t);
                break;
            }
            case LexiconFormat::kHunspell: {
                if (line.empty() || is_space(line[0]) || line[0] == '#') continue;
                std::string_view t = text::trim(line);
                if (was_first && !t.empty() &&
                    std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; }))
                    continue;  // word count
                std::string w;
                for (size_t i = 0; i < t.size(); ++i) {
                    if (t[i] == '\\' && i + 1 < t.size() && t[i + 1] == '/') {
                        w += '/';
                        ++i;
                    } else if (t[i] == '/' || t[i] == '\t') {
                        break;
                    } else {
                        w += t[i];
                    }
                }
                if (!text::trim(w).empty()) out.push_back(std::move(w));
                break;
            }
            case LexiconFormat::kMeshTree: {
                if (was_first) {
                    if (line.find("Tree") != std::string_view::npos) continue;  // header
                }
                if (text::trim(line).empty()) continue;
                auto f = text::split(line, '\t');
                if (f.size() < 3) {
                    return format_error(path, fmt::format("line {}: expected 3 tab-separated "
                                                          "fields (Tree Number, Descriptor UI, "
                                                          "Term), got {}",
                                                          r.line_no(), f.size()));
                }
                out.push_back(mesh_natural(f[2]));
                break;
            }
            case LexiconFormat::kMeshAscii: {
                std::string_view t = text::trim(line);
                if (t == "*NEWRECORD") {
                    saw_record = true;
                    continue;
                }
                std::string_view v;
                if (text::starts_with(t, "MH = "))
                    v = t.substr(5);
                else if (text::starts_with(t, "ENTRY = "))
                    v = t.substr(8);
                else if (text::starts_with(t, "PRINT ENTRY = "))
                    v = t.substr(14);
                else
                    continue;
                v = v.substr(0, v.find('|'));
                if (!text::trim(v).empty()) out.push_back(mesh_natural(v));
                break;
            }
            case LexiconFormat::kSpecialist: {
                std::string_view t = text::trim(line);
                if (text::starts_with(t, "{base=")) {
                    saw_record = true;
                    out.emplace_back(t.substr(6));
                } else if (text::starts_with(t, "spelling_variant=")) {
                    out.emplace_back(t.substr(17));
                }
                break;
            }
        }
    }
    if (!r.status().ok()) return r.status();
    if (format == LexiconFormat::kMeshAscii && !saw_record)
        return format_error(path,
                            "no *NEWRECORD records: not a MeSH ASCII descriptor file "
                            "(d20XX.bin); use mesh-tree for the tree TSV");
    if (format == LexiconFormat::kSpecialist && !saw_record)
        return format_error(path, "no {base=...} records: not a UMLS SPECIALIST LEXICON file");
    if (format == LexiconFormat::kMeshTree || format == LexiconFormat::kMeshAscii) {
        std::sort(out.begin(), out.end());
        out.erase(std::unique(out.begin(), out.end()), out.end());
    }
    return out;
}

Result<std::unordered_set<std::string>> load_stop_list(const fs::path& path) {
    MF_ASSIGN_OR_RETURN(auto words, read_lexicon_terms(LexiconFormat::kWords, path));
    std::unordered_set<std::string> stop;
    for (const auto& w : words) {
        if (w.find('\'') != std::string::npos) continue;  // possessives ("AA's")
        bool lower = true;
        for (char c : w)
            if (c >= 'A' && c <= 'Z') lower = false;
        if (!lower) continue;  // proper names and abbreviations are not common words
        std::string n = normalize_impl(w, true);
        if (!n.empty()) stop.insert(std::move(n));
    }
    return stop;
}

Result<LexiconSource> parse_lexicon_source(std::string_view spec, bool apply_stop) {
    size_t colon = spec.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 >= spec.size()) {
        return Status::invalid_argument("lexicon source '" + std::string(spec) +
                                        "': expected <format>:<path>, e.g. "
                                        "hunspell:/usr/share/hunspell/en_med_glut.dic");
    }
    LexiconSource s;
    MF_ASSIGN_OR_RETURN(s.format, parse_lexicon_format(spec.substr(0, colon)));
    s.path = std::string(spec.substr(colon + 1));
    s.apply_stop = apply_stop;
    return s;
}

Result<Lexicon> build_lexicon(const LexiconBuildOptions& opt, LexiconBuildReport* report) {
    LexiconBuildReport rep;
    Lexicon lex;
    std::unordered_set<std::string> stop;
    for (const auto& p : opt.stop_lists) {
        MF_ASSIGN_OR_RETURN(auto s, load_stop_list(p));
        stop.insert(s.begin(), s.end());
    }
    size_t stop_before_keep = 0;
    std::unordered_set<std::string> protect;
    for (const auto& k : opt.keep) {
        MF_ASSIGN_OR_RETURN(auto raw, read_lexicon_terms(k.format, k.path));
        for (const auto& t : raw) {
            std::string n = normalize_term(t);
            if (!n.empty()) protect.insert(std::move(n));
        }
    }
    rep.stop_words = stop.size();
    // Stop-filtered sources first, then the curated ones (added after the stop removal).
    for (int pass = 0; pass < 2; ++pass) {
        for (const auto& src : opt.sources) {
            if (src.apply_stop != (pass == 0)) continue;
            MF_ASSIGN_OR_RETURN(auto raw, read_lexicon_terms(src.format, src.path));
            LexiconBuildReport::Source rs;
            rs.spec = std::string(lexicon_format_name(src.format)) + ":" + src.path.string();
            rs.raw = raw.size();
            bool trusted = src.format == LexiconFormat::kLexicon;  // already normalised
            for (const auto& t : raw)
                rs.added += (trusted ? lex.add_normalized(t) : lex.add(t)) ? 1 : 0;
            rep.sources.push_back(std::move(rs));
        }
        if (pass == 0) {
            stop_before_keep = lex.remove_count(stop);
            for (const auto& p : protect)
                stop.erase(p);
            rep.removed = lex.remove(stop);
            rep.kept_by_keep = stop_before_keep - rep.removed;
        }
    }
    rep.final_size = lex.size();
    if (report) *report = rep;
    if (lex.empty())
        return Status::invalid_argument("the lexicon is empty: give --from sources with terms");
    return lex;
}

fs::path default_lexicon_path() {
    std::error_code ec;
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec) return fs::path("share/medforge/lexicon/medical_en.txt");
    return (exe.parent_path() / ".." / "share" / "medforge" / "lexicon" / "medical_en.txt")
        .lexically_normal();
}

}  // namespace mf::curate
