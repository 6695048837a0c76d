// medforge merge DIR: joins <DIR>/shards/*-of-N into DIR/samples.jsonl, rejects.jsonl, stats.json.
#include "cli/commands.h"
#include "core/log.h"
#include "curate/dedup.h"
#include "curate/stage.h"

namespace mf::cli {

int run_merge(int argc, char** argv) {
    CLI::App app{
        "Join the outputs of a stage that ran as --shard i/N (ingest, filter, dedup) into\n"
        "one output, in input order, identical to a single-process run.\n"
        "Dedup shards hold signatures: merging them runs the global dedup decision.",
        argv[0]};
    std::string dir;
    CommonOptions common;
    app.add_option("dir", dir, "the --out directory the shards wrote into")->required();
    add_common_options(app, common, false);
    if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
    apply_common_options(common);
    if (curate::is_dedup_shard_set(dir)) {  // dedup shards hold signatures: run phase 2
        auto dstats = curate::merge_dedup_shards(dir, static_cast<size_t>(common.threads));
        if (!dstats.ok()) return fail(dstats.status(), "merge");
        print_stage_summary(*dstats, dir);
        return kExitOk;
    }
    Status st = curate::merge_shards(dir);
    if (!st.ok()) return fail(st, "merge");
    auto stats = curate::load_stats(std::filesystem::path(dir) / "stats.json");
    if (!stats.ok()) return fail(stats.status(), "merge");
    print_stage_summary(*stats, dir);
    return kExitOk;
}

}  // namespace mf::cli
