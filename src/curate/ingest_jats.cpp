// The `jats` ingest adapter: PubMed Central JATS XML articles (.nxml/.xml) with their image
// files next to them (the PMC Open Access package layout). One sample per <fig>; rules and the
// fig-group policy in docs/ingest.md.
#include <pugixml.hpp>

#include <fmt/core.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/text.h"
#include "core/thread_pool.h"
#include "curate/ingest_internal.h"
#include "io/file.h"

namespace mf::curate::ingest_detail {

namespace {

bool is_ws(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

bool name_is(const pugi::xml_node& n, std::string_view name) {
    return name == n.name();
}

// Elements whose text never belongs to the running text around them.
bool skipped_in_text(const pugi::xml_node& n) {
    static const std::set<std::string_view> kSkip = {
        "fig",      "fig-group", "table-wrap",   "table-wrap-group", "supplementary-material",
        "graphic",  "media",     "alternatives", "object-id",        "alt-text",
        "long-desc"};
    return kSkip.count(n.name()) > 0;
}

// Elements that separate words (block level); everything else is inline and glued.
bool is_block(const pugi::xml_node& n) {
    static const std::set<std::string_view> kBlock = {
        "p",         "title", "label",      "list",       "list-item",    "def-list",
        "def-item",  "term",  "def",        "disp-quote", "disp-formula", "sec",
        "caption",   "break", "boxed-text", "statement",  "verse-group",  "verse-line",
        "license-p", "attrib"};
    return kBlock.count(n.name()) > 0;
}

// Flattened text with whitespace collapsed as it is built, and the fig xrefs met on the way.
struct Flat {
    struct Xref {
        size_t begin = 0;
        size_t end = 0;
        std::vector<std::string> rids;
    };
    std::string text;
    std::vector<Xref> xrefs;

    void append(std::string_view s) {
        for (char c : s) {
            if (is_ws(c)) {
                if (!text.empty() && text.back() != ' ') text.push_back(' ');
            } else {
                text.push_back(c);
            }
        }
    }
    void space() { append(" "); }
};

// Appends the text of `n`'s children. `is_fig_id` tells fig targets apart (xref with
// ref-type="fig", or without ref-type but pointing at a figure).
template <typename IsFig>
void flatten_children(const pugi::xml_node& n, Flat& out, const IsFig& is_fig_id) {
    for (pugi::xml_node c : n.children()) {
        switch (c.type()) {
            case pugi::node_pcdata:
            case pugi::node_cdata:
                out.append(c.value());
                break;
            case pugi::node_element: {
                if (skipped_in_text(c)) break;
                bool block = is_block(c);
                if (block) out.space();
                if (name_is(c, "xref")) {
                    size_t begin = out.text.size();
                    flatten_children(c, out, is_fig_id);
                    std::string_view type = c.attribute("ref-type").value();
                    std::vector<std::string> rids;
                    for (auto r : text::split(c.attribute("rid").value(), ' ')) {
                        auto t = text::trim(r);
                        if (!t.empty()) rids.emplace_back(t);
                    }
                    bool fig = type == "fig";
                    if (type.empty())
                        for (const auto& r : rids)
                            fig = fig || is_fig_id(r);
                    if (fig && !rids.empty()) {
                        // A leading space appended inside the xref is not part of it.
                        if (begin < out.text.size() && out.text[begin] == ' ') ++begin;
                        out.xrefs.push_back({begin, out.text.size(), std::move(rids)});
                    }
                } else {
                    flatten_children(c, out, is_fig_id);
                }
                if (block) out.space();
                break;
            }
            default:
                break;
        }
    }
}

std::string flat_text(const pugi::xml_node& n) {
    Flat f;
    flatten_children(n, f, [](std::string_view) { return false; });
    return std::string(text::trim(f.text));
}

// "Figures 1–3": only a dash (or "to" / "through") between two fig xrefs makes a range.
bool is_range_separator(std::string_view between) {
    std::string_view t = text::trim(between);
    return t == "-" || t == "\xE2\x80\x93" /* en dash */ || t == "\xE2\x80\x94" /* em dash */ ||
           t == "\xE2\x80\x91" /* non-breaking hyphen */ || t == "\xE2\x88\x92" /* minus */ ||
           t == "to" || t == "through";
}

// One figure sample in document order.
struct FigEntry {
    pugi::xml_node node;   // the <fig> (or a <fig-group> without child figs)
    pugi::xml_node group;  // the enclosing <fig-group>, if any
    std::string id;
    std::string label;
    std::string caption;
    std::vector<std::string> hrefs;
    std::set<std::pair<size_t, size_t>> mention_keys;  // (paragraph, sentence)
};

std::string caption_text(const pugi::xml_node& holder) {
    pugi::xml_node cap = holder.child("caption");
    if (!cap) return {};
    std::string out;
    for (pugi::xml_node c : cap.children()) {
        std::string part;
        if (c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) {
            part = text::collapse_whitespace(c.value());
        } else if (c.type() == pugi::node_element) {
            Flat f;
            f.space();
            flatten_children(c, f, [](std::string_view) { return false; });
            part = std::string(text::trim(f.text));
            // A title without final punctuation runs into the first paragraph otherwise.
            if (name_is(c, "title") && !part.empty()) {
                char last = part.back();
                if (last != '.' && last != '!' && last != '?' && last != ':') part.push_back('.');
            }
        }
        if (part.empty()) continue;
        if (!out.empty()) out.push_back(' ');
        out += part;
    }
    return out;
}

// The graphic hrefs of a figure in order; of an <alternatives> only the first graphic counts
// (the others are the same image in another format).
void collect_graphics(const pugi::xml_node& n, std::vector<std::string>* out) {
    for (pugi::xml_node c : n.children()) {
        if (c.type() != pugi::node_element) continue;
        if (name_is(c, "graphic")) {
            std::string_view href = c.attribute("xlink:href").value();
            if (href.empty()) href = c.attribute("href").value();
            out->emplace_back(text::trim(href));
        } else if (name_is(c, "alternatives")) {
            std::vector<std::string> alts;
            collect_graphics(c, &alts);
            if (!alts.empty()) out->push_back(alts.front());
        } else if (!name_is(c, "fig") && !name_is(c, "caption")) {
            collect_graphics(c, out);
        }
    }
}

// Figures in document order: each <fig>; a <fig-group> contributes its child figs, or itself
// when it holds graphics but no figs.
void collect_figs(const pugi::xml_node& n, std::vector<FigEntry>* out) {
    for (pugi::xml_node c : n.children()) {
        if (c.type() != pugi::node_element) continue;
        if (name_is(c, "fig")) {
            FigEntry e;
            e.node = c;
            out->push_back(std::move(e));
        } else if (name_is(c, "fig-group")) {
            bool any = false;
            for (pugi::xml_node f : c.children("fig")) {
                FigEntry e;
                e.node = f;
                e.group = c;
                out->push_back(std::move(e));
                any = true;
            }
            if (!any) {
                FigEntry e;
                e.node = c;
                out->push_back(std::move(e));
            }
        } else if (name_is(c, "supplementary-material") || name_is(c, "table-wrap") ||
                   name_is(c, "table-wrap-group")) {
            continue;  // not figures
        } else {
            collect_figs(c, out);
        }
    }
}

// Body paragraphs (outermost <p>), skipping floats and captions.
void collect_paragraphs(const pugi::xml_node& n, std::vector<pugi::xml_node>* out) {
    for (pugi::xml_node c : n.children()) {
        if (c.type() != pugi::node_element) continue;
        if (name_is(c, "p")) {
            out->push_back(c);
        } else if (!skipped_in_text(c) && !name_is(c, "caption") && !name_is(c, "ref-list")) {
            collect_paragraphs(c, out);
        }
    }
}

std::string article_id(const pugi::xml_node& article, const fs::path& file) {
    pugi::xml_node meta = article.child("front").child("article-meta");
    std::map<std::string, std::string> ids;
    for (pugi::xml_node id : meta.children("article-id")) {
        std::string type = text::ascii_lower(id.attribute("pub-id-type").value());
        std::string v = text::collapse_whitespace(id.text().get());
        if (!v.empty() && !ids.count(type)) ids[type] = v;
    }
    auto all_digits = [](const std::string& s) {
        return !s.empty() &&
               std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    for (const char* t : {"pmcid", "pmc", "pmcaid"}) {
        auto it = ids.find(t);
        if (it == ids.end()) continue;
        return all_digits(it->second) ? "PMC" + it->second : it->second;
    }
    if (auto it = ids.find("pmid"); it != ids.end()) return "PMID:" + it->second;
    if (auto it = ids.find("doi"); it != ids.end()) return "doi:" + it->second;
    return file.stem().string();
}

// Licence: <license xlink:href>, <ali:license_ref>, a specific license-type, the licence text.
std::string licence_of(const pugi::xml_node& article) {
    pugi::xml_node meta = article.child("front").child("article-meta");
    pugi::xml_node perm = meta.child("permissions");
    if (!perm) perm = meta;
    pugi::xml_node lic = perm.find_node([](pugi::xml_node n) { return name_is(n, "license"); });
    pugi::xml_node ref =
        perm.find_node([](pugi::xml_node n) { return name_is(n, "ali:license_ref"); });
    if (lic) {
        std::string href = text::collapse_whitespace(lic.attribute("xlink:href").value());
        if (!href.empty()) return href;
    }
    if (ref) {
        std::string v = text::collapse_whitespace(ref.text().get());
        if (!v.empty()) return v;
    }
    if (!lic) return {};
    std::string type = text::collapse_whitespace(lic.attribute("license-type").value());
    std::string lower = text::ascii_lower(type);
    if (!type.empty() && lower != "open-access" && lower != "openaccess" && lower != "open access")
        return type;
    std::string t = flat_text(lic);
    return t.empty() ? type : t;
}

const std::vector<std::string>& image_exts() {
    static const std::vector<std::string> kExts = {".jpg",  ".jpeg", ".png",  ".gif",  ".tif",
                                                   ".tiff", ".webp", ".JPG",  ".JPEG", ".PNG",
                                                   ".GIF",  ".TIF",  ".TIFF", ".WEBP"};
    return kExts;
}

// Finds the image file of a graphic href: as written, with an image extension appended, or with
// its extension replaced. Returns "" when no file exists.
std::string find_graphic(const fs::path& base, const std::string& href) {
    fs::path p = fs::path(href).is_absolute() ? fs::path(href) : base / href;
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return io::absolute_normal(p).string();
    for (const auto& e : image_exts()) {
        fs::path q = p;
        q += e;
        if (fs::is_regular_file(q, ec)) return io::absolute_normal(q).string();
    }
    if (p.has_extension()) {
        for (const auto& e : image_exts()) {
            fs::path q = p;
            q.replace_extension(e);
            if (fs::is_regular_file(q, ec)) return io::absolute_normal(q).string();
        }
    }
    return {};
}

// Keeps one article's records (in order) until they can be passed on in file order.
class Buffer : public IngestSink {
  public:
    void on_sample(Sample&& s) override { items_.emplace_back(std::move(s)); }
    void on_reject(Reject&& r) override { items_.emplace_back(std::move(r)); }
    void on_input_bytes(uint64_t n) override { items_.emplace_back(n); }
    void replay(IngestSink& sink) {
        for (auto& it : items_) {
            if (auto* s = std::get_if<Sample>(&it))
                sink.on_sample(std::move(*s));
            else if (auto* r = std::get_if<Reject>(&it))
                sink.on_reject(std::move(*r));
            else
                sink.on_input_bytes(std::get<uint64_t>(it));
        }
        items_.clear();
    }

  private:
    std::vector<std::variant<Sample, Reject, uint64_t>> items_;
};

class JatsIngestor : public Ingestor {
  public:
    explicit JatsIngestor(IngestOptions opt) : opt_(std::move(opt)) {}
    std::string_view format() const override { return "jats"; }

    // Articles are parsed in parallel batches; their records are replayed in file order, so the
    // output does not depend on the thread count.
    Status run(const fs::path& input, IngestSink& sink) override {
        MF_ASSIGN_OR_RETURN(std::vector<fs::path> files, input_files(input, {".xml", ".nxml"}));
        if (files.size() == 1) {
            process(io::absolute_normal(files[0]), sink);
            return {};
        }
        ThreadPool pool(opt_.threads);
        constexpr size_t kBatch = 256;
        for (size_t start = 0; start < files.size(); start += kBatch) {
            size_t n = std::min(kBatch, files.size() - start);
            std::vector<Buffer> bufs(n);
            pool.parallel_for(n, [&](size_t, size_t b, size_t e) {
                for (size_t i = b; i < e; ++i)
                    process(io::absolute_normal(files[start + i]), bufs[i]);
            });
            for (auto& buf : bufs)
                buf.replay(sink);
        }
        return {};
    }

  private:
    void process(const fs::path& file, IngestSink& sink) {
        auto content = io::read_file(file);
        if (!content.ok()) {
            sink.on_reject(make_reject("unreadable_file", content.status().message(), file, 0));
            return;
        }
        const std::string& buf = *content;
        sink.on_input_bytes(buf.size());
        pugi::xml_document doc;
        pugi::xml_parse_result res =
            doc.load_buffer(buf.data(), buf.size(), pugi::parse_default | pugi::parse_ws_pcdata,
                            pugi::encoding_auto);
        if (!res) {
            int64_t line =
                line_of_offset(buf, static_cast<size_t>(std::max<ptrdiff_t>(0, res.offset)));
            sink.on_reject(make_reject(
                "bad_xml",
                fmt::format("{}:{}: malformed XML ({}, byte {}); the article is skipped: fix or "
                            "re-download it",
                            file.string(), line, res.description(), res.offset),
                file, line));
            return;
        }
        pugi::xml_node article = doc.child("article");
        if (!article)
            article = doc.find_node([](pugi::xml_node n) { return name_is(n, "article"); });
        if (!article) {
            sink.on_reject(make_reject(
                "bad_xml", file.string() + ": no <article> element; is this a JATS file?", file,
                1));
            return;
        }
        // Line numbers of elements, from their byte offsets.
        std::vector<size_t> newlines;
        for (size_t i = 0; i < buf.size(); ++i)
            if (buf[i] == '\n') newlines.push_back(i);
        auto line_at = [&](const pugi::xml_node& n) -> int64_t {
            ptrdiff_t off = n.offset_debug();
            if (off < 0) return 0;
            return 1 +
                   (std::lower_bound(newlines.begin(), newlines.end(), static_cast<size_t>(off)) -
                    newlines.begin());
        };

        const std::string article_key = article_id(article, file);
        const std::string licence = [&] {
            std::string l = licence_of(article);
            return l.empty() ? opt_.default_licence : l;
        }();

        std::vector<FigEntry> figs;
        collect_figs(article, &figs);
        std::map<std::string, std::vector<size_t>> by_id;  // fig / fig-group id -> entry indices
        for (size_t i = 0; i < figs.size(); ++i) {
            FigEntry& e = figs[i];
            std::string own = e.node.attribute("id").value();
            e.id = own.empty() ? "fig" + std::to_string(i + 1) : own;
            if (!own.empty()) by_id[own].push_back(i);
            if (e.group) {
                std::string gid = e.group.attribute("id").value();
                if (!gid.empty()) by_id[gid].push_back(i);
            }
            std::string label = text::collapse_whitespace(flat_text(e.node.child("label")));
            if (label.empty() && e.group) label = flat_text(e.group.child("label"));
            e.label = label;
            std::string cap = caption_text(e.node);
            if (e.group) {
                std::string gcap = caption_text(e.group);
                if (!gcap.empty()) cap = cap.empty() ? gcap : gcap + " " + cap;
            }
            e.caption = text::valid_utf8(cap) ? cap : text::sanitize_utf8(cap);
            collect_graphics(e.node, &e.hrefs);
        }

        // Mentions: body sentences citing each figure.
        std::vector<std::vector<std::string>> para_sentences;
        std::vector<pugi::xml_node> paras;
        collect_paragraphs(article.child("body"), &paras);
        auto is_fig_id = [&](std::string_view rid) { return by_id.count(std::string(rid)) > 0; };
        for (size_t pi = 0; pi < paras.size(); ++pi) {
            Flat f;
            flatten_children(paras[pi], f, is_fig_id);
            std::vector<Span> spans = sentence_spans(f.text);
            std::vector<std::string> sentences;
            for (const Span& sp : spans) {
                std::string s = f.text.substr(sp.begin, sp.end - sp.begin);
                sentences.push_back(text::valid_utf8(s) ? s : text::sanitize_utf8(s));
            }
            para_sentences.push_back(std::move(sentences));
            auto sentence_of = [&](size_t pos) -> size_t {
                for (size_t k = 0; k < spans.size(); ++k)
                    if (pos < spans[k].end) return k;
                return spans.empty() ? 0 : spans.size() - 1;
            };
            auto cite = [&](const std::string& rid, size_t si) {
                auto it = by_id.find(rid);
                if (it == by_id.end()) return;
                for (size_t idx : it->second)
                    figs[idx].mention_keys.insert({pi, si});
            };
            for (size_t xi = 0; xi < f.xrefs.size(); ++xi) {
                const Flat::Xref& x = f.xrefs[xi];
                if (spans.empty()) break;
                size_t si = sentence_of(x.begin);
                for (const auto& rid : x.rids)
                    cite(rid, si);
                // "<xref rid=F1>1</xref>–<xref rid=F3>3</xref>": the figures in between too.
                if (xi + 1 < f.xrefs.size()) {
                    const Flat::Xref& y = f.xrefs[xi + 1];
                    std::string_view between(f.text.data() + x.end,
                                             y.begin >= x.end ? y.begin - x.end : 0);
                    auto a = by_id.find(x.rids.back());
                    auto b = by_id.find(y.rids.front());
                    if (is_range_separator(between) && a != by_id.end() && b != by_id.end()) {
                        size_t lo = a->second.front(), hi = b->second.back();
                        for (size_t k = lo; k <= hi && k < figs.size(); ++k)
                            figs[k].mention_keys.insert({pi, si});
                    }
                }
            }
        }

        const fs::path base = image_base(opt_, file);
        for (FigEntry& e : figs) {
            Sample s;
            s.id = "jats:" + article_key + ":" + e.id;
            s.caption = e.caption;
            for (const auto& [pi, si] : e.mention_keys) {
                const auto& ps = para_sentences[pi];
                if (si < ps.size()) s.mentions.push_back(ps[si]);
            }
            s.lineage.source = "jats";
            s.lineage.article = article_key;
            s.lineage.figure = e.id;
            s.lineage.licence = licence;
            s.lineage.file = file.string();
            s.lineage.line = line_at(e.node);
            std::string meta = "{\"label\":" + text::json_quote(e.label);
            if (e.group) meta += ",\"group\":" + text::json_quote(e.group.attribute("id").value());
            meta += '}';
            s.meta_json = meta;
            std::string where = fmt::format("{}:{}: fig '{}'", file.string(), s.lineage.line, e.id);

            std::string missing_href;
            for (const auto& href : e.hrefs) {
                std::string found = href.empty() ? std::string() : find_graphic(base, href);
                if (found.empty()) {
                    if (missing_href.empty())
                        missing_href = href.empty() ? "(empty xlink:href)" : href;
                    s.images.push_back(io::absolute_normal(base / href).string());
                } else {
                    s.images.push_back(found);
                }
            }
            auto reject = [&](const char* reason, const std::string& detail) {
                sink.on_reject(make_reject(reason, where + ": " + detail, file, s.lineage.line,
                                           s.id, sample_to_json(s)));
            };
            if (e.hrefs.empty()) {
                reject("no_image", "the figure has no <graphic>; nothing to train on");
            } else if (!missing_href.empty()) {
                reject("image_missing",
                       fmt::format("graphic '{}' has no image file in {} (tried the name as is and "
                                   "with .jpg/.jpeg/.png/.gif/.tif/.tiff/.webp); add the file or "
                                   "point --image-root at the package folder",
                                   missing_href, base.string()));
            } else if (s.caption.empty()) {
                reject("empty_caption", "the figure has no caption text");
            } else {
                sink.on_sample(std::move(s));
            }
        }
    }

    IngestOptions opt_;
};

}  // namespace

std::unique_ptr<Ingestor> make_jats_ingestor(const IngestOptions& opt) {
    return std::make_unique<JatsIngestor>(opt);
}

}  // namespace mf::curate::ingest_detail
