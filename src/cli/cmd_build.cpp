// medforge build --config F --out DIR: the whole curation pipeline and its data card.
#include "cli/commands.h"
#include "cli/model_embedder.h"
#include "core/log.h"
#include "curate/pipeline.h"
#include "reformat/build.h"

namespace mf::cli {

int run_build(int argc, char** argv) {
    CLI::App app{
        "Run the data pipeline from one config file: ingest every source, filter (medical terms,\n"
        "image checks, medical-image classifier), deduplicate, and write the data card.\n"
        "OUT gets 1-ingest/, 2-filter/, 3-dedup/ (samples.jsonl, rejects.jsonl, stats.json each),\n"
        "data_card.md and data_card.json. Re-running resumes: finished stages whose config and\n"
        "input did not change are skipped. Config format: docs/build.md;\n"
        "example: examples/demo/build.json.",
        argv[0]};
    std::string config, out;
    bool force = false;
    CommonOptions common;
    app.add_option("--config", config, "build config (JSON)")->required();
    app.add_option("--out", out, "output folder")->required();
    app.add_flag("--force", force, "redo every stage even when up to date");
    add_common_options(app, common, false);
    if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
    apply_common_options(common);
    auto cfg = curate::load_build_config(config);
    if (!cfg.ok()) return fail(cfg.status(), "build");
    if (!cfg->dedup.embedder_dir.empty()) {  // dedup.embedder: a model embedder (docs/embedder.md)
        auto emb = TransformerEmbedder::load(cfg->dedup.embedder_dir, 32, common.threads);
        if (!emb.ok()) return fail(emb.status().with_context(config + ": dedup.embedder"), "build");
        cfg->dedup.embedder = std::move(emb).value();
    }
    curate::BuildOptions o;
    o.out_dir = out;
    o.threads = common.threads > 0 ? common.threads : -1;
    o.force = force;
    o.progress = !common.quiet;
    auto ref_cfg = reformat::parse_build_reformat(cfg->reformat_json);  // errors before any stage
    if (!ref_cfg.ok()) return fail(ref_cfg.status().with_context(config), "build");
    auto stats = curate::run_build(*cfg, o);
    if (!stats.ok()) return fail(stats.status(), "build");
    // Stage 4-reformat (VQA through the ledger; native-caption without an endpoint).
    curate::DataCardInfo card{cfg->name, cfg->path.string(), cfg->sha256, {}};
    auto ref =
        reformat::run_build_reformat(*ref_cfg, out, &card, install_cancel_handler(), !common.quiet);
    if (!ref.ok()) return fail(ref.status(), "build: reformat");
    stats->push_back(std::move(ref).value());
    for (const auto& s : *stats)
        print_stage_summary(s, out);
    log::info(
        "dataset: {}/4-reformat/{{alignment_vqa,instruction_vqa}}.json; data card: "
        "{}/data_card.md",
        out, out);
    return kExitOk;
}

}  // namespace mf::cli
