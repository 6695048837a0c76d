// medforge decontam --in DIR --against BENCH:PATH[:IMAGES]... --out DIR: drops training samples
// whose images (perceptual hashes) or text (question n-grams) overlap evaluation benchmarks.
// See docs/decontam.md.
#include "cli/commands.h"
#include "core/log.h"
#include "reformat/decontam.h"

namespace mf::cli {

int run_decontam(int argc, char** argv) {
    CLI::App app{
        "Remove training samples that overlap evaluation benchmarks: an image whose pHash and "
        "dHash are within the thresholds of a benchmark image (contaminated_image), or a "
        "caption/mention sharing a word n-gram with (or containing) a benchmark question "
        "(contaminated_text). Writes samples.jsonl, rejects.jsonl, stats.json and "
        "overlap_report.{json,md}.",
        argv[0]};
    std::string in, out;
    std::vector<std::string> against;
    reformat::DecontamOptions opt;
    reformat::DecontamParams& p = opt.params;
    bool no_images = false, no_text = false;
    CommonOptions common;
    app.add_option("--in", in, "input: Sample JSONL file or a stage output directory")->required();
    app.add_option("--against", against,
                   "benchmark to decontaminate against, <benchmark>:<path>[:<images dir>] "
                   "(repeatable), e.g. vqa-rad:data/vqa_rad/testset.json:data/vqa_rad/images")
        ->required();
    app.add_option("--out", out,
                   "output directory (samples.jsonl, rejects.jsonl, stats.json, "
                   "overlap_report.json/.md)")
        ->required();
    app.add_option("--phash-threshold", p.phash_threshold, "max pHash Hamming distance (0..64)")
        ->check(CLI::Range(0, 64))
        ->capture_default_str();
    app.add_option("--dhash-threshold", p.dhash_threshold, "max dHash Hamming distance (0..64)")
        ->check(CLI::Range(0, 64))
        ->capture_default_str();
    app.add_option("--ngram", p.ngram, "words per n-gram for questions of at least that length")
        ->check(CLI::Range(2, 64))
        ->capture_default_str();
    app.add_option("--min-question-words", p.min_question_words,
                   "shorter questions are matched whole; below this they are ignored")
        ->check(CLI::Range(1, 64))
        ->capture_default_str();
    app.add_flag("--no-images", no_images, "skip the image check");
    app.add_flag("--no-text", no_text, "skip the text check");
    add_common_options(app, common, true);
    if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
    apply_common_options(common);

    for (const std::string& a : against) {
        auto spec = reformat::parse_against(a);
        if (!spec.ok()) return fail(spec.status(), "decontam");
        opt.against.push_back(*spec);
    }
    auto shard = curate::parse_shard(common.shard);
    if (!shard.ok()) return fail(shard.status(), "decontam");
    p.check_images = !no_images;
    p.check_text = !no_text;
    opt.input = in;
    opt.out_dir = out;
    opt.shard = *shard;
    opt.n_threads = static_cast<size_t>(common.threads);
    auto stats = reformat::run_decontam(opt);
    if (!stats.ok()) return fail(stats.status(), "decontam");
    print_stage_summary(*stats, out);
    return kExitOk;
}

}  // namespace mf::cli
