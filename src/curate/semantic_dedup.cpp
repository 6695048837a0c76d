#include "curate/semantic_dedup.h"

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>

#include <algorithm>
#include <cmath>
#include <exception>

namespace mf::curate {

// 16 float lanes accumulated in a fixed order, then summed in double: vectorises (the AVX2
// clone and the generic one perform the same operations in the same order, and -std=c++20
// disables FMA contraction, so results are identical on every machine).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
double
row_cosine(const float* a, const float* b, int dim) {
    constexpr int L = 16;
    float acc[L] = {};
    int d = 0;
    for (; d + L <= dim; d += L)
        for (int l = 0; l < L; ++l)
            acc[l] += a[d + l] * b[d + l];
    double s = 0;
    for (int l = 0; l < L; ++l)
        s += acc[l];
    for (; d < dim; ++d)
        s += static_cast<double>(a[d]) * b[d];
    return s;
}

namespace {
bool is_zero(const float* r, int dim) {
    for (int d = 0; d < dim; ++d)
        if (r[d] != 0.0f) return false;
    return true;
}
}  // namespace

Result<SemanticIndex> SemanticIndex::build(std::vector<const float*> rows, int dim,
                                           const SemanticDedupParams& params) {
    if (dim <= 0)
        return Status::invalid_argument("semantic dedup: embedding dimension must be > 0");
    SemanticIndex ix;
    ix.dim_ = dim;
    ix.threshold_ = params.threshold;
    std::vector<size_t> live;
    for (size_t i = 0; i < rows.size(); ++i) {
        if (rows[i] && is_zero(rows[i], dim)) rows[i] = nullptr;
        if (rows[i]) live.push_back(i);
    }
    ix.rows_ = std::move(rows);
    const size_t n = live.size();
    int k = params.clusters > 0 ? params.clusters
                                : static_cast<int>(std::lround(std::sqrt(static_cast<double>(n))));
    k = static_cast<int>(
        std::clamp<size_t>(static_cast<size_t>(std::max(k, 1)), 1, std::max<size_t>(n, 1)));
    ix.k_ = k;
    ix.probe_ = std::clamp(params.probe, 1, k);
    ix.members_.assign(k, {});
    ix.member_rows_.assign(k, {});
    ix.assign_.assign(ix.rows_.size() * ix.probe_, 0);
    if (k == 1 || n == 0) return ix;  // one cluster: exact scan

    try {
        // Deterministic strided training sample.
        size_t max_train = static_cast<size_t>(k) * std::max(1, params.max_train_per_cluster);
        size_t stride = std::max<size_t>(1, (n + max_train - 1) / max_train);
        std::vector<float> train;
        size_t n_train = 0;
        for (size_t t = 0; t < n; t += stride, ++n_train)
            train.insert(train.end(), ix.rows_[live[t]], ix.rows_[live[t]] + dim);
        faiss::ClusteringParameters cp;
        cp.niter = params.niter;
        cp.spherical = true;
        cp.seed = static_cast<int>(params.seed & 0x7fffffff);
        cp.verbose = false;
        cp.min_points_per_centroid = 1;
        cp.max_points_per_centroid = 1 << 30;  // we sampled already
        faiss::Clustering clus(dim, k, cp);
        faiss::IndexFlatIP train_index(dim);
        clus.train(static_cast<faiss::Index::idx_t>(n_train), train.data(), train_index);

        faiss::IndexFlatIP cindex(dim);
        cindex.add(k, clus.centroids.data());
        const size_t batch = 4096;
        std::vector<float> q(batch * dim), dist(batch * ix.probe_);
        std::vector<faiss::Index::idx_t> lab(batch * ix.probe_);
        for (size_t b = 0; b < n; b += batch) {
            size_t m = std::min(batch, n - b);
            for (size_t j = 0; j < m; ++j)
                std::copy(ix.rows_[live[b + j]], ix.rows_[live[b + j]] + dim, q.data() + j * dim);
            cindex.search(static_cast<faiss::Index::idx_t>(m), q.data(), ix.probe_, dist.data(),
                          lab.data());
            for (size_t j = 0; j < m; ++j)
                for (int p = 0; p < ix.probe_; ++p) {
                    auto l = lab[j * ix.probe_ + p];
                    ix.assign_[live[b + j] * ix.probe_ + p] =
                        static_cast<uint32_t>(l < 0 ? lab[j * ix.probe_] : l);
                }
        }
    } catch (const std::exception& e) {
        return Status::internal(std::string("semantic dedup: faiss k-means failed: ") + e.what());
    }
    return ix;
}

SemanticMatch SemanticIndex::find(size_t i) const {
    SemanticMatch best;
    const float* q = rows_[i];
    if (!q) return best;
    for (int p = 0; p < probe_; ++p) {
        uint32_t c = assign_[i * probe_ + p];
        bool seen = false;
        for (int pp = 0; pp < p; ++pp)
            seen |= assign_[i * probe_ + pp] == c;
        if (seen) continue;
        const float* data = member_rows_[c].data();
        for (size_t j = 0; j < members_[c].size(); ++j) {
            uint32_t m = members_[c][j];
            if (best.index >= 0 && m >= best.index) break;  // members are increasing
            ++comparisons_;
            double cs = row_cosine(q, data + j * dim_, dim_);
            if (cs >= threshold_) {
                best.index = m;
                best.cosine = cs;
                break;
            }
        }
    }
    return best;
}

void SemanticIndex::add(size_t i) {
    if (!rows_[i]) return;
    uint32_t c = assign_[i * probe_];
    members_[c].push_back(static_cast<uint32_t>(i));
    member_rows_[c].insert(member_rows_[c].end(), rows_[i], rows_[i] + dim_);
}

}  // namespace mf::curate
