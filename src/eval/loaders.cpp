// Benchmark loaders. Each format is documented in docs/eval.md.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/text.h"
#include "eval/eval.h"
#include "io/file.h"

namespace mf::eval {

using namespace ::mf::text;  // NOLINT

namespace {

using nlohmann::json;

std::string where(const fs::path& p, size_t rec) {
    return p.filename().string() + ": record " + std::to_string(rec + 1);
}

Status missing(const fs::path& p, size_t rec, std::string_view field, std::string_view fmt) {
    return Status::invalid_argument(where(p, rec) + ": missing field '" + std::string(field) +
                                    "' (not a " + std::string(fmt) +
                                    " file? see docs/eval.md for the accepted formats)");
}

// A JSON scalar as text ("yes", 3 -> "3", true -> "true"); nullopt for objects/arrays/null.
std::optional<std::string> scalar(const json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
    if (v.is_number()) {
        std::string s = v.dump();
        return s;
    }
    if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
    return std::nullopt;
}

Result<std::string> field(const json& rec, const fs::path& p, size_t i, const char* name,
                          std::string_view fmt) {
    if (!rec.is_object()) return Status::invalid_argument(where(p, i) + ": not a JSON object");
    auto it = rec.find(name);
    if (it == rec.end()) return missing(p, i, name, fmt);
    auto s = scalar(*it);
    if (!s) {
        return Status::invalid_argument(where(p, i) + ": field '" + name +
                                        "' is not a string or number");
    }
    return *s;
}

std::string opt_field(const json& rec, const char* name) {
    auto it = rec.find(name);
    if (it == rec.end()) return "";
    return scalar(*it).value_or("");
}

// A JSON array file, or JSON Lines (one object per line).
Result<std::vector<json>> read_records(const fs::path& path) {
    MF_ASSIGN_OR_RETURN(std::string text, io::read_file(path));
    std::string_view t = trim(text);
    std::vector<json> out;
    if (!t.empty() && t.front() == '[') {
        json doc = json::parse(t, nullptr, false);
        if (doc.is_discarded()) {
            return Status::invalid_argument(path.string() + ": not valid JSON");
        }
        for (auto& r : doc)
            out.push_back(std::move(r));
        return out;
    }
    size_t line_no = 0;
    for (auto line : split(text, '\n')) {
        ++line_no;
        auto l = trim(line);
        if (l.empty()) continue;
        json r = json::parse(l, nullptr, false);
        if (r.is_discarded()) {
            return Status::invalid_argument(path.string() + ":" + std::to_string(line_no) +
                                            ": not valid JSON (expected a JSON array or JSON "
                                            "Lines)");
        }
        out.push_back(std::move(r));
    }
    if (out.empty()) return Status::invalid_argument(path.string() + ": no records");
    return out;
}

bool yes_no(const std::string& answer) {
    auto a = ascii_lower(trim(answer));
    return a == "yes" || a == "no";
}

// Closed yes/no -> options ["yes", "no"] (A = yes, B = no); other closed or open -> open item.
void set_yes_no_or_open(EvalItem& it, const std::string& answer, bool closed) {
    it.answer_text = answer;
    if (closed && yes_no(answer)) {
        it.options = {"yes", "no"};
        it.answer_index = ascii_lower(trim(answer)) == "yes" ? 0 : 1;
        it.closed = true;
    } else {
        it.closed = false;
        it.answer_index = -1;
    }
}

std::string upper_trim(std::string_view s) {
    std::string u(trim(s));
    for (auto& c : u)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return u;
}

}  // namespace

const std::vector<std::string>& benchmark_names() {
    static const std::vector<std::string> names{"vqa-rad",    "slake", "pathvqa",      "pmc-vqa",
                                                "omnimedvqa", "mmmu",  "huatuo-bundle"};
    return names;
}

Result<Dataset> load_benchmark(const std::string& b, const fs::path& path, const LoadOptions& o) {
    if (b == "vqa-rad") return load_vqa_rad(path, o);
    if (b == "slake") return load_slake(path, o);
    if (b == "pathvqa") return load_pathvqa(path, o);
    if (b == "pmc-vqa") return load_pmc_vqa(path, o);
    if (b == "omnimedvqa") return load_omnimedvqa(path, o);
    if (b == "mmmu") return load_mmmu(path, o);
    if (b == "huatuo-bundle") return load_huatuo_bundle(path, o);
    return Status::invalid_argument("unknown benchmark '" + b +
                                    "' (vqa-rad, slake, pathvqa, pmc-vqa, omnimedvqa, mmmu, "
                                    "huatuo-bundle)");
}

// VQA-RAD: MEVF testset.json or the OSF "VQA_RAD Dataset Public.json". Both have qid,
// image_name, question, answer, answer_type, question_type. The OSF file holds train and test
// items: its phrase_type starts with "test" for the test split (test_freeform / test_para), and
// only those are loaded; the MEVF file is the test split already. answer_type may carry
// trailing spaces in the OSF file; question_type may be a comma list ("PRES, POS"): the first
// type is the subset.
Result<Dataset> load_vqa_rad(const fs::path& path, const LoadOptions& opt) {
    MF_ASSIGN_OR_RETURN(auto recs, read_records(path));
    Dataset ds;
    ds.benchmark = "vqa-rad";
    ds.subset_kind = "question_type";
    ds.files = {path};
    bool osf = !recs.empty() && recs[0].is_object() && recs[0].contains("qid_linked_id");
    for (size_t i = 0; i < recs.size(); ++i) {
        const auto& r = recs[i];
        const char* fmt = "VQA-RAD";
        MF_ASSIGN_OR_RETURN(std::string qid, field(r, path, i, "qid", fmt));
        MF_ASSIGN_OR_RETURN(std::string image, field(r, path, i, "image_name", fmt));
        MF_ASSIGN_OR_RETURN(std::string q, field(r, path, i, "question", fmt));
        MF_ASSIGN_OR_RETURN(std::string a, field(r, path, i, "answer", fmt));
        MF_ASSIGN_OR_RETURN(std::string at, field(r, path, i, "answer_type", fmt));
        MF_ASSIGN_OR_RETURN(std::string qt, field(r, path, i, "question_type", fmt));
        if (osf) {
            std::string pt = ascii_lower(opt_field(r, "phrase_type"));
            if (!starts_with(pt, "test")) {
                ds.skipped["not_test_split"]++;
                continue;
            }
        }
        std::string type = upper_trim(at);
        if (type != "CLOSED" && type != "OPEN") {
            return Status::invalid_argument(where(path, i) + ": answer_type '" + at +
                                            "' is neither CLOSED nor OPEN");
        }
        EvalItem it;
        it.id = "qid:" + qid;
        it.question = q;
        it.images = {image};
        auto comma = qt.find(',');
        it.subset = upper_trim(comma == std::string::npos ? qt : qt.substr(0, comma));
        it.source_line = where(path, i);
        set_yes_no_or_open(it, a, type == "CLOSED");
        if (!it.closed && !opt.include_open) {
            ds.skipped["open_question"]++;
            continue;
        }
        ds.items.push_back(std::move(it));
    }
    return ds;
}

// SLAKE test/validate json: qid, img_name, question, answer, q_lang, modality, answer_type.
Result<Dataset> load_slake(const fs::path& path, const LoadOptions& opt) {
    MF_ASSIGN_OR_RETURN(auto recs, read_records(path));
    Dataset ds;
    ds.benchmark = "slake";
    ds.subset_kind = "modality";
    ds.files = {path};
    for (size_t i = 0; i < recs.size(); ++i) {
        const auto& r = recs[i];
        const char* fmt = "SLAKE";
        MF_ASSIGN_OR_RETURN(std::string qid, field(r, path, i, "qid", fmt));
        MF_ASSIGN_OR_RETURN(std::string image, field(r, path, i, "img_name", fmt));
        MF_ASSIGN_OR_RETURN(std::string q, field(r, path, i, "question", fmt));
        MF_ASSIGN_OR_RETURN(std::string a, field(r, path, i, "answer", fmt));
        MF_ASSIGN_OR_RETURN(std::string lang, field(r, path, i, "q_lang", fmt));
        MF_ASSIGN_OR_RETURN(std::string mod, field(r, path, i, "modality", fmt));
        MF_ASSIGN_OR_RETURN(std::string at, field(r, path, i, "answer_type", fmt));
        if (lang != "en") {
            ds.skipped["not_english"]++;
            continue;
        }
        bool closed = upper_trim(at) == "CLOSED";
        if (!closed && !opt.all_questions) {
            ds.skipped["open_question"]++;
            continue;
        }
        EvalItem it;
        it.id = "qid:" + qid;
        it.question = q;
        it.images = {image};
        it.subset = mod;
        it.source_line = where(path, i);
        set_yes_no_or_open(it, a, closed);
        if (!it.closed && !opt.include_open) {
            ds.skipped["open_question"]++;
            continue;
        }
        ds.items.push_back(std::move(it));
    }
    return ds;
}

// PathVQA as JSON array or JSONL with: question, answer, image (or image_name / img_id), and
// optional id, answer_type (closed/open; default: closed iff the answer is yes/no). This is
// the HF flaviagiammarino/path-vqa test split exported with its image file names (see docs).
Result<Dataset> load_pathvqa(const fs::path& path, const LoadOptions& opt) {
    MF_ASSIGN_OR_RETURN(auto recs, read_records(path));
    Dataset ds;
    ds.benchmark = "pathvqa";
    ds.subset_kind = "answer_type";
    ds.files = {path};
    for (size_t i = 0; i < recs.size(); ++i) {
        const auto& r = recs[i];
        const char* fmt = "PathVQA";
        MF_ASSIGN_OR_RETURN(std::string q, field(r, path, i, "question", fmt));
        MF_ASSIGN_OR_RETURN(std::string a, field(r, path, i, "answer", fmt));
        std::string image = opt_field(r, "image");
        if (image.empty()) image = opt_field(r, "image_name");
        if (image.empty()) image = opt_field(r, "img_id");
        if (image.empty()) return missing(path, i, "image", fmt);
        std::string id = opt_field(r, "id");
        if (id.empty()) id = std::to_string(i);
        std::string at = ascii_lower(trim(opt_field(r, "answer_type")));
        bool closed = at.empty() ? yes_no(a) : (at == "closed" || at == "yes/no");
        EvalItem it;
        it.id = "pathvqa:" + id;
        it.question = q;
        it.images = {image};
        it.source_line = where(path, i);
        set_yes_no_or_open(it, a, closed);
        it.subset = it.closed ? "yes/no" : "open";
        if (!it.closed && !opt.include_open) {
            ds.skipped["open_question"]++;
            continue;
        }
        ds.items.push_back(std::move(it));
    }
    return ds;
}

Result<std::vector<std::vector<std::string>>> parse_csv(std::string_view t) {
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> row;
    std::string cell;
    bool quoted = false;
    bool any = false;
    size_t line = 1;
    for (size_t i = 0; i < t.size(); ++i) {
        char c = t[i];
        if (quoted) {
            if (c == '"') {
                if (i + 1 < t.size() && t[i + 1] == '"') {
                    cell.push_back('"');
                    ++i;
                } else {
                    quoted = false;
                }
            } else {
                if (c == '\n') ++line;
                cell.push_back(c);
            }
            continue;
        }
        if (c == '"' && cell.empty()) {
            quoted = true;
            any = true;
        } else if (c == ',') {
            row.push_back(std::move(cell));
            cell.clear();
            any = true;
        } else if (c == '\r' && i + 1 < t.size() && t[i + 1] == '\n') {
            continue;
        } else if (c == '\n') {
            ++line;
            if (any || !cell.empty()) {
                row.push_back(std::move(cell));
                rows.push_back(std::move(row));
            }
            row.clear();
            cell.clear();
            any = false;
        } else {
            cell.push_back(c);
            any = true;
        }
    }
    if (quoted) {
        return Status::invalid_argument("CSV: unterminated quoted field (starts before line " +
                                        std::to_string(line) + ")");
    }
    if (any || !cell.empty()) {
        row.push_back(std::move(cell));
        rows.push_back(std::move(row));
    }
    return rows;
}

// PMC-VQA test csv (test.csv / test_clean.csv): Figure_path, Question, Answer, Choice A..D,
// optional Answer_label. Choices may carry an "A:" prefix, which is removed. The answer
// letter is Answer_label when present, else the choice whose text equals Answer.
Result<Dataset> load_pmc_vqa(const fs::path& path, const LoadOptions&) {
    MF_ASSIGN_OR_RETURN(std::string text, io::read_file(path));
    MF_ASSIGN_OR_RETURN(auto rows, parse_csv(text));
    if (rows.empty()) return Status::invalid_argument(path.string() + ": empty CSV");
    std::map<std::string, size_t> col;
    for (size_t c = 0; c < rows[0].size(); ++c)
        col[std::string(trim(rows[0][c]))] = c;
    for (const char* need :
         {"Figure_path", "Question", "Answer", "Choice A", "Choice B", "Choice C", "Choice D"}) {
        if (!col.count(need)) {
            return Status::invalid_argument(path.filename().string() + ": missing column '" + need +
                                            "' (expected the PMC-VQA test csv header)");
        }
    }
    Dataset ds;
    ds.benchmark = "pmc-vqa";
    ds.subset_kind = "none";
    ds.files = {path};
    for (size_t r = 1; r < rows.size(); ++r) {
        const auto& row = rows[r];
        auto get = [&](const char* name) -> std::string {
            size_t c = col[name];
            return c < row.size() ? row[c] : std::string();
        };
        std::string where_s = path.filename().string() + ": row " + std::to_string(r + 1);
        if (row.size() < rows[0].size()) {
            return Status::invalid_argument(where_s + ": " + std::to_string(row.size()) +
                                            " fields, header has " +
                                            std::to_string(rows[0].size()));
        }
        EvalItem it;
        it.question = std::string(trim(get("Question")));
        it.images = {std::string(trim(get("Figure_path")))};
        it.id = "pmc:" + std::to_string(r) + ":" + it.images[0];
        it.source_line = where_s;
        const char* letters[] = {"A", "B", "C", "D"};
        for (int k = 0; k < 4; ++k) {
            std::string c(trim(get((std::string("Choice ") + letters[k]).c_str())));
            if (c.size() >= 2 && c[0] == letters[k][0] && c[1] == ':')
                c = std::string(trim(c.substr(2)));
            it.options.push_back(c);
        }
        std::string ans(trim(get("Answer")));
        it.answer_text = ans;
        std::string label = col.count("Answer_label") ? upper_trim(get("Answer_label")) : "";
        if (label.size() == 1 && label[0] >= 'A' && label[0] <= 'D') {
            it.answer_index = label[0] - 'A';
        } else {
            std::string a = ans;
            if (a.size() >= 2 && a[1] == ':' && a[0] >= 'A' && a[0] <= 'D')
                a = std::string(trim(a.substr(2)));
            for (int k = 0; k < 4; ++k)
                if (it.options[k] == a) it.answer_index = k;
        }
        if (it.answer_index < 0) {
            return Status::invalid_argument(where_s + ": Answer '" + ans +
                                            "' matches no Choice and there is no Answer_label");
        }
        ds.items.push_back(std::move(it));
    }
    return ds;
}

// OmniMedVQA open-access QA json (one file per dataset, e.g. QA_information/Open-access/
// ACRIMA.json): a list of {dataset, question_id, question_type, question, gt_answer,
// image_path, option_A..option_D (some only A..B/C), modality_type}. `path` may be one file or
// a directory of such files (all *.json loaded, sorted by name).
Result<Dataset> load_omnimedvqa(const fs::path& path, const LoadOptions&) {
    Dataset ds;
    ds.benchmark = "omnimedvqa";
    ds.subset_kind = "modality";
    std::vector<fs::path> files;
    if (fs::is_directory(path)) {
        MF_ASSIGN_OR_RETURN(files, io::list_files(path, {".json"}, false));
        std::sort(files.begin(), files.end());
        if (files.empty()) return Status::invalid_argument(path.string() + ": no *.json files");
    } else {
        files.assign(1, path);
    }
    ds.files = files;
    for (const auto& f : files) {
        MF_ASSIGN_OR_RETURN(auto recs, read_records(f));
        for (size_t i = 0; i < recs.size(); ++i) {
            const auto& r = recs[i];
            const char* fmt = "OmniMedVQA QA";
            MF_ASSIGN_OR_RETURN(std::string q, field(r, f, i, "question", fmt));
            MF_ASSIGN_OR_RETURN(std::string gt, field(r, f, i, "gt_answer", fmt));
            MF_ASSIGN_OR_RETURN(std::string img, field(r, f, i, "image_path", fmt));
            MF_ASSIGN_OR_RETURN(std::string mod, field(r, f, i, "modality_type", fmt));
            MF_ASSIGN_OR_RETURN(std::string a, field(r, f, i, "option_A", fmt));
            EvalItem it;
            it.options.push_back(a);
            for (const char* k : {"option_B", "option_C", "option_D", "option_E"}) {
                std::string v = opt_field(r, k);
                if (r.contains(k) && !v.empty()) it.options.push_back(v);
            }
            std::string dsname = opt_field(r, "dataset");
            if (dsname.empty()) dsname = f.stem().string();
            std::string qid = opt_field(r, "question_id");
            if (qid.empty()) qid = std::to_string(i);
            it.id = "omni:" + dsname + ":" + qid;
            it.question = q;
            it.images = {img};
            it.subset = mod;
            it.answer_text = gt;
            it.source_line = where(f, i);
            for (size_t k = 0; k < it.options.size(); ++k)
                if (trim(it.options[k]) == trim(gt)) it.answer_index = static_cast<int>(k);
            if (it.answer_index < 0) {
                return Status::invalid_argument(where(f, i) + ": gt_answer '" + gt +
                                                "' equals none of option_A..D");
            }
            ds.items.push_back(std::move(it));
        }
    }
    return ds;
}

Result<std::vector<std::string>> parse_list_literal(std::string_view text) {
    std::string_view t = trim(text);
    if (t.size() < 2 || t.front() != '[' || t.back() != ']') {
        return Status::invalid_argument("options literal is not a [...] list");
    }
    std::vector<std::string> out;
    size_t i = 1;
    auto skip = [&] {
        while (i < t.size() && (t[i] == ' ' || t[i] == ',' || t[i] == '\n' || t[i] == '\t'))
            ++i;
    };
    skip();
    while (i < t.size() - 1) {
        char q = t[i];
        if (q != '\'' && q != '"') {
            return Status::invalid_argument("options literal: expected a quoted string at " +
                                            std::to_string(i));
        }
        ++i;
        std::string s;
        bool closed = false;
        while (i < t.size() - 1) {
            char c = t[i];
            if (c == '\\' && i + 1 < t.size()) {
                char e = t[i + 1];
                switch (e) {
                    case 'n':
                        s.push_back('\n');
                        break;
                    case 't':
                        s.push_back('\t');
                        break;
                    case '\\':
                        s.push_back('\\');
                        break;
                    case '\'':
                        s.push_back('\'');
                        break;
                    case '"':
                        s.push_back('"');
                        break;
                    default:
                        s.push_back('\\');
                        s.push_back(e);
                }
                i += 2;
                continue;
            }
            if (c == q) {
                closed = true;
                ++i;
                break;
            }
            s.push_back(c);
            ++i;
        }
        if (!closed) return Status::invalid_argument("options literal: unterminated string");
        out.push_back(std::move(s));
        skip();
    }
    return out;
}

namespace {

Result<std::vector<std::string>> options_of(const json& r, const fs::path& p, size_t i,
                                            const char* fmt) {
    auto it = r.find("options");
    if (it == r.end()) return missing(p, i, "options", fmt);
    std::vector<std::string> out;
    if (it->is_array()) {
        for (const auto& v : *it) {
            auto s = scalar(v);
            if (!s) return Status::invalid_argument(where(p, i) + ": options holds a non-string");
            out.push_back(*s);
        }
        return out;
    }
    if (it->is_string()) {
        auto parsed = parse_list_literal(it->get<std::string>());
        if (!parsed.ok()) {
            return Status::invalid_argument(where(p, i) + ": " + parsed.status().message());
        }
        return *parsed;
    }
    return Status::invalid_argument(where(p, i) + ": options is neither a list nor a string");
}

const std::vector<std::string>& health_subjects() {
    static const std::vector<std::string> s{"Basic_Medical_Science", "Clinical_Medicine",
                                            "Diagnostics_and_Laboratory_Medicine", "Pharmacy",
                                            "Public_Health"};
    return s;
}

}  // namespace

// MMMU: JSON/JSONL with question, options (list or its string literal), answer (letter),
// image_1..image_7, and id ("validation_Clinical_Medicine_3") or, without id, the subject taken
// from image_1's file name ("images/test_Clinical_Medicine_69_1.png"). Open (non-choice) items
// (question_type "open" or no options) are skipped. Default: the Health & Medicine subjects.
Result<Dataset> load_mmmu(const fs::path& path, const LoadOptions& opt) {
    MF_ASSIGN_OR_RETURN(auto recs, read_records(path));
    Dataset ds;
    ds.benchmark = "mmmu";
    ds.subset_kind = "subject";
    ds.files = {path};
    for (size_t i = 0; i < recs.size(); ++i) {
        const auto& r = recs[i];
        const char* fmt = "MMMU";
        MF_ASSIGN_OR_RETURN(std::string q, field(r, path, i, "question", fmt));
        MF_ASSIGN_OR_RETURN(std::string ans, field(r, path, i, "answer", fmt));
        MF_ASSIGN_OR_RETURN(auto opts, options_of(r, path, i, fmt));
        EvalItem it;
        for (int k = 1; k <= 7; ++k) {
            std::string v = opt_field(r, ("image_" + std::to_string(k)).c_str());
            if (!v.empty()) it.images.push_back(v);
        }
        std::string id = opt_field(r, "id");
        std::string key = id;
        if (key.empty() && !it.images.empty()) key = fs::path(it.images[0]).stem().string();
        if (key.empty()) return missing(path, i, "id", fmt);
        std::string subject;
        for (const auto& s : std::vector<std::string>{"Basic_Medical_Science", "Clinical_Medicine",
                                                      "Diagnostics_and_Laboratory_Medicine",
                                                      "Pharmacy", "Public_Health"}) {
            if (key.find("_" + s + "_") != std::string::npos) subject = s;
        }
        if (subject.empty()) {
            // Other subjects: "<split>_<Subject>_<n>[_<k>]".
            auto a = key.find('_');
            auto b = key.find_last_of('_');
            if (a != std::string::npos && b != std::string::npos && b > a) {
                std::string mid = key.substr(a + 1, b - a - 1);
                if (id.empty()) {  // image stem has one more "_k"
                    auto c = mid.find_last_of('_');
                    if (c != std::string::npos) mid = mid.substr(0, c);
                }
                subject = mid;
            }
        }
        bool health = std::find(health_subjects().begin(), health_subjects().end(), subject) !=
                      health_subjects().end();
        if (!health && !opt.all_questions) {
            ds.skipped["not_health_medicine"]++;
            continue;
        }
        if (opts.empty() || ascii_lower(opt_field(r, "question_type")) == "open") {
            ds.skipped["open_question"]++;
            continue;
        }
        it.id = "mmmu:" + (id.empty() ? key : id);
        it.question = q;
        it.options = opts;
        it.subset = subject.empty() ? "unknown" : subject;
        it.answer_text = ans;
        it.source_line = where(path, i);
        std::string a = upper_trim(ans);
        if (a.size() == 1 && a[0] >= 'A' && a[0] < 'A' + static_cast<int>(opts.size())) {
            it.answer_index = a[0] - 'A';
        } else if (a != "?") {
            return Status::invalid_argument(where(path, i) + ": answer '" + ans +
                                            "' is not a letter within the options");
        }
        ds.items.push_back(std::move(it));
    }
    return ds;
}

// HuatuoGPT-Vision bundled evaluation JSON (Medical_Multimodal_Evaluation_Data): list of
// {question, options (list or string literal), answer (an option's text, or "?"), image (list),
// dataset, subset, optional question_type, optional id}. Records with question_type "open" or
// without options are skipped, as the official scorer does; "?" answers are kept and scored
// wrong. Subsets are "<dataset>/<subset>" (or the dataset alone).
Result<Dataset> load_huatuo_bundle(const fs::path& path, const LoadOptions&) {
    MF_ASSIGN_OR_RETURN(auto recs, read_records(path));
    Dataset ds;
    ds.benchmark = "huatuo-bundle";
    ds.subset_kind = "dataset/subset";
    ds.files = {path};
    for (size_t i = 0; i < recs.size(); ++i) {
        const auto& r = recs[i];
        const char* fmt = "HuatuoGPT-Vision evaluation";
        MF_ASSIGN_OR_RETURN(std::string q, field(r, path, i, "question", fmt));
        MF_ASSIGN_OR_RETURN(std::string ans, field(r, path, i, "answer", fmt));
        MF_ASSIGN_OR_RETURN(std::string dset, field(r, path, i, "dataset", fmt));
        MF_ASSIGN_OR_RETURN(auto opts, options_of(r, path, i, fmt));
        if (!r.contains("image")) return missing(path, i, "image", fmt);
        EvalItem it;
        const auto& im = r["image"];
        if (im.is_array()) {
            for (const auto& v : im)
                if (v.is_string()) it.images.push_back(v.get<std::string>());
        } else if (im.is_string()) {
            it.images.push_back(im.get<std::string>());
        }
        if (ascii_lower(opt_field(r, "question_type")) == "open" || opts.empty()) {
            ds.skipped["open_question"]++;
            continue;
        }
        std::string sub = opt_field(r, "subset");
        std::string id = opt_field(r, "id");
        it.id = "bundle:" + (id.empty() ? std::to_string(i) : id);
        it.question = q;
        it.options = opts;
        it.answer_text = ans;
        it.subset = sub.empty() ? dset : dset + "/" + sub;
        it.group = dset;
        it.source_line = where(path, i);
        for (size_t k = 0; k < opts.size(); ++k)
            if (opts[k] == ans) {
                it.answer_index = static_cast<int>(k);
                break;
            }
        if (it.answer_index < 0 && ans != "?") {
            return Status::invalid_argument(where(path, i) + ": answer '" + ans +
                                            "' equals none of the options");
        }
        ds.items.push_back(std::move(it));
    }
    return ds;
}

}  // namespace mf::eval
