#!/usr/bin/python3
"""Independent numpy reference for medforge's sentence encoders (src/model/text_encoder.cpp).

Reads a sentence-transformers folder by itself (config.json, model.safetensors parsed with json +
np.frombuffer, modules.json / 1_Pooling/config.json) and runs the BERT or MPNet forward pass, mean
(or cls / max) pooling and L2 normalisation for each sequence ALONE (no padding), in float64.

    text_encoder_ref.py MODEL_DIR IDS_JSON OUT_JSON

IDS_JSON: {"ids": [[101, 7592, 102], ...]} (token ids with the special tokens).
OUT_JSON: {"embeddings": [[...], ...]}.
Needs only Debian's python3-numpy.
"""
import json
import math
import os
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64,
          "I32": np.int32}


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        if info["dtype"] == "BF16":
            raw = np.frombuffer(data[base + b:base + e], dtype=np.uint16).astype(np.uint32) << 16
            arr = raw.view(np.float32)
        else:
            arr = np.frombuffer(data[base + b:base + e], dtype=DTYPES[info["dtype"]])
        out[name] = arr.reshape(info["shape"]).astype(np.float64)
    return out


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def erf(x):
    # math.erf elementwise (exact GELU)
    return np.vectorize(math.erf)(x)


def gelu(x):
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def linear(x, W, name):
    return x @ W[name + ".weight"].T + W[name + ".bias"]


def softmax(s):
    s = s - s.max(-1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(-1, keepdims=True)


def attention(x, q, k, v, heads, bias):
    T, H = x.shape
    d = H // heads
    qh = q.reshape(T, heads, d).transpose(1, 0, 2)
    kh = k.reshape(T, heads, d).transpose(1, 0, 2)
    vh = v.reshape(T, heads, d).transpose(1, 0, 2)
    s = qh @ kh.transpose(0, 2, 1) / math.sqrt(d)
    if bias is not None:
        s = s + bias
    ctx = softmax(s) @ vh  # heads, T, d
    return ctx.transpose(1, 0, 2).reshape(T, H)


def mpnet_bucket(rel, num_buckets=32, max_distance=128):
    # MPNet's bidirectional relative position bucket, with the float32 arithmetic of the
    # original (torch) implementation for the logarithmic part.
    n = -rel
    num_buckets //= 2
    ret = (n < 0).astype(np.int64) * num_buckets
    n = np.abs(n)
    max_exact = num_buckets // 2
    small = n < max_exact
    with np.errstate(divide="ignore"):
        lg = np.log(n.astype(np.float32) / np.float32(max_exact))
    large = lg / np.float32(math.log(max_distance / max_exact)) * np.float32(num_buckets - max_exact)
    large = max_exact + np.where(small, 0, large).astype(np.int64)
    large = np.minimum(large, num_buckets - 1)
    return ret + np.where(small, n, large)


def tensor(W, prefix, name):
    return W[prefix + name]


def encode(ids, W, cfg, prefix):
    arch = cfg["model_type"]
    heads = cfg["num_attention_heads"]
    L = cfg["num_hidden_layers"]
    T = len(ids)
    ids = np.array(ids, dtype=np.int64)
    P = {k[len(prefix):]: v for k, v in W.items() if k.startswith(prefix)}
    if arch == "bert":
        eps = cfg.get("layer_norm_eps", 1e-12)
        x = (P["embeddings.word_embeddings.weight"][ids]
             + P["embeddings.token_type_embeddings.weight"][0]
             + P["embeddings.position_embeddings.weight"][np.arange(T)])
        x = layer_norm(x, P["embeddings.LayerNorm.weight"], P["embeddings.LayerNorm.bias"], eps)
        for i in range(L):
            p = "encoder.layer.%d." % i
            q = linear(x, P, p + "attention.self.query")
            k = linear(x, P, p + "attention.self.key")
            v = linear(x, P, p + "attention.self.value")
            a = linear(attention(x, q, k, v, heads, None), P, p + "attention.output.dense")
            x = layer_norm(a + x, P[p + "attention.output.LayerNorm.weight"],
                           P[p + "attention.output.LayerNorm.bias"], eps)
            h = gelu(linear(x, P, p + "intermediate.dense"))
            x = layer_norm(linear(h, P, p + "output.dense") + x, P[p + "output.LayerNorm.weight"],
                           P[p + "output.LayerNorm.bias"], eps)
        return x
    if arch == "mpnet":
        eps = cfg.get("layer_norm_eps", 1e-5)
        pad = cfg.get("pad_token_id", 1)
        # no padding here: positions pad+1 .. pad+T (a pad id inside the text keeps pad)
        real = (ids != pad).astype(np.int64)
        pos = np.cumsum(real) * real + pad
        x = P["embeddings.word_embeddings.weight"][ids] + P["embeddings.position_embeddings.weight"][pos]
        x = layer_norm(x, P["embeddings.LayerNorm.weight"], P["embeddings.LayerNorm.bias"], eps)
        rel = np.arange(T)[None, :] - np.arange(T)[:, None]
        bucket = mpnet_bucket(rel)
        bias = P["encoder.relative_attention_bias.weight"][bucket].transpose(2, 0, 1)  # heads,T,T
        for i in range(L):
            p = "encoder.layer.%d." % i
            q = linear(x, P, p + "attention.attn.q")
            k = linear(x, P, p + "attention.attn.k")
            v = linear(x, P, p + "attention.attn.v")
            a = linear(attention(x, q, k, v, heads, bias), P, p + "attention.attn.o")
            x = layer_norm(a + x, P[p + "attention.LayerNorm.weight"],
                           P[p + "attention.LayerNorm.bias"], eps)
            h = gelu(linear(x, P, p + "intermediate.dense"))
            x = layer_norm(linear(h, P, p + "output.dense") + x, P[p + "output.LayerNorm.weight"],
                           P[p + "output.LayerNorm.bias"], eps)
        return x
    raise SystemExit("unsupported model_type %r" % arch)


def main():
    model_dir, ids_path, out_path = sys.argv[1:4]
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    W = load_safetensors(os.path.join(model_dir, "model.safetensors"))
    prefix = ""
    if "embeddings.word_embeddings.weight" not in W:
        prefix = cfg["model_type"] + "."
    pooling, normalize = "mean", True
    mpath = os.path.join(model_dir, "modules.json")
    if os.path.exists(mpath):
        with open(mpath) as f:
            modules = json.load(f)
        normalize = any(m["type"].endswith("Normalize") for m in modules)
        for m in modules:
            if m["type"].endswith("Pooling"):
                with open(os.path.join(model_dir, m["path"], "config.json")) as f:
                    pc = json.load(f)
                if pc.get("pooling_mode_cls_token"):
                    pooling = "cls"
                elif pc.get("pooling_mode_max_tokens"):
                    pooling = "max"
    with open(ids_path) as f:
        seqs = json.load(f)["ids"]
    out = []
    for ids in seqs:
        h = encode(ids, W, cfg, prefix)
        if pooling == "mean":
            e = h.mean(0)
        elif pooling == "cls":
            e = h[0]
        else:
            e = h.max(0)
        if normalize:
            e = e / max(np.linalg.norm(e), 1e-12)
        out.append([float(v) for v in e])
    with open(out_path, "w") as f:
        json.dump({"embeddings": out}, f)


if __name__ == "__main__":
    main()
