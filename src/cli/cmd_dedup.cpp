// medforge dedup --in DIR --out DIR: drops exact and near-duplicate samples (images by SHA-256,
// captions by normalised hash, MinHash-LSH and optionally embeddings). See docs/dedup.md.
#include <memory>

#include "cli/commands.h"
#include "cli/model_embedder.h"
#include "core/log.h"
#include "curate/dedup.h"
#include "curate/hashing_embedder.h"

namespace mf::cli {

int run_dedup(int argc, char** argv) {
    CLI::App app{
        "Remove duplicate samples: identical images (SHA-256), identical normalised "
        "captions, near-duplicate captions (MinHash-LSH) and, with --semantic, captions "
        "with similar embeddings. The earliest sample wins; rejects name duplicate_of.\n"
        "With --shard i/N only signatures are computed; `medforge merge OUT` decides.",
        argv[0]};
    std::string in, out, shingle = "word", semantic = "none";
    curate::DedupOptions opt;
    curate::DedupParams& p = opt.params;
    bool no_image = false, no_minhash = false, no_caption = false;
    int embed_dim = 512;
    std::string embedder_dir;
    int64_t embed_batch = 32;
    CommonOptions common;
    app.add_option("--in", in, "input: Sample JSONL file or a stage output directory")->required();
    app.add_option("--out", out, "output directory (samples.jsonl, rejects.jsonl, stats.json)")
        ->required();
    app.add_option("--minhash-threshold", p.minhash_threshold,
                   "near duplicate when the estimated caption Jaccard is >= this")
        ->capture_default_str();
    app.add_option("--num-perm", p.minhash_params.num_perm, "MinHash permutations")
        ->capture_default_str();
    app.add_option("--bands", p.bands, "LSH bands (0 = optimal for the threshold)")
        ->capture_default_str();
    app.add_option("--rows", p.rows, "LSH rows per band (0 = optimal for the threshold)")
        ->capture_default_str();
    app.add_option("--shingle", shingle, "caption shingles: word or char")
        ->check(CLI::IsMember({"word", "char"}))
        ->capture_default_str();
    app.add_option("--shingle-size", p.minhash_params.shingle_size,
                   "words (or characters) per shingle")
        ->capture_default_str();
    app.add_flag("--no-image-hash", no_image, "do not hash images (no duplicate_image)");
    app.add_flag("--no-caption-hash", no_caption, "no exact caption dedup (duplicate_caption)");
    app.add_flag("--no-minhash", no_minhash, "no near-duplicate captions (MinHash-LSH)");
    app.add_option("--semantic", semantic,
                   "semantic caption dedup embedder: none, hashing (lexical bag-of-words "
                   "hashing embedder) or model (a sentence-transformers model: --embedder)")
        ->check(CLI::IsMember({"none", "hashing", "model"}))
        ->capture_default_str();
    app.add_option("--embedder", embedder_dir,
                   "sentence-transformers folder (BERT / MPNet, e.g. all-mpnet-base-v2) for "
                   "semantic dedup; implies --semantic model. See docs/embedder.md");
    app.add_option("--embed-batch", embed_batch, "sentences per model batch")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    app.add_option("--semantic-threshold", p.semantic.threshold,
                   "semantic duplicate when the embedding cosine is >= this")
        ->capture_default_str();
    app.add_option("--semantic-dim", embed_dim, "dimension of the hashing embedder")
        ->check(CLI::Range(8, 65536))
        ->capture_default_str();
    app.add_option("--clusters", p.semantic.clusters,
                   "k-means clusters for semantic search (0 = sqrt(n), 1 = exact scan)")
        ->capture_default_str();
    app.add_option("--probe", p.semantic.probe, "nearest clusters searched per sample")
        ->capture_default_str();
    add_common_options(app, common, true);
    if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
    apply_common_options(common);

    auto shard = curate::parse_shard(common.shard);
    if (!shard.ok()) return fail(shard.status(), "dedup");
    auto kind = curate::parse_shingle_kind(shingle);
    if (!kind.ok()) return fail(kind.status(), "dedup");
    p.minhash_params.shingle = *kind;
    p.image_hash = !no_image;
    p.caption_hash = !no_caption;
    p.minhash = !no_minhash;
    if (semantic == "hashing") p.embedder = std::make_shared<curate::HashingEmbedder>(embed_dim);
    if (semantic == "model" || !embedder_dir.empty()) {
        if (embedder_dir.empty())
            return fail(Status::invalid_argument("--semantic model needs --embedder DIR"), "dedup");
        if (semantic == "hashing")
            return fail(Status::invalid_argument("--embedder and --semantic hashing exclude each "
                                                 "other"),
                        "dedup");
        auto emb = TransformerEmbedder::load(embedder_dir, embed_batch, common.threads);
        if (!emb.ok()) return fail(emb.status(), "dedup");
        p.embedder = std::move(emb).value();
    }
    opt.input = in;
    opt.out_dir = out;
    opt.shard = *shard;
    opt.n_threads = static_cast<size_t>(common.threads);
    auto stats = curate::run_dedup(opt);
    if (!stats.ok()) return fail(stats.status(), "dedup");
    if (opt.shard.sharded()) {
        log::info(
            "dedup shard {}: signatures of {} samples in {}; run `medforge merge {}` when "
            "all shards are done",
            opt.shard.to_string(), stats->input,
            (std::filesystem::path(out) / "shards" / opt.shard.dir_name()).string(), out);
        return kExitOk;
    }
    print_stage_summary(*stats, out);
    return kExitOk;
}

}  // namespace mf::cli
