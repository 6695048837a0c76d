#include "curate/sample.h"

#include <simdjson.h>

#include "core/text.h"

namespace mf::curate {

std::string sample_to_json(const Sample& s) {
    using text::append_json_string;
    std::string o;
    o.reserve(256 + s.caption.size() + s.meta_json.size());
    o += "{\"id\":";
    append_json_string(o, s.id);
    o += ",\"images\":[";
    for (size_t i = 0; i < s.images.size(); ++i) {
        if (i) o += ',';
        append_json_string(o, s.images[i]);
    }
    o += "],\"caption\":";
    append_json_string(o, s.caption);
    o += ",\"mentions\":[";
    for (size_t i = 0; i < s.mentions.size(); ++i) {
        if (i) o += ',';
        append_json_string(o, s.mentions[i]);
    }
    o += "],\"lineage\":{\"source\":";
    append_json_string(o, s.lineage.source);
    o += ",\"article\":";
    append_json_string(o, s.lineage.article);
    o += ",\"figure\":";
    append_json_string(o, s.lineage.figure);
    o += ",\"licence\":";
    append_json_string(o, s.lineage.licence);
    o += ",\"file\":";
    append_json_string(o, s.lineage.file);
    o += ",\"line\":";
    o += std::to_string(s.lineage.line);
    o += '}';
    if (!s.meta_json.empty()) {
        o += ",\"meta\":";
        o += s.meta_json;
    }
    o += '}';
    return o;
}

namespace {

Status field_error(std::string_view field, std::string_view what) {
    return Status::invalid_argument("field '" + std::string(field) + "': " + std::string(what));
}

Status get_string(simdjson::dom::object obj, std::string_view key, bool required,
                  std::string* out) {
    simdjson::dom::element e;
    if (obj[key].get(e) != simdjson::SUCCESS) {
        if (required) return field_error(key, "missing (required)");
        return {};
    }
    if (e.is_null() && !required) return {};
    std::string_view v;
    if (e.get_string().get(v) != simdjson::SUCCESS) return field_error(key, "expected a string");
    out->assign(v);
    return {};
}

Status get_string_array(simdjson::dom::object obj, std::string_view key, bool required,
                        std::vector<std::string>* out) {
    simdjson::dom::element e;
    if (obj[key].get(e) != simdjson::SUCCESS) {
        if (required) return field_error(key, "missing (required)");
        return {};
    }
    simdjson::dom::array arr;
    if (e.get_array().get(arr) != simdjson::SUCCESS)
        return field_error(key, "expected an array of strings");
    for (simdjson::dom::element item : arr) {
        std::string_view v;
        if (item.get_string().get(v) != simdjson::SUCCESS)
            return field_error(key, "expected an array of strings");
        out->emplace_back(v);
    }
    return {};
}

}  // namespace

Result<Sample> sample_from_json(std::string_view line) {
    // One parser per thread: simdjson parsers are reusable and not thread-safe.
    thread_local simdjson::dom::parser parser;
    simdjson::padded_string padded(line);
    simdjson::dom::element doc;
    if (auto err = parser.parse(padded).get(doc); err != simdjson::SUCCESS)
        return Status::invalid_argument(std::string("malformed JSON: ") +
                                        simdjson::error_message(err));
    simdjson::dom::object obj;
    if (doc.get_object().get(obj) != simdjson::SUCCESS)
        return Status::invalid_argument("expected a JSON object per line");
    Sample s;
    MF_RETURN_IF_ERROR(get_string(obj, "id", true, &s.id));
    if (s.id.empty()) return field_error("id", "must not be empty");
    MF_RETURN_IF_ERROR(get_string_array(obj, "images", true, &s.images));
    MF_RETURN_IF_ERROR(get_string(obj, "caption", true, &s.caption));
    MF_RETURN_IF_ERROR(get_string_array(obj, "mentions", false, &s.mentions));
    simdjson::dom::element lin;
    if (obj["lineage"].get(lin) == simdjson::SUCCESS && !lin.is_null()) {
        simdjson::dom::object lo;
        if (lin.get_object().get(lo) != simdjson::SUCCESS)
            return field_error("lineage", "expected an object");
        MF_RETURN_IF_ERROR(get_string(lo, "source", false, &s.lineage.source));
        MF_RETURN_IF_ERROR(get_string(lo, "article", false, &s.lineage.article));
        MF_RETURN_IF_ERROR(get_string(lo, "figure", false, &s.lineage.figure));
        MF_RETURN_IF_ERROR(get_string(lo, "licence", false, &s.lineage.licence));
        MF_RETURN_IF_ERROR(get_string(lo, "file", false, &s.lineage.file));
        simdjson::dom::element ln;
        if (lo["line"].get(ln) == simdjson::SUCCESS) {
            int64_t v;
            if (ln.get_int64().get(v) != simdjson::SUCCESS)
                return field_error("lineage.line", "expected an integer");
            s.lineage.line = v;
        }
    }
    simdjson::dom::element meta;
    if (obj["meta"].get(meta) == simdjson::SUCCESS && !meta.is_null()) {
        if (!meta.is_object()) return field_error("meta", "expected an object");
        s.meta_json = simdjson::minify(meta);
    }
    return s;
}

std::string sample_context(const Sample& s, bool with_mentions) {
    if (!with_mentions || s.mentions.empty()) return s.caption;
    std::string out = s.caption;
    for (const auto& m : s.mentions) {
        out += ' ';
        out += m;
    }
    return out;
}

}  // namespace mf::curate
