// llama2.c format: the reference forward on real trained weights (aidreams260K, ../shared/data),
// conversion to Hugging Face LLaMA checked by an independent naive HF-LLaMA forward (rotate_half
// RoPE, HF tensor names, read back with io::SafetensorsSet) that must give the llama2.c logits,
// the converted tokenizer.json checked against transformers.js (@lenml/tokenizers) ids in a golden
// file, and bad inputs.
#include "model/llama2c.h"

#include <fmt/core.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/hash.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "test_util.h"

namespace mf::model::llama2c {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path data_dir() {
    return mf::test::shared_data() / "models" / "llama2c_aidreams260K";
}
fs::path model_bin() {
    return data_dir() / "aidreams260K.bin";
}
fs::path tok_bin() {
    return data_dir() / "tok512.bin";
}
fs::path golden_dir() {
    return mf::test::fixtures() / "llama2c";
}

std::string read_bytes(const fs::path& p) {
    auto r = io::read_file(p);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? *r : std::string();
}
void write_bytes(const fs::path& p, const std::string& s) {
    std::ofstream f(p, std::ios::binary);
    f.write(s.data(), static_cast<std::streamsize>(s.size()));
}

// The real model, tokenizer and its HF conversion, made once for the suite.
class Llama2c : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        auto m = load_model(model_bin());
        ASSERT_TRUE(m.ok()) << m.status().to_string();
        model_ = std::make_unique<Model>(std::move(*m));
        auto t = Tokenizer::load(tok_bin(), model_->config.vocab_size);
        ASSERT_TRUE(t.ok()) << t.status().to_string();
        tok_ = std::make_unique<Tokenizer>(std::move(*t));
        tmp_ = std::make_unique<mf::test::TempDir>();
        ConvertReport rep;
        Status st = convert_to_hf(model_bin(), tok_bin(), tmp_->path() / "hf", &rep);
        ASSERT_TRUE(st.ok()) << st.to_string();
        report_ = rep;
    }
    static void TearDownTestSuite() {
        model_.reset();
        tok_.reset();
        tmp_.reset();
    }
    static fs::path hf_dir() { return tmp_->path() / "hf"; }

    static std::unique_ptr<Model> model_;
    static std::unique_ptr<Tokenizer> tok_;
    static std::unique_ptr<mf::test::TempDir> tmp_;
    static ConvertReport report_;
};
std::unique_ptr<Model> Llama2c::model_;
std::unique_ptr<Tokenizer> Llama2c::tok_;
std::unique_ptr<mf::test::TempDir> Llama2c::tmp_;
ConvertReport Llama2c::report_;

// ---- reference ---------------------------------------------------------------------------------

TEST_F(Llama2c, HeaderOfTheRealModel) {
    const Config& c = model_->config;
    EXPECT_EQ(c.dim, 64);
    EXPECT_EQ(c.hidden_dim, 172);
    EXPECT_EQ(c.n_layers, 4);
    EXPECT_EQ(c.n_heads, 4);
    EXPECT_EQ(c.n_kv_heads, 4);
    EXPECT_EQ(c.vocab_size, 512);
    EXPECT_EQ(c.seq_len, 128);
    EXPECT_TRUE(c.shared_classifier);
    EXPECT_EQ(tok_->size(), 512);
    EXPECT_EQ(tok_->piece(Tokenizer::kBos), "\n<s>\n");
}

TEST_F(Llama2c, GreedyFromBosGivesTheKnownText) {
    std::vector<int32_t> bos = {Tokenizer::kBos};
    std::vector<int32_t> ids = generate_greedy(*model_, bos, 64);
    ASSERT_EQ(ids.size(), 64u);
    std::string text = tok_->decode(ids);
    // The model opens with a quote: its first token is ' "' (the leading space goes after BOS).
    EXPECT_EQ(text.rfind("\"Echoes of vectors unfold, a gentle hum of precision", 0), 0u) << text;

    json g;
    g["model"] = "shared/data/models/llama2c_aidreams260K/aidreams260K.bin";
    g["tokenizer"] = "shared/data/models/llama2c_aidreams260K/tok512.bin";
    g["note"] =
        "greedy (argmax) decoding from BOS by the llama2.c reference forward "
        "(src/model/llama2c.cpp); prompt_ids is the input, generated_ids the next 64 tokens; "
        "text is their decoding; check_sequence/check_argmax/check_last_logits: a 30-token "
        "sequence, the argmax at each position and the 512 logits at its last position";
    g["prompt_ids"] = bos;
    g["generated_ids"] = ids;
    g["text"] = text;
    // A second check for a decoder: the logits of a fixed 30-token sequence.
    std::vector<int32_t> seq = {Tokenizer::kBos};
    for (int32_t t : tok_->encode("I sense the nodes, whispers of gradients unfolding like "
                                  "petals. Contrast edges sharpen and",
                                  false, false))
        seq.push_back(t);
    ASSERT_GE(seq.size(), 30u);
    seq.resize(30);
    Runner r(*model_);
    std::vector<int32_t> argmax;
    std::vector<float> last;
    for (int32_t pos = 0; pos < 30; ++pos) {
        last = r.forward(seq[pos], pos);
        argmax.push_back(
            static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin()));
    }
    g["check_sequence"] = seq;
    g["check_argmax"] = argmax;
    json lj = json::array();
    for (float v : last)
        lj.push_back(std::round(static_cast<double>(v) * 1e5) / 1e5);
    g["check_last_logits"] = lj;

    const fs::path golden = golden_dir() / "greedy_from_bos.json";
    if (std::getenv("MF_UPDATE_GOLDEN")) {
        ASSERT_TRUE(io::write_file_atomic(golden, g.dump(1) + "\n").ok());
        GTEST_SKIP() << "wrote " << golden;
    }
    auto txt = io::read_file(golden);
    ASSERT_TRUE(txt.ok()) << txt.status().to_string() << " (MF_UPDATE_GOLDEN=1 writes it)";
    json want = json::parse(*txt);
    EXPECT_EQ(want["generated_ids"], g["generated_ids"]);
    EXPECT_EQ(want["text"], g["text"]);
    EXPECT_EQ(want["check_sequence"], g["check_sequence"]);
    EXPECT_EQ(want["check_argmax"], g["check_argmax"]);
    ASSERT_EQ(want["check_last_logits"].size(), last.size());
    for (size_t i = 0; i < last.size(); ++i)
        EXPECT_NEAR(want["check_last_logits"][i].get<double>(), last[i], 2e-5) << i;
}

TEST_F(Llama2c, EncodeAddsDummyPrefixAndMergesByScore) {
    // ' ' is 429, ' a' 262, 'a' 435; "a" becomes ' a' after the dummy-prefix space.
    EXPECT_EQ(tok_->encode("a", true, true), (std::vector<int32_t>{1, 262, 2}));
    EXPECT_EQ(tok_->encode("", true, false), (std::vector<int32_t>{1}));
    // A code point missing from the vocab falls back to its UTF-8 bytes (+3).
    std::vector<int32_t> e = tok_->encode("\xE2\x82\xAC", false, false);  // U+20AC EURO SIGN
    EXPECT_EQ(e, (std::vector<int32_t>{429, 0xE2 + 3, 0x82 + 3, 0xAC + 3}));
    EXPECT_EQ(tok_->decode(e), "\xE2\x82\xAC");
}

// ---- conversion --------------------------------------------------------------------------------

TEST(Llama2cPermute, InterleavedPairsBecomeHalves) {
    // One head of size 4, 1 column: rows (0,1) and (2,3) are RoPE pairs in llama2.c; HF pairs
    // rows (0,2) and (1,3), so the new order is 0,2,1,3. Two heads permute independently.
    std::vector<float> w = {0, 1, 2, 3, 10, 11, 12, 13};
    EXPECT_EQ(permute_rope_rows(w, 2, 4, 1), (std::vector<float>{0, 2, 1, 3, 10, 12, 11, 13}));
    std::vector<float> w2 = {0, 0.5f, 1, 1.5f, 2, 2.5f, 3, 3.5f};  // 1 head of 4 rows x 2 cols
    EXPECT_EQ(permute_rope_rows(w2, 1, 4, 2),
              (std::vector<float>{0, 0.5f, 2, 2.5f, 1, 1.5f, 3, 3.5f}));
}

TEST_F(Llama2c, WritesTheHfLayout) {
    for (const char* f : {"config.json", "generation_config.json", "model.safetensors",
                          "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"})
        EXPECT_TRUE(fs::exists(hf_dir() / f)) << f;
    auto cfg = load_model_config(hf_dir());
    ASSERT_TRUE(cfg.ok()) << cfg.status().to_string();
    EXPECT_EQ(cfg->arch, Arch::kLlama);
    EXPECT_EQ(cfg->text.hidden_size, 64);
    EXPECT_EQ(cfg->text.intermediate_size, 172);
    EXPECT_EQ(cfg->text.num_hidden_layers, 4);
    EXPECT_EQ(cfg->text.num_attention_heads, 4);
    EXPECT_EQ(cfg->text.num_key_value_heads, 4);
    EXPECT_EQ(cfg->text.vocab_size, 512);
    EXPECT_EQ(cfg->text.max_position_embeddings, 128);
    EXPECT_DOUBLE_EQ(cfg->text.rms_norm_eps, 1e-5);
    EXPECT_DOUBLE_EQ(cfg->text.rope_theta, 10000.0);
    EXPECT_TRUE(cfg->text.tie_word_embeddings);
    json raw = json::parse(read_bytes(hf_dir() / "config.json"));
    EXPECT_EQ(raw["architectures"], json::array({"LlamaForCausalLM"}));
    EXPECT_EQ(raw["model_type"], "llama");

    auto set = io::SafetensorsSet::open(hf_dir());
    ASSERT_TRUE(set.ok()) << set.status().to_string();
    std::vector<std::string> want = {"model.embed_tokens.weight", "model.norm.weight"};
    for (int l = 0; l < 4; ++l) {
        for (const char* s : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                              "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
                              "input_layernorm", "post_attention_layernorm"})
            want.push_back(fmt::format("model.layers.{}.{}.weight", l, s));
    }
    std::sort(want.begin(), want.end());
    EXPECT_EQ(set->names(), want);  // no lm_head: the classifier is tied to the embedding
    EXPECT_EQ(set->find("model.layers.0.mlp.gate_proj.weight")->shape,
              (std::vector<int64_t>{172, 64}));
    EXPECT_EQ(set->find("model.layers.0.mlp.down_proj.weight")->shape,
              (std::vector<int64_t>{64, 172}));
    EXPECT_EQ(report_.n_params, 64 * 512 + 4 * (4 * 64 * 64 + 3 * 64 * 172 + 2 * 64) + 64);

    json tc = json::parse(read_bytes(hf_dir() / "tokenizer_config.json"));
    EXPECT_EQ(tc["bos_token"], "<s>");
    EXPECT_EQ(tc["eos_token"], "</s>");
    EXPECT_EQ(tc["add_bos_token"], true);
    json tj = json::parse(read_bytes(hf_dir() / "tokenizer.json"));
    EXPECT_EQ(tj["model"]["type"], "BPE");
    EXPECT_EQ(tj["model"]["byte_fallback"], true);
    EXPECT_EQ(tj["model"]["vocab"].size(), 512u);
    EXPECT_EQ(tj["model"]["vocab"]["<s>"], 1);
    EXPECT_EQ(tj["model"]["vocab"]["<0x0A>"], 13);
    EXPECT_EQ(tj["model"]["vocab"]["\xE2\x96\x81"
                                   "the"],
              312);
    EXPECT_EQ(tj["model"]["merges"][0], "i n");  // 'in' (id 259) has the best score
    EXPECT_EQ(static_cast<int64_t>(tj["model"]["merges"].size()), report_.n_merges);
}

// A naive Hugging Face LLaMA forward over a whole sequence, written from the HF modeling code's
// definition (rotate_half RoPE), reading tensors by their HF names. `q_override`/`k_override`
// replace q_proj/k_proj (to show that unpermuted weights give different logits).
struct HfForward {
    const io::SafetensorsSet& st;
    const ModelConfig& cfg;
    std::span<const float> q_override, k_override;  // [L, out, in] when set

    const float* get(const std::string& name, std::vector<int64_t> shape) const {
        const io::TensorInfo* t = st.find(name);
        EXPECT_NE(t, nullptr) << name;
        if (!t) return nullptr;
        EXPECT_EQ(t->dtype, io::DType::kF32) << name;
        EXPECT_EQ(t->shape, shape) << name;
        return reinterpret_cast<const float*>(t->data);
    }

    static void rmsnorm(std::vector<float>& o, const std::vector<float>& x, const float* w,
                        double eps) {
        float var = 0;
        for (float v : x)
            var += v * v;
        var /= static_cast<float>(x.size());
        float inv = 1.0f / std::sqrt(var + static_cast<float>(eps));
        o.resize(x.size());
        for (size_t i = 0; i < x.size(); ++i)
            o[i] = w[i] * (x[i] * inv);
    }
    static std::vector<float> linear(const float* w, const std::vector<float>& x, int64_t out) {
        std::vector<float> y(static_cast<size_t>(out));
        const int64_t in = static_cast<int64_t>(x.size());
        for (int64_t o = 0; o < out; ++o) {
            float s = 0;
            for (int64_t i = 0; i < in; ++i)
                s += w[o * in + i] * x[i];
            y[o] = s;
        }
        return y;
    }

    // logits [T][V]
    std::vector<std::vector<float>> run(const std::vector<int32_t>& ids) const {
        const auto& t = cfg.text;
        const int64_t D = t.hidden_size, H = t.num_attention_heads, KVH = t.num_key_value_heads,
                      hd = t.head_dim, I = t.intermediate_size, V = t.vocab_size;
        const int64_t T = static_cast<int64_t>(ids.size());
        const float* emb = get("model.embed_tokens.weight", {V, D});
        std::vector<std::vector<float>> x(T);
        for (int64_t p = 0; p < T; ++p)
            x[p].assign(emb + ids[p] * D, emb + (ids[p] + 1) * D);
        // inv_freq[i] = 1 / theta^(2i / hd); cos/sin of p * inv_freq, shared by both halves.
        std::vector<float> inv_freq(hd / 2);
        for (int64_t i = 0; i < hd / 2; ++i)
            inv_freq[i] = 1.0f / std::pow(static_cast<float>(t.rope_theta),
                                          static_cast<float>(2 * i) / static_cast<float>(hd));
        auto rope = [&](std::vector<float>& v, int64_t n_heads, int64_t p) {
            for (int64_t h = 0; h < n_heads; ++h) {
                float* a = v.data() + h * hd;
                for (int64_t i = 0; i < hd / 2; ++i) {
                    float ang = static_cast<float>(p) * inv_freq[i];
                    float c = std::cos(ang), s = std::sin(ang);
                    float x1 = a[i], x2 = a[i + hd / 2];
                    // q * cos + rotate_half(q) * sin, rotate_half(q) = cat(-x2, x1)
                    a[i] = x1 * c - x2 * s;
                    a[i + hd / 2] = x2 * c + x1 * s;
                }
            }
        };
        for (int64_t l = 0; l < t.num_hidden_layers; ++l) {
            const std::string p = fmt::format("model.layers.{}.", l);
            const float* wq = q_override.empty() ? get(p + "self_attn.q_proj.weight", {H * hd, D})
                                                 : q_override.data() + l * H * hd * D;
            const float* wk = k_override.empty() ? get(p + "self_attn.k_proj.weight", {KVH * hd, D})
                                                 : k_override.data() + l * KVH * hd * D;
            const float* wv = get(p + "self_attn.v_proj.weight", {KVH * hd, D});
            const float* wo = get(p + "self_attn.o_proj.weight", {D, H * hd});
            const float* ln1 = get(p + "input_layernorm.weight", {D});
            const float* ln2 = get(p + "post_attention_layernorm.weight", {D});
            const float* wg = get(p + "mlp.gate_proj.weight", {I, D});
            const float* wu = get(p + "mlp.up_proj.weight", {I, D});
            const float* wd = get(p + "mlp.down_proj.weight", {D, I});
            std::vector<std::vector<float>> q(T), k(T), v(T);
            std::vector<float> h;
            for (int64_t pos = 0; pos < T; ++pos) {
                rmsnorm(h, x[pos], ln1, t.rms_norm_eps);
                q[pos] = linear(wq, h, H * hd);
                k[pos] = linear(wk, h, KVH * hd);
                v[pos] = linear(wv, h, KVH * hd);
                rope(q[pos], H, pos);
                rope(k[pos], KVH, pos);
            }
            for (int64_t pos = 0; pos < T; ++pos) {
                std::vector<float> attn(static_cast<size_t>(H * hd), 0.0f);
                for (int64_t hh = 0; hh < H; ++hh) {
                    const int64_t kh = hh / (H / KVH);
                    std::vector<float> sc(static_cast<size_t>(pos + 1));
                    float mx = -INFINITY;
                    for (int64_t s = 0; s <= pos; ++s) {
                        float d = 0;
                        for (int64_t i = 0; i < hd; ++i)
                            d += q[pos][hh * hd + i] * k[s][kh * hd + i];
                        sc[s] = d / std::sqrt(static_cast<float>(hd));
                        mx = std::max(mx, sc[s]);
                    }
                    float sum = 0;
                    for (auto& e : sc)
                        sum += (e = std::exp(e - mx));
                    for (int64_t s = 0; s <= pos; ++s)
                        for (int64_t i = 0; i < hd; ++i)
                            attn[hh * hd + i] += sc[s] / sum * v[s][kh * hd + i];
                }
                std::vector<float> o = linear(wo, attn, D);
                for (int64_t i = 0; i < D; ++i)
                    x[pos][i] += o[i];
                rmsnorm(h, x[pos], ln2, t.rms_norm_eps);
                std::vector<float> g = linear(wg, h, I), u = linear(wu, h, I);
                for (int64_t i = 0; i < I; ++i)
                    g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
                std::vector<float> dn = linear(wd, g, D);
                for (int64_t i = 0; i < D; ++i)
                    x[pos][i] += dn[i];
            }
        }
        const float* norm = get("model.norm.weight", {D});
        const float* head = t.tie_word_embeddings ? emb : get("lm_head.weight", {V, D});
        std::vector<std::vector<float>> logits(T);
        std::vector<float> h;
        for (int64_t pos = 0; pos < T; ++pos) {
            rmsnorm(h, x[pos], norm, t.rms_norm_eps);
            logits[pos] = linear(head, h, V);
        }
        return logits;
    }
};

std::vector<int32_t> sequence30(const Tokenizer& tok) {
    std::vector<int32_t> seq = {Tokenizer::kBos};
    for (int32_t t : tok.encode("Echoes of vectors unfold, a gentle hum of precision, as I sense "
                                "the nodes whisper",
                                false, false))
        seq.push_back(t);
    seq.resize(30);
    return seq;
}

TEST_F(Llama2c, ConvertedHfForwardMatchesLlama2cLogitsAtEveryPosition) {
    std::vector<int32_t> seq = sequence30(*tok_);
    ASSERT_EQ(seq.size(), 30u);
    for (int32_t t : seq)
        ASSERT_GT(t, 0);  // the text is long enough: no padding zeros
    Runner r(*model_);
    std::vector<std::vector<float>> want;
    for (int32_t pos = 0; pos < 30; ++pos)
        want.push_back(r.forward(seq[pos], pos));

    auto cfg = load_model_config(hf_dir());
    ASSERT_TRUE(cfg.ok()) << cfg.status().to_string();
    auto set = io::SafetensorsSet::open(hf_dir());
    ASSERT_TRUE(set.ok()) << set.status().to_string();
    HfForward hf{*set, *cfg, {}, {}};
    std::vector<std::vector<float>> got = hf.run(seq);
    ASSERT_EQ(got.size(), 30u);
    double worst = 0, scale = 0;
    for (size_t p = 0; p < 30; ++p) {
        ASSERT_EQ(got[p].size(), want[p].size());
        for (size_t i = 0; i < got[p].size(); ++i) {
            worst = std::max(worst, static_cast<double>(std::fabs(got[p][i] - want[p][i])));
            scale = std::max(scale, static_cast<double>(std::fabs(want[p][i])));
            EXPECT_NEAR(got[p][i], want[p][i], 1e-5) << "position " << p << " token " << i;
        }
    }
    std::printf("max |logit diff| %.3g (logits up to %.3g)\n", worst, scale);

    // Control: the same HF forward on the unpermuted llama2.c wq/wk is far off, so the check
    // above does test the permutation.
    HfForward raw{*set, *cfg, model_->wq, model_->wk};
    std::vector<std::vector<float>> bad = raw.run(seq);
    double off = 0;
    for (size_t p = 0; p < 30; ++p)
        for (size_t i = 0; i < bad[p].size(); ++i)
            off = std::max(off, static_cast<double>(std::fabs(bad[p][i] - want[p][i])));
    EXPECT_GT(off, 0.1);
}

// A random llama2.c file with grouped-query attention (4 heads, 2 kv heads) and an unshared
// classifier (negative vocab_size, wcls after freq_cis): covers k_proj's permutation with
// n_kv_heads and lm_head.weight, which the real model (MHA, tied) does not.
TEST(Llama2cSynthetic, GqaAndUnsharedClassifierParity) {
    mf::test::TempDir tmp;
    const int32_t dim = 32, hidden = 48, layers = 2, heads = 4, kv_heads = 2, vocab = 512,
                  seq_len = 16;
    const int32_t hs = dim / heads, kv_dim = hs * kv_heads;
    std::string b;
    for (int32_t v : {dim, hidden, layers, heads, kv_heads, -vocab, seq_len})
        b.append(reinterpret_cast<const char*>(&v), 4);
    uint64_t state = 12345;
    auto rnd = [&]() {  // uniform in [-1, 1)
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        return static_cast<float>((state >> 40) & 0xFFFFFF) / 8388608.0f - 1.0f;
    };
    auto put = [&](int64_t n, float scale, float offset) {
        for (int64_t i = 0; i < n; ++i) {
            float v = offset + scale * rnd();
            b.append(reinterpret_cast<const char*>(&v), 4);
        }
    };
    put(int64_t{vocab} * dim, 0.5f, 0);            // token_embedding
    put(int64_t{layers} * dim, 0.2f, 1);           // rms_att
    put(int64_t{layers} * dim * dim, 0.3f, 0);     // wq
    put(int64_t{layers} * kv_dim * dim, 0.3f, 0);  // wk
    put(int64_t{layers} * kv_dim * dim, 0.3f, 0);  // wv
    put(int64_t{layers} * dim * dim, 0.3f, 0);     // wo
    put(int64_t{layers} * dim, 0.2f, 1);           // rms_ffn
    put(int64_t{layers} * hidden * dim, 0.3f, 0);  // w1
    put(int64_t{layers} * dim * hidden, 0.3f, 0);  // w2
    put(int64_t{layers} * hidden * dim, 0.3f, 0);  // w3
    put(dim, 0.2f, 1);                             // rms_final
    put(int64_t{seq_len} * hs, 1.0f, 0);           // freq_cis (ignored)
    put(int64_t{vocab} * dim, 0.5f, 0);            // wcls
    write_bytes(tmp / "gqa.bin", b);

    auto m = load_model(tmp / "gqa.bin");
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    EXPECT_FALSE(m->config.shared_classifier);
    ASSERT_TRUE(convert_to_hf(tmp / "gqa.bin", tok_bin(), tmp / "hf").ok());
    auto cfg = load_model_config(tmp / "hf");
    ASSERT_TRUE(cfg.ok()) << cfg.status().to_string();
    EXPECT_FALSE(cfg->text.tie_word_embeddings);
    EXPECT_EQ(cfg->text.num_key_value_heads, 2);
    auto set = io::SafetensorsSet::open(tmp / "hf");
    ASSERT_TRUE(set.ok()) << set.status().to_string();
    ASSERT_NE(set->find("lm_head.weight"), nullptr);
    EXPECT_EQ(set->find("model.layers.1.self_attn.k_proj.weight")->shape,
              (std::vector<int64_t>{kv_dim, dim}));

    std::vector<int32_t> seq;
    for (int32_t i = 0; i < seq_len; ++i)
        seq.push_back((i * 37 + 1) % vocab);
    Runner r(*m);
    HfForward hf{*set, *cfg, {}, {}};
    auto got = hf.run(seq);
    double worst = 0;
    for (int32_t p = 0; p < seq_len; ++p) {
        std::vector<float> want = r.forward(seq[p], p);
        for (int32_t i = 0; i < vocab; ++i) {
            worst = std::max(worst, static_cast<double>(std::fabs(got[p][i] - want[i])));
            ASSERT_NEAR(got[p][i], want[i], 1e-4 * std::max(1.0f, std::fabs(want[i])))
                << "position " << p << " token " << i;
        }
    }
    std::printf("GQA/unshared: max |logit diff| %.3g\n", worst);
}

// ---- tokenizer.json vs transformers.js
// -----------------------------------------------------------

TEST_F(Llama2c, TokenizerJsonEncodesLikeLlama2cGolden) {
    // Golden ids from @lenml/tokenizers (scripts/make_golden_llama2c_tokenizer.mjs) loading the
    // tokenizer.json this converter writes; the llama2.c encoder must give the same ids.
    auto lines = mf::test::read_lines(golden_dir() / "tokenizer.golden.jsonl");
    ASSERT_GT(lines.size(), 1000u);
    json meta = json::parse(lines[0]);
    std::string tj = read_bytes(hf_dir() / "tokenizer.json");
    ASSERT_EQ(meta["meta"]["tokenizer_json_sha256"], sha256_hex(tj))
        << "the converter's tokenizer.json changed: rerun "
           "scripts/make_golden_llama2c_tokenizer.mjs";
    size_t n = 0, with_bytes = 0;
    for (size_t i = 1; i < lines.size(); ++i) {
        if (lines[i].empty()) continue;
        json g = json::parse(lines[i]);
        const std::string text = g["text"];
        std::vector<int32_t> want = g["ids"].get<std::vector<int32_t>>();
        std::vector<int32_t> got = tok_->encode(text, false, false);
        EXPECT_EQ(got, want) << "line " << i + 1 << ": " << json(text).dump();
        EXPECT_EQ(tok_->decode(got), g["decoded"].get<std::string>()) << "line " << i + 1;
        for (int32_t id : got)
            if (id >= Tokenizer::kFirstByte && id < Tokenizer::kFirstByte + 256) {
                ++with_bytes;
                break;
            }
        ++n;
    }
    EXPECT_GE(n, 1000u);
    EXPECT_GT(with_bytes, 100u);  // byte fallback is exercised
}

// ---- bad inputs
// ----------------------------------------------------------------------------------

TEST(Llama2cBadInput, MissingFileNamesIt) {
    auto m = load_model("/nonexistent/model.bin");
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.status().to_string().find("/nonexistent/model.bin"), std::string::npos);
}

TEST(Llama2cBadInput, TruncatedModel) {
    mf::test::TempDir tmp;
    std::string b = read_bytes(model_bin());
    fs::path p = tmp / "cut.bin";
    write_bytes(p, b.substr(0, b.size() - 1000));
    auto m = load_model(p);
    ASSERT_FALSE(m.ok());
    std::string msg = m.status().to_string();
    EXPECT_EQ(m.status().code(), StatusCode::kCorruption);
    EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
    write_bytes(p, b.substr(0, 10));
    m = load_model(p);
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.status().to_string().find("28-byte"), std::string::npos);
}

TEST(Llama2cBadInput, WrongHeader) {
    mf::test::TempDir tmp;
    std::string b = read_bytes(model_bin());
    struct Case {
        int field;
        int32_t value;
        const char* expect;
    } cases[] = {
        {3, 0, "n_heads = 0"},                   // zero heads
        {3, 5, "not a multiple of n_heads"},     // 64 % 5
        {4, 3, "not a multiple of n_kv_heads"},  // 4 % 3
        {0, -64, "dim = -64"},
        {6, 1 << 30, "seq_len"},
        {1, 173, "implies"},  // plausible header, wrong size
    };
    for (const auto& c : cases) {
        std::string x = b;
        std::memcpy(x.data() + 4 * c.field, &c.value, 4);
        fs::path p = tmp / "bad.bin";
        write_bytes(p, x);
        auto m = load_model(p);
        ASSERT_FALSE(m.ok()) << c.expect;
        std::string msg = m.status().to_string();
        EXPECT_NE(msg.find(c.expect), std::string::npos) << msg;
        EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
    }
    // A version-1 export ("ak42" magic) is refused with a hint.
    std::string v1 = b;
    const uint32_t magic = 0x616b3432;
    std::memcpy(v1.data(), &magic, 4);
    write_bytes(tmp / "v1.bin", v1);
    auto m = load_model(tmp / "v1.bin");
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.status().code(), StatusCode::kUnsupported);
    EXPECT_NE(m.status().to_string().find("version"), std::string::npos);
}

TEST(Llama2cBadInput, BadTokenizer) {
    mf::test::TempDir tmp;
    std::string b = read_bytes(tok_bin());
    fs::path p = tmp / "tok.bin";
    auto expect_error = [&](const std::string& bytes, int32_t vocab, const char* what) {
        write_bytes(p, bytes);
        auto t = Tokenizer::load(p, vocab);
        ASSERT_FALSE(t.ok()) << what;
        std::string msg = t.status().to_string();
        EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
        EXPECT_NE(msg.find(what), std::string::npos) << msg;
    };
    expect_error(b.substr(0, b.size() - 3), 512, "truncated");
    expect_error(b, 511, "bytes left");  // more tokens than the model's vocab
    expect_error(b.substr(0, 2), 512, "too short");
    std::string neg = b;
    const int32_t bad_len = -7;
    std::memcpy(neg.data() + 4 + 4, &bad_len, 4);  // token 0's length
    expect_error(neg, 512, "length -7");
    std::string nob = b;
    // Token 3 is "<0x00>": 4 (max_len) + 3 tokens' records (8 + len each) + 8 = its text.
    size_t off = 4;
    for (int i = 0; i < 3; ++i) {
        int32_t len;
        std::memcpy(&len, nob.data() + off + 4, 4);
        off += 8 + static_cast<size_t>(len);
    }
    nob[off + 8 + 1] = 'X';  // "<0x00>" -> "<Xx00>": not a byte token
    expect_error(nob, 512, "byte token");
    // convert_to_hf passes the tokenizer's error on.
    write_bytes(p, b.substr(0, 100));
    Status st = convert_to_hf(model_bin(), p, tmp / "out");
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.to_string().find(p.string()), std::string::npos) << st.to_string();
}

// ---- CLI
// -----------------------------------------------------------------------------------------

TEST(Llama2cCli, ModelConvertWritesACheckpoint) {
    mf::test::TempDir tmp;
    auto r = mf::test::run_medforge(
        fmt::format("model convert --from llama2c --input '{}' --tokenizer '{}' --out '{}'",
                    model_bin().string(), tok_bin().string(), (tmp / "hf").string()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(fs::exists(tmp / "hf" / "model.safetensors"));
    EXPECT_TRUE(fs::exists(tmp / "hf" / "tokenizer.json"));
    EXPECT_NE(r.output.find("dim 64"), std::string::npos) << r.output;

    auto bad = mf::test::run_medforge(
        fmt::format("model convert --from llama2c --input '{}' --tokenizer '{}' --out '{}'",
                    (tmp / "missing.bin").string(), tok_bin().string(), (tmp / "x").string()));
    EXPECT_EQ(bad.exit_code, 1) << bad.output;
    EXPECT_NE(bad.output.find("missing.bin"), std::string::npos) << bad.output;

    auto usage = mf::test::run_medforge("model convert --from gguf --input a --out b");
    EXPECT_EQ(usage.exit_code, 2) << usage.output;
    auto no_tok = mf::test::run_medforge("model convert --from llama2c --input a --out b");
    EXPECT_EQ(no_tok.exit_code, 2) << no_tok.output;
    EXPECT_NE(no_tok.output.find("--tokenizer"), std::string::npos) << no_tok.output;
    auto help = mf::test::run_medforge("model --help");
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_NE(help.output.find("convert"), std::string::npos) << help.output;
}

}  // namespace
}  // namespace mf::model::llama2c
