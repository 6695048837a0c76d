// Qwen2 / LLaMA decoder-only transformer (pre-norm, RMSNorm, RoPE rotate-half, GQA, SwiGLU).
//
// Parameters are named as in the Hugging Face checkpoints of Qwen2ForCausalLM / LlamaForCausalLM:
//   model.embed_tokens.weight                       [V, H]
//   model.layers.{i}.self_attn.{q,k,v}_proj.weight  [nH*D | kvH*D, H]  (+ .bias for Qwen2)
//   model.layers.{i}.self_attn.o_proj.weight        [H, nH*D]
//   model.layers.{i}.mlp.{gate,up}_proj.weight      [I, H];  mlp.down_proj.weight [H, I]
//   model.layers.{i}.{input,post_attention}_layernorm.weight [H]
//   model.norm.weight [H];  lm_head.weight [V, H] (absent when tie_word_embeddings)
#pragma once

#include <torch/torch.h>

#include "model/config.h"

namespace mf::model {

// Keys/values of past positions: per layer [B, kvH, capacity, D]; `length` positions are filled.
struct KVCache {
    std::vector<torch::Tensor> k, v;
    int64_t length = 0;
    int64_t capacity = 0;
    static KVCache create(const TextConfig& c, int64_t batch, int64_t capacity, torch::Dtype dtype);
    void reset() { length = 0; }
};

// Rotary tables for positions [T] -> cos, sin [T, D] (float32, rotate-half layout).
std::pair<torch::Tensor, torch::Tensor> rope_tables(const torch::Tensor& positions,
                                                    int64_t head_dim, double theta);

// softmax(q k^T / sqrt(D) + causal) v with grouped KV heads.
//   q [B, nH, T, D]; k, v [B, kvH, S, D]; query t sits at absolute position q_offset + t and sees
//   keys 0 .. q_offset + t. `pad_mask` optional [B, S] bool (true = key is padding).
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        int64_t q_offset, const torch::Tensor& pad_mask = {});
// Loop-per-head reference of the same (slow; for tests).
torch::Tensor attention_naive(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, int64_t q_offset);

class RMSNormImpl : public torch::nn::Module {
  public:
    RMSNormImpl(int64_t n, double eps);
    torch::Tensor forward(const torch::Tensor& x);
    torch::Tensor weight;
    double eps;
};
TORCH_MODULE(RMSNorm);

class DecoderAttentionImpl : public torch::nn::Module {
  public:
    explicit DecoderAttentionImpl(const TextConfig& c);
    // x [B, T, H]; cos/sin [T, D]; cache slot `layer` of `cache` (may be null): keys of x are
    // written at positions cache->length .. +T.
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos,
                          const torch::Tensor& sin, KVCache* cache, int64_t layer,
                          const torch::Tensor& pad_mask);
    torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
    int64_t n_heads, n_kv, head_dim;
};
TORCH_MODULE(DecoderAttention);

class DecoderMlpImpl : public torch::nn::Module {
  public:
    explicit DecoderMlpImpl(const TextConfig& c);
    torch::Tensor forward(const torch::Tensor& x);
    torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(DecoderMlp);

class DecoderLayerImpl : public torch::nn::Module {
  public:
    explicit DecoderLayerImpl(const TextConfig& c);
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos,
                          const torch::Tensor& sin, KVCache* cache, int64_t layer,
                          const torch::Tensor& pad_mask);
    DecoderAttention self_attn{nullptr};
    DecoderMlp mlp{nullptr};
    RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(DecoderLayer);

class DecoderBodyImpl : public torch::nn::Module {
  public:
    explicit DecoderBodyImpl(const TextConfig& c);
    torch::nn::Embedding embed_tokens{nullptr};
    torch::nn::ModuleList layers{nullptr};
    RMSNorm norm{nullptr};
};
TORCH_MODULE(DecoderBody);

// The causal LM: "model.*" + "lm_head".
class CausalLMImpl : public torch::nn::Module {
  public:
    explicit CausalLMImpl(const TextConfig& c);

    // ids [B, T] int64 -> embeddings [B, T, H]
    torch::Tensor embed(const torch::Tensor& ids);
    // Runs the layers over `embeds` [B, T, H] placed after the cache's filled positions (or at 0
    // without a cache); advances the cache. Returns the final-normed hidden states [B, T, H].
    torch::Tensor forward_hidden(const torch::Tensor& embeds, KVCache* cache,
                                 const torch::Tensor& pad_mask = {});
    // One new position for each of B independent sequences (continuous batching): `embeds`
    // [B, 1, H]; `caches[b]` is sequence b's own cache (batch 1, any filled length). The
    // projections and MLPs run batched over B (weights read once per step); attention and RoPE
    // use each sequence's own position and cache. Advances every cache by one. Equals B separate
    // forward_hidden calls. Returns the final-normed hidden states [B, 1, H].
    torch::Tensor forward_step_batched(const torch::Tensor& embeds,
                                       const std::vector<KVCache*>& caches);
    // The prefills of B independent sequences in one forward, packed (no padding): `embeds[b]`
    // [1, T_b, H] is sequence b's new positions, placed after the filled positions of its own
    // cache `caches[b]` (batch 1; must not be null). The projections and MLPs run once over all
    // N = sum T_b positions (weights read once); RoPE and causal attention use each sequence's own
    // positions and cache. Advances cache b by T_b. Equals B separate forward_hidden calls.
    // Returns the final-normed hidden states [1, N, H], sequence b at rows sum_{c<b} T_c ...
    torch::Tensor forward_prefill_packed(const std::vector<torch::Tensor>& embeds,
                                         const std::vector<KVCache*>& caches);
    // hidden [.., H] -> logits [.., V] (float32)
    torch::Tensor logits(const torch::Tensor& hidden);

    const TextConfig& config() const { return cfg_; }
    DecoderBody model{nullptr};
    torch::nn::Linear lm_head{nullptr};  // null when tied

  private:
    TextConfig cfg_;
};
TORCH_MODULE(CausalLM);

}  // namespace mf::model
