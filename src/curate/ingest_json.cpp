// The JSON-based ingest adapters: medicat, llava-med, pmc-oa, pubmedvision and the plain Sample
// JSONL. Each input file is JSONL (one object per line) or, when its first non-blank byte is
// '[', one JSON array of objects. Formats and field rules: docs/ingest.md.
#include <simdjson.h>

#include <fmt/core.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/text.h"
#include "core/thread_pool.h"
#include "curate/ingest_internal.h"
#include "io/file.h"
#include "io/line_reader.h"

namespace mf::curate::ingest_detail {

namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

// Why a record cannot become a sample.
struct RecordError {
    std::string reason;  // missing_field, wrong_type, empty_caption, no_image, ...
    std::string detail;  // without the file:line prefix
};

RecordError missing(std::string_view field) {
    return {"missing_field", "required field '" + std::string(field) + "' is missing or null"};
}
RecordError wrong_type(std::string_view field, std::string_view expected) {
    return {"wrong_type", "field '" + std::string(field) + "': expected " + std::string(expected)};
}

// One record handed to an adapter.
// Per input file, computed once: its path and where its images are resolved.
struct FileContext {
    fs::path file;
    std::string file_str;
    ImageLocator images;
};

struct JsonRecord {
    object obj;
    const FileContext& ctx;
    int64_t line = 0;  // 1-based line (JSONL) or record index (JSON array)
    bool in_array = false;
    std::string_view raw;  // the record's JSON text
    const fs::path& file() const { return ctx.file; }
    std::string where() const {
        return in_array ? fmt::format("{}: record {}", ctx.file_str, line)
                        : fmt::format("{}:{}", ctx.file_str, line);
    }
};

// ---- field access: absent and null both mean "not given" ----

bool lookup(object obj, std::string_view key, element* e) {
    return obj[key].get(*e) == simdjson::SUCCESS && !e->is_null();
}

// A string field, or an integer (ids such as pmid) written as a number.
std::optional<RecordError> opt_string(object obj, std::string_view key, std::string* out,
                                      bool* present = nullptr, bool allow_number = false) {
    element e;
    if (present) *present = false;
    if (!lookup(obj, key, &e)) return std::nullopt;
    std::string_view v;
    if (e.get_string().get(v) == simdjson::SUCCESS) {
        out->assign(v);
    } else if (allow_number && (e.is_int64() || e.is_uint64())) {
        out->assign(simdjson::minify(e));
    } else {
        return wrong_type(key, allow_number ? "a string or an integer" : "a string");
    }
    if (present) *present = true;
    return std::nullopt;
}

std::optional<RecordError> req_string(object obj, std::string_view key, std::string* out,
                                      bool allow_number = false) {
    bool present = false;
    if (auto err = opt_string(obj, key, out, &present, allow_number)) return err;
    if (!present) return missing(key);
    return std::nullopt;
}

// Joins a list of tokens with single spaces.
bool join_tokens(array arr, std::string* out) {
    out->clear();
    for (element t : arr) {
        std::string_view v;
        if (t.get_string().get(v) != simdjson::SUCCESS) return false;
        if (!out->empty()) out->push_back(' ');
        out->append(v);
    }
    return true;
}

// A list of sentences given as: a string; an array of strings; an array of token arrays; or an
// array of objects with "sentence" / "text" / "tokens" (string or token array). Blank entries are
// dropped; whitespace is collapsed.
std::optional<RecordError> sentence_list(object obj, std::string_view key,
                                         std::vector<std::string>* out) {
    element e;
    if (!lookup(obj, key, &e)) return std::nullopt;
    auto add = [&](std::string_view s) {
        std::string c = text::collapse_whitespace(s);
        if (!c.empty()) out->push_back(std::move(c));
    };
    std::string_view sv;
    if (e.get_string().get(sv) == simdjson::SUCCESS) {
        add(sv);
        return std::nullopt;
    }
    array arr;
    const char* expected = "a string, an array of strings or an array of token arrays";
    if (e.get_array().get(arr) != simdjson::SUCCESS) return wrong_type(key, expected);
    for (element item : arr) {
        std::string joined;
        array toks;
        object o;
        if (item.get_string().get(sv) == simdjson::SUCCESS) {
            add(sv);
        } else if (item.get_array().get(toks) == simdjson::SUCCESS) {
            if (!join_tokens(toks, &joined)) return wrong_type(key, expected);
            add(joined);
        } else if (item.get_object().get(o) == simdjson::SUCCESS) {
            element inner;
            bool done = false;
            for (std::string_view k : {"sentence", "text", "tokens"}) {
                if (!lookup(o, k, &inner)) continue;
                if (inner.get_string().get(sv) == simdjson::SUCCESS) {
                    add(sv);
                } else if (inner.get_array().get(toks) == simdjson::SUCCESS &&
                           join_tokens(toks, &joined)) {
                    add(joined);
                } else {
                    return wrong_type(key, expected);
                }
                done = true;
                break;
            }
            if (!done) return wrong_type(key, expected);
        } else if (!item.is_null()) {
            return wrong_type(key, expected);
        }
    }
    return std::nullopt;
}

// An image reference: a string or an array of strings (order kept).
std::optional<RecordError> image_list(object obj, std::string_view key,
                                      std::vector<std::string>* out, bool* present) {
    element e;
    *present = false;
    if (!lookup(obj, key, &e)) return std::nullopt;
    std::string_view sv;
    if (e.get_string().get(sv) == simdjson::SUCCESS) {
        out->emplace_back(sv);
    } else {
        array arr;
        if (e.get_array().get(arr) != simdjson::SUCCESS)
            return wrong_type(key, "a string or an array of strings");
        for (element item : arr) {
            if (item.get_string().get(sv) != simdjson::SUCCESS)
                return wrong_type(key, "a string or an array of strings");
            out->emplace_back(sv);
        }
    }
    *present = true;
    return std::nullopt;
}

// Copies the listed fields (when present) into a JSON object text for Sample::meta_json.
std::string meta_of(object obj, std::initializer_list<std::string_view> keys) {
    std::string o;
    for (auto k : keys) {
        element e;
        if (!lookup(obj, k, &e)) continue;
        o += o.empty() ? "{" : ",";
        text::append_json_string(o, k);
        o += ':';
        o += simdjson::minify(e);
    }
    if (!o.empty()) o += '}';
    return o;
}

// True when collapse_whitespace(s) == s: no control bytes, no double spaces, no space at either
// end. Branch-free inner loop (vectorised), the common case for clean data.
bool is_tidy(std::string_view s) {
    if (s.empty()) return true;
    if (s.front() == ' ' || s.back() == ' ') return false;
    unsigned char low = 0;
    for (unsigned char c : s)
        low |= static_cast<unsigned char>(c < ' ');
    return !low && s.find("  ") == std::string_view::npos;
}

// Whitespace collapsing as text::collapse_whitespace, copying only when something changes.
std::string clean(std::string_view s) {
    return is_tidy(s) ? std::string(s) : text::collapse_whitespace(s);
}
void clean_in_place(std::string* s) {
    if (!is_tidy(*s)) *s = text::collapse_whitespace(*s);
}

// ---- the record walker ----

std::string raw_record_json(std::string_view raw) {
    return text::valid_utf8(raw) ? text::json_quote(raw)
                                 : text::json_quote(text::sanitize_utf8(raw));
}

// Fills a Sample from one record, or says why not. Must be thread-safe.
using BuildFn = std::function<std::optional<RecordError>(const JsonRecord&, Sample*)>;

// What one record became; emitted to the sink in input order.
struct Outcome {
    bool is_sample = false;
    bool skip = false;   // a blank line: not a record
    uint64_t bytes = 0;  // input bytes consumed by this record
    Sample sample;
    std::string json;  // sample_to_json(sample), computed on the worker thread
    Reject reject;
};

class JsonIngestor : public Ingestor {
  public:
    JsonIngestor(std::string format, IngestOptions opt, BuildFn build)
        : format_(std::move(format)), opt_(std::move(opt)), build_(std::move(build)) {}

    std::string_view format() const override { return format_; }

    Status run(const fs::path& input, IngestSink& sink) override {
        MF_ASSIGN_OR_RETURN(std::vector<fs::path> files, input_files(input, {".json", ".jsonl"}));
        for (const auto& f : files)
            walk_file(io::absolute_normal(f), sink);
        return {};
    }

  private:
    static void emit(Outcome&& o, IngestSink& sink) {
        if (o.bytes) sink.on_input_bytes(o.bytes);
        if (o.skip) return;
        if (o.is_sample)
            sink.on_sample_json(std::move(o.sample), std::move(o.json));
        else
            sink.on_reject(std::move(o.reject));
    }

    // One parsed object -> a sample or a reject.
    void from_record(const JsonRecord& rec, Outcome* o) const {
        Sample& s = o->sample;
        s.lineage.source = format_;
        s.lineage.file = rec.ctx.file_str;
        s.lineage.line = rec.line;
        auto reject = [&](const RecordError& e) {
            o->is_sample = false;
            o->reject = make_reject(e.reason, rec.where() + ": " + e.detail, rec.ctx.file, rec.line,
                                    s.id, std::string(rec.raw));
        };
        if (auto err = build_(rec, &s)) return reject(*err);
        if (s.lineage.licence.empty()) s.lineage.licence = opt_.default_licence;
        if (s.images.empty())
            return reject({"no_image", "the record names no image file; add an image field"});
        if (s.caption.empty())
            return reject({"empty_caption", "the caption is empty; nothing to learn from"});
        if (opt_.require_images) {
            std::string miss = first_missing(s.images);
            if (!miss.empty()) {
                return reject({"image_missing",
                               "image file " + miss + " does not exist; check --image-root"});
            }
        }
        o->is_sample = true;
        o->json = sample_to_json(s);
    }

    // One JSONL line -> an outcome. Thread-safe (one parser per thread).
    void from_line(const FileContext& ctx, int64_t ln, std::string_view line, Outcome* o) const {
        thread_local simdjson::dom::parser parser;
        if (text::trim(line).empty()) {
            o->skip = true;
            return;
        }
        const fs::path& file = ctx.file;
        simdjson::padded_string padded(line);
        element doc;
        auto err = parser.parse(padded).get(doc);
        if (err == simdjson::SUCCESS && doc.is_object()) {
            from_record(JsonRecord{doc.get_object().value_unsafe(), ctx, ln, false, line}, o);
            return;
        }
        std::string where = fmt::format("{}:{}", ctx.file_str, ln);
        // simdjson validates UTF-8 while parsing; the byte offset is only looked up on failure.
        if (size_t bad = text::first_invalid_utf8(line); bad != std::string_view::npos) {
            o->reject = make_reject("invalid_utf8",
                                    fmt::format("{}: invalid UTF-8 at byte {} of the line; "
                                                "re-encode the file as UTF-8",
                                                where, bad),
                                    file, ln, {}, raw_record_json(line));
            return;
        }
        if (err != simdjson::SUCCESS) {
            o->reject = make_reject("bad_json",
                                    fmt::format("{}: malformed JSON ({}); each line must be one "
                                                "JSON object",
                                                where, simdjson::error_message(err)),
                                    file, ln, {}, raw_record_json(line));
            return;
        }
        o->reject = make_reject("wrong_type", where + ": expected a JSON object per line", file, ln,
                                {}, raw_record_json(line));
    }

    void walk_file(const fs::path& file, IngestSink& sink) {
        // Peek at the first non-blank byte to tell an array from JSONL.
        std::FILE* f = std::fopen(file.c_str(), "rb");
        if (!f) {
            sink.on_reject(make_reject(
                "unreadable_file",
                file.string() + ": cannot open; check that it exists and is readable", file, 0));
            return;
        }
        auto skip_ws = [&] {
            int c;
            while ((c = std::fgetc(f)) != EOF &&
                   (c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
            }
            return c;
        };
        int c = skip_ws();
        // A UTF-8 byte order mark before '[' is tolerated.
        if (c == 0xEF && std::fgetc(f) == 0xBB && std::fgetc(f) == 0xBF) c = skip_ws();
        std::fclose(f);
        FileContext ctx{file, file.string(),
                        ImageLocator(image_base(opt_, file), {"figures", "images"})};
        if (c == '[') {
            walk_array(ctx, sink);
        } else {
            walk_lines(ctx, sink);
        }
    }

    void walk_lines(const FileContext& ctx, IngestSink& sink) {
        const fs::path& file = ctx.file;
        io::LineReader reader;
        if (Status s = reader.open(file); !s.ok()) {
            sink.on_reject(
                make_reject("unreadable_file", s.message() + "; check its permissions", file, 0));
            return;
        }
        if (!pool_) pool_ = std::make_unique<ThreadPool>(opt_.threads);
        constexpr size_t kBatch = 4096;
        std::vector<std::string> lines(kBatch);
        std::vector<int64_t> line_nos(kBatch);
        std::vector<Outcome> outs(kBatch);
        std::string_view line;
        uint64_t consumed = 0;
        bool more = true;
        while (more) {
            size_t n = 0;
            while (n < kBatch && (more = reader.next(&line))) {
                lines[n].assign(line);
                line_nos[n] = static_cast<int64_t>(reader.line_no());
                outs[n] = Outcome{};
                outs[n].bytes = reader.bytes_read() - consumed;
                consumed = reader.bytes_read();
                ++n;
            }
            pool_->parallel_for(
                n,
                [&](size_t, size_t b, size_t e) {
                    for (size_t i = b; i < e; ++i)
                        from_line(ctx, line_nos[i], lines[i], &outs[i]);
                },
                256);
            for (size_t i = 0; i < n; ++i)
                emit(std::move(outs[i]), sink);
        }
        if (!reader.status().ok()) {
            sink.on_reject(make_reject("unreadable_file",
                                       reader.status().message() + " (read stopped here)", file,
                                       static_cast<int64_t>(reader.line_no())));
        }
    }

    void walk_array(const FileContext& ctx, IngestSink& sink) {
        const fs::path& file = ctx.file;
        // One padded copy of the file in memory (plus simdjson's DOM): fine for files of a few GB;
        // convert larger ones to JSONL, which streams.
        simdjson::padded_string padded;
        if (auto err = simdjson::padded_string::load(file.string()).get(padded)) {
            sink.on_reject(make_reject("unreadable_file",
                                       fmt::format("{}: cannot read ({}); check its permissions",
                                                   ctx.file_str, simdjson::error_message(err)),
                                       file, 0));
            return;
        }
        std::string_view body(padded.data(), padded.size());
        sink.on_input_bytes(body.size());
        if (text::starts_with(body, "\xEF\xBB\xBF")) body.remove_prefix(3);
        simdjson::dom::parser parser;
        element doc;
        array arr;
        // The padding after the file's end stays valid after skipping a BOM.
        if (auto err = parser.parse(body.data(), body.size(), false).get(doc);
            err != simdjson::SUCCESS) {
            if (size_t bad = text::first_invalid_utf8(body); bad != std::string_view::npos) {
                int64_t line = line_of_offset(body, bad);
                sink.on_reject(make_reject(
                    "invalid_utf8",
                    fmt::format("{}:{}: invalid UTF-8 at byte {}; the whole JSON array is "
                                "rejected: re-encode the file as UTF-8",
                                ctx.file_str, line, bad),
                    file, line));
                return;
            }
            sink.on_reject(make_reject("bad_json",
                                       fmt::format("{}: malformed JSON array ({}); the whole file "
                                                   "is rejected: fix it or convert it to JSONL",
                                                   ctx.file_str, simdjson::error_message(err)),
                                       file, 0));
            return;
        }
        if (doc.get_array().get(arr) != simdjson::SUCCESS) {
            sink.on_reject(make_reject(
                "wrong_type", file.string() + ": expected a JSON array of objects", file, 0));
            return;
        }
        int64_t index = 0;
        for (element item : arr) {
            ++index;
            std::string raw = simdjson::minify(item);
            Outcome o;
            object obj;
            if (item.get_object().get(obj) != simdjson::SUCCESS) {
                o.reject = make_reject(
                    "wrong_type",
                    fmt::format("{}: record {}: expected a JSON object", file.string(), index),
                    file, index, {}, raw);
            } else {
                from_record(JsonRecord{obj, ctx, index, true, raw}, &o);
            }
            emit(std::move(o), sink);
        }
    }

    std::string format_;
    IngestOptions opt_;
    BuildFn build_;
    std::unique_ptr<ThreadPool> pool_;
};

// MedICaT: {pdf_hash, fig_uri, fig_key, s2_caption, s2orc_caption, s2orc_references, oa_info}.
BuildFn medicat_builder(const IngestOptions& opt) {
    return [opt](const JsonRecord& r, Sample* s) -> std::optional<RecordError> {
        std::string hash, uri, fig_key;
        if (auto e = req_string(r.obj, "pdf_hash", &hash)) return e;
        if (auto e = req_string(r.obj, "fig_uri", &uri)) return e;
        if (auto e = opt_string(r.obj, "fig_key", &fig_key)) return e;
        bool has_s2 = false, has_orc = false;
        std::string cap;
        if (auto e = opt_string(r.obj, "s2_caption", &cap, &has_s2)) return e;
        if (text::trim(cap).empty()) {
            if (auto e = opt_string(r.obj, "s2orc_caption", &cap, &has_orc)) return e;
        }
        if (!has_s2 && !has_orc) return missing("s2_caption");
        s->caption = clean(cap);
        if (auto e = sentence_list(r.obj, "s2orc_references", &s->mentions)) return e;
        std::string doi, licence;
        element oa;
        if (lookup(r.obj, "oa_info", &oa)) {
            object oo;
            if (oa.get_object().get(oo) != simdjson::SUCCESS)
                return wrong_type("oa_info", "an object");
            if (opt_string(oo, "doi", &doi)) return wrong_type("oa_info.doi", "a string");
            element inner;
            if (lookup(oo, "oa", &inner)) {
                object lo;
                if (inner.get_object().get(lo) != simdjson::SUCCESS)
                    return wrong_type("oa_info.oa", "an object");
                if (opt_string(lo, "license", &licence))
                    return wrong_type("oa_info.oa.license", "a string");
            }
        }
        s->id = "medicat:" + hash + ":" + uri;
        s->lineage.article = doi.empty() ? hash : doi;
        s->lineage.figure = fig_key.empty() ? uri : fig_key;
        s->lineage.licence = licence;
        s->images.push_back(r.ctx.images.locate(hash + "_" + uri, {"figures", ""}));
        s->meta_json = meta_of(r.obj, {"fig_key", "radiology", "scope", "predicted_type"});
        return std::nullopt;
    };
}

// LLaVA-Med figure records: {pmid, pair_id, fig_id, fig_label, fig_caption, in_text_mention, ...}.
BuildFn llava_med_builder(const IngestOptions& opt) {
    return [opt](const JsonRecord& r, Sample* s) -> std::optional<RecordError> {
        std::string pmid, pair_id, fig_id, cap;
        if (auto e = opt_string(r.obj, "pmid", &pmid, nullptr, true)) return e;
        if (auto e = opt_string(r.obj, "pair_id", &pair_id, nullptr, true)) return e;
        if (auto e = opt_string(r.obj, "fig_id", &fig_id, nullptr, true)) return e;
        if (pmid.empty() && !pair_id.empty()) {
            // pair_id is "<pmid>_<fig_id>".
            auto us = pair_id.find('_');
            if (us != std::string::npos) pmid = pair_id.substr(0, us);
        }
        if (pmid.empty()) return missing("pmid");
        if (pair_id.empty() && fig_id.empty()) return missing("pair_id (or fig_id)");
        if (auto e = req_string(r.obj, "fig_caption", &cap)) return e;
        s->caption = clean(cap);
        if (auto e = sentence_list(r.obj, "in_text_mention", &s->mentions)) return e;
        std::vector<std::string> refs;
        bool present = false;
        for (std::string_view key : {"image", "image_file", "image_path"}) {
            if (auto e = image_list(r.obj, key, &refs, &present)) return e;
            if (present) break;
        }
        if (!present && !pair_id.empty()) refs.push_back(pair_id + ".jpg");
        for (const auto& ref : refs)
            s->images.push_back(r.ctx.images.locate(ref, {"", "images"}));
        s->id = "llava-med:" + pmid + ":" + (pair_id.empty() ? fig_id : pair_id);
        s->lineage.article = "PMID:" + pmid;
        s->lineage.figure = fig_id.empty() ? pair_id : fig_id;
        s->meta_json = meta_of(r.obj, {"fig_label", "domain"});
        return std::nullopt;
    };
}

// PMC-OA: {image, caption, pmcid?, url_name?}.
BuildFn pmc_oa_builder(const IngestOptions& opt) {
    return [opt](const JsonRecord& r, Sample* s) -> std::optional<RecordError> {
        std::string image, cap, pmcid;
        if (auto e = req_string(r.obj, "image", &image)) return e;
        if (auto e = req_string(r.obj, "caption", &cap)) return e;
        if (auto e = opt_string(r.obj, "pmcid", &pmcid)) return e;
        std::string name = fs::path(image).filename().string();
        if (pmcid.empty() && text::starts_with(name, "PMC")) {
            size_t n = 3;
            while (n < name.size() && name[n] >= '0' && name[n] <= '9')
                ++n;
            if (n > 3) pmcid = name.substr(0, n);
        }
        s->id = "pmc-oa:" + image;
        s->caption = clean(cap);
        s->images.push_back(r.ctx.images.locate(image, {"", "images"}));
        s->lineage.article = pmcid;
        s->lineage.figure = fs::path(image).stem().string();
        s->meta_json = meta_of(r.obj, {"url_name", "alignment_type", "alignment_score"});
        return std::nullopt;
    };
}

// Strips "<image>" tokens and collapses whitespace.
std::string strip_image_tokens(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    size_t i = 0;
    while (i < v.size()) {
        if (v.compare(i, 7, "<image>") == 0) {
            out.push_back(' ');
            i += 7;
        } else {
            out.push_back(v[i++]);
        }
    }
    return text::collapse_whitespace(out);
}

// PubMedVision / LLaVA conversation records: {id, image (string|list),
// conversations:[{from,value}]}.
BuildFn pubmedvision_builder(const IngestOptions& opt) {
    return [opt](const JsonRecord& r, Sample* s) -> std::optional<RecordError> {
        std::string id;
        if (auto e = req_string(r.obj, "id", &id, true)) return e;
        if (id.empty()) return RecordError{"missing_field", "field 'id' is empty"};
        std::vector<std::string> refs;
        bool present = false;
        if (auto e = image_list(r.obj, "image", &refs, &present)) return e;
        element conv;
        if (!lookup(r.obj, "conversations", &conv)) return missing("conversations");
        array turns;
        if (conv.get_array().get(turns) != simdjson::SUCCESS)
            return wrong_type("conversations", "an array of {from, value} objects");
        bool found = false;
        for (element t : turns) {
            object to;
            if (t.get_object().get(to) != simdjson::SUCCESS)
                return wrong_type("conversations", "an array of {from, value} objects");
            std::string from, value;
            if (auto e = req_string(to, "from", &from))
                return RecordError{e->reason, "conversations[]: " + e->detail};
            if (auto e = req_string(to, "value", &value))
                return RecordError{e->reason, "conversations[]: " + e->detail};
            if (from == "gpt" || from == "assistant") {
                s->caption = strip_image_tokens(value);
                found = true;
                break;
            }
        }
        if (!found)
            return RecordError{"missing_field",
                               "conversations: no 'gpt' turn to take the caption from"};
        for (const auto& ref : refs)
            s->images.push_back(r.ctx.images.locate(ref, {"", "images"}));
        s->id = "pubmedvision:" + id;
        s->lineage.article = id;
        s->meta_json = meta_of(r.obj, {"modality", "body_part"});
        return std::nullopt;
    };
}

// Plain Sample JSONL (docs/formats/sample_jsonl.md).
BuildFn jsonl_builder(const IngestOptions& opt) {
    return [opt](const JsonRecord& r, Sample* s) -> std::optional<RecordError> {
        auto parsed = sample_from_json(r.raw);
        if (!parsed.ok()) {
            const std::string& m = parsed.status().message();
            bool is_missing = m.find("missing") != std::string::npos ||
                              m.find("must not be empty") != std::string::npos;
            return RecordError{is_missing ? "missing_field" : "wrong_type", m};
        }
        Sample in = std::move(parsed).value();
        std::string file = s->lineage.file;
        int64_t line = s->lineage.line;
        *s = std::move(in);
        for (auto& img : s->images)
            img = r.ctx.images.locate(img, {""});
        clean_in_place(&s->caption);
        for (auto& m : s->mentions)
            clean_in_place(&m);
        // Keep the lineage a record already carries (re-ingesting medforge output); fill the rest.
        if (s->lineage.source.empty()) s->lineage.source = "jsonl";
        if (s->lineage.file.empty()) {
            s->lineage.file = file;
            s->lineage.line = line;
        }
        return std::nullopt;
    };
}

}  // namespace

std::unique_ptr<Ingestor> make_json_ingestor(std::string_view format, const IngestOptions& opt) {
    BuildFn build;
    if (format == "medicat")
        build = medicat_builder(opt);
    else if (format == "llava-med")
        build = llava_med_builder(opt);
    else if (format == "pmc-oa")
        build = pmc_oa_builder(opt);
    else if (format == "pubmedvision")
        build = pubmedvision_builder(opt);
    else if (format == "jsonl")
        build = jsonl_builder(opt);
    else
        return nullptr;
    return std::make_unique<JsonIngestor>(std::string(format), opt, std::move(build));
}

}  // namespace mf::curate::ingest_detail
