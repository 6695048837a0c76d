// TransformerEmbedder: the curate::Embedder backed by a sentence-transformers model (BERT /
// MPNet, model/text_encoder.h). It lives in cli because curate must not depend on the model
// engine; `medforge dedup --embedder DIR` and the build config key dedup.embedder load it.
#pragma once

#include <filesystem>
#include <memory>

#include "curate/embedder.h"
#include "model/text_encoder.h"

namespace mf::cli {

class TransformerEmbedder : public curate::Embedder {
  public:
    // Loads `dir` and sets torch's thread count (threads <= 0: all cores).
    static Result<std::shared_ptr<TransformerEmbedder>> load(const std::filesystem::path& dir,
                                                             int64_t batch_size = 32,
                                                             int threads = 0);
    // "<arch>:<folder name>:<hidden size>" (dedup.json; must agree across shards).
    std::string name() const override;
    int dim() const override { return encoder_->dim(); }
    // L2-normalised rows; a text that is empty or only whitespace gets the zero row (semantic
    // dedup skips it), as with the hashing embedder.
    Result<std::vector<float>> embed(std::span<const std::string> texts) const override;
    const model::TextEncoder& encoder() const { return *encoder_; }

  private:
    explicit TransformerEmbedder(std::unique_ptr<model::TextEncoder> e) : encoder_(std::move(e)) {}
    std::unique_ptr<model::TextEncoder> encoder_;
};

}  // namespace mf::cli
