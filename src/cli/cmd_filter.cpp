// medforge filter --in DIR --out DIR [--config F]: text (medical terms) + image filters.
#include "cli/commands.h"
#include "core/log.h"
#include "curate/config_reader.h"
#include "curate/pipeline.h"
#include "io/file.h"

namespace mf::cli {

int run_filter(int argc, char** argv) {
    CLI::App app{
        "Keep the samples whose caption holds enough distinct medical terms and whose images all\n"
        "decode, are at least --min-side pixels on their short side and look medical to the\n"
        "image classifier. Writes OUT/samples.jsonl (kept, byte for byte), OUT/rejects.jsonl\n"
        "(every dropped sample with its reason) and OUT/stats.json. Options override --config.\n"
        "Reason codes and defaults: docs/filter.md.",
        argv[0]};
    std::string in, out, config;
    CommonOptions common;
    int min_terms = -1, min_side = -1;
    bool use_mentions = false, no_text = false, no_image = false, header_only = false;
    std::string lexicon, classifier;
    double min_prob = -1;
    app.add_option("--in", in, "input stage folder (with samples.jsonl) or a Sample JSONL file")
        ->required();
    app.add_option("--out", out, "output folder")->required();
    app.add_option("--config", config,
                   "JSON file with a \"filter\" object (or the object itself), see docs/filter.md");
    app.add_option("--min-terms", min_terms, "distinct medical terms needed (default 5)")
        ->check(CLI::NonNegativeNumber);
    app.add_flag("--use-mentions", use_mentions,
                 "count terms in caption + inline mentions (paper: caption only)");
    app.add_option("--lexicon", lexicon, "lexicon file (default: the one setup builds)");
    app.add_option("--min-side", min_side, "minimum image width and height in pixels (default 336)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--classifier", classifier,
                   "medical-image classifier JSON, 'default' or 'none'");
    app.add_option("--min-medical-prob", min_prob, "classifier probability needed (default 0.5)")
        ->check(CLI::Range(0.0, 1.0));
    app.add_flag("--header-only", header_only,
                 "check image headers only (fast; no decode, no classifier)");
    app.add_flag("--no-text", no_text, "skip the text filter");
    app.add_flag("--no-image", no_image, "skip the image filter");
    add_common_options(app, common, true);
    if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
    apply_common_options(common);

    nlohmann::json section = nlohmann::json::object();
    std::filesystem::path base;
    if (!config.empty()) {
        auto j = curate::load_json_file(config);
        if (!j.ok()) return fail(j.status(), "filter");
        section = j->contains("filter") ? (*j)["filter"] : *j;
        base = io::absolute_normal(config).parent_path();
    }
    auto cfg = curate::parse_filter_config(section, base);
    if (!cfg.ok()) return fail(cfg.status(), config.empty() ? "filter" : config);
    curate::FilterConfig c = std::move(cfg).value();
    if (min_terms >= 0) c.text.min_terms = min_terms;
    if (use_mentions) c.text.use_mentions = true;
    if (!lexicon.empty()) c.text.lexicon = lexicon;
    if (min_side >= 0) c.image.min_side = min_side;
    if (!classifier.empty()) c.classifier = classifier;
    if (min_prob >= 0) c.image.min_medical_prob = static_cast<float>(min_prob);
    if (header_only) {
        c.image.decode = false;
        c.classifier = "none";
    }
    if (no_text) c.text_enabled = false;
    if (no_image) c.image_enabled = false;

    auto shard = curate::parse_shard(common.shard);
    if (!shard.ok()) return fail(shard.status());
    auto filters = curate::FilterSet::create(c);
    if (!filters.ok()) return fail(filters.status(), "filter");
    curate::FilterRunOptions o{in, out, *shard, static_cast<size_t>(common.threads), !common.quiet};
    auto stats = curate::run_filter(o, **filters);
    if (!stats.ok()) return fail(stats.status(), "filter");
    print_stage_summary(*stats, out);
    return kExitOk;
}

}  // namespace mf::cli
