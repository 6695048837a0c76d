// Engine overhead per request (label slow): 2000 samples through an instant in-process client,
// so the figure is what the engine itself costs per request — prompt building, image encoding
// (re-encode to JPEG), one synchronous=FULL ledger commit per reply, output regeneration. Printed,
// and bounded loosely so a regression by an order of magnitude fails.
#include <gtest/gtest.h>

#include <chrono>

#include "reformat/reformat.h"
#include "reformat_test_util.h"

namespace mf::reformat {
namespace {

using testing::ScriptedClient;

TEST(EngineThroughput, RequestsPerSecond) {
    test::TempDir dir;
    const size_t n = 2000;
    testing::write_samples(dir / "in.jsonl", testing::make_samples(n));
    ScriptedClient client([](const llm::ChatRequest& r, int) {
        return ScriptedClient::reply(testing::good_reply(testing::request_text(r)));
    });
    for (bool images : {false, true}) {
        ReformatOptions o;
        o.input = dir / "in.jsonl";
        o.out_dir = dir / (images ? "out_img" : "out_noimg");
        o.prompt.model = "m";
        o.progress = false;
        o.batch = 64;
        o.image_mode = ImageMode::kNone;
        if (!images)
            o.image_url = [](const std::filesystem::path& p) -> Result<std::string> {
                return "url:" + p.string();
            };
        auto t0 = std::chrono::steady_clock::now();
        auto res = run_reformat(o, &client);
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        ASSERT_TRUE(res.ok()) << res.status().to_string();
        ASSERT_EQ(res->stats.kept, n);
        std::printf("engine %s: %zu requests in %.2f s = %.0f requests/s (%.2f ms each)\n",
                    images ? "with image re-encoding" : "without images", n, s, n / s,
                    1000 * s / n);
        EXPECT_GT(n / s, images ? 5.0 : 50.0);
    }
}

}  // namespace
}  // namespace mf::reformat
