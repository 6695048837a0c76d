#include "model/clip.h"

#include <cmath>

#include "model/kernels.h"

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

void ClipAttentionImpl::fuse_qkv() {
    auto& wq = q_proj->weight;
    auto& wk = k_proj->weight;
    auto& wv = v_proj->weight;
    auto& bq = q_proj->bias;
    auto& bk = k_proj->bias;
    auto& bv = v_proj->bias;
    auto at = [](const torch::Tensor& t, const torch::Tensor& base, int64_t row) {
        return t.data_ptr() == static_cast<char*>(base.data_ptr()) +
                                   row * base.stride(0) * base.element_size() &&
               t.scalar_type() == base.scalar_type();
    };
    const int64_t H = wq.size(0);
    if (qkv_w_.defined() && at(wq, qkv_w_, 0) && at(wk, qkv_w_, H) && at(wv, qkv_w_, 2 * H) &&
        at(bq, qkv_b_, 0) && at(bk, qkv_b_, H) && at(bv, qkv_b_, 2 * H))
        return;
    torch::NoGradGuard ng;
    qkv_w_ = torch::cat({wq, wk, wv}, 0);
    qkv_b_ = torch::cat({bq, bk, bv}, 0);
    wq.set_data(qkv_w_.narrow(0, 0, H));
    wk.set_data(qkv_w_.narrow(0, H, H));
    wv.set_data(qkv_w_.narrow(0, 2 * H, H));
    bq.set_data(qkv_b_.narrow(0, 0, H));
    bk.set_data(qkv_b_.narrow(0, H, H));
    bv.set_data(qkv_b_.narrow(0, 2 * H, H));
}

torch::Tensor ClipAttentionImpl::forward(const torch::Tensor& x) {
    const int64_t B = x.size(0), N = x.size(1), H = x.size(2);
    if (x.scalar_type() == torch::kBFloat16 && !torch::GradMode::is_enabled()) {
        // One GEMM for q/k/v, contiguous heads, and a fused scale + fp32 softmax + bf16 pass.
        fuse_qkv();
        auto qkv = torch::linear(x, qkv_w_, qkv_b_);  // [B, N, 3H]
        auto t = qkv.view({B, N, 3, heads, head_dim}).permute({2, 0, 3, 1, 4}).contiguous();
        auto scores = torch::matmul(t[0], t[1].transpose(-1, -2));  // [B, h, N, N]
        softmax_scaled_(scores, 1.0 / std::sqrt(double(head_dim)));
        auto o = torch::matmul(scores, t[2]).transpose(1, 2).reshape({B, N, H});
        return out_proj(o);
    }
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

namespace {
torch::Tensor apply_ln(const torch::nn::LayerNorm& ln, const torch::Tensor& x) {
    return mf::model::layer_norm(x, ln->weight, ln->bias, ln->options.eps());
}
}  // namespace

torch::Tensor ClipLayerImpl::forward(const torch::Tensor& x) {
    auto h = x + self_attn(apply_ln(layer_norm1, x));
    return h + mlp(apply_ln(layer_norm2, h));
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
    auto h = apply_ln(vm->pre_layrnorm, vm->embeddings(pixels));
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
