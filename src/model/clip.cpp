#include "model/clip.h"

#include <cmath>

namespace mf::model {

namespace F = torch::nn::functional;

namespace {
torch::nn::Linear linear(int64_t in, int64_t out) {
    return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(true));
}
torch::nn::LayerNorm layer_norm(int64_t n, double eps) {
    return torch::nn::LayerNorm(torch::nn::LayerNormOptions({n}).eps(eps));
}
}  // namespace

ClipAttentionImpl::ClipAttentionImpl(const VisionConfig& c)
    : heads(c.num_attention_heads), head_dim(c.hidden_size / c.num_attention_heads) {
    k_proj = register_module("k_proj", linear(c.hidden_size, c.hidden_size));
    v_proj = register_module("v_proj", linear(c.hidden_size, c.hidden_size));
    q_proj = register_module("q_proj", linear(c.hidden_size, c.hidden_size));
    out_proj = register_module("out_proj", linear(c.hidden_size, c.hidden_size));
}

torch::Tensor ClipAttentionImpl::forward(const torch::Tensor& x) {
    const int64_t B = x.size(0), N = x.size(1), H = x.size(2);
    auto q = q_proj(x).view({B, N, heads, head_dim}).transpose(1, 2);  // [B, h, N, d]
    auto k = k_proj(x).view({B, N, heads, head_dim}).transpose(1, 2);
    auto v = v_proj(x).view({B, N, heads, head_dim}).transpose(1, 2);
    auto scores = torch::matmul(q, k.transpose(-1, -2)).mul_(1.0 / std::sqrt(double(head_dim)));
    // float32 softmax (float64 stays float64, for the gradient checks)
    const auto acc = x.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    auto probs = torch::softmax(scores.to(acc), -1).to(x.scalar_type());  // [B,h,N,N]
    auto o = torch::matmul(probs, v).transpose(1, 2).reshape({B, N, H});
    return out_proj(o);
}

ClipMlpImpl::ClipMlpImpl(const VisionConfig& c) : quick_gelu(c.hidden_act == "quick_gelu") {
    fc1 = register_module("fc1", linear(c.hidden_size, c.intermediate_size));
    fc2 = register_module("fc2", linear(c.intermediate_size, c.hidden_size));
}

torch::Tensor ClipMlpImpl::forward(const torch::Tensor& x) {
    auto h = fc1(x);
    h = quick_gelu ? h * torch::sigmoid(1.702 * h) : F::gelu(h);
    return fc2(h);
}

ClipLayerImpl::ClipLayerImpl(const VisionConfig& c) {
    self_attn = register_module("self_attn", ClipAttention(c));
    layer_norm1 = register_module("layer_norm1", layer_norm(c.hidden_size, c.layer_norm_eps));
    mlp = register_module("mlp", ClipMlp(c));
    layer_norm2 = register_module("layer_norm2", layer_norm(c.hidden_size, c.layer_norm_eps));
}

torch::Tensor ClipLayerImpl::forward(const torch::Tensor& x) {
    auto h = x + self_attn(layer_norm1(x));
    return h + mlp(layer_norm2(h));
}

ClipEmbeddingsImpl::ClipEmbeddingsImpl(const VisionConfig& c) {
    class_embedding = register_parameter("class_embedding", torch::randn({c.hidden_size}));
    patch_embedding = register_module(
        "patch_embedding",
        torch::nn::Conv2d(torch::nn::Conv2dOptions(c.num_channels, c.hidden_size, c.patch_size)
                              .stride(c.patch_size)
                              .bias(false)));
    position_embedding = register_module("position_embedding",
                                         torch::nn::Embedding(c.num_patches() + 1, c.hidden_size));
}

torch::Tensor ClipEmbeddingsImpl::forward(const torch::Tensor& pixels) {
    const int64_t B = pixels.size(0);
    auto p = patch_embedding(pixels.to(patch_embedding->weight.scalar_type()));  // [B, H, g, g]
    p = p.flatten(2).transpose(1, 2);                                            // [B, N, H]
    auto cls = class_embedding.view({1, 1, -1}).expand({B, 1, p.size(2)});
    auto x = torch::cat({cls, p}, 1);  // [B, N+1, H]
    return x + position_embedding->weight.unsqueeze(0);
}

ClipEncoderImpl::ClipEncoderImpl(const VisionConfig& c) {
    layers = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.num_hidden_layers; ++i)
        layers->push_back(ClipLayer(c));
}

ClipVisionTransformerImpl::ClipVisionTransformerImpl(const VisionConfig& c) {
    embeddings = register_module("embeddings", ClipEmbeddings(c));
    pre_layrnorm = register_module("pre_layrnorm", layer_norm(c.hidden_size, c.layer_norm_eps));
    encoder = register_module("encoder", ClipEncoder(c));
    post_layernorm = register_module("post_layernorm", layer_norm(c.hidden_size, c.layer_norm_eps));
}

ClipVisionImpl::ClipVisionImpl(const VisionConfig& c) : cfg_(c) {
    vision_model = register_module("vision_model", ClipVisionTransformer(c));
}

torch::Tensor ClipVisionImpl::hidden_state(const torch::Tensor& pixels, int64_t k) {
    auto& vm = vision_model;
    auto h = vm->pre_layrnorm(vm->embeddings(pixels));
    int64_t i = 0;
    for (auto& m : *vm->encoder->layers) {
        if (i++ >= k) break;
        h = m->as<ClipLayer>()->forward(h);
    }
    return h;
}

torch::Tensor ClipVisionImpl::pooled(const torch::Tensor& pixels) {
    auto h = hidden_state(pixels, cfg_.num_hidden_layers);
    return vision_model->post_layernorm(h.select(1, 0));
}

}  // namespace mf::model
