// CLIP vision transformer (ViT, pre-LN, quick-GELU, class + learned position embeddings), named as
// in openai/clip-vit-large-patch14-336 (CLIPVisionModel):
//   vision_model.embeddings.class_embedding                 [H]
//   vision_model.embeddings.patch_embedding.weight          [H, 3, P, P]   (no bias)
//   vision_model.embeddings.position_embedding.weight       [N+1, H]
//   vision_model.pre_layrnorm.{weight,bias}                 [H]            (sic: "layrnorm")
//   vision_model.encoder.layers.{i}.self_attn.{q,k,v,out}_proj.{weight,bias}
//   vision_model.encoder.layers.{i}.layer_norm{1,2}.{weight,bias}
//   vision_model.encoder.layers.{i}.mlp.fc{1,2}.{weight,bias}
//   vision_model.post_layernorm.{weight,bias}
#pragma once

#include <torch/torch.h>

#include "model/config.h"

namespace mf::model {

class ClipAttentionImpl : public torch::nn::Module {
  public:
    explicit ClipAttentionImpl(const VisionConfig& c);
    torch::Tensor forward(const torch::Tensor& x);  // [B, N, H] -> [B, N, H]
    torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
    int64_t heads, head_dim;

  private:
    // Inference in bf16 runs q/k/v as one GEMM: the three weights (and biases) become views of one
    // [3H, H] tensor, so in-place updates (loading, optimizer steps) still reach it; replacing a
    // parameter's data (to(), huge-page arena) is detected and the fused tensor rebuilt.
    void fuse_qkv();
    torch::Tensor qkv_w_, qkv_b_;
};
TORCH_MODULE(ClipAttention);

class ClipMlpImpl : public torch::nn::Module {
  public:
    explicit ClipMlpImpl(const VisionConfig& c);
    torch::Tensor forward(const torch::Tensor& x);
    torch::nn::Linear fc1{nullptr}, fc2{nullptr};
    bool quick_gelu;
};
TORCH_MODULE(ClipMlp);

class ClipLayerImpl : public torch::nn::Module {
  public:
    explicit ClipLayerImpl(const VisionConfig& c);
    torch::Tensor forward(const torch::Tensor& x);
    ClipAttention self_attn{nullptr};
    ClipMlp mlp{nullptr};
    torch::nn::LayerNorm layer_norm1{nullptr}, layer_norm2{nullptr};
};
TORCH_MODULE(ClipLayer);

class ClipEmbeddingsImpl : public torch::nn::Module {
  public:
    explicit ClipEmbeddingsImpl(const VisionConfig& c);
    torch::Tensor forward(const torch::Tensor& pixels);  // [B, 3, S, S] -> [B, N+1, H]
    torch::Tensor class_embedding;
    torch::nn::Conv2d patch_embedding{nullptr};
    torch::nn::Embedding position_embedding{nullptr};
};
TORCH_MODULE(ClipEmbeddings);

class ClipEncoderImpl : public torch::nn::Module {
  public:
    explicit ClipEncoderImpl(const VisionConfig& c);
    torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(ClipEncoder);

class ClipVisionTransformerImpl : public torch::nn::Module {
  public:
    explicit ClipVisionTransformerImpl(const VisionConfig& c);
    ClipEmbeddings embeddings{nullptr};
    torch::nn::LayerNorm pre_layrnorm{nullptr};
    ClipEncoder encoder{nullptr};
    torch::nn::LayerNorm post_layernorm{nullptr};
};
TORCH_MODULE(ClipVisionTransformer);

// "vision_model.*"
class ClipVisionImpl : public torch::nn::Module {
  public:
    explicit ClipVisionImpl(const VisionConfig& c);
    // hidden_states[k] as HF numbers them (0 = embeddings after pre-LN, k = after layer k); only
    // the layers up to k run. pixels [B, 3, S, S] -> [B, N+1, H].
    torch::Tensor hidden_state(const torch::Tensor& pixels, int64_t k);
    // pooled output (CLS after post_layernorm) [B, H], for linear probes.
    torch::Tensor pooled(const torch::Tensor& pixels);
    const VisionConfig& config() const { return cfg_; }
    ClipVisionTransformer vision_model{nullptr};

  private:
    VisionConfig cfg_;
};
TORCH_MODULE(ClipVision);

}  // namespace mf::model
