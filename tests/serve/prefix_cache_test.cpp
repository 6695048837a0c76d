// serve::PrefixCache: whole-block prefix matching, the keys/values it hands back against a fresh
// prefill, the limit, the byte budget and its eviction order.
#include "serve/prefix_cache.h"

#include <gtest/gtest.h>

#include "model/model_test_util.h"

namespace mf::serve {
namespace {

using namespace mf::model::testing;
using model::KVCache;

constexpr int64_t kB = PrefixCache::kBlock;

struct Fixture {
    mf::test::TempDir tmp;
    model::MultimodalLM m{nullptr};
    Fixture() {
        auto r = model::load_multimodal_lm(make_model(tmp, "qwen2"),
                                           model::LoadOptions{torch::kFloat32});
        EXPECT_TRUE(r.ok()) << r.status().to_string();
        m = *r;
    }
    model::CausalLM& lm() { return m->lm; }
    KVCache cache() { return KVCache::create(lm()->config(), 1, 96, torch::kFloat32); }
    // prefills ids[from, ...) after whatever the cache holds; returns the hidden states
    torch::Tensor prefill(const std::vector<int64_t>& ids, KVCache& c) {
        std::vector<int64_t> rest(ids.begin() + c.length, ids.end());
        return lm()->forward_hidden(lm()->embed(torch::tensor(rest).view({1, -1})), &c);
    }
    size_t block_bytes() {
        auto c = cache();
        return 2 * c.k.size() * (c.k[0].numel() / c.capacity) * kB * c.k[0].element_size();
    }
};

std::vector<int64_t> ids_from(int seed, int n, int vocab) {
    return random_ids(n, vocab - 40, static_cast<uint64_t>(seed));
}

TEST(PrefixCache, RestoresTheLongestSharedWholeBlockPrefix) {
    torch::NoGradGuard ng;
    Fixture f;
    const int V = static_cast<int>(f.lm()->config().vocab_size);
    PrefixCache pc(size_t{64} << 20);
    auto a = ids_from(1, 50, V);
    KVCache ca = f.cache();
    f.prefill(a, ca);
    pc.insert(a, 50, ca);
    EXPECT_EQ(pc.blocks(), 3u);  // 48 of 50 positions: whole blocks only
    EXPECT_EQ(pc.bytes(), 3 * f.block_bytes());

    // b shares a's first 40 tokens: blocks 0 and 1 match, block 2 differs at position 40
    auto b = a;
    b.resize(40);
    auto tail = ids_from(2, 20, V);
    b.insert(b.end(), tail.begin(), tail.end());
    KVCache cb = f.cache();
    ASSERT_EQ(pc.restore(b, 59, cb), 2 * kB);
    EXPECT_EQ(cb.length, 2 * kB);
    for (size_t li = 0; li < cb.k.size(); ++li) {
        EXPECT_TRUE(torch::equal(cb.k[li].narrow(2, 0, 2 * kB), ca.k[li].narrow(2, 0, 2 * kB)));
        EXPECT_TRUE(torch::equal(cb.v[li].narrow(2, 0, 2 * kB), ca.v[li].narrow(2, 0, 2 * kB)));
    }
    // the rest of b on top of the restored prefix equals a fresh prefill of all of b
    auto got = f.prefill(b, cb);
    KVCache fresh = f.cache();
    auto want = f.prefill(b, fresh).narrow(1, 2 * kB, 60 - 2 * kB);
    EXPECT_LT((got - want).abs().max().item<float>(), 1e-5f);
    EXPECT_EQ(cb.length, 60);

    // the limit: a prompt's last position is always run (its logits give the first token)
    KVCache c1 = f.cache();
    EXPECT_EQ(pc.restore(a, 47, c1), 2 * kB);
    KVCache c2 = f.cache();
    EXPECT_EQ(pc.restore(a, 48, c2), 3 * kB);
    // a cache that already holds positions is left alone; an unrelated prompt finds nothing
    EXPECT_EQ(pc.restore(a, 48, c2), 0);
    KVCache c3 = f.cache();
    EXPECT_EQ(pc.restore(ids_from(3, 40, V), 39, c3), 0);
    EXPECT_EQ(c3.length, 0);
    // a different first token changes every block's chain hash
    auto shifted = a;
    shifted[0] = (shifted[0] + 1) % (V - 40);
    KVCache c4 = f.cache();
    EXPECT_EQ(pc.restore(shifted, 48, c4), 0);
}

TEST(PrefixCache, EvictsLeastRecentlyUsedChildrenBeforeParents) {
    torch::NoGradGuard ng;
    Fixture f;
    const int V = static_cast<int>(f.lm()->config().vocab_size);
    auto a = ids_from(4, 48, V), c = ids_from(5, 48, V);
    KVCache ca = f.cache(), cc = f.cache();
    f.prefill(a, ca);
    f.prefill(c, cc);

    PrefixCache pc(4 * f.block_bytes());  // room for four blocks
    pc.insert(a, 48, ca);
    pc.insert(c, 48, cc);  // two of a's blocks must go: its deepest ones
    EXPECT_EQ(pc.blocks(), 4u);
    EXPECT_LE(pc.bytes(), 4 * f.block_bytes());
    KVCache r1 = f.cache(), r2 = f.cache();
    EXPECT_EQ(pc.restore(a, 48, r1), kB);  // a's first block survived
    EXPECT_EQ(pc.restore(c, 48, r2), 3 * kB);

    PrefixCache off(0);
    off.insert(a, 48, ca);
    EXPECT_EQ(off.blocks(), 0u);
    KVCache r3 = f.cache();
    EXPECT_EQ(off.restore(a, 48, r3), 0);

    PrefixCache tiny(f.block_bytes() / 2);  // not even one block fits
    tiny.insert(a, 48, ca);
    EXPECT_EQ(tiny.blocks(), 0u);
    EXPECT_EQ(tiny.bytes(), 0u);
}

}  // namespace
}  // namespace mf::serve
