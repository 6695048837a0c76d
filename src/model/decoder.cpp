#include "model/decoder.h"

#include <cmath>
#include <limits>

#include "model/fast_decode.h"
#include "model/kernels.h"

namespace mf::model {

namespace F = torch::nn::functional;

KVCache KVCache::create(const TextConfig& c, int64_t batch, int64_t capacity, torch::Dtype dtype) {
    KVCache kv;
    kv.capacity = capacity;
    auto opts = torch::TensorOptions().dtype(dtype);
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
        kv.k.push_back(torch::zeros({batch, c.num_key_value_heads, capacity, c.head_dim}, opts));
        kv.v.push_back(torch::zeros({batch, c.num_key_value_heads, capacity, c.head_dim}, opts));
    }
    return kv;
}

std::pair<torch::Tensor, torch::Tensor> rope_tables(const torch::Tensor& positions,
                                                    int64_t head_dim, double theta) {
    // inv_freq[i] = theta^(-2i/D), i < D/2 (float32 as in HF)
    auto idx = torch::arange(0, head_dim, 2, torch::kInt64).to(torch::kFloat32);
    auto inv_freq = 1.0 / torch::pow(torch::tensor(theta, torch::kFloat32), idx / double(head_dim));
    auto freqs = torch::outer(positions.to(torch::kFloat32), inv_freq);  // [T, D/2]
    auto emb = torch::cat({freqs, freqs}, -1);                           // [T, D]
    return {emb.cos(), emb.sin()};
}

namespace {
// A Linear module's product through the dispatching kernel (model/kernels.h).
torch::Tensor lin(const torch::nn::Linear& l, const torch::Tensor& x) {
    return mf::model::linear(x, l->weight, l->bias);
}

torch::Tensor rotate_half(const torch::Tensor& x) {
    int64_t h = x.size(-1) / 2;
    return torch::cat({-x.narrow(-1, h, h), x.narrow(-1, 0, h)}, -1);
}
// x [B, heads, T, D]; cos/sin [T, D] float32 -> x's dtype (as HF does).
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos,
                         const torch::Tensor& sin) {
    auto c = cos.to(x.scalar_type());
    auto s = sin.to(x.scalar_type());
    return x * c + rotate_half(x) * s;
}
}  // namespace

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        int64_t q_offset, const torch::Tensor& pad_mask) {
    // q [B, nH, T, D], k/v [B, kvH, S, D]
    const int64_t B = q.size(0), nH = q.size(1), T = q.size(2), D = q.size(3);
    const int64_t kvH = k.size(1), S = k.size(2), rep = nH / kvH;
    const double scale = 1.0 / std::sqrt(double(D));
    // Group the query heads that share a KV head: [B, kvH, rep*T, D] (a view, no copy).
    auto qg = q.reshape({B, kvH, rep * T, D});
    auto scores = torch::matmul(qg, k.transpose(-1, -2)).mul_(scale);  // [B, kvH, rep*T, S]
    // float32 softmax (float64 stays float64, for the gradient checks)
    const auto acc = q.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    scores = scores.view({B, kvH, rep, T, S}).to(acc);
    if (T > 1 || q_offset + T < S) {
        // key s is visible from query t iff s <= q_offset + t
        auto tpos = torch::arange(T, torch::kInt64).unsqueeze(1) + q_offset;  // [T, 1]
        auto spos = torch::arange(S, torch::kInt64).unsqueeze(0);             // [1, S]
        auto masked = spos > tpos;                                            // [T, S]
        scores.masked_fill_(masked, -std::numeric_limits<float>::infinity());
    }
    if (pad_mask.defined())
        scores.masked_fill_(pad_mask.view({B, 1, 1, 1, S}),
                            -std::numeric_limits<float>::infinity());
    auto probs = torch::softmax(scores, -1).to(q.scalar_type());    // [B, kvH, rep, T, S]
    auto out = torch::matmul(probs.view({B, kvH, rep * T, S}), v);  // [B, kvH, rep*T, D]
    return out.view({B, nH, T, D});
}

torch::Tensor attention_naive(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, int64_t q_offset) {
    const int64_t B = q.size(0), nH = q.size(1), T = q.size(2), D = q.size(3);
    const int64_t kvH = k.size(1), S = k.size(2), rep = nH / kvH;
    auto out = torch::zeros_like(q, torch::kFloat32);
    auto qf = q.to(torch::kFloat32), kf = k.to(torch::kFloat32), vf = v.to(torch::kFloat32);
    auto qa = qf.accessor<float, 4>();
    auto ka = kf.accessor<float, 4>();
    auto va = vf.accessor<float, 4>();
    auto oa = out.accessor<float, 4>();
    std::vector<double> w(S);
    for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < nH; ++h) {
            int64_t kh = h / rep;
            for (int64_t t = 0; t < T; ++t) {
                int64_t last = std::min<int64_t>(S - 1, q_offset + t);
                double mx = -1e300;
                for (int64_t s = 0; s <= last; ++s) {
                    double dot = 0;
                    for (int64_t d = 0; d < D; ++d)
                        dot += double(qa[b][h][t][d]) * ka[b][kh][s][d];
                    w[s] = dot / std::sqrt(double(D));
                    mx = std::max(mx, w[s]);
                }
                double sum = 0;
                for (int64_t s = 0; s <= last; ++s)
                    sum += (w[s] = std::exp(w[s] - mx));
                for (int64_t d = 0; d < D; ++d) {
                    double acc = 0;
                    for (int64_t s = 0; s <= last; ++s)
                        acc += w[s] / sum * va[b][kh][s][d];
                    oa[b][h][t][d] = float(acc);
                }
            }
        }
    return out.to(q.scalar_type());
}

RMSNormImpl::RMSNormImpl(int64_t n, double e) : eps(e) {
    weight = register_parameter("weight", torch::ones({n}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
    auto xf = x.to(x.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32);
    auto var = xf.pow(2).mean(-1, /*keepdim=*/true);
    auto y = (xf * torch::rsqrt(var + eps)).to(x.scalar_type());
    return weight * y;
}

DecoderAttentionImpl::DecoderAttentionImpl(const TextConfig& c)
    : n_heads(c.num_attention_heads), n_kv(c.num_key_value_heads), head_dim(c.head_dim) {
    auto lin = [&](int64_t in, int64_t out, bool bias) {
        return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
    };
    q_proj = register_module("q_proj", lin(c.hidden_size, n_heads * head_dim, c.attention_bias));
    k_proj = register_module("k_proj", lin(c.hidden_size, n_kv * head_dim, c.attention_bias));
    v_proj = register_module("v_proj", lin(c.hidden_size, n_kv * head_dim, c.attention_bias));
    o_proj = register_module("o_proj", lin(n_heads * head_dim, c.hidden_size, false));
}

torch::Tensor DecoderAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                            const torch::Tensor& sin, KVCache* cache, int64_t layer,
                                            const torch::Tensor& pad_mask) {
    const int64_t B = x.size(0), T = x.size(1);
    auto q = lin(q_proj, x).view({B, T, n_heads, head_dim}).transpose(1, 2);  // [B, nH, T, D]
    auto k = lin(k_proj, x).view({B, T, n_kv, head_dim}).transpose(1, 2);     // [B, kvH, T, D]
    auto v = lin(v_proj, x).view({B, T, n_kv, head_dim}).transpose(1, 2);     // [B, kvH, T, D]
    q = apply_rope(q, cos, sin);
    k = apply_rope(k, cos, sin);
    int64_t offset = 0;
    if (cache) {
        offset = cache->length;
        cache->k[layer].narrow(2, offset, T).copy_(k);
        cache->v[layer].narrow(2, offset, T).copy_(v);
        k = cache->k[layer].narrow(2, 0, offset + T);  // [B, kvH, S, D]
        v = cache->v[layer].narrow(2, 0, offset + T);
    }
    auto o = attention(q.contiguous(), k, v, offset, pad_mask);  // [B, nH, T, D]
    return lin(o_proj, o.transpose(1, 2).reshape({B, T, n_heads * head_dim}));
}

DecoderMlpImpl::DecoderMlpImpl(const TextConfig& c) {
    auto lin = [](int64_t in, int64_t out) {
        return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
    };
    gate_proj = register_module("gate_proj", lin(c.hidden_size, c.intermediate_size));
    up_proj = register_module("up_proj", lin(c.hidden_size, c.intermediate_size));
    down_proj = register_module("down_proj", lin(c.intermediate_size, c.hidden_size));
}

torch::Tensor DecoderMlpImpl::forward(const torch::Tensor& x) {
    return lin(down_proj, mf::model::silu_mul(lin(gate_proj, x), lin(up_proj, x)));
}

DecoderLayerImpl::DecoderLayerImpl(const TextConfig& c) {
    self_attn = register_module("self_attn", DecoderAttention(c));
    mlp = register_module("mlp", DecoderMlp(c));
    input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
    post_attention_layernorm =
        register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                        const torch::Tensor& sin, KVCache* cache, int64_t layer,
                                        const torch::Tensor& pad_mask) {
    auto h = x + self_attn(input_layernorm(x), cos, sin, cache, layer, pad_mask);
    return h + mlp(post_attention_layernorm(h));
}

DecoderBodyImpl::DecoderBodyImpl(const TextConfig& c) {
    embed_tokens =
        register_module("embed_tokens", torch::nn::Embedding(c.vocab_size, c.hidden_size));
    layers = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.num_hidden_layers; ++i)
        layers->push_back(DecoderLayer(c));
    norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

CausalLMImpl::CausalLMImpl(const TextConfig& c) : cfg_(c) {
    model = register_module("model", DecoderBody(c));
    if (!c.tie_word_embeddings)
        lm_head = register_module(
            "lm_head",
            torch::nn::Linear(torch::nn::LinearOptions(c.hidden_size, c.vocab_size).bias(false)));
}

torch::Tensor CausalLMImpl::embed(const torch::Tensor& ids) {
    return model->embed_tokens(ids);
}

torch::Tensor CausalLMImpl::forward_hidden(const torch::Tensor& embeds, KVCache* cache,
                                           const torch::Tensor& pad_mask) {
    const int64_t T = embeds.size(1);
    const int64_t start = cache ? cache->length : 0;
    TORCH_CHECK(!cache || start + T <= cache->capacity, "KV cache full: ", start + T, " > ",
                cache ? cache->capacity : 0);
    if (fast_decode_eligible(*this, embeds, cache, pad_mask))
        return fast_decode_step(*this, embeds, *cache);
    auto pos = torch::arange(start, start + T, torch::kInt64);
    auto [cos, sin] = rope_tables(pos, cfg_.head_dim, cfg_.rope_theta);
    torch::Tensor h = embeds;
    int64_t i = 0;
    for (auto& m : *model->layers) {
        h = m->as<DecoderLayer>()->forward(h, cos, sin, cache, i, pad_mask);
        ++i;
    }
    if (cache) cache->length += T;
    return model->norm(h);
}

torch::Tensor CausalLMImpl::forward_step_batched(const torch::Tensor& embeds,
                                                 const std::vector<KVCache*>& caches) {
    const int64_t B = embeds.size(0);
    TORCH_CHECK(embeds.dim() == 3 && embeds.size(1) == 1, "forward_step_batched takes [B, 1, H]");
    TORCH_CHECK(static_cast<int64_t>(caches.size()) == B, "one cache per sequence");
    if (fast_decode_batch_eligible(*this, embeds, caches))
        return fast_decode_step_batched(*this, embeds, caches);
    // One new position per sequence is a packed prefill of B one-token prompts.
    std::vector<torch::Tensor> rows;
    rows.reserve(B);
    for (int64_t b = 0; b < B; ++b)
        rows.push_back(embeds.narrow(0, b, 1));
    return forward_prefill_packed(rows, caches).reshape({B, 1, embeds.size(2)});
}

torch::Tensor CausalLMImpl::forward_prefill_packed(const std::vector<torch::Tensor>& embeds,
                                                   const std::vector<KVCache*>& caches) {
    const size_t B = embeds.size();
    TORCH_CHECK(B > 0 && caches.size() == B, "forward_prefill_packed: one cache per sequence");
    std::vector<int64_t> lens(B), starts(B), pos;
    for (size_t b = 0; b < B; ++b) {
        TORCH_CHECK(embeds[b].dim() == 3 && embeds[b].size(0) == 1,
                    "forward_prefill_packed takes [1, T, H] per sequence");
        TORCH_CHECK(caches[b], "forward_prefill_packed needs a cache per sequence");
        lens[b] = embeds[b].size(1);
        starts[b] = caches[b]->length;
        TORCH_CHECK(starts[b] + lens[b] <= caches[b]->capacity,
                    "KV cache full: ", starts[b] + lens[b], " > ", caches[b]->capacity);
        for (int64_t t = 0; t < lens[b]; ++t)
            pos.push_back(starts[b] + t);
    }
    const int64_t N = static_cast<int64_t>(pos.size());
    auto [cos, sin] =
        rope_tables(torch::tensor(pos, torch::kInt64), cfg_.head_dim, cfg_.rope_theta);  // [N, D]
    torch::Tensor h = B == 1 ? embeds[0] : torch::cat(embeds, 1);  // [1, N, H]
    int64_t li = 0;
    for (auto& m : *model->layers) {
        auto layer = m->as<DecoderLayer>();
        auto& at = *layer->self_attn;
        const int64_t nH = at.n_heads, kvH = at.n_kv, D = at.head_dim;
        auto x = layer->input_layernorm(h);
        auto q = lin(at.q_proj, x).view({1, N, nH, D}).transpose(1, 2);  // [1, nH, N, D]
        auto k = lin(at.k_proj, x).view({1, N, kvH, D}).transpose(1, 2);
        auto v = lin(at.v_proj, x).view({1, N, kvH, D}).transpose(1, 2);
        q = apply_rope(q, cos, sin);
        k = apply_rope(k, cos, sin);
        std::vector<torch::Tensor> outs;
        outs.reserve(B);
        int64_t row = 0;
        for (size_t b = 0; b < B; ++b) {
            KVCache& kv = *caches[b];
            const int64_t off = starts[b], T = lens[b];
            kv.k[li].narrow(2, off, T).copy_(k.narrow(2, row, T));
            kv.v[li].narrow(2, off, T).copy_(v.narrow(2, row, T));
            outs.push_back(attention(q.narrow(2, row, T).contiguous(),
                                     kv.k[li].narrow(2, 0, off + T), kv.v[li].narrow(2, 0, off + T),
                                     off));
            row += T;
        }
        auto o = B == 1 ? outs[0] : torch::cat(outs, 2);  // [1, nH, N, D]
        h = h + lin(at.o_proj, o.transpose(1, 2).reshape({1, N, nH * D}));
        h = h + layer->mlp(layer->post_attention_layernorm(h));
        ++li;
    }
    for (size_t b = 0; b < B; ++b)
        caches[b]->length += lens[b];
    return model->norm(h);
}

torch::Tensor CausalLMImpl::logits(const torch::Tensor& hidden) {
    torch::Tensor w = lm_head ? lm_head->weight : model->embed_tokens->weight;
    return mf::model::linear(hidden, w, {}, /*float_out=*/true);
}

}  // namespace mf::model
