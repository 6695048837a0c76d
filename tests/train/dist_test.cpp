// The process-group setup of `medforge train`: rank / world / backend from the environment, and
// the NCCL request on a build without NCCL (Debian's CPU libtorch) stopping with a clear error.
#include <gtest/gtest.h>

#include <cstdlib>

#include "test_util.h"
#include "train/dist.h"

namespace mf::train {
namespace {

// Sets a variable for the scope, restoring the previous value.
class ScopedEnv {
  public:
    ScopedEnv(const char* name, const char* value) : name_(name) {
        if (const char* v = std::getenv(name)) old_ = v, had_ = true;
        if (value)
            ::setenv(name, value, 1);
        else
            ::unsetenv(name);
    }
    ~ScopedEnv() {
        if (had_)
            ::setenv(name_, old_.c_str(), 1);
        else
            ::unsetenv(name_);
    }

  private:
    const char* name_;
    std::string old_;
    bool had_ = false;
};

TEST(TrainDist, EnvironmentGivesRankWorldAndBackend) {
    ScopedEnv r("RANK", "1"), w("WORLD_SIZE", "4"), l("LOCAL_RANK", "1"), a("MASTER_ADDR", "h0"),
        p("MASTER_PORT", "29600"), b("MF_DIST_BACKEND", "nccl");
    auto e = dist_env_from_environment();
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    EXPECT_EQ(e->rank, 1);
    EXPECT_EQ(e->world, 4);
    EXPECT_EQ(e->local_rank, 1);
    EXPECT_EQ(e->master_addr, "h0");
    EXPECT_EQ(e->master_port, 29600);
    EXPECT_EQ(e->source, "torchrun");
    EXPECT_EQ(e->backend, "nccl");
    ScopedEnv bad("MF_DIST_BACKEND", "mpi");
    auto e2 = dist_env_from_environment();
    ASSERT_FALSE(e2.ok());
    EXPECT_NE(e2.status().message().find("MF_DIST_BACKEND='mpi'"), std::string::npos);
}

TEST(TrainDist, DefaultIsASingleGlooProcess) {
    ScopedEnv r("RANK", nullptr), w("WORLD_SIZE", nullptr), sr("SLURM_PROCID", nullptr),
        sw("SLURM_NTASKS", nullptr), b("MF_DIST_BACKEND", nullptr);
    auto e = dist_env_from_environment();
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(e->world, 1);
    EXPECT_EQ(e->backend, "gloo");
    auto pg = make_process_group(*e);
    ASSERT_TRUE(pg.ok()) << pg.status().to_string();
    EXPECT_EQ((*pg)->world(), 1);
}

TEST(TrainDist, NcclWithoutNcclIsAClearError) {
    if (nccl_compiled_in()) GTEST_SKIP() << "this build has NCCL";
    DistEnv env;
    env.backend = "nccl";
    for (int world : {1, 2}) {
        env.world = world;
        auto pg = make_process_group(env, 1);
        ASSERT_FALSE(pg.ok());
        EXPECT_EQ(pg.status().code(), StatusCode::kFailedPrecondition);
        const std::string& m = pg.status().message();
        EXPECT_NE(m.find("NCCL backend was requested"), std::string::npos) << m;
        EXPECT_NE(m.find("without NCCL"), std::string::npos) << m;
        EXPECT_NE(m.find("--backend gloo"), std::string::npos) << m;
    }
    env.backend = "mpi";
    EXPECT_FALSE(make_process_group(env, 1).ok());
}

TEST(TrainDist, CliNcclRequestFailsBeforeAnyWork) {
    if (nccl_compiled_in()) GTEST_SKIP() << "this build has NCCL";
    test::TempDir tmp;
    std::string args = "train --stage instruct --model " + (tmp / "none").string() + " --data " +
                       (tmp / "none.json").string() + " --out " + (tmp / "run").string();
    auto r = test::run_medforge(args + " --backend nccl");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("NCCL backend was requested"), std::string::npos) << r.output;
    auto r2 =
        test::run_command("MF_DIST_BACKEND=nccl " + test::medforge_binary().string() + " " + args);
    EXPECT_EQ(r2.exit_code, 1) << r2.output;
    EXPECT_NE(r2.output.find("without NCCL"), std::string::npos) << r2.output;
    auto r3 = test::run_medforge(args + " --backend mpi");
    EXPECT_EQ(r3.exit_code, 2) << r3.output;
    EXPECT_FALSE(std::filesystem::exists(tmp / "run"));
}

}  // namespace
}  // namespace mf::train
