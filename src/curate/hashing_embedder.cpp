#include "curate/hashing_embedder.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "core/hash.h"
#include "curate/minhash.h"

namespace mf::curate {

HashingEmbedder::HashingEmbedder(int dim, uint64_t seed) : dim_(std::max(1, dim)), seed_(seed) {}

std::string HashingEmbedder::name() const {
    return fmt::format("hashing-bow-{}", dim_);
}

void HashingEmbedder::embed_one(std::string_view text, float* out) const {
    std::fill(out, out + dim_, 0.0f);
    std::string norm = normalize_caption(text);
    std::vector<uint64_t> words;
    size_t i = 0;
    while (i < norm.size()) {
        size_t j = norm.find(' ', i);
        if (j == std::string::npos) j = norm.size();
        if (j > i) words.push_back(xxh64(std::string_view(norm).substr(i, j - i), seed_));
        i = j + 1;
    }
    // feature hash -> (count, weight)
    std::unordered_map<uint64_t, std::pair<int, float>> tf;
    for (size_t w = 0; w < words.size(); ++w) {
        auto& u = tf[words[w]];
        ++u.first;
        u.second = 1.0f;
        if (w + 1 < words.size()) {
            uint64_t pair[2] = {words[w], words[w + 1]};
            auto& bg = tf[xxh64(pair, sizeof(pair), seed_ ^ 0xb16a4aULL)];
            ++bg.first;
            bg.second = 0.5f;
        }
    }
    // Deterministic accumulation order: sort the features.
    std::vector<std::pair<uint64_t, std::pair<int, float>>> feats(tf.begin(), tf.end());
    std::sort(feats.begin(), feats.end(),
              [](const auto& x, const auto& y) { return x.first < y.first; });
    for (const auto& [h, cw] : feats) {
        uint64_t m = xxh64(&h, sizeof(h), seed_ + 1);
        size_t bucket = m % static_cast<uint64_t>(dim_);
        float sign = (m >> 63) ? -1.0f : 1.0f;
        out[bucket] += sign * cw.second * (1.0f + std::log(static_cast<float>(cw.first)));
    }
    double norm2 = 0;
    for (int d = 0; d < dim_; ++d)
        norm2 += static_cast<double>(out[d]) * out[d];
    if (norm2 > 0) {
        float inv = static_cast<float>(1.0 / std::sqrt(norm2));
        for (int d = 0; d < dim_; ++d)
            out[d] *= inv;
    }
}

Result<std::vector<float>> HashingEmbedder::embed(std::span<const std::string> texts) const {
    std::vector<float> out(texts.size() * static_cast<size_t>(dim_));
    for (size_t t = 0; t < texts.size(); ++t)
        embed_one(texts[t], out.data() + t * dim_);
    return out;
}

}  // namespace mf::curate
