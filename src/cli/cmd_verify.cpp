// medforge verify --in FILE|DIR --out DIR [--samples FILE] [--kinds LIST]: runs the answer
// verifier over an existing VQA output. See docs/verify.md.
#include <fmt/core.h>

#include "cli/commands.h"
#include "core/log.h"
#include "reformat/verify_run.h"

namespace mf::cli {

int run_verify(int argc, char** argv) {
    CLI::App app{
        "Check generated descriptions/answers against their source caption + mentions and flag\n"
        "contradictions: laterality (left/right), negation of a finding, numbers and units\n"
        "(sizes, ages, counts), imaging modality, MR sequence (T1/T2/FLAIR/DWI...), anatomy.\n"
        "Rule-based and deterministic (no model). Input: a reformat output directory, a\n"
        "PubMedVision/LLaVA-Med VQA file (.json/.jsonl; the source comes from the record's\n"
        "fig_caption/caption + mentions or from --samples by sample id), or a Sample JSONL\n"
        "(each caption against its own mentions). Writes flagged.jsonl, passed.jsonl and\n"
        "stats.json (flag rate per kind). Docs: docs/verify.md.",
        argv[0]};
    std::string in, out, samples, kinds;
    CommonOptions common;
    app.add_option("--in", in, "reformat output directory, VQA .json/.jsonl, or Sample JSONL")
        ->required();
    app.add_option("--out", out, "output directory (flagged.jsonl, passed.jsonl, stats.json)")
        ->required();
    app.add_option("--samples", samples,
                   "Sample JSONL giving each record's caption + mentions by sample id "
                   "(default: samples.jsonl beside the input)");
    app.add_option("--kinds", kinds,
                   "comma-separated kinds to check: laterality, negation, number_unit, modality, "
                   "sequence, anatomy (default all)");
    add_common_options(app, common, false);
    if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
    apply_common_options(common);

    reformat::VerifyRunOptions o;
    o.input = in;
    o.out_dir = out;
    o.samples = samples;
    auto k = reformat::parse_verify_kinds(kinds);
    if (!k.ok()) {
        log::error("verify: --kinds: {}", k.status().message());
        return kExitUsage;
    }
    o.kinds = *k;
    auto st = reformat::run_verify(o);
    if (!st.ok()) return fail(st.status(), "verify");
    auto j = st->to_json();
    log::info("verify: {} records ({} without source), {} answers checked, {} flagged ({:.1f}%)",
              st->records, st->no_source, st->answers, st->answers_flagged,
              100.0 * j["answer_flag_rate"].get<double>());
    for (auto it = j["by_kind"].begin(); it != j["by_kind"].end(); ++it)
        if ((*it)["answers"].get<int64_t>() > 0)
            log::info("verify:   {:<12} {} ({:.1f}%)", it.key(), (*it)["answers"].get<int64_t>(),
                      100.0 * (*it)["rate"].get<double>());
    log::info("verify: wrote {}/flagged.jsonl, passed.jsonl, stats.json", out);
    return kExitOk;
}

}  // namespace mf::cli
