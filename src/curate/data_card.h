// The data card: a Markdown page (and a JSON twin) describing a curated dataset, with the funnel
// of every stage (input, kept, rejected, per reason), throughput, sources and licences. Written by
// `medforge build` and `medforge card`; later stages (reformat) add their own rows.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/status.h"
#include "curate/stage.h"

namespace mf::curate {

struct CardStage {
    std::string title;          // e.g. "ingest (jats: examples/demo/jats)"
    std::filesystem::path dir;  // the stage's output directory
    StageStats stats;
};

struct DataCardInfo {
    std::string name = "medforge dataset";
    std::string config_path;  // the build config, if any
    std::string config_sha256;
    std::filesystem::path final_samples;  // the dataset file the card describes
};

// Renders the Markdown card.
std::string render_data_card(const DataCardInfo& info, const std::vector<CardStage>& stages);
// JSON twin: {"name":..., "stages":[stats...], "final": {...}}.
std::string render_data_card_json(const DataCardInfo& info, const std::vector<CardStage>& stages);

// Collects the stages under `root` (subdirectories holding stats.json, in name order) and writes
// root/data_card.md and root/data_card.json.
Status write_data_card(const std::filesystem::path& root, DataCardInfo info);

}  // namespace mf::curate
