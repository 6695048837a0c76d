// results.md, report.html (inline SVG, no external assets), the paper's tables and compare.
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>

#include "core/text.h"
#include "eval/runner.h"
#include "io/file.h"

namespace mf::eval {

using nlohmann::json;

namespace {

constexpr double kNa = std::numeric_limits<double>::quiet_NaN();

bool starts_with_hash(const std::string& s) {
    return !s.empty() && s[0] == '#';
}

std::string pct(double v) {
    if (std::isnan(v)) return "–";
    char b[32];
    std::snprintf(b, sizeof b, "%.1f", v * 100.0);
    return b;
}
std::string pct_ci(const json& block) {
    return pct(block["mean"].get<double>()) + " [" + pct(block["ci95"][0].get<double>()) + ", " +
           pct(block["ci95"][1].get<double>()) + "]";
}

std::string esc(std::string_view s) {
    std::string o;
    for (char c : s) {
        switch (c) {
            case '<':
                o += "&lt;";
                break;
            case '>':
                o += "&gt;";
                break;
            case '&':
                o += "&amp;";
                break;
            case '"':
                o += "&quot;";
                break;
            default:
                o.push_back(c);
        }
    }
    return o;
}

// Markdown table -> HTML table (the reports share one source of truth).
std::string md_table_to_html(const std::string& md) {
    std::string out;
    bool in_table = false;
    bool header = true;
    for (auto line : text::split(md, '\n')) {
        std::string l(line);
        if (l.size() > 1 && l[0] == '|') {
            if (l.find("---") != std::string::npos) continue;
            if (!in_table) {
                out += "<table>\n";
                in_table = true;
                header = true;
            }
            out += "<tr>";
            // "\|" is an escaped pipe inside a cell; "**x**" is bold.
            std::string body = l.substr(1, l.size() - 2);
            std::string marked;
            for (size_t k = 0; k < body.size(); ++k) {
                if (body[k] == '\\' && k + 1 < body.size() && body[k + 1] == '|') {
                    marked += '\x1f';
                    ++k;
                } else {
                    marked += body[k];
                }
            }
            for (auto c : text::split(marked, '|')) {
                std::string cell(text::trim(c));
                for (auto& ch : cell)
                    if (ch == '\x1f') ch = '|';
                bool bold =
                    cell.size() > 4 && text::starts_with(cell, "**") && text::ends_with(cell, "**");
                if (bold) cell = cell.substr(2, cell.size() - 4);
                out += header ? "<th>" : "<td>";
                out += bold ? "<b>" + esc(cell) + "</b>" : esc(cell);
                out += header ? "</th>" : "</td>";
            }
            out += "</tr>\n";
            header = false;
        } else {
            if (in_table) {
                out += "</table>\n";
                in_table = false;
            }
            if (starts_with_hash(l)) {
                size_t n = l.find_first_not_of('#');
                out += "<h" + std::to_string(n) + ">" + esc(text::trim(l.substr(n))) + "</h" +
                       std::to_string(n) + ">\n";
            } else if (!l.empty()) {
                out += "<p>" + esc(l) + "</p>\n";
            }
        }
    }
    if (in_table) out += "</table>\n";
    return out;
}

}  // namespace

std::string results_markdown(const json& r) {
    const json& card = r["protocol_card"];
    const json& closed = r["closed"];
    std::string md;
    md += "# " + card["benchmark"].get<std::string>() + " — " + card["model"].get<std::string>() +
          "\n\n";
    if (closed.contains("groups")) {
        md += "## Per benchmark (closed accuracy, % [bootstrap 95% CI])\n\n";
        md += "| Benchmark | n | correct | accuracy |\n|---|---|---|---|\n";
        for (const auto& s : closed["groups"]) {
            md += "| " + s["name"].get<std::string>() + " | " +
                  std::to_string(s["n"].get<int64_t>()) + " | " +
                  std::to_string(s["correct"].get<int64_t>()) + " | " + pct_ci(s) + " |\n";
        }
        md += "\n";
    }
    md += "## Closed (multiple-choice) accuracy, % [bootstrap 95% CI]\n\n";
    md += "| Subset | n | correct | accuracy |\n|---|---|---|---|\n";
    for (const auto& s : closed["subsets"]) {
        md += "| " + s["name"].get<std::string>() + " | " + std::to_string(s["n"].get<int64_t>()) +
              " | " + std::to_string(s["correct"].get<int64_t>()) + " | " + pct_ci(s) + " |\n";
    }
    md += "| **micro (all items)** | " + std::to_string(closed["micro"]["n"].get<int64_t>()) +
          " | " + std::to_string(closed["correct"].get<int64_t>()) + " | " +
          pct_ci(closed["micro"]) + " |\n";
    md += "| **macro (mean of " + std::to_string(closed["macro"]["subsets"].get<int64_t>()) +
          " subsets)** | | | " + pct_ci(closed["macro"]) + " |\n\n";
    const json& open = r["open"];
    if (open.contains("exact")) {
        md += "## Open questions, % (normalised; mean [95% CI])\n\n";
        md += "| Metric | n | value |\n|---|---|---|\n";
        for (const char* m : {"exact", "recall", "f1", "bleu1"}) {
            md += std::string("| ") + m + " | " + std::to_string(open[m]["n"].get<int64_t>()) +
                  " | " + pct_ci(open[m]) + " |\n";
        }
        md += "\n| Subset | n | exact | recall | F1 | BLEU-1 |\n|---|---|---|---|---|---|\n";
        for (const auto& s : open["subsets"]) {
            md += "| " + s["name"].get<std::string>() + " | " +
                  std::to_string(s["n"].get<int64_t>()) + " | " + pct(s["exact"]) + " | " +
                  pct(s["recall"]) + " | " + pct(s["f1"]) + " | " + pct(s["bleu1"]) + " |\n";
        }
        md += "\n";
    }
    md += "## Protocol card\n\n| Field | Value |\n|---|---|\n";
    for (auto it = card.begin(); it != card.end(); ++it) {
        std::string v = it->is_string() ? it->get<std::string>() : it->dump();
        std::string cell;
        for (char c : v)
            cell += (c == '|') ? std::string("\\|") : std::string(1, c);
        md += "| " + it.key() + " | " + cell + " |\n";
    }
    return md;
}

namespace {

// Horizontal bar chart with CI whiskers, values in [0, 1].
std::string svg_bars(const std::vector<std::tuple<std::string, double, double, double>>& bars) {
    const int row = 22, left = 220, width = 420;
    int h = static_cast<int>(bars.size()) * row + 30;
    std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
                    std::to_string(left + width + 80) + "\" height=\"" + std::to_string(h) +
                    "\" font-family=\"sans-serif\" font-size=\"12\">\n";
    for (int t = 0; t <= 100; t += 25) {
        int x = left + width * t / 100;
        s += "<line x1=\"" + std::to_string(x) + "\" y1=\"0\" x2=\"" + std::to_string(x) +
             "\" y2=\"" + std::to_string(h - 20) + "\" stroke=\"#ddd\"/>";
        s += "<text x=\"" + std::to_string(x) + "\" y=\"" + std::to_string(h - 5) +
             "\" text-anchor=\"middle\">" + std::to_string(t) + "</text>\n";
    }
    for (size_t i = 0; i < bars.size(); ++i) {
        auto [name, v, lo, hi] = bars[i];
        int y = static_cast<int>(i) * row + 4;
        auto X = [&](double f) { return std::to_string(left + static_cast<int>(width * f)); };
        s += "<text x=\"" + std::to_string(left - 6) + "\" y=\"" + std::to_string(y + 13) +
             "\" text-anchor=\"end\">" + esc(name) + "</text>";
        s += "<rect x=\"" + std::to_string(left) + "\" y=\"" + std::to_string(y) + "\" width=\"" +
             std::to_string(static_cast<int>(width * v)) + "\" height=\"16\" fill=\"#4a7fb5\"/>";
        if (!std::isnan(lo)) {
            std::string ym = std::to_string(y + 8);
            s += "<line x1=\"" + X(lo) + "\" y1=\"" + ym + "\" x2=\"" + X(hi) + "\" y2=\"" + ym +
                 "\" stroke=\"#000\"/>";
            s += "<line x1=\"" + X(lo) + "\" y1=\"" + std::to_string(y + 3) + "\" x2=\"" + X(lo) +
                 "\" y2=\"" + std::to_string(y + 13) + "\" stroke=\"#000\"/>";
            s += "<line x1=\"" + X(hi) + "\" y1=\"" + std::to_string(y + 3) + "\" x2=\"" + X(hi) +
                 "\" y2=\"" + std::to_string(y + 13) + "\" stroke=\"#000\"/>";
        }
        s += "<text x=\"" + std::to_string(left + width + 6) + "\" y=\"" + std::to_string(y + 13) +
             "\">" + pct(v) + "</text>\n";
    }
    s += "</svg>\n";
    return s;
}

const char* kCss =
    "<style>body{font-family:sans-serif;margin:2em;max-width:60em}table{border-collapse:"
    "collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
    "th{background:#eee}</style>";

}  // namespace

std::string results_html(const json& r) {
    std::vector<std::tuple<std::string, double, double, double>> bars;
    const json& c = r["closed"];
    for (const auto& s : c["subsets"]) {
        bars.emplace_back(s["name"].get<std::string>(), s["mean"].get<double>(),
                          s["ci95"][0].get<double>(), s["ci95"][1].get<double>());
    }
    bars.emplace_back("micro", c["micro"]["mean"].get<double>(),
                      c["micro"]["ci95"][0].get<double>(), c["micro"]["ci95"][1].get<double>());
    bars.emplace_back("macro", c["macro"]["mean"].get<double>(),
                      c["macro"]["ci95"][0].get<double>(), c["macro"]["ci95"][1].get<double>());
    std::string html =
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>medforge eval " +
        esc(r["protocol_card"]["benchmark"].get<std::string>()) + "</title>" + kCss +
        "</head><body>\n";
    html += "<h2>Accuracy by subset (95% bootstrap CI)</h2>\n" + svg_bars(bars);
    html += md_table_to_html(results_markdown(r));
    html += "</body></html>\n";
    return html;
}

Status write_reports(const json& results, const fs::path& dir) {
    MF_RETURN_IF_ERROR(io::ensure_dir(dir));
    MF_RETURN_IF_ERROR(io::write_file_atomic(dir / "results.json", results.dump(2)));
    MF_RETURN_IF_ERROR(io::write_file_atomic(dir / "results.md", results_markdown(results)));
    MF_RETURN_IF_ERROR(io::write_file_atomic(dir / "report.html", results_html(results)));
    return Status::ok_status();
}

// ---- paper tables (paper-spec §9.5) ----

const std::vector<PaperTable>& paper_tables() {
    static const std::vector<PaperTable> t = [] {
        std::vector<PaperTable> v;
        v.push_back({"Table 2 (medical VQA, accuracy %)",
                     "",
                     {"VQA-RAD", "SLAKE", "PathVQA", "PMC-VQA", "Avg"},
                     {{"Med-Flamingo", {45.4, 43.5, 54.7, 23.3, 41.7}},
                      {"RadFM", {50.6, 34.6, 38.7, 25.9, 37.5}},
                      {"LLaVA-Med-7B", {51.4, 48.6, 56.8, 24.7, 45.4}},
                      {"Qwen-VL-Chat", {47.0, 56.0, 55.1, 36.6, 48.9}},
                      {"Yi-VL-34B", {53.0, 58.9, 47.3, 39.5, 49.7}},
                      {"LLaVA-v1.6-7B", {52.6, 57.9, 47.9, 35.5, 48.5}},
                      {"LLaVA-v1.6-13B", {55.8, 58.9, 51.9, 36.6, 50.8}},
                      {"LLaVA-v1.6-34B", {58.6, 67.3, 59.1, 44.4, 57.4}},
                      {"LLaVA-v1.5-LLaMA3-8B", {54.2, 59.4, 54.1, 36.4, 51.0}},
                      {"+ LLaVA_Med", {60.2, 61.2, 54.5, 46.6, 55.6}},
                      {"+ PubMedVision", {63.8, 74.5, 59.9, 52.7, 62.7}},
                      {"HuatuoGPT-Vision-34B", {68.1, 76.9, 63.5, 58.2, 66.7}},
                      {"HuatuoGPT-Vision-7B (README)", {63.7, 76.2, 57.9, 54.3, 63.0}}}});
        v.push_back(
            {"Table 3 (OmniMedVQA open-access, by modality)",
             "omnimedvqa",
             {"CT", "FP", "MRI", "OCT", "Der", "Mic", "X-Ray", "US", "Avg"},
             {{"Med-Flamingo", {34.6, 33.3, 27.5, 26.0, 28.3, 28.1, 30.1, 33.2, 30.2}},
              {"RadFM", {33.3, 35.0, 22.0, 31.3, 36.3, 28.0, 31.5, 26.1, 30.5}},
              {"LLaVA-Med-7B", {25.3, 48.4, 35.9, 42.1, 45.2, 44.0, 31.7, 83.7, 44.5}},
              {"Qwen-VL-Chat", {51.5, 45.4, 43.9, 54.0, 55.4, 49.5, 63.1, 33.5, 49.5}},
              {"Yi-VL-34B", {39.8, 57.2, 51.4, 70.5, 54.5, 61.4, 64.2, 40.5, 54.9}},
              {"LLaVA-v1.6-7B", {40.1, 39.5, 54.8, 58.4, 54.0, 48.8, 53.3, 47.9, 49.6}},
              {"LLaVA-v1.6-13B", {40.0, 43.6, 47.4, 63.2, 58.0, 50.5, 59.6, 42.6, 50.6}},
              {"LLaVA-v1.6-34B", {50.6, 63.4, 60.9, 68.4, 65.7, 62.8, 74.7, 44.5, 61.4}},
              {"LLaVA-v1.5-LLaMA3-8B", {33.0, 49.7, 53.8, 76.0, 63.1, 48.4, 56.6, 31.2, 48.8}},
              {"+ LLaVA_Med", {60.8, 68.5, 66.3, 79.0, 66.6, 60.3, 73.3, 49.3, 65.5}},
              {"+ PubMedVision", {61.6, 80.2, 65.1, 86.3, 71.6, 67.4, 81.4, 87.4, 75.1}},
              {"HuatuoGPT-Vision-34B", {60.8, 85.5, 66.5, 90.0, 74.0, 71.3, 83.8, 81.7, 76.7}}}});
        v.push_back({"Table 4 (MMMU Health & Medicine, test)",
                     "mmmu",
                     {"BMS", "CM", "DLM", "P", "PH", "H&M"},
                     {{"Med-Flamingo", {29.6, 28.1, 24.8, 25.3, 31.2, 28.3}},
                      {"RadFM", {27.5, 26.8, 25.8, 24.7, 29.1, 27.0}},
                      {"LLaVA-Med-7B", {39.9, 39.1, 34.6, 37.4, 34.0, 36.9}},
                      {"Qwen-VL-Chat", {36.5, 31.7, 32.7, 28.4, 34.6, 32.7}},
                      {"Yi-VL-34B", {49.4, 48.9, 43.2, 40.5, 32.0, 41.5}},
                      {"LLaVA-v1.6-7B", {40.5, 36.9, 32.1, 32.3, 26.9, 33.1}},
                      {"LLaVA-v1.6-13B", {53.6, 46.7, 33.3, 22.2, 40.0, 39.3}},
                      {"LLaVA-v1.6-34B", {56.4, 56.0, 46.9, 46.7, 41.7, 48.8}},
                      {"LLaVA-v1.5-LLaMA3-8B", {42.3, 44.0, 37.0, 34.7, 35.2, 38.2}},
                      {"+ LLaVA_Med", {48.2, 43.8, 42.0, 39.7, 35.8, 41.1}},
                      {"+ PubMedVision", {61.0, 58.8, 50.0, 44.7, 38.7, 49.1}},
                      {"HuatuoGPT-Vision-34B", {64.6, 62.5, 50.6, 54.1, 44.2, 54.4}},
                      {"HuatuoGPT-Vision-7B (README)", {kNa, kNa, kNa, kNa, kNa, 50.6}}}});
        v.push_back({"Table 8 (MMMU Health & Medicine, validation)",
                     "mmmu",
                     {"BMS", "CM", "DLM", "P", "PH", "H&M"},
                     {{"Med-Flamingo", {33.6, 30.2, 23.3, 29.3, 25.8, 28.4}},
                      {"RadFM", {31.6, 28.2, 26.7, 26.2, 26.8, 27.9}},
                      {"LLaVA-Med-7B", {50.0, 33.3, 26.7, 40.7, 43.3, 38.6}},
                      {"Qwen-VL-Chat", {39.3, 36.7, 20.0, 29.6, 33.3, 31.7}},
                      {"Yi-VL-34B", {48.1, 55.6, 36.7, 48.1, 53.3, 48.2}},
                      {"LLaVA-v1.6-7B", {46.4, 33.3, 30.0, 29.6, 26.7, 33.1}},
                      {"LLaVA-v1.6-13B", {53.6, 46.7, 33.3, 22.2, 40.0, 39.3}},
                      {"LLaVA-v1.6-34B", {57.1, 63.3, 50.0, 44.4, 63.3, 55.9}},
                      {"LLaVA-v1.5-LLaMA3-8B", {42.9, 43.3, 30.0, 25.9, 50.0, 38.6}},
                      {"+ LLaVA_Med", {42.9, 46.7, 36.7, 40.7, 46.7, 42.8}},
                      {"+ PubMedVision", {50.0, 63.3, 36.7, 48.1, 53.3, 50.3}},
                      {"HuatuoGPT-Vision-34B", {64.3, 60.0, 46.7, 66.7, 56.7, 58.6}}}});
        v.push_back({"Table 5 (PubMedVision on other MLLMs)",
                     "",
                     {"VQA-RAD", "SLAKE", "PathVQA", "PMC-VQA"},
                     {{"LLaVA-v1.5-7B", {50.6, 53.4, 52.3, 33.1}},
                      {"LLaVA-v1.5-7B ⊕ PubMedVision", {57.5, 57.6, 57.6, 46.3}},
                      {"Qwen-VL-Chat", {47.0, 56.0, 55.1, 36.6}},
                      {"Qwen-VL-Chat ⊕ PubMedVision", {54.3, 66.7, 57.0, 48.4}}}});
        v.push_back({"Table 7 (after fine-tuning on each train set)",
                     "",
                     {"VQA-RAD", "SLAKE", "PathVQA", "PMC-VQA", "Avg"},
                     {{"LLaVA-v1.5-LLaMA3-8B", {63.3, 68.9, 85.2, 50.3, 66.9}},
                      {"+ LLaVA_Med", {66.3, 69.5, 90.7, 52.7, 69.8}},
                      {"+ PubMedVision", {68.9, 84.1, 93.0, 57.3, 75.8}}}});
        return v;
    }();
    return t;
}

namespace {

struct RunInfo {
    std::string label;  // model @ dir
    std::string benchmark;
    double micro = kNa;
    double macro = kNa;
    std::string micro_ci;
    std::map<std::string, double> subsets;
    std::map<std::string, double> groups;  // huatuo-bundle: per source benchmark
};

Result<std::vector<RunInfo>> read_runs(const std::vector<fs::path>& dirs) {
    std::vector<RunInfo> runs;
    for (const auto& d : dirs) {
        fs::path f = fs::is_directory(d) ? d / "results.json" : d;
        MF_ASSIGN_OR_RETURN(std::string text, io::read_file(f));
        json r = json::parse(text, nullptr, false);
        if (r.is_discarded() || !r.contains("protocol_card") || !r.contains("closed")) {
            return Status::invalid_argument(f.string() +
                                            ": not a medforge eval results.json (missing "
                                            "protocol_card/closed)");
        }
        RunInfo ri;
        const json& card = r["protocol_card"];
        ri.benchmark = card.value("benchmark", "?");
        ri.label = card.value("model", "?") + " (" + d.filename().string() + ", " +
                   card.value("extractor", "?") + ")";
        const json& c = r["closed"];
        if (c["micro"]["n"].get<int64_t>() > 0) {
            ri.micro = c["micro"]["mean"].get<double>();
            ri.macro = c["macro"]["mean"].get<double>();
            ri.micro_ci = "[" + pct(c["micro"]["ci95"][0].get<double>()) + ", " +
                          pct(c["micro"]["ci95"][1].get<double>()) + "]";
        }
        for (const auto& s : c["subsets"])
            ri.subsets[s["name"]] = s["mean"].get<double>();
        if (c.contains("groups")) {
            for (const auto& s : c["groups"])
                ri.groups[s["name"]] = s["mean"].get<double>();
        }
        runs.push_back(std::move(ri));
    }
    return runs;
}

// The paper's column for a subset name: MMMU subjects (Table 4/8) and OmniMedVQA modality_type
// values (Table 3; e.g. "CT(Computed Tomography)", "MR (Mag-netic Resonance Imaging)").
std::string paper_column(const std::string& subset) {
    static const std::pair<const char*, const char*> exact[] = {
        {"Basic_Medical_Science", "BMS"},
        {"Clinical_Medicine", "CM"},
        {"Diagnostics_and_Laboratory_Medicine", "DLM"},
        {"Pharmacy", "P"},
        {"Public_Health", "PH"}};
    for (auto [k, v] : exact)
        if (subset == k) return v;
    std::string l = text::ascii_lower(subset);
    static const std::pair<const char*, const char*> prefix[] = {
        {"ct", "CT"},       {"fundus", "FP"},  {"mri", "MRI"},  {"mr ", "MRI"},
        {"mr(", "MRI"},     {"oct", "OCT"},    {"derm", "Der"}, {"micro", "Mic"},
        {"x-ray", "X-Ray"}, {"xray", "X-Ray"}, {"ultra", "US"}, {"us", "US"}};
    for (auto [k, v] : prefix)
        if (text::starts_with(l, k) &&
            (l.size() == std::strlen(k) ||
             !std::isalpha(static_cast<unsigned char>(l[std::strlen(k)])) || std::strlen(k) > 3))
            return v;
    return "";
}

std::string bench_column(const std::string& b) {
    if (b == "vqa-rad") return "VQA-RAD";
    if (b == "slake") return "SLAKE";
    if (b == "pathvqa") return "PathVQA";
    if (b == "pmc-vqa") return "PMC-VQA";
    return "";
}

}  // namespace

Result<std::string> compare_markdown(const std::vector<fs::path>& run_dirs, bool with_paper) {
    MF_ASSIGN_OR_RETURN(auto runs, read_runs(run_dirs));
    std::string md = "# medforge eval compare\n\n## Runs (closed accuracy, %)\n\n";
    md += "| Run | Benchmark | micro [95% CI] | macro |\n|---|---|---|---|\n";
    for (const auto& r : runs) {
        md += "| " + r.label + " | " + r.benchmark + " | " + pct(r.micro) + " " + r.micro_ci +
              " | " + pct(r.macro) + " |\n";
    }
    // Subset table over the union of subsets.
    std::set<std::string> names;
    for (const auto& r : runs)
        for (const auto& [k, v] : r.subsets)
            names.insert(r.benchmark + ":" + k);
    if (!names.empty()) {
        md += "\n## Subsets (%)\n\n| Subset |";
        for (const auto& r : runs)
            md += " " + r.label + " |";
        md += "\n|---|";
        for (size_t i = 0; i < runs.size(); ++i)
            md += "---|";
        md += "\n";
        for (const auto& n : names) {
            md += "| " + n + " |";
            for (const auto& r : runs) {
                auto colon = n.find(':');
                double v = kNa;
                if (n.substr(0, colon) == r.benchmark) {
                    auto it = r.subsets.find(n.substr(colon + 1));
                    if (it != r.subsets.end()) v = it->second;
                }
                md += " " + pct(v) + " |";
            }
            md += "\n";
        }
    }
    if (with_paper) {
        for (const auto& t : paper_tables()) {
            md += "\n## Paper " + t.name + "\n\n| Model |";
            for (const auto& c : t.columns)
                md += " " + c + " |";
            md += "\n|---|";
            for (size_t i = 0; i < t.columns.size(); ++i)
                md += "---|";
            md += "\n";
            for (const auto& [model, vals] : t.rows) {
                md += "| " + model + " |";
                for (double v : vals)
                    md += " " + (std::isnan(v) ? std::string("–") : pct(v / 100)) + " |";
                md += "\n";
            }
            // This session's runs as extra rows in the columns they fill.
            for (const auto& r : runs) {
                bool any = false;
                std::string row = "| **" + r.label + "** |";
                for (const auto& c : t.columns) {
                    double v = kNa;
                    if (bench_column(r.benchmark) == c) v = r.micro;
                    // A bundle run fills Table 2/5/7 columns from its per-benchmark groups.
                    if (t.benchmark.empty()) {
                        auto g = r.groups.find(c);
                        if (g != r.groups.end()) v = g->second;
                    }
                    if (c == "Avg" && t.benchmark == r.benchmark) v = r.macro;
                    if (c == "H&M" && r.benchmark == "mmmu") v = r.micro;
                    if (t.benchmark == r.benchmark) {
                        for (const auto& [k, sv] : r.subsets)
                            if (paper_column(k) == c) v = sv;
                    } else if (r.benchmark == "huatuo-bundle" && !t.benchmark.empty()) {
                        // "OmniMedVQA/CT(Computed Tomography)", "MMMU.../Clinical_Medicine".
                        for (const auto& [k, sv] : r.subsets) {
                            auto slash = k.find('/');
                            if (slash == std::string::npos) continue;
                            std::string ds = text::ascii_lower(k.substr(0, slash));
                            if (!text::starts_with(ds, t.benchmark)) continue;
                            if (paper_column(k.substr(slash + 1)) == c) v = sv;
                        }
                    }
                    if (!std::isnan(v)) any = true;
                    row += " " + pct(v) + " |";
                }
                if (any) md += row + "\n";
            }
        }
    }
    return md;
}

Result<std::string> compare_html(const std::vector<fs::path>& run_dirs, bool with_paper) {
    MF_ASSIGN_OR_RETURN(std::string md, compare_markdown(run_dirs, with_paper));
    return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>medforge eval compare"
           "</title>" +
           std::string(kCss) + "</head><body>\n" + md_table_to_html(md) + "</body></html>\n";
}

}  // namespace mf::eval
