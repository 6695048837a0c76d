#include "curate/minhash.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"
#include "core/hash.h"

namespace mf::curate {

namespace {

bool is_ascii_punct(unsigned char c) {
    return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
           (c >= 123 && c <= 126);
}
bool is_ascii_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t fmix64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

// Word hashes of a normalised text (words are separated by single spaces).
void word_hashes(std::string_view s, std::vector<uint64_t>* out) {
    out->clear();
    size_t i = 0;
    while (i < s.size()) {
        size_t j = s.find(' ', i);
        if (j == std::string_view::npos) j = s.size();
        if (j > i) out->push_back(xxh64(s.substr(i, j - i)));
        i = j + 1;
    }
}

// Appends the (not deduplicated) shingle hashes of a normalised text.
void raw_shingles(std::string_view s, ShingleKind kind, int k, std::vector<uint64_t>* out,
                  std::vector<uint64_t>* scratch) {
    out->clear();
    if (s.empty()) return;
    if (kind == ShingleKind::kChar) {
        if (s.size() <= static_cast<size_t>(k)) {
            out->push_back(xxh64(s));
            return;
        }
        out->reserve(s.size() - k + 1);
        for (size_t i = 0; i + k <= s.size(); ++i)
            out->push_back(xxh64(s.data() + i, k));
        return;
    }
    word_hashes(s, scratch);
    const auto& w = *scratch;
    if (w.empty()) return;
    size_t kk = std::min<size_t>(k, w.size());
    out->reserve(w.size() - kk + 1);
    for (size_t i = 0; i + kk <= w.size(); ++i) {
        uint64_t h = 0x2545f4914f6cdd1dULL + kk;
        for (size_t t = 0; t < kk; ++t)
            h = fmix64(h ^ w[i + t]) + 0x9e3779b97f4a7c15ULL * (t + 1);
        out->push_back(h);
    }
}

// The hot loop: for every shingle hash x and permutation i, sig[i] = min(sig[i], h_i(x)).
// Cloned for AVX2 (runtime dispatch) so a generic x86-64 build still vectorises well.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
void minhash_kernel(const uint64_t* __restrict a, const uint64_t* __restrict b, int num_perm,
                    const uint64_t* __restrict xs, size_t n, uint32_t* __restrict sig) {
    for (int i = 0; i < num_perm; ++i)
        sig[i] = std::numeric_limits<uint32_t>::max();
    for (size_t s = 0; s < n; ++s) {
        const uint64_t x = xs[s];
        for (int i = 0; i < num_perm; ++i) {
            uint32_t v = static_cast<uint32_t>((a[i] * x + b[i]) >> 32);
            sig[i] = v < sig[i] ? v : sig[i];
        }
    }
}

}  // namespace

std::string normalize_caption(std::string_view caption) {
    std::string out;
    out.reserve(caption.size());
    bool pending_space = false;
    for (unsigned char c : caption) {
        if (is_ascii_space(c) || is_ascii_punct(c)) {
            pending_space = !out.empty();
            continue;
        }
        if (pending_space) {
            out += ' ';
            pending_space = false;
        }
        out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : static_cast<char>(c);
    }
    return out;
}

Result<ShingleKind> parse_shingle_kind(std::string_view s) {
    if (s == "word" || s == "words") return ShingleKind::kWord;
    if (s == "char" || s == "chars") return ShingleKind::kChar;
    return Status::invalid_argument("shingle kind '" + std::string(s) + "': expected word or char");
}

const char* shingle_kind_name(ShingleKind k) {
    return k == ShingleKind::kWord ? "word" : "char";
}

std::vector<uint64_t> shingle_hashes(std::string_view normalized, ShingleKind kind, int k) {
    std::vector<uint64_t> out, scratch;
    raw_shingles(normalized, kind, k, &out, &scratch);
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

MinHasher::MinHasher(const MinHashParams& p) : p_(p) {
    uint64_t st = p.seed;
    a_.resize(p.num_perm);
    b_.resize(p.num_perm);
    for (int i = 0; i < p.num_perm; ++i) {
        a_[i] = splitmix64(st) | 1;
        b_[i] = splitmix64(st);
    }
}

bool MinHasher::signature_of_hashes(const uint64_t* hashes, size_t n, uint32_t* out) const {
    if (n == 0) return false;
    minhash_kernel(a_.data(), b_.data(), p_.num_perm, hashes, n, out);
    return true;
}

bool MinHasher::signature(std::string_view normalized, uint32_t* out) const {
    thread_local std::vector<uint64_t> sh, scratch;
    raw_shingles(normalized, p_.shingle, p_.shingle_size, &sh, &scratch);
    return signature_of_hashes(sh.data(), sh.size(), out);
}

double jaccard_estimate(const uint32_t* a, const uint32_t* b, int num_perm) {
    int eq = 0;
    for (int i = 0; i < num_perm; ++i)
        eq += a[i] == b[i];
    return num_perm > 0 ? static_cast<double>(eq) / num_perm : 0.0;
}

double exact_jaccard(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
    size_t i = 0, j = 0, inter = 0;
    while (i < a.size() && j < b.size()) {
        if (a[i] == b[j]) {
            ++inter;
            ++i;
            ++j;
        } else if (a[i] < b[j]) {
            ++i;
        } else {
            ++j;
        }
    }
    size_t uni = a.size() + b.size() - inter;
    return uni == 0 ? 0.0 : static_cast<double>(inter) / uni;
}

double lsh_candidate_probability(double s, LshShape shape) {
    return 1.0 - std::pow(1.0 - std::pow(s, shape.rows), shape.bands);
}

LshShape optimal_lsh_shape(double threshold, int num_perm, double fp_weight, double fn_weight) {
    auto integrate = [](auto f, double lo, double hi) {
        const int steps = 200;
        double h = (hi - lo) / steps, sum = 0;
        for (int i = 0; i < steps; ++i)
            sum += f(lo + (i + 0.5) * h);
        return sum * h;
    };
    LshShape best{1, num_perm};
    double best_err = std::numeric_limits<double>::infinity();
    for (int b = 1; b <= num_perm; ++b) {
        for (int r = 1; r <= num_perm / b; ++r) {
            LshShape sh{b, r};
            double fp = integrate([&](double s) { return lsh_candidate_probability(s, sh); }, 0.0,
                                  threshold);
            double fn = integrate([&](double s) { return 1.0 - lsh_candidate_probability(s, sh); },
                                  threshold, 1.0);
            double err = fp * fp_weight + fn * fn_weight;
            if (err < best_err) {
                best_err = err;
                best = sh;
            }
        }
    }
    return best;
}

LshIndex::LshIndex(LshShape shape, int num_perm)
    : shape_(shape), num_perm_(num_perm), tables_(shape.bands), next_(shape.bands) {}

uint64_t LshIndex::band_key(const uint32_t* sig, int band) const {
    return xxh64(sig + static_cast<size_t>(band) * shape_.rows, sizeof(uint32_t) * shape_.rows,
                 static_cast<uint64_t>(band));
}

void LshIndex::insert(const uint32_t* sig, uint32_t handle) {
    MF_CHECK(handle == n_, "LshIndex::insert: handles must be dense (got %u, expected %zu)", handle,
             n_);
    for (int band = 0; band < shape_.bands; ++band) {
        uint32_t& head = tables_[band][band_key(sig, band)];
        next_[band].push_back(head);
        head = handle + 1;
    }
    ++n_;
}

void LshIndex::query(const uint32_t* sig, std::vector<uint32_t>* out) const {
    out->clear();
    for (int band = 0; band < shape_.bands; ++band) {
        auto it = tables_[band].find(band_key(sig, band));
        if (it == tables_[band].end()) continue;
        for (uint32_t h = it->second; h != 0; h = next_[band][h - 1])
            out->push_back(h - 1);
    }
    std::sort(out->begin(), out->end());
    out->erase(std::unique(out->begin(), out->end()), out->end());
}

}  // namespace mf::curate
