// Karpathy's llama2.c checkpoint format: reader, naive fp32 reference forward (as run.c computes
// it), its tokenizer, and conversion to a Hugging Face LLaMA checkpoint. Plain C++, no torch.
//
// Model file (the "legacy" export, the one run.c reads):
//   7 x int32 header: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
//   (vocab_size < 0 means the classifier is NOT shared with the embedding), then fp32 weights:
//   token_embedding [vocab, dim], rms_att [L, dim], wq [L, dim, dim], wk [L, kv_dim, dim],
//   wv [L, kv_dim, dim], wo [L, dim, dim], rms_ffn [L, dim], w1 [L, hidden, dim],
//   w2 [L, dim, hidden], w3 [L, hidden, dim], rms_final [dim],
//   freq_cis_real + freq_cis_imag [seq_len, head_size/2] each (unused, skipped),
//   wcls [vocab, dim] only when unshared. Matrices are row-major [out, in] like torch Linear.
//   The "ak42" version-1/2 exports are not supported (clear error).
//
// Tokenizer file (tokenizer.bin): int32 max_token_length, then per token: f32 score, int32 len,
// len bytes. Pieces hold spaces (not U+2581); <s>/</s> are stored as "\n<s>\n"/"\n</s>\n";
// ids 3..258 are the byte tokens <0x00>..<0xFF>.
//
// RoPE: llama2.c rotates interleaved pairs (x[2i], x[2i+1]) of each head; HF LLaMA rotates
// (x[i], x[i + head_dim/2]) ("rotate_half"). The converter permutes the rows of wq and wk per
// head (new row j*hd/2 + i = old row 2i + j), the permutation of HF's
// convert_llama_weights_to_hf.py, so that the HF model computes the same function.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace mf::model::llama2c {

struct Config {
    int32_t dim = 0;
    int32_t hidden_dim = 0;
    int32_t n_layers = 0;
    int32_t n_heads = 0;
    int32_t n_kv_heads = 0;
    int32_t vocab_size = 0;  // always positive here; see shared_classifier
    int32_t seq_len = 0;
    bool shared_classifier = true;
    int32_t head_size() const { return dim / n_heads; }
    int32_t kv_dim() const { return head_size() * n_kv_heads; }
};

// All weights as fp32, each a span into `data` (the file's float payload).
struct Model {
    Config config;
    std::vector<float> data;
    std::span<const float> token_embedding;  // [vocab, dim]
    std::span<const float> rms_att;          // [L, dim]
    std::span<const float> wq;               // [L, dim, dim]
    std::span<const float> wk;               // [L, kv_dim, dim]
    std::span<const float> wv;               // [L, kv_dim, dim]
    std::span<const float> wo;               // [L, dim, dim]
    std::span<const float> rms_ffn;          // [L, dim]
    std::span<const float> w1;               // [L, hidden, dim]
    std::span<const float> w2;               // [L, dim, hidden]
    std::span<const float> w3;               // [L, hidden, dim]
    std::span<const float> rms_final;        // [dim]
    std::span<const float> wcls;             // [vocab, dim] (== token_embedding when shared)
};

// Reads and validates a llama2.c model file: header ranges, the exact file size the header
// implies, finite weights. Errors name the file.
Result<Model> load_model(const std::filesystem::path& path);
// Parses a header (first 28 bytes); `origin` names the file in errors.
Result<Config> parse_header(std::span<const uint8_t> bytes, std::string_view origin);

// llama2.c's tokenizer with its own encode algorithm (run.c): dummy-prefix space, one token per
// UTF-8 code point (byte fallback <0xXX> = byte + 3), then repeatedly merge the adjacent pair whose
// concatenation is a vocab piece of highest score (leftmost on ties).
class Tokenizer {
  public:
    static constexpr int kUnk = 0, kBos = 1, kEos = 2, kFirstByte = 3;

    // `vocab_size` is the model's (the file holds exactly that many tokens).
    static Result<Tokenizer> load(const std::filesystem::path& path, int32_t vocab_size);

    std::vector<int32_t> encode(std::string_view text, bool bos, bool eos) const;
    // The bytes token `token` adds after `prev` (run.c's decode: a leading space is dropped after
    // BOS; <0xXX> becomes the raw byte).
    std::string decode_piece(int32_t prev, int32_t token) const;
    // Decodes a sequence (without a leading BOS): pieces concatenated as run.c prints them.
    std::string decode(std::span<const int32_t> ids) const;

    int32_t size() const { return static_cast<int32_t>(pieces_.size()); }
    const std::string& piece(int32_t id) const { return pieces_[id]; }
    float score(int32_t id) const { return scores_[id]; }
    int32_t max_token_length() const { return max_token_length_; }
    // Id of an exact piece, or -1.
    int32_t find(std::string_view piece) const;

  private:
    std::vector<std::string> pieces_;
    std::vector<float> scores_;
    std::vector<int32_t> sorted_;  // ids sorted by piece, for lookup
    int32_t max_token_length_ = 0;
};

// The naive fp32 forward of run.c, one token at a time with a KV cache.
class Runner {
  public:
    explicit Runner(const Model& m);
    // Logits [vocab] for `token` at position `pos` (0 <= pos < seq_len, positions in order).
    std::vector<float> forward(int32_t token, int32_t pos);

  private:
    const Model& m_;
    std::vector<float> key_cache_, value_cache_;  // [L, seq_len, kv_dim]
};

// Greedy (argmax) continuation of `prompt` (non-empty, usually {BOS}) for `steps` new tokens,
// stopping early when the model emits BOS (as run.c does) or at seq_len. Returns the new tokens.
std::vector<int32_t> generate_greedy(const Model& m, std::span<const int32_t> prompt, int steps);

// ---- conversion to Hugging Face LLaMA -----------------------------------------------------------

// Rows of a [n_heads * head_size, cols] projection permuted from interleaved-pair RoPE order to
// rotate_half order: out row (h, j*hs/2 + i) = in row (h, 2i + j).
std::vector<float> permute_rope_rows(std::span<const float> w, int32_t n_heads, int32_t head_size,
                                     int32_t cols);

// tokenizer.json (HF tokenizers: BPE with byte_fallback; see docs/model.md for how merges come
// from the scores), tokenizer_config.json and special_tokens_map.json texts.
Result<std::string> hf_tokenizer_json(const Tokenizer& tok);
std::string hf_tokenizer_config_json(const Config& c);
std::string hf_special_tokens_map_json();
// config.json (LlamaForCausalLM) and generation_config.json.
std::string hf_config_json(const Config& c);
std::string hf_generation_config_json();

struct ConvertReport {
    Config config;
    int64_t n_params = 0;
    int64_t n_tensors = 0;
    int64_t n_merges = 0;
    std::vector<std::string> files;  // written, relative to the output folder
};

// Writes config.json, generation_config.json, model.safetensors (fp32, HF names; lm_head.weight
// only when the classifier is unshared, else tie_word_embeddings), tokenizer.json,
// tokenizer_config.json and special_tokens_map.json into `out_dir` (created; existing files of
// these names are replaced).
Status convert_to_hf(const std::filesystem::path& model_path,
                     const std::filesystem::path& tokenizer_path,
                     const std::filesystem::path& out_dir, ConvertReport* report = nullptr);

}  // namespace mf::model::llama2c
