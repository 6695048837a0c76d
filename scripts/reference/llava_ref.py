#!/usr/bin/python3
"""Independent numpy (float64) reference of medforge's model engine, for parity tests.

Reads a Hugging Face checkpoint folder (config.json + model.safetensors) written in any of the
layouts medforge loads (Qwen2ForCausalLM, LlamaForCausalLM, LlavaQwen2ForCausalLM,
LlavaLlamaForCausalLM, LlavaForConditionalGeneration) and computes the logits of every position of a
prompt. Written from the published model definitions (transformers' modeling_qwen2 / modeling_llama
/ modeling_clip and LLaVA's llava_arch), not from medforge's code.

  llava_ref.py MODEL_DIR INPUT.json OUT.f32
INPUT.json: {"ids": [...], "pixels": "file of float32 [N,3,S,S]" or null, "n_images": N}
ids may contain -200: one image's patch embeddings go there. OUT.f32: float32 logits [T, V].
Needs Debian's python3-numpy.
"""
import json
import math
import struct
import sys

import numpy as np

IMAGE_MARKER = -200


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, en = e["data_offsets"]
        raw = data[base + b:base + en]
        dt = e["dtype"]
        if dt == "F32":
            a = np.frombuffer(raw, dtype="<f4")
        elif dt == "F16":
            a = np.frombuffer(raw, dtype="<f2")
        elif dt == "BF16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            a = u.view(np.float32)
        else:
            raise SystemExit("unsupported dtype " + dt)
        out[name] = a.astype(np.float64).reshape(e["shape"])
    return out


def load_weights(model_dir):
    import os
    idx = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(idx):
        files = sorted(set(json.load(open(idx))["weight_map"].values()))
        w = {}
        for f in files:
            w.update(load_safetensors(os.path.join(model_dir, f)))
        return w
    return load_safetensors(os.path.join(model_dir, "model.safetensors"))


def rms_norm(x, w, eps):
    return w * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps))


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


_erf = np.vectorize(math.erf)


def gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def linear(x, W, prefix, bias=True):
    y = x @ W[prefix + ".weight"].T
    if bias and (prefix + ".bias") in W:
        y = y + W[prefix + ".bias"]
    return y


def decoder_logits(W, pre, head, tc, x):
    """x: [T, H] input embeddings -> logits [T, V]. pre: 'model.' prefix for layers."""
    H = tc["hidden_size"]
    nH = tc["num_attention_heads"]
    kvH = tc.get("num_key_value_heads", nH)
    D = tc.get("head_dim", H // nH)
    eps = tc.get("rms_norm_eps", 1e-6)
    theta = tc.get("rope_theta", 10000.0)
    T = x.shape[0]
    pos = np.arange(T, dtype=np.float64)
    inv = 1.0 / (theta ** (np.arange(0, D, 2, dtype=np.float64) / D))
    ang = np.outer(pos, inv)  # [T, D/2]
    cos = np.cos(np.concatenate([ang, ang], -1))
    sin = np.sin(np.concatenate([ang, ang], -1))

    def rope(q):  # [heads, T, D]
        half = D // 2
        rot = np.concatenate([-q[..., half:], q[..., :half]], -1)
        return q * cos + rot * sin

    L = tc["num_hidden_layers"]
    for i in range(L):
        p = f"{pre}layers.{i}."
        h = rms_norm(x, W[p + "input_layernorm.weight"], eps)
        q = linear(h, W, p + "self_attn.q_proj").reshape(T, nH, D).transpose(1, 0, 2)
        k = linear(h, W, p + "self_attn.k_proj").reshape(T, kvH, D).transpose(1, 0, 2)
        v = linear(h, W, p + "self_attn.v_proj").reshape(T, kvH, D).transpose(1, 0, 2)
        q, k = rope(q), rope(k)
        out = np.zeros((nH, T, D))
        mask = np.triu(np.ones((T, T), dtype=bool), 1)
        for hh in range(nH):
            kk = hh // (nH // kvH)
            s = q[hh] @ k[kk].T / math.sqrt(D)
            s[mask] = -np.inf
            out[hh] = softmax(s) @ v[kk]
        o = out.transpose(1, 0, 2).reshape(T, nH * D)
        x = x + linear(o, W, p + "self_attn.o_proj", bias=False)
        h = rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
        g = linear(h, W, p + "mlp.gate_proj", bias=False)
        u = linear(h, W, p + "mlp.up_proj", bias=False)
        x = x + linear(g / (1.0 + np.exp(-g)) * u, W, p + "mlp.down_proj", bias=False)
    x = rms_norm(x, W[pre + "norm.weight"], eps)
    if head in W:
        return x @ W[head].T
    return x @ W[pre + "embed_tokens.weight"].T  # tied


def clip_hidden(W, pre, vc, pixels, k):
    """pixels [N,3,S,S] -> hidden_states[k] [N, P+1, Hv] (HF numbering)."""
    Hv = vc["hidden_size"]
    P = vc["patch_size"]
    heads = vc["num_attention_heads"]
    eps = vc.get("layer_norm_eps", 1e-5)
    act = vc.get("hidden_act", "quick_gelu")
    N, C, S, _ = pixels.shape
    g = S // P
    conv = W[pre + "embeddings.patch_embedding.weight"].reshape(Hv, -1)  # [Hv, C*P*P]
    outs = []
    for n in range(N):
        patches = pixels[n].reshape(C, g, P, g, P).transpose(1, 3, 0, 2, 4).reshape(g * g, C * P * P)
        e = patches @ conv.T  # [g*g, Hv]
        e = np.concatenate([W[pre + "embeddings.class_embedding"][None, :], e], 0)
        e = e + W[pre + "embeddings.position_embedding.weight"]
        x = layer_norm(e, W[pre + "pre_layrnorm.weight"], W[pre + "pre_layrnorm.bias"], eps)
        T = x.shape[0]
        d = Hv // heads
        for i in range(k):
            p = f"{pre}encoder.layers.{i}."
            h = layer_norm(x, W[p + "layer_norm1.weight"], W[p + "layer_norm1.bias"], eps)
            q = linear(h, W, p + "self_attn.q_proj").reshape(T, heads, d).transpose(1, 0, 2)
            kk = linear(h, W, p + "self_attn.k_proj").reshape(T, heads, d).transpose(1, 0, 2)
            v = linear(h, W, p + "self_attn.v_proj").reshape(T, heads, d).transpose(1, 0, 2)
            a = softmax(q @ kk.transpose(0, 2, 1) / math.sqrt(d)) @ v
            x = x + linear(a.transpose(1, 0, 2).reshape(T, Hv), W, p + "self_attn.out_proj")
            h = layer_norm(x, W[p + "layer_norm2.weight"], W[p + "layer_norm2.bias"], eps)
            h = linear(h, W, p + "mlp.fc1")
            h = h / (1.0 + np.exp(-1.702 * h)) if act == "quick_gelu" else gelu(h)
            x = x + linear(h, W, p + "mlp.fc2")
        outs.append(x)
    return np.stack(outs)


def main():
    model_dir, inp, outp = sys.argv[1:4]
    cfg = json.load(open(model_dir + "/config.json"))
    req = json.load(open(inp))
    W = load_weights(model_dir)
    arch = cfg["architectures"][0]
    if arch == "LlavaForConditionalGeneration":
        tc, vc = cfg["text_config"], cfg["vision_config"]
        pre, head = "language_model.model.", "language_model.lm_head.weight"
        vpre, proj = "vision_tower.vision_model.", ["multi_modal_projector.linear_1", "multi_modal_projector.linear_2"]
        sel = cfg.get("vision_feature_layer", -2)
        drop_cls = cfg.get("vision_feature_select_strategy", "default") == "default"
    else:
        tc, vc = cfg, cfg.get("vision_config")
        pre, head = "model.", "lm_head.weight"
        vpre, proj = "model.vision_tower.vision_tower.vision_model.", ["model.mm_projector.0", "model.mm_projector.2"]
        sel = cfg.get("mm_vision_select_layer", -2)
        drop_cls = cfg.get("mm_vision_select_feature", "patch") == "patch"
    image_embeds = None
    if req.get("pixels"):
        S = vc["image_size"]
        N = req["n_images"]
        px = np.fromfile(req["pixels"], dtype="<f4").astype(np.float64).reshape(N, 3, S, S)
        L = vc["num_hidden_layers"]
        k = L + 1 + sel if sel < 0 else sel
        f = clip_hidden(W, vpre, vc, px, k)
        if drop_cls:
            f = f[:, 1:, :]
        h = linear(f, W, proj[0])
        image_embeds = linear(gelu(h), W, proj[1])
    emb = W[pre + "embed_tokens.weight"]
    rows = []
    img = 0
    for t in req["ids"]:
        if t == IMAGE_MARKER:
            rows.extend(list(image_embeds[img]))
            img += 1
        else:
            rows.append(emb[t])
    x = np.stack(rows)
    logits = decoder_logits(W, pre, head, tc, x)
    logits.astype("<f4").tofile(outp)


if __name__ == "__main__":
    main()
