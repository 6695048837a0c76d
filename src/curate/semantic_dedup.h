// Semantic (embedding) dedup: "is there an earlier KEPT sample whose embedding has cosine >=
// threshold with this one?", the scalable form of the paper's all-mpnet-base-v2 caption dedup.
//
// SemanticIndex partitions the embeddings with seeded spherical k-means (faiss::Clustering,
// trained on a deterministic strided sample of at most max_train_per_cluster * k rows), assigns
// every row to its `probe` nearest centroids, and answers find(i) by an exact cosine scan over
// the kept members of i's probe clusters. A kept row is added to its nearest cluster only, so a
// pair is found whenever the earlier row's home cluster is among the later row's `probe`
// nearest; with clusters == 1 the search is exact (every kept row is compared). Recall against
// the exact O(n^2) scan is measured in tests/curate/semantic_dedup_test.cpp and docs/dedup.md.
//
// Rows are L2-normalised float vectors (Embedder contract); an all-zero row (empty text) never
// matches and is never a match. Decisions are deterministic: the earliest (lowest index) kept
// row with cosine >= threshold wins, and the cosine is computed in a fixed order in double.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"

namespace mf::curate {

struct SemanticDedupParams {
    double threshold = 0.95;         // cosine; >= is a duplicate
    int clusters = 0;                // k; 0 = round(sqrt(n)), 1 = exact scan
    int probe = 2;                   // clusters searched per query
    int niter = 10;                  // k-means iterations
    int max_train_per_cluster = 64;  // training sample size per centroid
    uint64_t seed = 1234;
};

struct SemanticMatch {
    int64_t index = -1;  // earliest kept row with cosine >= threshold, or -1
    double cosine = 0;
};

// Cosine of two rows computed in double in index order (rows are normalised: the dot product).
double row_cosine(const float* a, const float* b, int dim);

class SemanticIndex {
  public:
    // rows[i] points at row i's dim floats, or nullptr when row i has no embedding (it is never
    // queried nor added). The pointed-to memory must outlive the index.
    static Result<SemanticIndex> build(std::vector<const float*> rows, int dim,
                                       const SemanticDedupParams& params);

    // Earliest kept row (added before) with cosine >= threshold to row i.
    SemanticMatch find(size_t i) const;
    // Marks row i as kept (rows must be added in increasing index).
    void add(size_t i);

    int clusters() const { return k_; }
    uint64_t comparisons() const { return comparisons_; }

  private:
    std::vector<const float*> rows_;
    int dim_ = 0;
    int k_ = 1;
    int probe_ = 1;
    double threshold_ = 0.95;
    std::vector<uint32_t> assign_;                 // n * probe_ nearest clusters, nearest first
    std::vector<std::vector<uint32_t>> members_;   // kept rows per cluster, increasing
    std::vector<std::vector<float>> member_rows_;  // their embeddings, contiguous (cache-friendly)
    mutable uint64_t comparisons_ = 0;
};

}  // namespace mf::curate
