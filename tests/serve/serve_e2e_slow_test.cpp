// End to end, as a user runs it: `medforge serve` (a tiny random llava-qwen2 checkpoint) as a
// process, `medforge build` over examples/demo, then `medforge reformat` against the server.
// The answers are nonsense (random weights): what is checked is the plumbing — every sample is
// either kept or rejected with a reason, the ledger holds every reply, the server's usage figures
// reach the stats — and that SIGTERM stops the server cleanly.
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "test_util.h"

namespace mf::serve {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

int free_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    int port = ntohs(a.sin_port);
    close(fd);
    return port;
}

std::string q(const fs::path& p) {
    return "'" + p.string() + "'";
}

TEST(ServeE2E, ReformatTheDemoThroughMedforgeServe) {
    test::TempDir dir;
    auto init = test::run_medforge("model init --arch llava-qwen2 --out " + q(dir / "tiny-llava"));
    ASSERT_EQ(init.exit_code, 0) << init.output;
    const int port = free_port();
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        std::string log = (dir / "serve.log").string();
        FILE* f = std::freopen(log.c_str(), "w", stderr);
        (void)f;
        std::string bin = test::medforge_binary().string(), model = (dir / "tiny-llava").string(),
                    p = std::to_string(port);
        execl(bin.c_str(), bin.c_str(), "serve", "--model", model.c_str(), "--port", p.c_str(),
              "--max-batch", "4", "--api-key", "sk-e2e", static_cast<char*>(nullptr));
        _exit(127);
    }
    httplib::Client c("127.0.0.1", port);
    bool up = false;
    for (int i = 0; i < 600 && !up; ++i) {
        auto r = c.Get("/health");
        up = r && r->status == 200;
        if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(up) << test::read_text(dir / "serve.log");

    auto build =
        test::run_medforge("build --config " + q(test::source_dir() / "examples/demo/build.json") +
                           " --out " + q(dir / "demo") + " -q");
    ASSERT_EQ(build.exit_code, 0) << build.output;
    setenv("MF_TEST_SERVE_KEY", "sk-e2e", 1);
    auto r =
        test::run_medforge("reformat --in " + q(dir / "demo" / "3-dedup") + " --out " +
                           q(dir / "vqa") + " --endpoint http://127.0.0.1:" + std::to_string(port) +
                           "/v1 --model tiny-llava --api-key-env MF_TEST_SERVE_KEY --max-tokens 48"
                           " --max-reasks 1 --concurrency 4 --temperature 0.7 --jsonl");
    ASSERT_EQ(r.exit_code, 0) << r.output << test::read_text(dir / "serve.log");
    json stats = json::parse(test::read_text(dir / "vqa" / "stats.json"));
    const int64_t input = stats["input"], kept = stats["kept"], rejected = stats["rejected"];
    EXPECT_GT(input, 0);
    EXPECT_EQ(input, kept + rejected) << stats.dump(2);
    EXPECT_GT(stats["extra"]["tokens"]["prompt"].get<int64_t>(), 0) << stats.dump(2);
    EXPECT_GT(stats["extra"]["tokens"]["completion"].get<int64_t>(), 0) << stats.dump(2);
    // every reject names its reason, none is a transport failure (the server answered them all)
    auto rejects = test::read_lines(dir / "vqa" / "rejects.jsonl");
    EXPECT_EQ(static_cast<int64_t>(rejects.size()), rejected);
    for (const auto& line : rejects) {
        json j = json::parse(line);
        std::string all = j.dump();
        EXPECT_EQ(all.find("request_failed"), std::string::npos) << all;
        EXPECT_NE(all.find("reason"), std::string::npos) << all;
    }
    // the ledger has one done-or-failed row per sample and every reply (1 ask + 1 re-ask at most)
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open_v2((dir / "vqa" / "ledger.sqlite").c_str(), &db, SQLITE_OPEN_READONLY,
                              nullptr),
              SQLITE_OK);
    auto count = [&](const char* sql) {
        sqlite3_stmt* st = nullptr;
        EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &st, nullptr), SQLITE_OK)
            << sqlite3_errmsg(db) << " " << sql;
        int64_t n = -1;
        if (st && sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return n;
    };
    EXPECT_EQ(count("SELECT count(*) FROM requests WHERE state NOT IN ('done','failed')"), 0);
    EXPECT_GE(count("SELECT count(*) FROM attempts"), input);
    EXPECT_LE(count("SELECT count(*) FROM attempts"), 2 * input);
    sqlite3_close(db);
    // the server counted the same traffic
    auto m = c.Get("/metrics");
    ASSERT_TRUE(m);
    EXPECT_NE(m->body.find("medforge_requests_total{status=\"200\"}"), std::string::npos)
        << m->body;

    // SIGTERM: clean exit
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    int status = 0;
    for (int i = 0; i < 300; ++i) {
        if (waitpid(pid, &status, WNOHANG) == pid) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(WIFEXITED(status)) << test::read_text(dir / "serve.log");
    EXPECT_EQ(WEXITSTATUS(status), 0) << test::read_text(dir / "serve.log");
}

// A checkpoint that cannot be loaded ends `medforge serve` (it does not sit there answering 503)
// with the reason, naming the file.
TEST(ServeE2E, BadCheckpointEndsTheProcessWithTheReason) {
    test::TempDir dir;
    fs::create_directories(dir / "broken");
    test::write_text(dir / "broken" / "config.json", "{ this is not json");
    auto r = test::run_medforge("serve --model " + q(dir / "broken") + " --port 0");
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("config.json"), std::string::npos) << r.output;
    auto missing = test::run_medforge("serve --model " + q(dir / "nothing-here") + " --port 0");
    EXPECT_NE(missing.exit_code, 0) << missing.output;
    EXPECT_NE(missing.output.find("nothing-here"), std::string::npos) << missing.output;
}

}  // namespace
}  // namespace mf::serve
