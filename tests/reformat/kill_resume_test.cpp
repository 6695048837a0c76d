// Exactly-once under SIGKILL: `medforge reformat` runs as a child process against the fake
// OpenAI server (real HTTP) and is killed at several points — before any answer, after k
// recorded answers with requests in flight, with 4 requests in flight, and in the middle of
// writing the outputs. After the final re-run: every sample was answered successfully exactly
// once by the server, the outputs hold each sample exactly once, and they are byte for byte
// those of an uninterrupted run.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "reformat/ledger.h"
#include "reformat_test_util.h"
#include "support/fake_openai.h"

namespace mf::reformat {
namespace {

using nlohmann::json;
using test::FakeOpenAi;
using test::FakeReply;
namespace fs = std::filesystem;

constexpr int kSamples = 12;

// A server that answers at most `allow` requests right away (counting them per sample) and
// leaves every further request hanging (a reply that never comes before the kill).
struct GatedServer {
    std::atomic<int> allow{1 << 30};
    std::mutex mu;
    std::map<int, int> answered;  // caption number -> successful answers
    int total = 0;
    FakeOpenAi server{[this](const json& req, int) {
        std::string t = FakeOpenAi::request_text(req);
        int n = testing::caption_number(t);
        {
            std::lock_guard lock(mu);
            if (total < allow.load()) {
                ++total;
                ++answered[n];
                return FakeReply::text(testing::good_reply(t));
            }
        }
        return FakeReply::text(testing::good_reply(t)).delay(60000);
    }};
};

std::string reformat_cmd(const fs::path& dir, const fs::path& out, const std::string& url,
                         int concurrency) {
    return test::medforge_binary().string() + " reformat --in '" + (dir / "in.jsonl").string() +
           "' --out '" + out.string() + "' --endpoint " + url +
           " --model fake --jsonl --image-tokens --concurrency " + std::to_string(concurrency) +
           " --timeout 120 -v";
}

pid_t spawn(const std::string& cmdline, const fs::path& log, const std::string& env = "") {
    pid_t pid = fork();
    if (pid == 0) {
        std::string full = "exec env " + (env.empty() ? "" : env + " ") + cmdline + " >'" +
                           log.string() + "' 2>&1";
        execl("/bin/sh", "sh", "-c", full.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    return pid;
}

int64_t done_rows(const fs::path& ledger) {
    if (!fs::exists(ledger)) return -1;
    auto l = Ledger::open(ledger, true);
    if (!l.ok()) return -1;
    auto c = (*l)->count_by_state();
    if (!c.ok()) return -1;
    return (*c)["done"];
}

template <typename Pred>
bool wait_for(Pred pred, double seconds = 30) {
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
}

// Waits until the server has taken every request the killed child had already sent (they may
// still sit in the socket buffers): otherwise such a request could be answered after the gate is
// opened for the next run, an answer that went to a dead process and was never recorded.
void settle(const FakeOpenAi& server) {
    int last = -1;
    auto stable_since = std::chrono::steady_clock::now();
    while (true) {
        int now = server.calls();
        auto t = std::chrono::steady_clock::now();
        if (now != last) {
            last = now;
            stable_since = t;
        } else if (t - stable_since > std::chrono::milliseconds(300)) {
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

void kill_child(pid_t pid) {
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the child ended before the kill";
}

const std::vector<std::string> kOutputs = {"alignment_vqa.json",  "instruction_vqa.json",
                                           "alignment_vqa.jsonl", "instruction_vqa.jsonl",
                                           "samples.jsonl",       "rejects.jsonl"};

TEST(KillResume, SigkillAtAnyPointNeverPaysTwiceNorLosesRecords) {
    test::TempDir dir;
    testing::write_samples(dir / "in.jsonl", testing::make_samples(kSamples));

    // Reference: an uninterrupted run.
    GatedServer ref;
    ASSERT_TRUE(ref.server.start().ok());
    auto r = test::run_command(reformat_cmd(dir.path(), dir / "ref", ref.server.base_url(), 3));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ASSERT_EQ(ref.server.calls(), kSamples);

    GatedServer g;
    ASSERT_TRUE(g.server.start().ok());
    const fs::path out = dir / "out";
    const fs::path ledger = out / "ledger.sqlite";
    // Kill points: (answers allowed in total before the kill, concurrency).
    const std::vector<std::pair<int, int>> points = {{0, 1}, {3, 1}, {4, 1}, {8, 4}};
    for (auto [k, conc] : points) {
        SCOPED_TRACE("kill after " + std::to_string(k) + " answers, concurrency " +
                     std::to_string(conc));
        g.allow.store(k);
        int calls_before = g.server.calls();
        pid_t pid =
            spawn(reformat_cmd(dir.path(), out, g.server.base_url(), conc), dir / "child.log");
        ASSERT_GT(pid, 0);
        // Wait until k answers are recorded and the next request is out (hanging), then kill.
        ASSERT_TRUE(wait_for([&] {
            return done_rows(ledger) == k && g.server.calls() > std::max(calls_before, k);
        })) << "done "
            << done_rows(ledger) << " calls " << g.server.calls() << "\n"
            << test::read_text(dir / "child.log");
        kill_child(pid);
        settle(g.server);
        EXPECT_EQ(done_rows(ledger), k);
        // The killed run wrote no outputs (it never reached the output step).
        EXPECT_FALSE(fs::exists(out / "alignment_vqa.json"));
    }

    // Kill in the middle of writing the outputs (after the first file is moved into place).
    g.allow.store(1 << 30);
    {
        pid_t pid = spawn(reformat_cmd(dir.path(), out, g.server.base_url(), 2), dir / "child.log",
                          "MF_REFORMAT_FAULT_PAUSE_MS=20000");
        ASSERT_TRUE(wait_for(
            [&] { return fs::exists(out / "samples.jsonl") && fs::exists(out / ".partial"); }));
        kill_child(pid);
        EXPECT_EQ(done_rows(ledger), kSamples);
        EXPECT_FALSE(fs::exists(out / "alignment_vqa.json"));  // half-finished output step
    }
    int calls_before_final = g.server.calls();
    r = test::run_command(reformat_cmd(dir.path(), out, g.server.base_url(), 2));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(g.server.calls(), calls_before_final);  // nothing left to ask

    // Every sample answered successfully exactly once across all the runs.
    ASSERT_EQ(g.answered.size(), static_cast<size_t>(kSamples));
    for (auto [n, count] : g.answered) {
        EXPECT_EQ(count, 1) << "sample " << n;
        if (count != 1)
            for (const auto& rq : g.server.requests())
                if (testing::caption_number(FakeOpenAi::request_text(rq.body)) == n)
                    ADD_FAILURE() << "call " << rq.call_index << " port " << rq.remote_port << " t "
                                  << rq.t_start_s << "-" << rq.t_end_s;
    }
    // Each sample exactly once in the output, identical to the uninterrupted run.
    for (const auto& name : kOutputs)
        EXPECT_EQ(test::read_text(out / name), test::read_text(dir / "ref" / name)) << name;
    json align = json::parse(test::read_text(out / "alignment_vqa.json"));
    ASSERT_EQ(align.size(), static_cast<size_t>(kSamples));
    std::set<std::string> ids;
    for (const auto& a : align)
        ids.insert(a["sample_id"].get<std::string>());
    EXPECT_EQ(ids.size(), static_cast<size_t>(kSamples));
    EXPECT_FALSE(fs::exists(out / ".partial"));
    // The ledger: all done, nothing in flight.
    auto l = std::move(Ledger::open(ledger, true)).value();
    auto counts = *l->count_by_state();
    EXPECT_EQ(counts["done"], kSamples);
    EXPECT_EQ(counts.count("in_flight"), 0u);
    g.server.stop();
    ref.server.stop();
}

TEST(KillResume, CtrlCStopsCleanlyAndResumes) {
    test::TempDir dir;
    testing::write_samples(dir / "in.jsonl", testing::make_samples(6));
    GatedServer g;
    g.allow.store(2);
    ASSERT_TRUE(g.server.start().ok());
    const fs::path out = dir / "out";
    const fs::path ledger = out / "ledger.sqlite";
    pid_t pid = spawn(reformat_cmd(dir.path(), out, g.server.base_url(), 2), dir / "child.log");
    ASSERT_TRUE(wait_for([&] { return done_rows(ledger) == 2 && g.server.calls() >= 4; }))
        << test::read_text(dir / "child.log");
    auto t0 = std::chrono::steady_clock::now();
    ::kill(pid, SIGINT);
    int status = 0;
    ::waitpid(pid, &status, 0);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_TRUE(WIFEXITED(status)) << "killed by a signal instead of stopping cleanly";
    EXPECT_EQ(WEXITSTATUS(status), 130) << test::read_text(dir / "child.log");
    EXPECT_LT(s, 10.0);  // did not wait for the hanging replies
    EXPECT_NE(test::read_text(dir / "child.log").find("re-run the same command"),
              std::string::npos);
    {
        auto l = std::move(Ledger::open(ledger, true)).value();
        auto counts = *l->count_by_state();
        EXPECT_EQ(counts["done"], 2);
        EXPECT_EQ(counts.count("in_flight"), 0u);  // in-flight requests marked back to pending
        EXPECT_EQ(counts["pending"], 4);
    }
    settle(g.server);
    g.allow.store(1 << 30);
    auto r = test::run_command(reformat_cmd(dir.path(), out, g.server.base_url(), 2));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ASSERT_EQ(g.answered.size(), 6u);
    for (auto [n, count] : g.answered)
        EXPECT_EQ(count, 1) << "sample " << n;
    EXPECT_EQ(json::parse(test::read_text(out / "alignment_vqa.json")).size(), 6u);
    g.server.stop();
}

}  // namespace
}  // namespace mf::reformat
