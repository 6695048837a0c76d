// Sentence encoders in the sentence-transformers layout: BERT (all-MiniLM-L6-v2) and MPNet
// (all-mpnet-base-v2), for semantic dedup. See docs/embedder.md.
//
// A checkpoint folder holds config.json (model_type "bert" | "mpnet"), model.safetensors (tensor
// names as Hugging Face BertModel / MPNetModel write them, with or without a "bert." / "mpnet."
// prefix), the tokenizer (vocab.txt and/or tokenizer.json, tokenizer_config.json), modules.json,
// 1_Pooling/config.json, optionally 2_Normalize, and sentence_bert_config.json (max_seq_length).
//
// Forward pass (fp32 by default), as transformers computes it:
//   BERT   x = LN(word[id] + position[i] + token_type[0]); per layer:
//          x = LN(x + attention.output.dense(softmax(QK^T/sqrt(d) + mask) V))
//          x = LN(x + output.dense(gelu(intermediate.dense(x))))        (gelu: exact, erf)
//   MPNet  position ids: padding_idx + cumsum(id != pad) for real tokens, padding_idx for pads;
//          x = LN(word[id] + position[pos]); every layer adds the shared relative position bias
//          relative_attention_bias[bucket(j - i)] (32 bidirectional buckets, max distance 128,
//          the float32 log formula of transformers' MPNet) to its attention scores;
//          x = LN(x + attn.o(...)), then the same feed-forward as BERT.
// Pooling: mean of the token states over the attention mask (or CLS / max when 1_Pooling says
// so), then L2 normalisation when modules.json has a Normalize module.
// Batching: texts are tokenised (truncated to max_seq_length tokens including [CLS]/[SEP]),
// sorted by length, cut into batches of `batch_size`, padded per batch, and the rows are put
// back in input order.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "model/config.h"
#include "model/weights.h"

namespace mf::model {

struct TextEncoderConfig {
    Arch arch = Arch::kBert;  // kBert or kMpnet
    int64_t vocab_size = 0;
    int64_t hidden_size = 0;
    int64_t num_hidden_layers = 0;
    int64_t num_attention_heads = 0;
    int64_t intermediate_size = 0;
    int64_t max_position_embeddings = 512;
    int64_t type_vocab_size = 2;                  // BERT only
    int64_t pad_token_id = 0;                     // MPNet: 1 (also its position padding_idx)
    int64_t relative_attention_num_buckets = 32;  // MPNet only
    double layer_norm_eps = 1e-12;
    std::string hidden_act = "gelu";
};

// config.json of a BertModel / MPNetModel. A missing or mistyped key names itself.
Result<TextEncoderConfig> parse_text_encoder_config(std::string_view json_text,
                                                    std::string_view origin);
// config.json in the transformers layout for `c`.
std::string text_encoder_config_json(const TextEncoderConfig& c);

// ---- modules: parameter names are the Hugging Face ones ----------------------------------------

namespace detail {
struct BertEmbeddings;
struct BertLayer;
struct MpnetEmbeddings;
struct MpnetLayer;
}  // namespace detail

// BertModel without the pooler: embeddings.*, encoder.layer.{i}.*.
class BertEncoderImpl : public torch::nn::Module {
  public:
    explicit BertEncoderImpl(const TextEncoderConfig& c);
    // ids, mask: [B, T] int64 (mask 1 = token, 0 = padding); returns the last hidden states
    // [B, T, H].
    torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& mask);
    // One GEMM per sequence (rows independent of the batch; see TextEncoderOptions).
    void set_per_sequence(bool on) { per_sequence_ = on; }

  private:
    TextEncoderConfig c_;
    bool per_sequence_ = false;
    std::shared_ptr<detail::BertEmbeddings> embeddings_;
    std::vector<std::shared_ptr<detail::BertLayer>> layers_;
};
TORCH_MODULE(BertEncoder);

// MPNetModel without the pooler: embeddings.*, encoder.layer.{i}.*,
// encoder.relative_attention_bias.weight.
class MpnetEncoderImpl : public torch::nn::Module {
  public:
    explicit MpnetEncoderImpl(const TextEncoderConfig& c);
    torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& mask);
    void set_per_sequence(bool on) { per_sequence_ = on; }

  private:
    TextEncoderConfig c_;
    bool per_sequence_ = false;
    std::shared_ptr<detail::MpnetEmbeddings> embeddings_;
    std::vector<std::shared_ptr<detail::MpnetLayer>> layers_;
    torch::nn::Embedding rel_bias_{nullptr};
};
TORCH_MODULE(MpnetEncoder);

// transformers' MPNet relative_position_bucket (bidirectional): relative position (key - query)
// -> bucket in [0, num_buckets). Computed with the same float32 torch ops.
torch::Tensor mpnet_relative_position_bucket(const torch::Tensor& relative_position,
                                             int64_t num_buckets = 32, int64_t max_distance = 128);

// ---- tokenizer ----------------------------------------------------------------------------------

// What the encoder needs from a tokenizer. The internal implementation (load_text_tokenizer) is a
// BERT WordPiece; io's tokenizer can be wrapped in this interface instead.
class TextTokenizer {
  public:
    virtual ~TextTokenizer() = default;
    // Ids without special tokens.
    virtual std::vector<int32_t> encode(std::string_view text) const = 0;
    virtual int32_t cls_id() const = 0;  // [CLS] / <s>
    virtual int32_t sep_id() const = 0;  // [SEP] / </s>
    virtual int32_t pad_id() const = 0;  // [PAD] / <pad>
    virtual size_t vocab_size() const = 0;
};

// BERT WordPiece from `dir`/vocab.txt (or tokenizer.json's model.vocab when there is no
// vocab.txt), lower-casing per tokenizer_config.json's do_lower_case (default true). Special
// tokens: tokenizer_config.json's cls/sep/pad/unk_token, else [CLS] [SEP] [PAD] [UNK] or
// <s> </s> <pad> <unk>, whichever the vocabulary has. Basic tokenizer: drop NUL/U+FFFD/control
// characters, whitespace -> space, spaces around CJK ideographs, lower-case and strip accents
// (NFD, drop Mn), split on whitespace and punctuation (Unicode P* and ASCII symbols); then greedy
// longest-match-first with "##" continuations, a word over 100 characters or with an unmatched
// rest -> [UNK].
Result<std::unique_ptr<TextTokenizer>> load_text_tokenizer(const std::filesystem::path& dir);
// The same from a vocab.txt text (tests).
Result<std::unique_ptr<TextTokenizer>> wordpiece_from_vocab(std::string_view vocab_txt,
                                                            bool lowercase,
                                                            std::string_view origin);

// ---- the sentence encoder -----------------------------------------------------------------------

enum class Pooling { kMean, kCls, kMax };

struct TextEncoderOptions {
    int64_t batch_size = 32;
    torch::Dtype dtype = torch::kFloat32;
    torch::Device device = torch::kCPU;
    int64_t max_seq_length = 0;  // 0 = sentence_bert_config.json (else 384 mpnet / 256 bert)
    // false: sort by length, cut into batches of batch_size, pad each to its longest (as
    // sentence-transformers); a row then depends on its batch at float-rounding level (BLAS picks
    // kernels by the GEMM shape). true: every text is padded to its own length rounded up to a
    // multiple of 8, a batch holds texts of one such length only, and it always has batch_size
    // rows (the unused ones repeat a text): every GEMM of a length has one shape, so a text's
    // embedding does not depend on the other texts (bit for bit on a given machine; tested), as
    // sharded dedup needs for shard + merge == one process.
    bool batch_independent = false;
};

class TextEncoder {
  public:
    // Loads a sentence-transformers folder. Every tensor must be present with the right shape (a
    // missing one is named in the error).
    static Result<std::unique_ptr<TextEncoder>> load(const std::filesystem::path& dir,
                                                     const TextEncoderOptions& opt = {});

    const TextEncoderConfig& config() const { return cfg_; }
    int dim() const { return static_cast<int>(cfg_.hidden_size); }
    int64_t max_seq_length() const { return max_seq_length_; }
    bool normalize() const { return normalize_; }
    Pooling pooling() const { return pooling_; }
    const TextTokenizer& tokenizer() const { return *tok_; }
    const std::filesystem::path& dir() const { return dir_; }
    // "mpnet:<dir name>"
    std::string name() const;

    // Token ids with [CLS]/[SEP], truncated to max_seq_length.
    std::vector<int32_t> tokenize(std::string_view text) const;
    // Row-major texts.size() x dim() embeddings.
    Result<std::vector<float>> embed(std::span<const std::string> texts) const;
    // The same from token ids (each already with its special tokens).
    Result<std::vector<float>> embed_ids(std::span<const std::vector<int32_t>> ids) const;
    // One padded batch: ids/mask [B, T] -> pooled (and normalised) [B, H] float32 on CPU.
    torch::Tensor forward_batch(const torch::Tensor& ids, const torch::Tensor& mask) const;

  private:
    TextEncoder() = default;
    TextEncoderConfig cfg_;
    TextEncoderOptions opt_;
    std::filesystem::path dir_;
    int64_t max_seq_length_ = 256;
    bool normalize_ = true;
    Pooling pooling_ = Pooling::kMean;
    std::unique_ptr<TextTokenizer> tok_;
    std::shared_ptr<torch::nn::Module> module_;  // BertEncoderImpl or MpnetEncoderImpl
};

// Random sentence-transformers checkpoint: config.json, model.safetensors, modules.json,
// 1_Pooling/config.json, 2_Normalize/, sentence_bert_config.json,
// config_sentence_transformers.json, vocab.txt (a generated WordPiece vocabulary: specials,
// characters, common English and medical words and pieces), tokenizer.json, tokenizer_config.json,
// special_tokens_map.json. size: "tiny" (2 layers, hidden 32), "minilm" (all-MiniLM-L6-v2 shape: 6
// layers, 384), "base" (all-mpnet-base-v2 shape: 12 layers, 768).
Status init_text_encoder(Arch arch, std::string_view size, const std::filesystem::path& out,
                         uint64_t seed = 0);
// The generated vocabulary (one token per element; id = index) for `arch`.
std::vector<std::string> generated_wordpiece_vocab(Arch arch);

}  // namespace mf::model
