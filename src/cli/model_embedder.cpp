#include "cli/model_embedder.h"

#include <fmt/core.h>

#include <cmath>
#include <thread>

namespace mf::cli {

Result<std::shared_ptr<TransformerEmbedder>> TransformerEmbedder::load(
    const std::filesystem::path& dir, int64_t batch_size, int threads) {
    int n = threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency());
    torch::set_num_threads(std::max(1, n));
    model::TextEncoderOptions o;
    o.batch_size = batch_size;
    o.batch_independent = true;  // batch-independent rows: sharded dedup == one process
    auto e = model::TextEncoder::load(dir, o);
    if (!e.ok()) return e.status().with_context("embedder " + dir.string());
    return std::shared_ptr<TransformerEmbedder>(new TransformerEmbedder(std::move(e).value()));
}

std::string TransformerEmbedder::name() const {
    return fmt::format("{}:{}", encoder_->name(), encoder_->dim());
}

Result<std::vector<float>> TransformerEmbedder::embed(std::span<const std::string> texts) const {
    const size_t H = static_cast<size_t>(dim());
    std::vector<float> out(texts.size() * H, 0.f);
    std::vector<std::string> todo;
    std::vector<size_t> where;
    for (size_t i = 0; i < texts.size(); ++i) {
        if (texts[i].find_first_not_of(" \t\r\n\f\v") == std::string::npos) continue;
        todo.push_back(texts[i]);
        where.push_back(i);
    }
    if (todo.empty()) return out;
    MF_ASSIGN_OR_RETURN(std::vector<float> emb, encoder_->embed(todo));
    for (size_t r = 0; r < where.size(); ++r) {
        const float* src = emb.data() + r * H;
        float* dst = out.data() + where[r] * H;
        double norm = 0;
        for (size_t k = 0; k < H; ++k)
            norm += static_cast<double>(src[k]) * src[k];
        // The Embedder contract wants unit rows even when the model has no Normalize module.
        double inv = norm > 0 ? 1.0 / std::sqrt(norm) : 0.0;
        for (size_t k = 0; k < H; ++k)
            dst[k] = static_cast<float>(src[k] * inv);
    }
    return out;
}

}  // namespace mf::cli
