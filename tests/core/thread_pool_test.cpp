#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <numeric>

#include "core/progress.h"

namespace mf {
namespace {

TEST(ThreadPool, ParallelForCoversEveryIndexOnce) {
    ThreadPool pool(3);
    for (size_t n : {0u, 1u, 7u, 1000u}) {
        std::vector<std::atomic<int>> hits(n);
        pool.parallel_for(n, [&](size_t w, size_t b, size_t e) {
            EXPECT_LT(w, pool.size());
            for (size_t i = b; i < e; ++i)
                hits[i]++;
        });
        for (size_t i = 0; i < n; ++i)
            EXPECT_EQ(hits[i].load(), 1) << i;
    }
}

TEST(ThreadPool, SubmitReturnsValues) {
    ThreadPool pool(2);
    std::vector<std::future<int>> futs;
    for (int i = 0; i < 100; ++i)
        futs.push_back(pool.submit([i] { return i * i; }));
    int sum = 0;
    for (auto& f : futs)
        sum += f.get();
    EXPECT_EQ(sum, 328350);
}

TEST(Progress, HumanFormatting) {
    EXPECT_EQ(Progress::human_count(12), "12");
    EXPECT_EQ(Progress::human_count(15300), "15.3k");
    EXPECT_EQ(Progress::human_count(2.5e6), "2.5M");
    EXPECT_EQ(Progress::human_duration(5), "5s");
    EXPECT_EQ(Progress::human_duration(185), "3m05s");
    EXPECT_EQ(Progress::human_duration(3720), "1h02m");
}

TEST(Progress, CountsFromManyThreads) {
    Progress p("test", 4000, "items");
    ThreadPool pool(4);
    pool.parallel_for(4000, [&](size_t, size_t b, size_t e) {
        for (size_t i = b; i < e; ++i)
            p.add(1);
    });
    EXPECT_EQ(p.count(), 4000u);
    p.finish();
}

}  // namespace
}  // namespace mf
