// End-to-end training on a tiny LLaVA checkpoint: a small VQA set is learned to near-zero loss and
// then answered by greedy generation from the saved checkpoint (model::Engine, what `chat` uses);
// a run stopped with --max-steps and resumed gives the same losses and weights as an uninterrupted
// one; 2 processes x batch 1 (Gloo) end with the same weights as 1 process x batch 2; a run
// SIGKILLed, or stopped by SIGINT / SIGTERM (a checkpoint of the finished step, exit 130 / 143),
// resumes to the same losses.
#include <fmt/core.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "io/image.h"
#include "model/engine.h"
#include "model/init.h"
#include "model/llava.h"
#include "test_util.h"
#include "train/trainer.h"

namespace mf::train {
namespace {

namespace fs = std::filesystem;
using mf::test::TempDir;
using mf::test::write_text;

struct Qa {
    std::string q, a;
};
const std::vector<Qa> kQa = {
    {"Which organ is shown?", "The liver, with a hypodense lesion."},
    {"What modality is this?", "Axial contrast-enhanced CT."},
    {"Is there a fracture?", "Yes, a distal radius fracture."},
    {"What is the diagnosis?", "Right lower lobe pneumonia."},
};

// A tiny llava-qwen2 checkpoint + 4 image VQA records (JSONL, PubMedVision layout).
fs::path setup(const TempDir& tmp, int copies = 1) {
    model::InitOptions io;
    io.arch = "llava-qwen2";
    io.size = "tiny";
    io.out = tmp / "base";
    io.seed = 3;
    EXPECT_TRUE(model::init_model(io).ok());
    // Shrink the vision tower's input to 56 px (16 patches instead of 576) so the tests run in
    // seconds: rewrite config.json + preprocessor_config.json and the weights.
    {
        auto cj = nlohmann::json::parse(mf::test::read_text(io.out / "config.json"));
        cj["vision_config"]["image_size"] = 56;
        write_text(io.out / "config.json", cj.dump(2));
        auto pj = nlohmann::json::parse(mf::test::read_text(io.out / "preprocessor_config.json"));
        pj["crop_size"] = {{"height", 56}, {"width", 56}};
        pj["size"] = {{"shortest_edge", 56}};
        write_text(io.out / "preprocessor_config.json", pj.dump(2));
        auto cfg = model::load_model_config(io.out);
        EXPECT_TRUE(cfg.ok());
        torch::manual_seed(3);
        model::MultimodalLM m(*cfg);
        torch::NoGradGuard ng;
        for (auto& kv : m->named_parameters()) {
            if (kv.value().dim() >= 2)
                kv.value().normal_(0, 0.02);
            else if (kv.key().find("bias") != std::string::npos)
                kv.value().zero_();
            else
                kv.value().fill_(1.0);
        }
        EXPECT_TRUE(model::save_multimodal_lm(m, io.out, torch::kFloat32).ok());
    }
    fs::create_directories(tmp / "data/images");
    std::string jl;
    for (int c = 0; c < copies; ++c)
        for (size_t i = 0; i < kQa.size(); ++i) {
            io::Image im{48, 40, {}};
            for (int y = 0; y < 40; ++y)
                for (int x = 0; x < 48; ++x) {
                    im.pixels.push_back(static_cast<uint8_t>(60 * i + x));
                    im.pixels.push_back(static_cast<uint8_t>(y * 5));
                    im.pixels.push_back(static_cast<uint8_t>(200 - 40 * i));
                }
            std::string name = fmt::format("images/img{}.jpg", i);
            write_text(tmp / "data" / name, io::encode_jpeg(im));
            nlohmann::json conv = nlohmann::json::array();
            conv.push_back({{"from", "human"}, {"value", "<image>\n" + kQa[i].q}});
            conv.push_back({{"from", "gpt"}, {"value", kQa[i].a}});
            nlohmann::json r;
            r["id"] = fmt::format("s{}-{}", c, i);
            r["image"] = nlohmann::json::array({name});
            r["conversations"] = conv;
            jl += r.dump() + "\n";
        }
    write_text(tmp / "data/vqa.jsonl", jl);
    return tmp / "base";
}

TrainOptions base_options(const TempDir& tmp, const std::string& out) {
    TrainOptions o;
    o.stage = "instruct";
    o.model = tmp / "base";
    o.data = tmp / "data/vqa.jsonl";
    o.images = tmp / "data";
    o.out = tmp / out;
    o.quiet = true;
    o.workers = 2;
    return o;
}

std::vector<double> losses(const fs::path& metrics) {
    std::vector<double> v;
    for (auto& l : mf::test::read_lines(metrics))
        v.push_back(nlohmann::json::parse(l)["loss"].get<double>());
    return v;
}

double max_param_diff(const fs::path& a, const fs::path& b) {
    auto ma = model::load_multimodal_lm(a, {torch::kFloat32});
    auto mb = model::load_multimodal_lm(b, {torch::kFloat32});
    EXPECT_TRUE(ma.ok() && mb.ok());
    auto pa = (*ma)->named_parameters(), pb = (*mb)->named_parameters();
    double worst = 0;
    for (auto& kv : pa)
        worst = std::max(worst, (kv.value() - pb[kv.key()]).abs().max().item<double>());
    return worst;
}

TEST(TrainSlow, LearnsASmallVqaSetAndAnswersIt) {
    TempDir tmp;
    setup(tmp);
    auto o = base_options(tmp, "run");
    o.lr = 3e-3;
    o.global_batch = 4;
    o.batch_size = 2;  // 2 micro-batches: gradient accumulation
    o.epochs = 150;
    o.warmup_ratio = 0.03;
    auto r = run_training(o);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    ASSERT_EQ(r->steps.size(), 150u);
    EXPECT_GT(r->steps.front().loss, 3.0);
    EXPECT_LT(r->steps.back().loss, 0.05);
    EXPECT_TRUE(fs::exists(tmp / "run/loss.svg"));
    EXPECT_EQ(mf::test::read_lines(tmp / "run/metrics.jsonl").size(), 150u);
    // The saved model answers the training questions (greedy), as `medforge chat` would.
    auto e = model::Engine::load(tmp / "run");
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    for (size_t i = 0; i < kQa.size(); ++i) {
        auto im = io::decode_image_file(tmp / fmt::format("data/images/img{}.jpg", i));
        ASSERT_TRUE(im.ok());
        model::SamplingParams sp;
        sp.max_tokens = 40;
        std::vector<io::ChatMessage> msgs{{"user", kQa[i].q}};
        std::vector<io::Image> ims{im.image};
        auto g = (*e)->chat(msgs, ims, sp);
        ASSERT_TRUE(g.ok()) << g.status().to_string();
        // Huatuo's turn ends "{reply} \n" + EOS (llava_qwen2's template).
        std::string text = g->text;
        while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
            text.pop_back();
        EXPECT_EQ(text, kQa[i].a);
    }
}

TEST(TrainSlow, StoppedAndResumedRunMatchesAnUninterruptedOne) {
    TempDir tmp;
    setup(tmp, 2);  // 8 samples
    auto o = base_options(tmp, "full");
    o.lr = 1e-3;
    o.global_batch = 2;
    o.batch_size = 1;
    o.epochs = 2;  // 8 steps, two epoch orders
    auto full = run_training(o);
    ASSERT_TRUE(full.ok()) << full.status().to_string();
    ASSERT_EQ(full->steps.size(), 8u);

    o.out = tmp / "parts";
    o.max_steps = 3;
    o.save_every = 2;  // a periodic checkpoint at 2, then the stop checkpoint at 3
    auto p1 = run_training(o);
    ASSERT_TRUE(p1.ok()) << p1.status().to_string();
    EXPECT_EQ(p1->steps.size(), 3u);
    EXPECT_TRUE(fs::exists(tmp / "parts/checkpoint-3/trainer_state.json"));
    o.max_steps = 6;
    auto p2 = run_training(o);
    ASSERT_TRUE(p2.ok()) << p2.status().to_string();
    EXPECT_EQ(p2->resumed_from, 3);
    o.max_steps = 0;
    auto p3 = run_training(o);
    ASSERT_TRUE(p3.ok()) << p3.status().to_string();
    EXPECT_EQ(p3->resumed_from, 6);
    EXPECT_EQ(p3->steps.size(), 2u);
    auto a = losses(tmp / "full/metrics.jsonl"), b = losses(tmp / "parts/metrics.jsonl");
    ASSERT_EQ(a.size(), 8u);
    ASSERT_EQ(b.size(), 8u);
    for (size_t i = 0; i < a.size(); ++i)
        EXPECT_NEAR(a[i], b[i], 1e-6 * std::abs(a[i])) << "step " << i + 1;
    EXPECT_LT(max_param_diff(tmp / "full", tmp / "parts"), 1e-6);
}

TEST(TrainSlow, TwoProcessesMatchOneProcessWithTheDoubleBatch) {
    TempDir tmp;
    setup(tmp, 2);
    std::string common = fmt::format(
        " train --stage instruct --model {} --data {} --images {} --lr 1e-3 --global-batch 2 "
        "--epochs 1 --quiet --threads 1 --workers 1",
        (tmp / "base").string(), (tmp / "data/vqa.jsonl").string(), (tmp / "data").string());
    std::string bin = mf::test::medforge_binary().string();
    auto one =
        mf::test::run_command(bin + common + " --batch-size 2 --out " + (tmp / "one").string());
    ASSERT_EQ(one.exit_code, 0) << one.output;
    int port = 29000 + static_cast<int>(::getpid() % 2000);
    std::string env = fmt::format("WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT={} ", port);
    std::string out2 = " --batch-size 1 --out " + (tmp / "two").string();
    auto two =
        mf::test::run_command("RANK=1 " + env + bin + common + out2 + " > " +
                              (tmp / "r1.log").string() + " 2>&1 & p=$!; RANK=0 " + env + bin +
                              common + out2 + "; rc=$?; wait $p; rc1=$?; exit $((rc | rc1))");
    ASSERT_EQ(two.exit_code, 0) << two.output << mf::test::read_text(tmp / "r1.log");
    auto a = losses(tmp / "one/metrics.jsonl"), b = losses(tmp / "two/metrics.jsonl");
    ASSERT_EQ(a.size(), 4u);
    ASSERT_EQ(b.size(), 4u);
    for (size_t i = 0; i < a.size(); ++i)
        EXPECT_NEAR(a[i], b[i], 1e-5) << "step " << i + 1;
    double d = max_param_diff(tmp / "one", tmp / "two");
    EXPECT_LT(d, 1e-5);
    EXPECT_GT(max_param_diff(tmp / "one", tmp / "base"), 1e-4);  // it did train
}

}  // namespace
}  // namespace mf::train

namespace mf::train {
namespace {

TEST(TrainSlow, KilledRunResumesToTheSameLosses) {
    TempDir tmp;
    setup(tmp, 3);  // 12 samples, global batch 1: 12 steps
    std::string bin = mf::test::medforge_binary().string();
    std::string common = fmt::format(
        "{} train --stage instruct --model {} --data {} --images {} --lr 1e-3 --global-batch 1 "
        "--batch-size 1 --quiet --threads 1 --workers 1 --save-every 2",
        bin, (tmp / "base").string(), (tmp / "data/vqa.jsonl").string(), (tmp / "data").string());
    auto full = mf::test::run_command(common + " --out " + (tmp / "full").string());
    ASSERT_EQ(full.exit_code, 0) << full.output;
    // SIGKILL once checkpoint-4 exists (mid-run: the process is somewhere in steps 5..12).
    fs::path out = tmp / "killed";
    auto k = mf::test::run_command(common + " --out " + out.string() + " & p=$!; while [ ! -d " +
                                   (out / "checkpoint-4").string() +
                                   " ]; do sleep 0.01; done; kill -9 $p; wait $p; exit 0");
    ASSERT_EQ(k.exit_code, 0) << k.output;
    if (fs::exists(out / "model.safetensors")) GTEST_SKIP() << "the run finished before the kill";
    EXPECT_LT(mf::test::read_lines(out / "metrics.jsonl").size(), 12u);
    auto r = mf::test::run_command(common + " --out " + out.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto a = losses(tmp / "full/metrics.jsonl"), b = losses(out / "metrics.jsonl");
    ASSERT_EQ(a.size(), 12u);
    ASSERT_EQ(b.size(), 12u);
    for (size_t i = 0; i < a.size(); ++i)
        EXPECT_NEAR(a[i], b[i], 1e-6 * std::abs(a[i])) << "step " << i + 1;
    EXPECT_LT(max_param_diff(tmp / "full", out), 1e-6);
}

}  // namespace
}  // namespace mf::train

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

namespace mf::train {
namespace {

// A `sh -c "exec <cmdline>"` child (the pid is medforge's own), output to `log`.
pid_t spawn(const std::string& cmdline, const fs::path& log) {
    std::string sh = "exec " + cmdline + " > '" + log.string() + "' 2>&1";
    pid_t pid = ::fork();
    if (pid == 0) {
        ::execl("/bin/sh", "sh", "-c", sh.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    return pid;
}

size_t line_count(const fs::path& p) {
    std::error_code ec;
    if (!fs::exists(p, ec)) return 0;
    return mf::test::read_lines(p).size();
}

// Waits until `metrics` has at least `steps` lines, then sends `sig` and returns the exit status
// (-1: the child ended before that, *early is its status).
int signal_after_steps(pid_t pid, const fs::path& metrics, size_t steps, int sig) {
    int status = 0;
    while (line_count(metrics) < steps) {
        if (::waitpid(pid, &status, WNOHANG) == pid) return -1;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid, sig);
    ::waitpid(pid, &status, 0);
    return status;
}

int64_t state_step(const fs::path& ckpt) {
    return nlohmann::json::parse(mf::test::read_text(ckpt / "trainer_state.json"))["step"]
        .get<int64_t>();
}

// SIGINT, then SIGTERM, during `medforge train`: each time the step in progress is finished, a
// full checkpoint is written, the exit status is 130 / 143, and the resumed run's losses and
// weights equal those of an uninterrupted run.
TEST(TrainSlow, InterruptedBySignalsResumesToTheSameLosses) {
    TempDir tmp;
    setup(tmp, 3);  // 12 samples, global batch 1, 20 epochs: 240 steps
    std::string bin = mf::test::medforge_binary().string();
    std::string common = fmt::format(
        "{} train --stage instruct --model {} --data {} --images {} --lr 1e-3 --global-batch 1 "
        "--batch-size 1 --epochs 20 --threads 1 --workers 1 --log-every 1",
        bin, (tmp / "base").string(), (tmp / "data/vqa.jsonl").string(), (tmp / "data").string());
    fs::path out = tmp / "run", metrics = out / "metrics.jsonl";

    // 1. SIGINT after >= 3 steps.
    pid_t pid = spawn(common + " --out " + out.string(), tmp / "int.log");
    ASSERT_GT(pid, 0);
    int st = signal_after_steps(pid, metrics, 3, SIGINT);
    std::string log = mf::test::read_text(tmp / "int.log");
    if (st == -1) GTEST_SKIP() << "the run ended before the signal:\n" << log;
    ASSERT_TRUE(WIFEXITED(st)) << log;
    EXPECT_EQ(WEXITSTATUS(st), 130) << log;
    size_t k1 = line_count(metrics);  // the steps finished, the last one included
    ASSERT_GE(k1, 3u);
    fs::path c1 = out / fmt::format("checkpoint-{}", k1);
    ASSERT_TRUE(fs::exists(c1 / "trainer_state.json")) << log;
    EXPECT_EQ(state_step(c1), static_cast<int64_t>(k1));
    for (const char* f : {"model.safetensors", "config.json", "optimizer.pt", "rng.pt",
                          "tokenizer.json", "preprocessor_config.json"})
        EXPECT_TRUE(fs::exists(c1 / f)) << f;
    EXPECT_FALSE(fs::exists(out / "model.safetensors"));  // not the final model
    EXPECT_NE(log.find("interrupted by SIGINT after step " + std::to_string(k1) + " of 240"),
              std::string::npos)
        << log;
    EXPECT_NE(log.find(c1.string()), std::string::npos) << log;
    EXPECT_NE(log.find("to resume, run the same command again"), std::string::npos) << log;

    // 2. Resume, SIGTERM after >= 2 more steps.
    pid = spawn(common + " --out " + out.string(), tmp / "term.log");
    ASSERT_GT(pid, 0);
    st = signal_after_steps(pid, metrics, k1 + 2, SIGTERM);
    log = mf::test::read_text(tmp / "term.log");
    if (st == -1) GTEST_SKIP() << "the run ended before the signal:\n" << log;
    ASSERT_TRUE(WIFEXITED(st)) << log;
    EXPECT_EQ(WEXITSTATUS(st), 143) << log;
    EXPECT_NE(log.find(fmt::format("resuming at step {}", k1)), std::string::npos) << log;
    size_t k2 = line_count(metrics);
    ASSERT_GE(k2, k1 + 2);
    fs::path c2 = out / fmt::format("checkpoint-{}", k2);
    ASSERT_TRUE(fs::exists(c2 / "trainer_state.json")) << log;
    EXPECT_NE(log.find("interrupted by SIGTERM after step " + std::to_string(k2)),
              std::string::npos)
        << log;

    // 3. Resume to step M; an uninterrupted run to the same step gives the same losses/weights.
    const size_t M = k2 + 3;
    auto r = mf::test::run_command(
        fmt::format("{} --quiet --max-steps {} --out {}", common, M, out.string()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto ref = mf::test::run_command(
        fmt::format("{} --quiet --max-steps {} --out {}", common, M, (tmp / "ref").string()));
    ASSERT_EQ(ref.exit_code, 0) << ref.output;
    auto a = losses(tmp / "ref/metrics.jsonl"), b = losses(metrics);
    ASSERT_EQ(a.size(), M);
    ASSERT_EQ(b.size(), M);
    for (size_t i = 0; i < M; ++i)
        EXPECT_NEAR(a[i], b[i], 1e-6 * std::abs(a[i])) << "step " << i + 1;
    fs::path cm = fmt::format("checkpoint-{}", M);
    EXPECT_LT(max_param_diff(tmp / "ref" / cm, out / cm), 1e-6);
}

// With 2 processes a SIGINT to one rank stops both at the same step (they agree by all-reduce):
// both exit 130, rank 0 writes the checkpoint, and a single process with the double batch resumes
// from it to the losses of an uninterrupted single-process run.
TEST(TrainSlow, SignalToOneRankStopsAllRanksAtTheSameStep) {
    TempDir tmp;
    setup(tmp, 3);  // 12 samples, global batch 2, 20 epochs: 120 steps
    std::string bin = mf::test::medforge_binary().string();
    std::string common = fmt::format(
        "{} train --stage instruct --model {} --data {} --images {} --lr 1e-3 --global-batch 2 "
        "--epochs 20 --threads 1 --workers 1",
        bin, (tmp / "base").string(), (tmp / "data/vqa.jsonl").string(), (tmp / "data").string());
    fs::path out = tmp / "run", metrics = out / "metrics.jsonl";
    int port = 31000 + static_cast<int>(::getpid() % 2000);
    auto env = [&](int rank) {
        return fmt::format("env RANK={} WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT={} ", rank,
                           port);
    };
    std::string two = common + " --batch-size 1 --out " + out.string();
    pid_t r1 = spawn(env(1) + two, tmp / "r1.log");
    pid_t r0 = spawn(env(0) + two, tmp / "r0.log");
    ASSERT_GT(r1, 0);
    ASSERT_GT(r0, 0);
    int st1 = signal_after_steps(r1, metrics, 3, SIGINT);  // rank 0 writes the metrics
    int st0 = 0;
    ::waitpid(r0, &st0, 0);
    std::string log0 = mf::test::read_text(tmp / "r0.log"),
                log1 = mf::test::read_text(tmp / "r1.log");
    if (st1 == -1) GTEST_SKIP() << "the run ended before the signal:\n" << log0 << log1;
    ASSERT_TRUE(WIFEXITED(st0) && WIFEXITED(st1)) << log0 << log1;
    EXPECT_EQ(WEXITSTATUS(st1), 130) << log1;
    EXPECT_EQ(WEXITSTATUS(st0), 130) << log0;
    size_t k = line_count(metrics);
    ASSERT_GE(k, 3u);
    fs::path ck = out / fmt::format("checkpoint-{}", k);
    ASSERT_TRUE(fs::exists(ck / "trainer_state.json")) << log0;
    EXPECT_EQ(state_step(ck), static_cast<int64_t>(k));
    EXPECT_NE(log0.find(fmt::format("interrupted by SIGINT after step {} of 120", k)),
              std::string::npos)
        << log0;

    const size_t M = k + 3;
    auto r = mf::test::run_command(
        fmt::format("{} --batch-size 2 --quiet --max-steps {} --out {}", common, M, out.string()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto ref = mf::test::run_command(fmt::format(
        "{} --batch-size 2 --quiet --max-steps {} --out {}", common, M, (tmp / "ref").string()));
    ASSERT_EQ(ref.exit_code, 0) << ref.output;
    auto a = losses(tmp / "ref/metrics.jsonl"), b = losses(metrics);
    ASSERT_EQ(a.size(), M);
    ASSERT_EQ(b.size(), M);
    for (size_t i = 0; i < M; ++i)
        EXPECT_NEAR(a[i], b[i], 1e-5) << "step " << i + 1;
    fs::path cm = fmt::format("checkpoint-{}", M);
    EXPECT_LT(max_param_diff(tmp / "ref" / cm, out / cm), 1e-5);
}

}  // namespace
}  // namespace mf::train
