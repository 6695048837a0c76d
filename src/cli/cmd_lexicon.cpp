// medforge lexicon build|stats|match: build a medical lexicon from word lists, hunspell, MeSH and
// UMLS SPECIALIST files minus a stop list of common English words; inspect it; try it on a text.
#include <fmt/core.h>

#include <chrono>
#include <cstdio>

#include "cli/commands.h"
#include "core/log.h"
#include "curate/lexicon.h"
#include "curate/term_matcher.h"

namespace mf::cli {

namespace {

Result<curate::Lexicon> load_lexicon_arg(const std::string& file) {
    std::filesystem::path p = (file.empty() || file == "default") ? curate::default_lexicon_path()
                                                                  : std::filesystem::path(file);
    auto lex = curate::Lexicon::load(p);
    if (!lex.ok()) return lex.status().with_context("loading lexicon");
    return lex;
}

}  // namespace

int run_lexicon(int argc, char** argv) {
    CLI::App app{
        "Build or inspect the medical lexicon the text filter counts terms of.\n"
        "Formats: words (one term per line), hunspell (.dic), mesh-tree (MeSH tree TSV),\n"
        "mesh (MeSH ASCII d20XX.bin), specialist (UMLS SPECIALIST LEXICON), lexicon.\n"
        "See docs/lexicon.md.",
        argv[0]};
    app.require_subcommand(1);
    app.fallthrough();
    CommonOptions common;
    add_common_options(app, common, false);

    auto* build = app.add_subcommand("build", "build a lexicon file from sources minus stop lists");
    std::vector<std::string> from, add, keep, stop;
    std::string out;
    build->add_option("--from", from,
                      "<format>:<path> source whose terms the stop lists filter (repeatable)");
    build->add_option("--add", add,
                      "<format>:<path> curated source added after stop-word removal (repeatable)");
    build->add_option("--keep", keep,
                      "<format>:<path> source whose terms the stop lists must not remove "
                      "(adds no terms; repeatable)");
    build->add_option("--stop", stop,
                      "stop list of common English words, one per line (repeatable), e.g. "
                      "/usr/share/dict/american-english");
    build->add_option("-o,--out", out, "lexicon file to write (sorted, one term per line)")
        ->required();

    auto* stats = app.add_subcommand("stats", "print the size and make-up of a lexicon");
    std::string stats_file;
    stats->add_option("file", stats_file, "lexicon file ('default' = the installed one)")
        ->required();

    auto* match = app.add_subcommand("match", "print the distinct lexicon terms found in a text");
    std::string match_file, match_text;
    int min_terms = 5;
    match->add_option("file", match_file, "lexicon file ('default' = the installed one)")
        ->required();
    match->add_option("text", match_text, "text to match ('-' reads standard input)")->required();
    match->add_option("--min-terms", min_terms, "threshold to report keep/drop against");

    if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
    apply_common_options(common);

    if (*build) {
        if (from.empty() && add.empty()) {
            return fail(Status::invalid_argument("give at least one --from or --add source"),
                        "lexicon build");
        }
        curate::LexiconBuildOptions opt;
        for (const auto& s : from) {
            auto src = curate::parse_lexicon_source(s, true);
            if (!src.ok()) return fail(src.status(), "lexicon build");
            opt.sources.push_back(*src);
        }
        for (const auto& s : add) {
            auto src = curate::parse_lexicon_source(s, false);
            if (!src.ok()) return fail(src.status(), "lexicon build");
            opt.sources.push_back(*src);
        }
        for (const auto& s : keep) {
            auto src = curate::parse_lexicon_source(s, false);
            if (!src.ok()) return fail(src.status(), "lexicon build");
            opt.keep.push_back(*src);
        }
        for (const auto& s : stop)
            opt.stop_lists.emplace_back(s);
        curate::LexiconBuildReport rep;
        auto lex = curate::build_lexicon(opt, &rep);
        if (!lex.ok()) return fail(lex.status(), "lexicon build");
        if (Status st = lex->save(out); !st.ok()) return fail(st, "lexicon build");
        for (const auto& s : rep.sources)
            log::info("  {:>8} terms read, {:>8} new  {}", s.raw, s.added, s.spec);
        log::info("  stop list: {} common words, removed {} terms ({} kept by --keep)",
                  rep.stop_words, rep.removed, rep.kept_by_keep);
        log::info("lexicon: {} terms -> {}", rep.final_size, out);
        return kExitOk;
    }
    if (*stats) {
        auto lex = load_lexicon_arg(stats_file);
        if (!lex.ok()) return fail(lex.status(), "lexicon stats");
        size_t multi = 0, hyphen = 0;
        for (const auto& t : lex->terms()) {
            if (t.find(' ') != std::string::npos) ++multi;
            if (t.find('-') != std::string::npos) ++hyphen;
        }
        auto t0 = std::chrono::steady_clock::now();
        curate::TermMatcher m(*lex);
        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                        .count();
        std::string o = fmt::format(
            "terms:          {}\n"
            "multi-word:     {}\n"
            "hyphenated:     {}\n"
            "distinct keys:  {}\n"
            "patterns:       {} (terms + plural/joined variants)\n"
            "tokens:         {}\n"
            "matcher build:  {:.0f} ms\n",
            lex->size(), multi, hyphen, m.n_terms(), m.n_patterns(), m.n_tokens(), ms);
        std::fputs(o.c_str(), stdout);
        return kExitOk;
    }
    if (*match) {
        auto lex = load_lexicon_arg(match_file);
        if (!lex.ok()) return fail(lex.status(), "lexicon match");
        if (match_text == "-") {
            match_text.clear();
            char buf[65536];
            size_t n;
            while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0)
                match_text.append(buf, n);
        }
        curate::TermMatcher m(*lex);
        std::vector<uint32_t> found;
        m.find_terms(match_text, found);
        std::string o;
        for (uint32_t id : found)
            o += m.term(id) + "\n";
        o += fmt::format("{} distinct medical terms ({} with --min-terms {})\n", found.size(),
                         found.size() >= static_cast<size_t>(min_terms) ? "keep" : "drop",
                         min_terms);
        std::fputs(o.c_str(), stdout);
        return kExitOk;
    }
    return kExitUsage;
}

}  // namespace mf::cli
