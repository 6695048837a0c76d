// HashingEmbedder: a real, model-free lexical sentence embedder (the "hashing trick").
//
// A text is normalised with normalize_caption() (lower-case, punctuation -> space), split into
// words, and every word unigram and adjacent-word bigram is hashed (xxh64, seeded) to one of
// `dim` buckets with a hashed sign (+1/-1). Bucket weights are sublinear term frequencies
// (1 + ln tf, bigrams weighted 0.5), and the vector is L2-normalised. The cosine of two
// embeddings approximates the cosine of their (unigram+bigram) bag-of-words vectors, so it finds
// reworded copies with the same vocabulary, not paraphrases: use a model embedder
// (all-mpnet-base-v2, the paper's choice) for that. An empty text embeds to the zero vector
// (semantic dedup skips it).
#pragma once

#include <cstdint>

#include "curate/embedder.h"

namespace mf::curate {

class HashingEmbedder : public Embedder {
  public:
    explicit HashingEmbedder(int dim = 512, uint64_t seed = 0x68617368ULL);
    std::string name() const override;
    int dim() const override { return dim_; }
    // Thread-safe.
    Result<std::vector<float>> embed(std::span<const std::string> texts) const override;
    // One text into out[0..dim).
    void embed_one(std::string_view text, float* out) const;

  private:
    int dim_;
    uint64_t seed_;
};

}  // namespace mf::curate
