#include "model/text_encoder.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <utf8proc.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <unordered_map>

#include "io/file.h"
#include "io/safetensors.h"

namespace mf::model {

namespace fs = std::filesystem;
using json = nlohmann::json;

// ---- config -------------------------------------------------------------------------------------

Result<TextEncoderConfig> parse_text_encoder_config(std::string_view text,
                                                    std::string_view origin_sv) {
    std::string origin(origin_sv);
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return Status::invalid_argument(fmt::format("{}: not a JSON object", origin));
    TextEncoderConfig c;
    std::string mt;
    if (j.contains("model_type") && j["model_type"].is_string())
        mt = j["model_type"].get<std::string>();
    std::string archs;
    if (j.contains("architectures") && j["architectures"].is_array() &&
        !j["architectures"].empty() && j["architectures"][0].is_string())
        archs = j["architectures"][0].get<std::string>();
    if (mt == "bert" || archs.starts_with("Bert")) {
        c.arch = Arch::kBert;
    } else if (mt == "mpnet" || archs.starts_with("MPNet")) {
        c.arch = Arch::kMpnet;
        c.pad_token_id = 1;
        c.layer_norm_eps = 1e-5;
        c.max_position_embeddings = 514;
    } else {
        return Status::unsupported(fmt::format(
            "{}: model_type '{}' / architecture '{}' is not a sentence encoder medforge runs "
            "(bert, mpnet)",
            origin, mt, archs));
    }
    auto int_key = [&](const char* key, int64_t& out, bool required, int64_t min) -> Status {
        if (!j.contains(key) || j[key].is_null()) {
            if (required)
                return Status::invalid_argument(fmt::format("{}: {}: missing", origin, key));
            return Status::ok_status();
        }
        if (!j[key].is_number_integer())
            return Status::invalid_argument(
                fmt::format("{}: {}: expected an integer, got {}", origin, key, j[key].dump()));
        out = j[key].get<int64_t>();
        if (out < min)
            return Status::invalid_argument(
                fmt::format("{}: {}: {} is below the minimum {}", origin, key, out, min));
        return Status::ok_status();
    };
    MF_RETURN_IF_ERROR(int_key("vocab_size", c.vocab_size, true, 1));
    MF_RETURN_IF_ERROR(int_key("hidden_size", c.hidden_size, true, 1));
    MF_RETURN_IF_ERROR(int_key("num_hidden_layers", c.num_hidden_layers, true, 0));
    MF_RETURN_IF_ERROR(int_key("num_attention_heads", c.num_attention_heads, true, 1));
    MF_RETURN_IF_ERROR(int_key("intermediate_size", c.intermediate_size, true, 1));
    MF_RETURN_IF_ERROR(int_key("max_position_embeddings", c.max_position_embeddings, false, 1));
    MF_RETURN_IF_ERROR(int_key("type_vocab_size", c.type_vocab_size, false, 1));
    MF_RETURN_IF_ERROR(int_key("pad_token_id", c.pad_token_id, false, 0));
    MF_RETURN_IF_ERROR(
        int_key("relative_attention_num_buckets", c.relative_attention_num_buckets, false, 1));
    if (j.contains("layer_norm_eps")) {
        if (!j["layer_norm_eps"].is_number())
            return Status::invalid_argument(
                fmt::format("{}: layer_norm_eps: expected a number", origin));
        c.layer_norm_eps = j["layer_norm_eps"].get<double>();
    }
    if (j.contains("hidden_act")) {
        if (!j["hidden_act"].is_string())
            return Status::invalid_argument(
                fmt::format("{}: hidden_act: expected a string", origin));
        c.hidden_act = j["hidden_act"].get<std::string>();
    }
    if (c.hidden_act != "gelu")
        return Status::unsupported(fmt::format(
            "{}: hidden_act '{}' is not supported (sentence encoders use exact \"gelu\")", origin,
            c.hidden_act));
    if (c.hidden_size % c.num_attention_heads != 0)
        return Status::invalid_argument(
            fmt::format("{}: hidden_size {} is not a multiple of num_attention_heads {}", origin,
                        c.hidden_size, c.num_attention_heads));
    if (c.pad_token_id >= c.vocab_size)
        return Status::invalid_argument(
            fmt::format("{}: pad_token_id {} is outside the vocabulary ({})", origin,
                        c.pad_token_id, c.vocab_size));
    if (c.arch == Arch::kMpnet && c.relative_attention_num_buckets < 32)
        return Status::unsupported(fmt::format(
            "{}: relative_attention_num_buckets {} < 32 (MPNet computes 32 position buckets)",
            origin, c.relative_attention_num_buckets));
    if (c.arch == Arch::kMpnet && c.max_position_embeddings <= c.pad_token_id + 2)
        return Status::invalid_argument(
            fmt::format("{}: max_position_embeddings {} leaves no positions after padding_idx {}",
                        origin, c.max_position_embeddings, c.pad_token_id));
    return c;
}

std::string text_encoder_config_json(const TextEncoderConfig& c) {
    json j;
    bool mp = c.arch == Arch::kMpnet;
    j["architectures"] = {mp ? "MPNetModel" : "BertModel"};
    j["model_type"] = mp ? "mpnet" : "bert";
    j["vocab_size"] = c.vocab_size;
    j["hidden_size"] = c.hidden_size;
    j["num_hidden_layers"] = c.num_hidden_layers;
    j["num_attention_heads"] = c.num_attention_heads;
    j["intermediate_size"] = c.intermediate_size;
    j["max_position_embeddings"] = c.max_position_embeddings;
    j["layer_norm_eps"] = c.layer_norm_eps;
    j["pad_token_id"] = c.pad_token_id;
    j["hidden_act"] = c.hidden_act;
    j["hidden_dropout_prob"] = 0.1;
    j["attention_probs_dropout_prob"] = 0.1;
    j["initializer_range"] = 0.02;
    j["torch_dtype"] = "float32";
    if (mp) {
        j["relative_attention_num_buckets"] = c.relative_attention_num_buckets;
        j["bos_token_id"] = 0;
        j["eos_token_id"] = 2;
    } else {
        j["type_vocab_size"] = c.type_vocab_size;
        j["position_embedding_type"] = "absolute";
    }
    return j.dump(2) + "\n";
}

// ---- modules ------------------------------------------------------------------------------------

namespace detail {

namespace nn = torch::nn;

nn::LayerNorm make_ln(int64_t h, double eps) {
    return nn::LayerNorm(nn::LayerNormOptions({h}).eps(eps).elementwise_affine(true));
}

struct Dense : nn::Module {
    nn::Linear dense{nullptr};
    Dense(int64_t in, int64_t out) { dense = register_module("dense", nn::Linear(in, out)); }
};

struct DenseLN : nn::Module {
    nn::Linear dense{nullptr};
    nn::LayerNorm ln{nullptr};
    DenseLN(int64_t in, int64_t out, double eps) {
        dense = register_module("dense", nn::Linear(in, out));
        ln = register_module("LayerNorm", make_ln(out, eps));
    }
};

// x [B, T, in] -> [B, T, out]. per_sequence: one GEMM per sequence (bmm over B with M = T each)
// instead of one folded [B*T, in] GEMM, so a row's result does not depend on B (BLAS picks its
// kernels by the problem size).
torch::Tensor linear(nn::Linear& l, const torch::Tensor& x, bool per_sequence) {
    if (!per_sequence || x.dim() != 3) return l(x);
    auto w = l->weight.t().unsqueeze(0).expand({x.size(0), l->weight.size(1), l->weight.size(0)});
    return torch::bmm(x, w) + l->bias;
}

// [B, T, H] -> [B, heads, T, d]
torch::Tensor split_heads(const torch::Tensor& x, int64_t heads) {
    auto B = x.size(0), T = x.size(1), H = x.size(2);
    return x.view({B, T, heads, H / heads}).transpose(1, 2);
}
torch::Tensor merge_heads(const torch::Tensor& x) {
    auto B = x.size(0), h = x.size(1), T = x.size(2), d = x.size(3);
    return x.transpose(1, 2).contiguous().view({B, T, h * d});
}

// softmax(QK^T / sqrt(d) + bias) V with bias broadcastable to [B, heads, T, T].
torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& bias) {
    double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
    auto scores = torch::matmul(q, k.transpose(-1, -2)).mul_(scale).add_(bias);
    return torch::matmul(torch::softmax(scores, -1), v);
}

torch::Tensor feed_forward(Dense& inter, DenseLN& out, const torch::Tensor& x, bool ps) {
    auto h = torch::gelu(linear(inter.dense, x, ps));  // exact (erf) GELU
    return out.ln(linear(out.dense, h, ps) + x);
}

// [B, T] mask (1 token, 0 pad) -> additive [B, 1, 1, T]: 0 or the dtype's lowest value.
torch::Tensor extended_mask(const torch::Tensor& mask, torch::Dtype dt) {
    double lowest = dt == torch::kFloat64   ? std::numeric_limits<double>::lowest()
                    : dt == torch::kFloat16 ? -65504.0
                    : dt == torch::kBFloat16
                        ? -3.3895313892515355e38
                        : static_cast<double>(std::numeric_limits<float>::lowest());
    auto m = mask.to(dt).unsqueeze(1).unsqueeze(2);
    return (1.0 - m) * lowest;
}

struct BertSelfAttention : nn::Module {
    nn::Linear query{nullptr}, key{nullptr}, value{nullptr};
    explicit BertSelfAttention(int64_t h) {
        query = register_module("query", nn::Linear(h, h));
        key = register_module("key", nn::Linear(h, h));
        value = register_module("value", nn::Linear(h, h));
    }
};

struct BertAttention : nn::Module {
    std::shared_ptr<BertSelfAttention> self;
    std::shared_ptr<DenseLN> output;
    BertAttention(int64_t h, double eps) {
        self = register_module("self", std::make_shared<BertSelfAttention>(h));
        output = register_module("output", std::make_shared<DenseLN>(h, h, eps));
    }
};

struct BertLayer : nn::Module {
    std::shared_ptr<BertAttention> attention;
    std::shared_ptr<Dense> intermediate;
    std::shared_ptr<DenseLN> output;
    int64_t heads;
    explicit BertLayer(const TextEncoderConfig& c) : heads(c.num_attention_heads) {
        attention = register_module(
            "attention", std::make_shared<BertAttention>(c.hidden_size, c.layer_norm_eps));
        intermediate = register_module("intermediate",
                                       std::make_shared<Dense>(c.hidden_size, c.intermediate_size));
        output = register_module(
            "output",
            std::make_shared<DenseLN>(c.intermediate_size, c.hidden_size, c.layer_norm_eps));
    }
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& bias, bool ps) {
        auto& sa = *attention->self;
        auto ctx = attend(split_heads(linear(sa.query, x, ps), heads),
                          split_heads(linear(sa.key, x, ps), heads),
                          split_heads(linear(sa.value, x, ps), heads), bias);
        auto& ao = *attention->output;
        auto y = ao.ln(linear(ao.dense, merge_heads(ctx), ps) + x);
        return feed_forward(*intermediate, *output, y, ps);
    }
};

struct BertEmbeddings : nn::Module {
    nn::Embedding word{nullptr}, position{nullptr}, token_type{nullptr};
    nn::LayerNorm ln{nullptr};
    explicit BertEmbeddings(const TextEncoderConfig& c) {
        word = register_module("word_embeddings", nn::Embedding(c.vocab_size, c.hidden_size));
        position = register_module("position_embeddings",
                                   nn::Embedding(c.max_position_embeddings, c.hidden_size));
        token_type = register_module("token_type_embeddings",
                                     nn::Embedding(c.type_vocab_size, c.hidden_size));
        ln = register_module("LayerNorm", make_ln(c.hidden_size, c.layer_norm_eps));
    }
};

struct MpnetSelfAttention : nn::Module {
    nn::Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
    explicit MpnetSelfAttention(int64_t h) {
        q = register_module("q", nn::Linear(h, h));
        k = register_module("k", nn::Linear(h, h));
        v = register_module("v", nn::Linear(h, h));
        o = register_module("o", nn::Linear(h, h));
    }
};

struct MpnetAttention : nn::Module {
    std::shared_ptr<MpnetSelfAttention> attn;
    nn::LayerNorm ln{nullptr};
    MpnetAttention(int64_t h, double eps) {
        attn = register_module("attn", std::make_shared<MpnetSelfAttention>(h));
        ln = register_module("LayerNorm", make_ln(h, eps));
    }
};

struct MpnetLayer : nn::Module {
    std::shared_ptr<MpnetAttention> attention;
    std::shared_ptr<Dense> intermediate;
    std::shared_ptr<DenseLN> output;
    int64_t heads;
    explicit MpnetLayer(const TextEncoderConfig& c) : heads(c.num_attention_heads) {
        attention = register_module(
            "attention", std::make_shared<MpnetAttention>(c.hidden_size, c.layer_norm_eps));
        intermediate = register_module("intermediate",
                                       std::make_shared<Dense>(c.hidden_size, c.intermediate_size));
        output = register_module(
            "output",
            std::make_shared<DenseLN>(c.intermediate_size, c.hidden_size, c.layer_norm_eps));
    }
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& bias, bool ps) {
        auto& sa = *attention->attn;
        auto ctx =
            attend(split_heads(linear(sa.q, x, ps), heads), split_heads(linear(sa.k, x, ps), heads),
                   split_heads(linear(sa.v, x, ps), heads), bias);
        auto y = attention->ln(linear(sa.o, merge_heads(ctx), ps) + x);
        return feed_forward(*intermediate, *output, y, ps);
    }
};

struct MpnetEmbeddings : nn::Module {
    nn::Embedding word{nullptr}, position{nullptr};
    nn::LayerNorm ln{nullptr};
    explicit MpnetEmbeddings(const TextEncoderConfig& c) {
        word = register_module("word_embeddings", nn::Embedding(c.vocab_size, c.hidden_size));
        position = register_module("position_embeddings",
                                   nn::Embedding(c.max_position_embeddings, c.hidden_size));
        ln = register_module("LayerNorm", make_ln(c.hidden_size, c.layer_norm_eps));
    }
};

// A module that only names a level of the hierarchy ("encoder", "encoder.layer").
struct Holder : nn::Module {};

}  // namespace detail

BertEncoderImpl::BertEncoderImpl(const TextEncoderConfig& c) : c_(c) {
    embeddings_ = register_module("embeddings", std::make_shared<detail::BertEmbeddings>(c));
    auto encoder = register_module("encoder", std::make_shared<detail::Holder>());
    auto list = encoder->register_module("layer", std::make_shared<detail::Holder>());
    for (int64_t i = 0; i < c.num_hidden_layers; ++i)
        layers_.push_back(
            list->register_module(std::to_string(i), std::make_shared<detail::BertLayer>(c)));
}

torch::Tensor BertEncoderImpl::forward(const torch::Tensor& ids, const torch::Tensor& mask) {
    auto T = ids.size(1);
    auto pos = torch::arange(T, torch::TensorOptions().dtype(torch::kInt64).device(ids.device()));
    auto tt = torch::zeros_like(ids);
    auto& e = *embeddings_;
    auto x = e.ln(e.word(ids) + e.token_type(tt) + e.position(pos).unsqueeze(0));
    auto bias = detail::extended_mask(mask, x.scalar_type());
    for (auto& l : layers_)
        x = l->forward(x, bias, per_sequence_);
    return x;
}

torch::Tensor mpnet_relative_position_bucket(const torch::Tensor& relative_position,
                                             int64_t num_buckets, int64_t max_distance) {
    auto n = -relative_position;
    num_buckets /= 2;
    auto ret = (n < 0).to(torch::kInt64) * num_buckets;
    n = torch::abs(n);
    int64_t max_exact = num_buckets / 2;
    auto is_small = n < max_exact;
    // float32 as transformers computes it: log(n / max_exact) / log(max_distance / max_exact)
    auto val_if_large =
        max_exact + (torch::log(n.to(torch::kFloat32) / static_cast<double>(max_exact)) /
                     std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)) *
                     static_cast<double>(num_buckets - max_exact))
                        .to(torch::kInt64);
    val_if_large = torch::min(val_if_large, torch::full_like(val_if_large, num_buckets - 1));
    return ret + torch::where(is_small, n, val_if_large);
}

MpnetEncoderImpl::MpnetEncoderImpl(const TextEncoderConfig& c) : c_(c) {
    embeddings_ = register_module("embeddings", std::make_shared<detail::MpnetEmbeddings>(c));
    auto encoder = register_module("encoder", std::make_shared<detail::Holder>());
    auto list = encoder->register_module("layer", std::make_shared<detail::Holder>());
    for (int64_t i = 0; i < c.num_hidden_layers; ++i)
        layers_.push_back(
            list->register_module(std::to_string(i), std::make_shared<detail::MpnetLayer>(c)));
    rel_bias_ = encoder->register_module(
        "relative_attention_bias",
        torch::nn::Embedding(c.relative_attention_num_buckets, c.num_attention_heads));
}

torch::Tensor MpnetEncoderImpl::forward(const torch::Tensor& ids, const torch::Tensor& mask) {
    auto T = ids.size(1);
    auto& e = *embeddings_;
    // create_position_ids_from_input_ids: padding_idx + cumsum over real (non-pad) tokens.
    auto real = ids.ne(c_.pad_token_id).to(torch::kInt64);
    auto pos = torch::cumsum(real, 1) * real + c_.pad_token_id;
    auto x = e.ln(e.word(ids) + e.position(pos));
    auto opts = torch::TensorOptions().dtype(torch::kInt64).device(ids.device());
    auto ctx = torch::arange(T, opts).unsqueeze(1);
    auto mem = torch::arange(T, opts).unsqueeze(0);
    auto bucket = mpnet_relative_position_bucket(mem - ctx, 32, 128);
    auto values = rel_bias_(bucket).permute({2, 0, 1}).unsqueeze(0);  // [1, heads, T, T]
    auto bias = values.to(x.scalar_type()) + detail::extended_mask(mask, x.scalar_type());
    for (auto& l : layers_)
        x = l->forward(x, bias, per_sequence_);
    return x;
}

// ---- WordPiece ----------------------------------------------------------------------------------

namespace {

bool is_cjk(int32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}
bool is_ws(int32_t cp) {
    if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r') return true;
    return utf8proc_category(cp) == UTF8PROC_CATEGORY_ZS;
}
bool is_control(int32_t cp) {
    if (cp == '\t' || cp == '\n' || cp == '\r') return false;
    auto c = utf8proc_category(cp);
    return c == UTF8PROC_CATEGORY_CC || c == UTF8PROC_CATEGORY_CF || c == UTF8PROC_CATEGORY_CN ||
           c == UTF8PROC_CATEGORY_CO || c == UTF8PROC_CATEGORY_CS;
}
bool is_punct(int32_t cp) {
    if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
        (cp >= 123 && cp <= 126))
        return true;
    auto c = utf8proc_category(cp);
    return c == UTF8PROC_CATEGORY_PC || c == UTF8PROC_CATEGORY_PD || c == UTF8PROC_CATEGORY_PS ||
           c == UTF8PROC_CATEGORY_PE || c == UTF8PROC_CATEGORY_PI || c == UTF8PROC_CATEGORY_PF ||
           c == UTF8PROC_CATEGORY_PO;
}
void append_utf8(std::string& s, int32_t cp) {
    uint8_t buf[4];
    auto n = utf8proc_encode_char(cp, buf);
    s.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

class WordPiece final : public TextTokenizer {
  public:
    std::unordered_map<std::string, int32_t> vocab;
    size_t size = 0;
    bool lowercase = true;
    int32_t cls = 0, sep = 0, pad = 0, unk = 0;
    static constexpr size_t kMaxChars = 100;

    int32_t cls_id() const override { return cls; }
    int32_t sep_id() const override { return sep; }
    int32_t pad_id() const override { return pad; }
    size_t vocab_size() const override { return size; }

    std::vector<int32_t> encode(std::string_view text) const override {
        // Clean, pad CJK with spaces, lower-case + strip accents, split on whitespace and
        // punctuation: every word is a vector of code points.
        std::vector<std::vector<int32_t>> words;
        std::vector<int32_t> cur;
        auto flush = [&] {
            if (!cur.empty()) words.push_back(std::move(cur));
            cur.clear();
        };
        const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
        utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(text.size());
        while (left > 0) {
            utf8proc_int32_t cp = -1;
            utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
            if (n <= 0) {  // invalid byte: treated as U+FFFD, which cleaning drops
                ++p;
                --left;
                continue;
            }
            p += n;
            left -= n;
            if (cp == 0 || cp == 0xFFFD || is_control(cp)) continue;
            if (is_ws(cp)) {
                flush();
                continue;
            }
            if (is_cjk(cp)) {
                flush();
                words.push_back({cp});
                continue;
            }
            if (lowercase) {
                cp = utf8proc_tolower(cp);
                utf8proc_int32_t dec[8];
                int last = 0;
                utf8proc_ssize_t m = utf8proc_decompose_char(cp, dec, 8, UTF8PROC_DECOMPOSE, &last);
                if (m > 0 && m <= 8) {
                    for (utf8proc_ssize_t i = 0; i < m; ++i) {
                        if (utf8proc_category(dec[i]) == UTF8PROC_CATEGORY_MN) continue;
                        if (is_punct(dec[i])) {
                            flush();
                            words.push_back({dec[i]});
                        } else {
                            cur.push_back(dec[i]);
                        }
                    }
                    continue;
                }
            }
            if (is_punct(cp)) {
                flush();
                words.push_back({cp});
            } else {
                cur.push_back(cp);
            }
        }
        flush();
        std::vector<int32_t> ids;
        for (const auto& w : words)
            wordpiece(w, ids);
        return ids;
    }

  private:
    void wordpiece(const std::vector<int32_t>& w, std::vector<int32_t>& ids) const {
        if (w.size() > kMaxChars) {
            ids.push_back(unk);
            return;
        }
        std::vector<int32_t> out;
        size_t start = 0;
        std::string piece;
        while (start < w.size()) {
            size_t end = w.size();
            int32_t found = -1;
            while (end > start) {
                piece.clear();
                if (start > 0) piece = "##";
                for (size_t i = start; i < end; ++i)
                    append_utf8(piece, w[i]);
                auto it = vocab.find(piece);
                if (it != vocab.end()) {
                    found = it->second;
                    break;
                }
                --end;
            }
            if (found < 0) {
                ids.push_back(unk);
                return;
            }
            out.push_back(found);
            start = end;
        }
        ids.insert(ids.end(), out.begin(), out.end());
    }
};

Result<std::unique_ptr<TextTokenizer>> make_wordpiece(std::vector<std::string> tokens,
                                                      bool lowercase, const json& cfg,
                                                      const std::string& origin) {
    auto wp = std::make_unique<WordPiece>();
    wp->lowercase = lowercase;
    wp->size = tokens.size();
    for (size_t i = 0; i < tokens.size(); ++i)
        wp->vocab.emplace(tokens[i], static_cast<int32_t>(i));  // the first of duplicates wins
    auto special = [&](const char* key, std::initializer_list<const char*> defaults,
                       int32_t& out) -> Status {
        std::vector<std::string> names;
        if (cfg.is_object() && cfg.contains(key)) {
            const auto& v = cfg[key];
            if (v.is_string())
                names.push_back(v.get<std::string>());
            else if (v.is_object() && v.contains("content") && v["content"].is_string())
                names.push_back(v["content"].get<std::string>());
        }
        for (const char* d : defaults)
            names.push_back(d);
        for (const auto& n : names) {
            auto it = wp->vocab.find(n);
            if (it != wp->vocab.end()) {
                out = it->second;
                return Status::ok_status();
            }
        }
        return Status::invalid_argument(fmt::format(
            "{}: the vocabulary has no {} token (looked for {}); is this a WordPiece vocab?",
            origin, key, fmt::join(names, ", ")));
    };
    MF_RETURN_IF_ERROR(special("cls_token", {"[CLS]", "<s>"}, wp->cls));
    MF_RETURN_IF_ERROR(special("sep_token", {"[SEP]", "</s>"}, wp->sep));
    MF_RETURN_IF_ERROR(special("pad_token", {"[PAD]", "<pad>"}, wp->pad));
    MF_RETURN_IF_ERROR(special("unk_token", {"[UNK]", "<unk>"}, wp->unk));
    return std::unique_ptr<TextTokenizer>(std::move(wp));
}

std::vector<std::string> split_vocab_lines(std::string_view text) {
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string_view::npos) nl = text.size();
        std::string line(text.substr(pos, nl - pos));
        if (!line.empty() && line.back() == '\r') line.pop_back();
        out.push_back(std::move(line));
        pos = nl + 1;
    }
    return out;
}

}  // namespace

Result<std::unique_ptr<TextTokenizer>> wordpiece_from_vocab(std::string_view vocab_txt,
                                                            bool lowercase,
                                                            std::string_view origin) {
    return make_wordpiece(split_vocab_lines(vocab_txt), lowercase, json::object(),
                          std::string(origin));
}

Result<std::unique_ptr<TextTokenizer>> load_text_tokenizer(const fs::path& dir) {
    json cfg = json::object();
    if (fs::exists(dir / "tokenizer_config.json")) {
        MF_ASSIGN_OR_RETURN(std::string t, io::read_file(dir / "tokenizer_config.json"));
        cfg = json::parse(t, nullptr, false);
        if (cfg.is_discarded() || !cfg.is_object())
            return Status::invalid_argument(
                fmt::format("{}: not a JSON object", (dir / "tokenizer_config.json").string()));
    }
    bool lower = true;
    if (cfg.contains("do_lower_case") && cfg["do_lower_case"].is_boolean())
        lower = cfg["do_lower_case"].get<bool>();
    if (fs::exists(dir / "vocab.txt")) {
        MF_ASSIGN_OR_RETURN(std::string t, io::read_file(dir / "vocab.txt"));
        auto lines = split_vocab_lines(t);
        return make_wordpiece(std::move(lines), lower, cfg, (dir / "vocab.txt").string());
    }
    if (fs::exists(dir / "tokenizer.json")) {
        std::string origin = (dir / "tokenizer.json").string();
        MF_ASSIGN_OR_RETURN(std::string t, io::read_file(dir / "tokenizer.json"));
        json j = json::parse(t, nullptr, false);
        if (j.is_discarded() || !j.contains("model") || !j["model"].is_object() ||
            j["model"].value("type", std::string()) != "WordPiece" ||
            !j["model"].contains("vocab") || !j["model"]["vocab"].is_object())
            return Status::unsupported(
                fmt::format("{}: model.type is not WordPiece with a vocab object", origin));
        std::vector<std::string> tokens;
        for (auto& [tok, id] : j["model"]["vocab"].items()) {
            if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > (1 << 24))
                return Status::invalid_argument(
                    fmt::format("{}: model.vocab[\"{}\"]: bad id", origin, tok));
            size_t i = static_cast<size_t>(id.get<int64_t>());
            if (tokens.size() <= i) tokens.resize(i + 1);
            tokens[i] = tok;
        }
        if (j.contains("normalizer") && j["normalizer"].is_object() &&
            j["normalizer"].contains("lowercase") && j["normalizer"]["lowercase"].is_boolean())
            lower = j["normalizer"]["lowercase"].get<bool>();
        return make_wordpiece(std::move(tokens), lower, cfg, origin);
    }
    return Status::not_found(fmt::format(
        "{}: no vocab.txt or tokenizer.json; a sentence-transformers folder ships its tokenizer",
        dir.string()));
}

// ---- TextEncoder --------------------------------------------------------------------------------

namespace {

Result<json> read_json(const fs::path& p) {
    MF_ASSIGN_OR_RETURN(std::string t, io::read_file(p));
    json j = json::parse(t, nullptr, false);
    if (j.is_discarded())
        return Status::invalid_argument(fmt::format("{}: not valid JSON", p.string()));
    return j;
}

// Reads modules.json + the pooling config: which pooling, and whether a Normalize module follows.
Status read_st_modules(const fs::path& dir, Pooling& pooling, bool& normalize) {
    pooling = Pooling::kMean;
    normalize = true;
    fs::path mpath = dir / "modules.json";
    if (!fs::exists(mpath)) return Status::ok_status();  // a bare transformers folder
    MF_ASSIGN_OR_RETURN(json m, read_json(mpath));
    if (!m.is_array())
        return Status::invalid_argument(fmt::format("{}: expected an array", mpath.string()));
    normalize = false;
    bool seen_pool = false;
    for (size_t i = 0; i < m.size(); ++i) {
        if (!m[i].is_object() || !m[i].contains("type") || !m[i]["type"].is_string())
            return Status::invalid_argument(
                fmt::format("{}: modules[{}]: no \"type\" string", mpath.string(), i));
        std::string type = m[i]["type"].get<std::string>();
        std::string path;
        if (m[i].contains("path") && m[i]["path"].is_string())
            path = m[i]["path"].get<std::string>();
        if (type.ends_with(".Transformer")) continue;
        if (type.ends_with(".Normalize")) {
            normalize = true;
            continue;
        }
        if (type.ends_with(".Pooling")) {
            seen_pool = true;
            fs::path pc = dir / path / "config.json";
            MF_ASSIGN_OR_RETURN(json p, read_json(pc));
            int n = 0;
            auto on = [&](const char* k) {
                return p.is_object() && p.contains(k) && p[k].is_boolean() && p[k].get<bool>();
            };
            if (on("pooling_mode_mean_tokens")) pooling = Pooling::kMean, ++n;
            if (on("pooling_mode_cls_token")) pooling = Pooling::kCls, ++n;
            if (on("pooling_mode_max_tokens")) pooling = Pooling::kMax, ++n;
            if (on("pooling_mode_mean_sqrt_len_tokens") || on("pooling_mode_weightedmean_tokens") ||
                on("pooling_mode_lasttoken"))
                return Status::unsupported(
                    fmt::format("{}: only mean, cls or max pooling is supported", pc.string()));
            if (n != 1)
                return Status::unsupported(fmt::format(
                    "{}: exactly one pooling mode must be on (found {})", pc.string(), n));
            continue;
        }
        return Status::unsupported(fmt::format(
            "{}: modules[{}] type '{}' is not supported (Transformer, Pooling, Normalize)",
            mpath.string(), i, type));
    }
    if (!seen_pool)
        return Status::invalid_argument(
            fmt::format("{}: no sentence_transformers.models.Pooling module", mpath.string()));
    return Status::ok_status();
}

}  // namespace

Result<std::unique_ptr<TextEncoder>> TextEncoder::load(const fs::path& dir,
                                                       const TextEncoderOptions& opt) {
    std::unique_ptr<TextEncoder> e(new TextEncoder());
    e->dir_ = dir;
    e->opt_ = opt;
    if (opt.batch_size < 1)
        return Status::invalid_argument("text encoder: batch_size must be >= 1");
    fs::path cpath = dir / "config.json";
    MF_ASSIGN_OR_RETURN(std::string ctext, io::read_file(cpath));
    MF_ASSIGN_OR_RETURN(e->cfg_, parse_text_encoder_config(ctext, cpath.string()));
    const auto& c = e->cfg_;
    MF_RETURN_IF_ERROR(read_st_modules(dir, e->pooling_, e->normalize_));

    // max_seq_length: option, sentence_bert_config.json, default; capped by the positions.
    int64_t msl = c.arch == Arch::kMpnet ? 384 : 256;
    fs::path sb = dir / "sentence_bert_config.json";
    if (fs::exists(sb)) {
        MF_ASSIGN_OR_RETURN(json s, read_json(sb));
        if (s.contains("max_seq_length") && s["max_seq_length"].is_number_integer())
            msl = s["max_seq_length"].get<int64_t>();
    }
    if (opt.max_seq_length > 0) msl = opt.max_seq_length;
    int64_t cap = c.arch == Arch::kMpnet ? c.max_position_embeddings - c.pad_token_id - 1
                                         : c.max_position_embeddings;
    if (msl < 2)
        return Status::invalid_argument(
            fmt::format("{}: max_seq_length {} < 2", dir.string(), msl));
    e->max_seq_length_ = std::min(msl, cap);

    MF_ASSIGN_OR_RETURN(e->tok_, load_text_tokenizer(dir));
    if (e->tok_->vocab_size() > static_cast<size_t>(c.vocab_size))
        return Status::invalid_argument(
            fmt::format("{}: the tokenizer has {} tokens but config.json vocab_size is {}",
                        dir.string(), e->tok_->vocab_size(), c.vocab_size));

    if (c.arch == Arch::kMpnet) {
        auto m = std::make_shared<MpnetEncoderImpl>(c);
        e->module_ = m;
    } else {
        auto m = std::make_shared<BertEncoderImpl>(c);
        e->module_ = m;
    }
    MF_ASSIGN_OR_RETURN(auto set, io::SafetensorsSet::open(dir));
    // Tensor names with or without the "bert." / "mpnet." prefix of the *ForMaskedLM layouts.
    std::string prefix;
    const char* probe = "embeddings.word_embeddings.weight";
    std::string alt = std::string(c.arch == Arch::kMpnet ? "mpnet." : "bert.");
    if (!set.find(probe) && set.find(alt + probe)) prefix = alt;
    NameMap map = [prefix](const std::string& n) { return prefix + n; };
    std::string what = fmt::format("{} encoder", arch_name(c.arch));
    MF_ASSIGN_OR_RETURN(auto rep, load_module(*e->module_, set, map, what));
    (void)rep;
    e->module_->eval();
    e->module_->to(opt.device, opt.dtype);
    return e;
}

std::string TextEncoder::name() const {
    std::string base = dir_.filename().string();
    if (base.empty()) base = dir_.parent_path().filename().string();
    return fmt::format("{}:{}", arch_name(cfg_.arch), base);
}

std::vector<int32_t> TextEncoder::tokenize(std::string_view text) const {
    std::vector<int32_t> body = tok_->encode(text);
    size_t keep = static_cast<size_t>(max_seq_length_ - 2);
    if (body.size() > keep) body.resize(keep);
    std::vector<int32_t> ids;
    ids.reserve(body.size() + 2);
    ids.push_back(tok_->cls_id());
    ids.insert(ids.end(), body.begin(), body.end());
    ids.push_back(tok_->sep_id());
    return ids;
}

torch::Tensor TextEncoder::forward_batch(const torch::Tensor& ids,
                                         const torch::Tensor& mask) const {
    torch::InferenceMode guard;
    auto dids = ids.to(opt_.device), dmask = mask.to(opt_.device);
    torch::Tensor h;
    if (cfg_.arch == Arch::kMpnet)
        h = static_cast<MpnetEncoderImpl&>(*module_).forward(dids, dmask);
    else
        h = static_cast<BertEncoderImpl&>(*module_).forward(dids, dmask);
    // Pooling and normalisation in a fixed order (double sums over the real tokens), so a row
    // does not depend on the padding or the batch.
    h = h.to(torch::kCPU, torch::kFloat32).contiguous();
    auto cm = mask.to(torch::kCPU, torch::kInt64).contiguous();
    const int64_t B = h.size(0), T = h.size(1), H = h.size(2);
    auto pooled = torch::empty({B, H}, torch::kFloat32);
    const float* ph = h.data_ptr<float>();
    const int64_t* pm = cm.data_ptr<int64_t>();
    float* po = pooled.data_ptr<float>();
    std::vector<double> acc(static_cast<size_t>(H));
    for (int64_t b = 0; b < B; ++b) {
        std::fill(acc.begin(), acc.end(), pooling_ == Pooling::kMax ? -1e300 : 0.0);
        int64_t count = 0;
        for (int64_t t = 0; t < T; ++t) {
            if (pm[b * T + t] == 0) continue;
            const float* row = ph + (b * T + t) * H;
            if (pooling_ == Pooling::kCls && count > 0) break;
            for (int64_t k = 0; k < H; ++k) {
                if (pooling_ == Pooling::kMax)
                    acc[static_cast<size_t>(k)] =
                        std::max(acc[static_cast<size_t>(k)], static_cast<double>(row[k]));
                else
                    acc[static_cast<size_t>(k)] += row[k];
            }
            ++count;
        }
        double div =
            pooling_ == Pooling::kMean ? std::max<double>(1.0, static_cast<double>(count)) : 1.0;
        double norm = 0;
        for (int64_t k = 0; k < H; ++k) {
            acc[static_cast<size_t>(k)] /= div;
            norm += acc[static_cast<size_t>(k)] * acc[static_cast<size_t>(k)];
        }
        double inv = normalize_ ? 1.0 / std::max(std::sqrt(norm), 1e-12) : 1.0;
        for (int64_t k = 0; k < H; ++k)
            po[b * H + k] = static_cast<float>(acc[static_cast<size_t>(k)] * inv);
    }
    return pooled;
}

Result<std::vector<float>> TextEncoder::embed_ids(std::span<const std::vector<int32_t>> ids) const {
    const size_t n = ids.size();
    const int64_t H = cfg_.hidden_size;
    std::vector<float> out(n * static_cast<size_t>(H), 0.f);
    for (size_t i = 0; i < n; ++i) {
        if (ids[i].empty() || static_cast<int64_t>(ids[i].size()) > max_seq_length_)
            return Status::invalid_argument(
                fmt::format("text encoder: sequence {} has {} tokens (1..{} allowed)", i,
                            ids[i].size(), max_seq_length_));
        for (int32_t t : ids[i])
            if (t < 0 || t >= cfg_.vocab_size)
                return Status::invalid_argument(fmt::format(
                    "text encoder: sequence {} has token id {} outside the vocabulary ({})", i, t,
                    cfg_.vocab_size));
    }
    // Padded length of a sequence: the batch's longest, or (batch_independent) its own length
    // rounded up to a multiple of 8.
    const bool indep = opt_.batch_independent;
    auto bucket = [&](size_t i) {
        int64_t L = static_cast<int64_t>(ids[i].size());
        return indep ? std::min(max_seq_length_, (L + 7) / 8 * 8) : L;
    };
    // Longest first (as sentence-transformers), stable for determinism.
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return bucket(a) > bucket(b); });
    const size_t bs = static_cast<size_t>(opt_.batch_size);
    for (size_t b0 = 0, b1 = 0; b0 < n; b0 = b1) {
        b1 = std::min(n, b0 + bs);
        if (indep) {
            b1 = b0 + 1;
            while (b1 < n && b1 - b0 < bs && bucket(order[b1]) == bucket(order[b0]))
                ++b1;
        }
        int64_t real = static_cast<int64_t>(b1 - b0);
        // batch_independent: always batch_size rows (the rest repeat the first sequence), so
        // every GEMM of a bucket has the same shape whatever the other texts are.
        int64_t B = indep ? opt_.batch_size : real;
        int64_t T = bucket(order[b0]);
        auto tid = torch::full({B, T}, static_cast<int64_t>(tok_->pad_id()), torch::kInt64);
        auto tmask = torch::zeros({B, T}, torch::kInt64);
        auto* pid = tid.data_ptr<int64_t>();
        auto* pm = tmask.data_ptr<int64_t>();
        for (int64_t r = 0; r < B; ++r) {
            const auto& s = ids[order[b0 + static_cast<size_t>(r < real ? r : 0)]];
            for (size_t t = 0; t < s.size(); ++t) {
                pid[r * T + static_cast<int64_t>(t)] = s[t];
                pm[r * T + static_cast<int64_t>(t)] = 1;
            }
        }
        torch::Tensor pooled = forward_batch(tid, tmask);
        const float* src = pooled.data_ptr<float>();
        for (int64_t r = 0; r < real; ++r)
            std::copy(src + r * H, src + (r + 1) * H,
                      out.data() + order[b0 + static_cast<size_t>(r)] * static_cast<size_t>(H));
    }
    return out;
}

Result<std::vector<float>> TextEncoder::embed(std::span<const std::string> texts) const {
    std::vector<std::vector<int32_t>> ids;
    ids.reserve(texts.size());
    for (const auto& t : texts)
        ids.push_back(tokenize(t));
    return embed_ids(ids);
}

// ---- init: a random sentence-transformers checkpoint ------------------------------------------

std::vector<std::string> generated_wordpiece_vocab(Arch arch) {
    std::vector<std::string> v;
    if (arch == Arch::kMpnet)
        v = {"<s>", "<pad>", "</s>", "<unk>"};
    else
        v = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    // Single characters (lower-case text: no upper-case letters), and their ## continuations.
    for (int ch = 33; ch < 127; ++ch) {
        if (ch >= 'A' && ch <= 'Z') continue;
        v.push_back(std::string(1, static_cast<char>(ch)));
    }
    for (int ch = 33; ch < 127; ++ch) {
        if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
            v.push_back("##" + std::string(1, static_cast<char>(ch)));
    }
    for (const char* s : {"°", "±", "µ", "×", "α", "β", "γ", "δ", "μ", "→", "≤", "≥"})
        v.push_back(s);
    static const char* kWords[] = {
        // common English
        "the", "of", "and", "in", "to", "a", "is", "with", "for", "on", "at", "by", "from", "an",
        "are", "was", "were", "be", "this", "that", "which", "as", "or", "no", "not", "there",
        "shows", "show", "showing", "shown", "image", "images", "left", "right", "upper", "lower",
        "small", "large", "normal", "abnormal", "after", "before", "patient", "year", "old", "man",
        "woman", "male", "female", "arrow", "arrows", "view", "white", "black", "area", "areas",
        "within", "without", "between", "both", "side", "one", "two", "three", "new", "case",
        "figure", "panel", "red", "blue", "green", "high", "low", "increased", "decreased", "mild",
        "severe", "multiple", "single", "seen", "present", "evidence", "consistent", "suggestive",
        "demonstrates", "reveals", "revealed", "noted", "day", "days", "months",
        // medical
        "ct", "mri", "scan", "pneumon", "x", "ray", "chest", "radiograph", "axial", "sagittal",
        "coronal", "contrast", "enhanced", "weighted", "t1", "t2", "flair", "ultrasound", "lesion",
        "lesions", "mass", "tumor", "tumour", "nodule", "nodules", "cyst", "fracture", "lung",
        "lungs", "liver", "kidney", "renal", "heart", "cardiac", "brain", "bone", "bones",
        "abdomen", "abdominal", "pelvis", "spine", "lobe", "pleural", "effusion", "pneumonia",
        "opacity", "opacities", "consolidation", "edema", "hemorrhage", "infarct", "stenosis",
        "artery", "vein", "aorta", "vessel", "tissue", "biopsy", "histology", "stain", "cells",
        "cell", "carcinoma", "metastasis", "metastases", "benign", "malignant", "inflammation",
        "infection", "diagnosis", "treatment", "surgery", "follow", "up", "endoscopy", "skin",
        "gland", "thyroid", "breast", "colon", "stomach", "muscle", "joint", "knee", "hip",
        "shoulder", "wall", "thickening", "dilated", "dilatation", "hypo", "hyper", "dense",
        "density", "intensity", "signal", "cm", "mm", "magnification", "hematoxylin", "eosin",
        // word pieces
        "##s", "##es", "##ed", "##ing", "##ly", "##er", "##al", "##ic", "##ion", "##ation", "##ity",
        "##ous", "##ive", "##ment", "##ness", "##itis", "##oma", "##osis", "##ectomy", "##scopy",
        "##graphy", "##gram", "##logy", "##pathy", "##plasia", "##emia", "##uria", "##cardi",
        "##pulmon", "##ary", "##ar", "##ia", "##ial", "##ular", "##al", "##ence", "##ance", "##ant",
        "##ent", "##y", "##tion", "##intense", "##dense", "##echoic", "##able", "##ible", "##ful",
        "##less", "##est", "##re", "##th", "##nd", "##st", "##ray"};
    for (const char* w : kWords)
        v.push_back(w);
    // Remove duplicates while keeping the first occurrence (ids stay dense).
    std::vector<std::string> out;
    std::unordered_map<std::string, int> seen;
    for (auto& t : v)
        if (seen.emplace(t, 1).second) out.push_back(t);
    if (arch == Arch::kMpnet) out.push_back("<mask>");
    return out;
}

namespace {

json tokenizer_json(const std::vector<std::string>& vocab, Arch arch) {
    bool mp = arch == Arch::kMpnet;
    json jv = json::object();
    for (size_t i = 0; i < vocab.size(); ++i)
        jv[vocab[i]] = static_cast<int64_t>(i);
    std::string cls = mp ? "<s>" : "[CLS]", sep = mp ? "</s>" : "[SEP]",
                pad = mp ? "<pad>" : "[PAD]", unk = mp ? "<unk>" : "[UNK]",
                mask = mp ? "<mask>" : "[MASK]";
    auto id = [&](const std::string& t) {
        return static_cast<int64_t>(std::find(vocab.begin(), vocab.end(), t) - vocab.begin());
    };
    json added = json::array();
    for (const auto& t : {cls, pad, sep, unk, mask})
        added.push_back({{"id", id(t)},
                         {"content", t},
                         {"single_word", false},
                         {"lstrip", t == mask && mp},
                         {"rstrip", false},
                         {"normalized", false},
                         {"special", true}});
    std::sort(added.begin(), added.end(),
              [](const json& a, const json& b) { return a["id"] < b["id"]; });
    json j;
    j["version"] = "1.0";
    j["truncation"] = nullptr;
    j["padding"] = nullptr;
    j["added_tokens"] = added;
    j["normalizer"] = {{"type", "BertNormalizer"},
                       {"clean_text", true},
                       {"handle_chinese_chars", true},
                       {"strip_accents", nullptr},
                       {"lowercase", true}};
    j["pre_tokenizer"] = {{"type", "BertPreTokenizer"}};
    json single = json::array({json{{"SpecialToken", {{"id", cls}, {"type_id", 0}}}},
                               json{{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                               json{{"SpecialToken", {{"id", sep}, {"type_id", 0}}}}});
    json pair = single;
    if (mp) pair.push_back(json{{"SpecialToken", {{"id", sep}, {"type_id", 0}}}});
    pair.push_back(json{{"Sequence", {{"id", "B"}, {"type_id", mp ? 0 : 1}}}});
    pair.push_back(json{{"SpecialToken", {{"id", sep}, {"type_id", mp ? 0 : 1}}}});
    j["post_processor"] = {
        {"type", "TemplateProcessing"},
        {"single", single},
        {"pair", pair},
        {"special_tokens",
         json{{cls,
               json{{"id", cls}, {"ids", json::array({id(cls)})}, {"tokens", json::array({cls})}}},
              {sep, json{{"id", sep},
                         {"ids", json::array({id(sep)})},
                         {"tokens", json::array({sep})}}}}}};
    j["decoder"] = {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}};
    j["model"] = {{"type", "WordPiece"},
                  {"unk_token", unk},
                  {"continuing_subword_prefix", "##"},
                  {"max_input_chars_per_word", 100},
                  {"vocab", jv}};
    return j;
}

Status write_json(const fs::path& p, const json& j) {
    return io::write_file_atomic(p, j.dump(2) + "\n");
}

}  // namespace

Status init_text_encoder(Arch arch, std::string_view size, const fs::path& out, uint64_t seed) {
    if (arch != Arch::kBert && arch != Arch::kMpnet)
        return Status::invalid_argument(
            fmt::format("init_text_encoder: arch '{}' is not a sentence encoder (bert, mpnet)",
                        arch_name(arch)));
    bool mp = arch == Arch::kMpnet;
    std::vector<std::string> vocab = generated_wordpiece_vocab(arch);
    TextEncoderConfig c;
    c.arch = arch;
    c.vocab_size = static_cast<int64_t>(vocab.size());
    c.pad_token_id = mp ? 1 : 0;
    c.layer_norm_eps = mp ? 1e-5 : 1e-12;
    c.max_position_embeddings = mp ? 514 : 512;
    if (size == "tiny") {
        c.hidden_size = 32, c.num_hidden_layers = 2, c.num_attention_heads = 4,
        c.intermediate_size = 64;
    } else if (size == "minilm") {
        c.hidden_size = 384, c.num_hidden_layers = 6, c.num_attention_heads = 12,
        c.intermediate_size = 1536;
    } else if (size == "base") {
        c.hidden_size = 768, c.num_hidden_layers = 12, c.num_attention_heads = 12,
        c.intermediate_size = 3072;
    } else {
        return Status::invalid_argument(
            fmt::format("init_text_encoder: size '{}' (use tiny, minilm or base)", size));
    }
    std::error_code ec;
    fs::create_directories(out / "1_Pooling", ec);
    fs::create_directories(out / "2_Normalize", ec);
    if (ec)
        return Status::io_error(fmt::format("{}: cannot create: {}", out.string(), ec.message()));

    torch::manual_seed(seed);
    std::shared_ptr<torch::nn::Module> m;
    if (mp)
        m = std::make_shared<MpnetEncoderImpl>(c);
    else
        m = std::make_shared<BertEncoderImpl>(c);
    {
        torch::NoGradGuard ng;
        // Weights N(0, 1/fan_in) (pre-activations and attention scores of order 1, so GELU's
        // exact form, the softmax and every tensor matter in parity tests), embeddings N(0, 1),
        // biases N(0, 0.1^2), LayerNorm weights 1 + N(0, 0.1^2).
        for (auto& p : m->named_parameters(true)) {
            const std::string& n = p.key();
            auto& t = p.value();
            if (n.find("LayerNorm.weight") != std::string::npos)
                t.copy_(1.0 + 0.1 * torch::randn_like(t));
            else if (n.ends_with(".bias"))
                t.copy_(0.1 * torch::randn_like(t));
            else if (n.find("embeddings") != std::string::npos || t.dim() != 2)
                t.copy_(torch::randn_like(t));
            else
                t.copy_(torch::randn_like(t) / std::sqrt(static_cast<double>(t.size(1))));
        }
        if (mp) {
            // The relative position bias of a trained MPNet is O(1); make it visible.
            for (auto& p : m->named_parameters(true))
                if (p.key().find("relative_attention_bias") != std::string::npos)
                    p.value().copy_(torch::randn_like(p.value()));
        }
    }
    MF_ASSIGN_OR_RETURN(auto tensors, module_tensors(*m, nullptr, torch::kFloat32));
    MF_RETURN_IF_ERROR(io::write_checkpoint_tensors(out, tensors.tensors));
    MF_RETURN_IF_ERROR(io::write_file_atomic(out / "config.json", text_encoder_config_json(c)));
    json modules = json::array({json{{"idx", 0},
                                     {"name", "0"},
                                     {"path", ""},
                                     {"type", "sentence_transformers.models.Transformer"}},
                                json{{"idx", 1},
                                     {"name", "1"},
                                     {"path", "1_Pooling"},
                                     {"type", "sentence_transformers.models.Pooling"}},
                                json{{"idx", 2},
                                     {"name", "2"},
                                     {"path", "2_Normalize"},
                                     {"type", "sentence_transformers.models.Normalize"}}});
    MF_RETURN_IF_ERROR(write_json(out / "modules.json", modules));
    MF_RETURN_IF_ERROR(write_json(out / "1_Pooling" / "config.json",
                                  {{"word_embedding_dimension", c.hidden_size},
                                   {"pooling_mode_cls_token", false},
                                   {"pooling_mode_mean_tokens", true},
                                   {"pooling_mode_max_tokens", false},
                                   {"pooling_mode_mean_sqrt_len_tokens", false}}));
    MF_RETURN_IF_ERROR(write_json(out / "sentence_bert_config.json",
                                  {{"max_seq_length", mp ? 384 : 256}, {"do_lower_case", false}}));
    MF_RETURN_IF_ERROR(write_json(out / "config_sentence_transformers.json",
                                  {{"__version__", {{"sentence_transformers", "2.0.0"}}},
                                   {"generator", "medforge model init"}}));
    std::string vtxt;
    for (const auto& t : vocab)
        vtxt += t + "\n";
    MF_RETURN_IF_ERROR(io::write_file_atomic(out / "vocab.txt", vtxt));
    MF_RETURN_IF_ERROR(write_json(out / "tokenizer.json", tokenizer_json(vocab, arch)));
    std::string cls = mp ? "<s>" : "[CLS]", sep = mp ? "</s>" : "[SEP]",
                pad = mp ? "<pad>" : "[PAD]", unk = mp ? "<unk>" : "[UNK]",
                mask = mp ? "<mask>" : "[MASK]";
    json tc = {{"do_lower_case", true},
               {"cls_token", cls},
               {"sep_token", sep},
               {"pad_token", pad},
               {"unk_token", unk},
               {"mask_token", mask},
               {"model_max_length", 512},
               {"strip_accents", nullptr},
               {"tokenize_chinese_chars", true},
               {"clean_up_tokenization_spaces", true},
               {"tokenizer_class", mp ? "MPNetTokenizer" : "BertTokenizer"}};
    if (mp) {
        tc["bos_token"] = cls;
        tc["eos_token"] = sep;
    }
    MF_RETURN_IF_ERROR(write_json(out / "tokenizer_config.json", tc));
    json stm = {{"cls_token", cls},
                {"sep_token", sep},
                {"pad_token", pad},
                {"unk_token", unk},
                {"mask_token", mask}};
    if (mp) {
        stm["bos_token"] = cls;
        stm["eos_token"] = sep;
    }
    MF_RETURN_IF_ERROR(write_json(out / "special_tokens_map.json", stm));
    return Status::ok_status();
}

}  // namespace mf::model
