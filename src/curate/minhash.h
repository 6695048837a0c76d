// MinHash signatures and banded LSH for near-duplicate caption detection (medforge dedup).
//
// Text normalisation (normalize_caption): ASCII letters are lower-cased, every ASCII punctuation
// character is replaced by a space, runs of whitespace collapse to one space, and the ends are
// trimmed. Non-ASCII UTF-8 bytes are kept unchanged. Two captions are exact caption duplicates
// when their normalised forms are equal.
//
// Shingles: word k-shingles (default k = 5: every run of k consecutive words of the normalised
// text) or character k-shingles (every k-byte window). A text shorter than k words / bytes is
// one shingle (the whole text); an empty text has no shingles and no signature.
//
// Signature scheme (fast, documented in docs/dedup.md): each shingle gets ONE 64-bit hash
// (words are hashed once with xxh64 and the k word hashes are mixed; char shingles are hashed
// with xxh64), then the num_perm permutations are multiply-shift universal hashes
//   h_i(x) = (uint32)((a_i * x + b_i) >> 32),  a_i odd, a_i, b_i from a seeded SplitMix64,
// and sig[i] = min over shingles of h_i(x). Signatures are 32-bit per permutation.
// P[sig_A[i] == sig_B[i]] ~= Jaccard(A, B); the estimate is the fraction of equal positions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"

namespace mf::curate {

std::string normalize_caption(std::string_view caption);

enum class ShingleKind { kWord, kChar };

struct MinHashParams {
    int num_perm = 128;
    ShingleKind shingle = ShingleKind::kWord;
    int shingle_size = 5;
    uint64_t seed = 0x6d6564666f726765ULL;  // "medforge"
};

// "word" / "char".
Result<ShingleKind> parse_shingle_kind(std::string_view s);
const char* shingle_kind_name(ShingleKind k);

// The distinct 64-bit shingle hashes of an already normalised text (sorted, unique).
std::vector<uint64_t> shingle_hashes(std::string_view normalized, ShingleKind kind, int k);

class MinHasher {
  public:
    explicit MinHasher(const MinHashParams& p);
    const MinHashParams& params() const { return p_; }
    int num_perm() const { return p_.num_perm; }

    // Signature of a normalised text into out[0..num_perm). Returns false (out untouched)
    // when the text has no shingles (empty).
    bool signature(std::string_view normalized, uint32_t* out) const;
    // Signature of a set of shingle hashes (need not be unique). False when empty.
    bool signature_of_hashes(const uint64_t* hashes, size_t n, uint32_t* out) const;

  private:
    MinHashParams p_;
    std::vector<uint64_t> a_, b_;
};

// Fraction of equal positions.
double jaccard_estimate(const uint32_t* a, const uint32_t* b, int num_perm);
// Exact Jaccard of two sorted unique hash sets (|A∩B| / |A∪B|; 0 when both empty).
double exact_jaccard(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b);

// Bands x rows minimising the weighted false-positive + false-negative area of the S-curve
// 1-(1-s^r)^b around `threshold` (as datasketch's _optimal_param), with bands*rows <= num_perm.
struct LshShape {
    int bands = 0;
    int rows = 0;
};
LshShape optimal_lsh_shape(double threshold, int num_perm, double fp_weight = 0.5,
                           double fn_weight = 0.5);
// Probability that a pair of Jaccard s becomes a candidate: 1 - (1 - s^rows)^bands.
double lsh_candidate_probability(double s, LshShape shape);

// Banded LSH over 32-bit signatures. Items are identified by dense uint32 handles 0, 1, 2, ...
// (insert() must be called with handle == size()); query() returns candidate handles
// (deduplicated, ascending). Memory: one hash-map entry per distinct band key plus 4 bytes per
// item and band (bucket members are chained through a per-band `next` array).
class LshIndex {
  public:
    LshIndex(LshShape shape, int num_perm);
    void insert(const uint32_t* sig, uint32_t handle);
    void query(const uint32_t* sig, std::vector<uint32_t>* out) const;
    size_t size() const { return n_; }
    LshShape shape() const { return shape_; }

  private:
    uint64_t band_key(const uint32_t* sig, int band) const;
    LshShape shape_;
    int num_perm_;
    size_t n_ = 0;
    std::vector<std::unordered_map<uint64_t, uint32_t>> tables_;  // key -> newest handle + 1
    std::vector<std::vector<uint32_t>> next_;  // per band: handle -> older handle + 1 (0 = end)
};

}  // namespace mf::curate
