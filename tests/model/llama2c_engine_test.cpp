// Real trained weights through the torch engine: the llama2.c aidreams260K model converted to the
// Hugging Face layout by `medforge model convert` must decode, greedily from BOS, exactly the
// tokens the independent llama2.c reference produced (tests/data/llama2c/greedy_from_bos.json), and
// its logits must match the reference's.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "io/tokenizer.h"
#include "model/generate.h"
#include "model/llama2c.h"
#include "model/llava.h"
#include "test_util.h"

namespace mf::model {
namespace {

namespace fs = std::filesystem;

TEST(Llama2cEngine, ConvertedCheckpointDecodesTheReferenceText) {
    fs::path src = mf::test::shared_data() / "models/llama2c_aidreams260K";
    ASSERT_TRUE(fs::exists(src / "aidreams260K.bin"));
    mf::test::TempDir tmp;
    ASSERT_TRUE(
        llama2c::convert_to_hf(src / "aidreams260K.bin", src / "tok512.bin", tmp.path(), nullptr)
            .ok());
    auto golden = nlohmann::json::parse(
        mf::test::read_text(mf::test::fixtures() / "llama2c/greedy_from_bos.json"));
    init_torch_threads();
    auto m = load_multimodal_lm(tmp.path(), LoadOptions{torch::kFloat32});
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    auto tok = io::load_tokenizer(tmp.path());
    ASSERT_TRUE(tok.ok()) << tok.status().to_string();

    // logits of the 30-token check sequence: argmax everywhere, all 512 at the last position
    std::vector<int64_t> seq = golden["check_sequence"].get<std::vector<int64_t>>();
    auto logits = prompt_logits(*m, seq, torch::Tensor());
    auto argmax = logits.argmax(-1);
    auto want_argmax = golden["check_argmax"].get<std::vector<int64_t>>();
    for (size_t i = 0; i < seq.size(); ++i)
        EXPECT_EQ(argmax[i].item<int64_t>(), want_argmax[i]) << i;
    auto want_last = golden["check_last_logits"].get<std::vector<float>>();
    double maxd = 0;
    for (size_t v = 0; v < want_last.size(); ++v)
        maxd = std::max(maxd, std::abs(double(logits[-1][v].item<float>()) - want_last[v]));
    EXPECT_LT(maxd, 1e-3);

    // greedy generation with the KV cache from BOS
    GenerateRequest req;
    req.prompt_ids = golden["prompt_ids"].get<std::vector<int64_t>>();
    req.sampling.max_tokens = static_cast<int>(golden["generated_ids"].size());
    req.sampling.ignore_eos = true;
    auto r =
        generate(*m, req, [&](const std::vector<int32_t>& t) { return (*tok)->decode(t, true); });
    std::vector<int64_t> got(r.tokens.begin(), r.tokens.end());
    EXPECT_EQ(got, golden["generated_ids"].get<std::vector<int64_t>>());
    EXPECT_EQ(r.text.rfind("\"Echoes of vectors unfold, a gentle hum of precision", 0), 0u)
        << r.text;
}

}  // namespace
}  // namespace mf::model
