// Deduplication stage (`medforge dedup`), a global decision in two phases.
//
// Phase 1 (signatures; parallel; shardable with --shard i/N): for every input sample it owns, a
// process computes the SHA-256 of each image file (streamed), a 128-bit hash of the normalised
// caption (normalize_caption), the caption's MinHash signature, and optionally a caption
// embedding. They go to <dir>/signatures.bin (+ embeddings.f32), with dedup.json (parameters,
// input file) and stats.json (stage "dedup", extra.phase "signatures").
//
// Phase 2 (resolve; sequential; deterministic): records are visited in input order (ordinal)
// and a sample is rejected when, against the samples KEPT so far, and in this order of checks:
//   duplicate_image         any of its images has the SHA-256 of an image of a kept sample
//                           (a sample sharing only some images is a duplicate: every image
//                           appears at most once in the output)
//   duplicate_caption       its normalised caption equals a kept sample's (empty captions
//                           never match)
//   near_duplicate_caption  MinHash-LSH candidate whose estimated Jaccard (full signature) is
//                           >= minhash_threshold
//   semantic_duplicate      cosine of the caption embeddings >= semantic threshold
// The earliest kept sample wins; the reject's duplicate_of names it and the detail gives the
// similarity. Unparseable lines are rejected as bad_record. Kept lines are copied verbatim.
// Phase 2 re-reads the input file named in dedup.json (it must be unchanged: size is checked).
//
// Single process: run_dedup() runs both phases (signatures in <out>/.dedup-signatures, removed
// afterwards). Sharded: run_dedup() with a sharded spec runs phase 1 only; merge_dedup_shards()
// (called by `medforge merge` for a dedup shard set) runs phase 2 over all shards' files. The
// merged samples.jsonl / rejects.jsonl equal the single-process ones byte for byte.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "core/status.h"
#include "curate/embedder.h"
#include "curate/minhash.h"
#include "curate/semantic_dedup.h"
#include "curate/stage.h"

namespace mf::curate {

struct DedupParams {
    bool image_hash = true;
    bool caption_hash = true;
    bool minhash = true;
    MinHashParams minhash_params;
    double minhash_threshold = 0.8;  // estimated Jaccard >= this is a near duplicate
    int bands = 0, rows = 0;         // 0 = optimal_lsh_shape(threshold, num_perm, 0.05, 0.95)
    // Semantic dedup runs when `embedder` is set; `embedder_name` names it in dedup.json and
    // must match across shards.
    std::shared_ptr<const Embedder> embedder;
    // A model embedder's checkpoint folder (config key "embedder"). curate has no model engine:
    // the CLI loads it into `embedder` (cli/model_embedder.h); run_dedup fails if it did not.
    fs::path embedder_dir;
    SemanticDedupParams semantic;
};

struct DedupOptions {
    fs::path input;  // Sample JSONL file or stage directory
    fs::path out_dir;
    ShardSpec shard;
    size_t n_threads = 0;
    size_t batch_size = 2048;
    bool progress = true;
    DedupParams params;
};

// LSH shape used for the given params (explicit bands/rows or the optimum).
LshShape dedup_lsh_shape(const DedupParams& p);

// Single process: phases 1 + 2, writes samples/rejects/stats into out_dir. Sharded: phase 1
// only, into out_dir/shards/<i>-of-<N>/; returns that shard's stats (extra.phase "signatures").
Result<StageStats> run_dedup(const DedupOptions& opt);

// True when out_dir/shards/*/stats.json say stage "dedup" (a signature shard set).
bool is_dedup_shard_set(const fs::path& out_dir);

// Phase 2 over all shards in out_dir/shards (all N must be finished, with equal parameters).
// `embedder` is not needed: embeddings were computed in phase 1.
Result<StageStats> merge_dedup_shards(const fs::path& out_dir, size_t n_threads = 0,
                                      bool progress = true);

}  // namespace mf::curate
