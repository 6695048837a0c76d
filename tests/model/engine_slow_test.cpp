// Slow model checks (CTest label "slow").
#include <gtest/gtest.h>

#include "model/model_test_util.h"

namespace mf::model {
namespace {

using namespace mf::model::testing;

// Eight images in one prompt (the floor), checked against the reference at the last token.
TEST(Engine, EightImagesInOnePrompt) {
    if (!have_numpy()) GTEST_SKIP() << "needs /usr/bin/python3 with numpy";
    init_torch_threads();
    mf::test::TempDir tmp;
    fs::path dir = make_model(tmp, "llava-qwen2");
    auto m = load_multimodal_lm(dir, LoadOptions{torch::kFloat32});
    ASSERT_TRUE(m.ok());
    std::vector<int64_t> ids = {5};
    for (int i = 0; i < 8; ++i) {
        ids.push_back(kImageMarker);
        ids.push_back(10 + i);
    }
    torch::manual_seed(9);
    auto pixels = torch::randn({8, 3, 336, 336});
    auto got = prompt_logits(*m, ids, pixels);
    EXPECT_EQ(got.size(0), 1 + 8 * 577);
    auto ref = reference_logits(dir, tmp.path(), ids, pixels, (*m)->lm->config().vocab_size);
    EXPECT_LT(max_abs_diff(got[-1], ref[-1]), 1e-4);
}

}  // namespace
}  // namespace mf::model
