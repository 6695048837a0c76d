// The curation pipeline as one job: config → ingest (every source) → filter (text, image) →
// dedup → data card. This is what `medforge build` runs; `medforge filter` uses the filter part.
//
// Config file (JSON, documented in docs/build.md; relative paths are relative to the file):
//   {"name": "...", "threads": 0,
//    "sources": [{"format": "jats", "input": "articles/", "image_root": "...", "licence": "...",
//                 "require_images": false}],
//    "filter": {"text": {...}, "image": {...}},      // see FilterConfig
//    "dedup": {...}}                                  // see parse_dedup_config
//
// Output folder: 1-ingest/, 2-filter/, 3-dedup/ (each: samples.jsonl, rejects.jsonl, stats.json),
// data_card.md / data_card.json, build.json (the effective config). A finished stage writes
// stage.done with a fingerprint of its config and input; a re-run skips stages whose fingerprint
// matches, so a killed build resumes at the stage it was in.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "curate/dedup.h"
#include "curate/filter.h"
#include "curate/image_filter.h"
#include "curate/ingest.h"
#include "curate/stage.h"
#include "curate/stats_classifier.h"
#include "curate/text_filter.h"

namespace mf::curate {

namespace fs = std::filesystem;

struct FilterConfig {
    bool text_enabled = true;
    TextFilterParams text;
    bool image_enabled = true;
    ImageFilterParams image;             // classifier pointer is set by make_filters()
    std::string classifier = "default";  // "default", "none" or a model JSON path
};

// Parses the "filter" object: {"text": {"enabled", "min_terms", "use_mentions", "lexicon"},
// "image": {"enabled", "min_side", "max_pixels", "decode", "classifier", "min_medical_prob"}}.
// "lexicon": "default" or a path. Unknown keys are errors naming the path.
Result<FilterConfig> parse_filter_config(const nlohmann::json& j, const fs::path& base_dir,
                                         const std::string& where = "filter");

// The filters of one config, ready to apply (text first: cheap; then image).
class FilterSet {
  public:
    static Result<std::unique_ptr<FilterSet>> create(const FilterConfig& config);
    Verdict apply(const Sample& sample) const;
    // A JSON description of the filters (lexicon size, classifier, thresholds) for stats.
    nlohmann::json describe() const;

  private:
    FilterConfig config_;
    std::unique_ptr<TextFilter> text_;
    std::unique_ptr<ImageClassifier> classifier_;
    std::unique_ptr<ImageFilter> image_;
    std::string classifier_path_;
};

struct FilterRunOptions {
    fs::path input;
    fs::path out_dir;
    ShardSpec shard;
    size_t n_threads = 0;
    bool progress = true;
};
Result<StageStats> run_filter(const FilterRunOptions& opt, const FilterSet& filters);

// Parses the "dedup" object: {"image_hash", "exact_caption", "minhash", "minhash_threshold",
// "num_perm", "shingle", "bands", "rows", "semantic": "none"|"hashing"|"model",
// "semantic_threshold", "clusters", "embedder": a sentence-transformers folder (relative to `base`;
// implies semantic "model", loaded by the CLI)}.
Result<DedupParams> parse_dedup_config(const nlohmann::json& j, const std::string& where = "dedup",
                                       const fs::path& base = {});

struct SourceConfig {
    std::string format;
    fs::path input;
    IngestOptions options;
};

struct BuildConfig {
    std::string name = "medforge dataset";
    std::vector<SourceConfig> sources;
    FilterConfig filter;
    nlohmann::json dedup_json = nlohmann::json::object();
    DedupParams dedup;
    // The optional "reformat" object, kept as is: curate does not depend on reformat; the CLI
    // hands it to reformat::run_build_reformat() (stage 4-reformat) after run_build().
    nlohmann::json reformat_json = nlohmann::json::object();
    int threads = 0;
    fs::path path;       // the config file
    std::string sha256;  // of its bytes
};

Result<BuildConfig> load_build_config(const fs::path& path);

struct BuildOptions {
    fs::path out_dir;
    int threads = -1;    // -1: the config's value
    bool force = false;  // re-run stages even when up to date
    bool progress = true;
};

// Runs every stage and writes the data card. Returns the stats of each stage, in order.
Result<std::vector<StageStats>> run_build(const BuildConfig& config, const BuildOptions& opt);

}  // namespace mf::curate
