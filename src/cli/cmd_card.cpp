// medforge card DIR: (re)writes DIR/data_card.md and data_card.json from the stage outputs in DIR.
#include "cli/commands.h"
#include "core/log.h"
#include "curate/data_card.h"

namespace mf::cli {

int run_card(int argc, char** argv) {
    CLI::App app{
        "Write the data card of a pipeline output: the funnel of every stage (input, kept,\n"
        "rejected by reason), throughput and stage details, as DIR/data_card.md and\n"
        "DIR/data_card.json. Stages are the subfolders of DIR that hold a stats.json.",
        argv[0]};
    std::string dir, name = "medforge dataset";
    CommonOptions common;
    app.add_option("dir", dir, "pipeline output folder (e.g. the --out of medforge build)")
        ->required();
    app.add_option("--name", name, "dataset name for the card title");
    add_common_options(app, common, false);
    if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
    apply_common_options(common);
    curate::DataCardInfo info;
    info.name = name;
    Status st = curate::write_data_card(dir, info);
    if (!st.ok()) return fail(st, "card");
    log::info("wrote {}/data_card.md", dir);
    return kExitOk;
}

}  // namespace mf::cli
