// Sentence-embedding interface for semantic dedup. curate does not depend on libtorch: the
// model-backed embedder (all-mpnet-base-v2 and friends) lives in the model library and the CLI
// plugs it in. Tests use a deterministic embedder.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "core/status.h"

namespace mf::curate {

class Embedder {
  public:
    virtual ~Embedder() = default;
    virtual std::string name() const = 0;
    virtual int dim() const = 0;
    // Embeds texts into a row-major (texts.size() x dim()) matrix of L2-normalised rows.
    virtual Result<std::vector<float>> embed(std::span<const std::string> texts) const = 0;
};

}  // namespace mf::curate
