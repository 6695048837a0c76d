// medforge ingest --format FMT --input PATH --out DIR: converts a source format into Sample JSONL
// (the ingest stage's samples.jsonl, rejects.jsonl, stats.json). See docs/ingest.md.
#include "cli/commands.h"
#include "core/log.h"
#include "curate/ingest.h"

namespace mf::cli {

int run_ingest(int argc, char** argv) {
    std::string formats;
    for (const auto& f : curate::ingest_formats())
        formats += (formats.empty() ? "" : ", ") + f;
    CLI::App app{
        "Convert figures with captions (PMC JATS articles, MedICaT, LLaVA-Med, PMC-OA,\n"
        "PubMedVision, Sample JSONL) into Sample JSONL: <out>/samples.jsonl, rejects.jsonl\n"
        "(reason codes: docs/ingest.md) and stats.json.",
        argv[0]};
    curate::IngestRunOptions opt;
    std::string input, out, image_root, shard;
    CommonOptions common;
    app.add_option("--format", opt.format, "input format: " + formats)->required();
    app.add_option("--input", input,
                   "input file, or a folder (searched recursively, sorted): *.xml/*.nxml for jats, "
                   "*.json/*.jsonl for the others")
        ->required();
    app.add_option("--out", out, "output directory (created)")->required();
    app.add_option(
        "--image-root", image_root,
        "folder image references are resolved against (default: each input file's folder)");
    app.add_option("--licence", opt.adapter.default_licence,
                   "licence to record when the source states none, e.g. \"CC BY 4.0\"");
    app.add_flag(
        "--require-images", opt.adapter.require_images,
        "reject samples whose image files do not exist (reason image_missing); jats always "
        "checks");
    add_common_options(app, common, true);
    if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
    apply_common_options(common);

    auto spec = curate::parse_shard(common.shard);
    if (!spec.ok()) return fail(spec.status(), "ingest");
    opt.shard = *spec;
    opt.input = input;
    opt.out_dir = out;
    opt.adapter.image_root = image_root;
    opt.adapter.threads = static_cast<size_t>(common.threads);
    opt.progress = !common.quiet;
    auto stats = curate::run_ingest(opt);
    if (!stats.ok()) return fail(stats.status());
    std::string dir = out;
    if (opt.shard.sharded()) dir += "/shards/" + opt.shard.dir_name();
    print_stage_summary(*stats, dir);
    return kExitOk;
}

}  // namespace mf::cli
