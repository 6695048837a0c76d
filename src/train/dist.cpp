#include "train/dist.h"

#include <fmt/core.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace mf::train {

namespace {

Result<int> env_int(const char* name, bool* present) {
    const char* v = std::getenv(name);
    *present = v && *v;
    if (!*present) return 0;
    char* end = nullptr;
    long x = std::strtol(v, &end, 10);
    if (*end != '\0' || x < 0)
        return Status::invalid_argument(
            fmt::format("environment variable {}='{}' is not a "
                        "non-negative integer",
                        name, v));
    return static_cast<int>(x);
}

class LocalGroup : public ProcessGroup {
  public:
    Status allreduce_sum(torch::Tensor&) override { return {}; }
    Status barrier() override { return {}; }
};

// A c10d process group (Gloo, or NCCL with a CUDA libtorch). NCCL all-reduces CUDA tensors only:
// with `device` set, the (CPU) gradients go through it (cuda:<local rank>).
class C10dGroup : public ProcessGroup {
  public:
    C10dGroup(std::string backend, c10::intrusive_ptr<c10d::Store> store,
              c10::intrusive_ptr<c10d::ProcessGroup> pg, int rank, int world,
              std::optional<torch::Device> device = std::nullopt)
        : backend_(std::move(backend)),
          store_(std::move(store)),
          pg_(std::move(pg)),
          device_(device) {
        rank_ = rank;
        world_ = world;
    }
    Status allreduce_sum(torch::Tensor& t) override {
        try {
            std::vector<torch::Tensor> ts{device_ ? t.to(*device_) : t};
            c10d::AllreduceOptions o;
            o.reduceOp = c10d::ReduceOp::SUM;
            pg_->allreduce(ts, o)->wait();
            if (device_) t.copy_(ts[0].cpu());
        } catch (const std::exception& e) {
            return Status::unavailable(backend_ + " allreduce failed (a rank died?): " + e.what());
        }
        return {};
    }
    Status barrier() override {
        try {
            pg_->barrier()->wait();
        } catch (const std::exception& e) {
            return Status::unavailable(backend_ + " barrier failed: " + e.what());
        }
        return {};
    }

  private:
    std::string backend_;
    c10::intrusive_ptr<c10d::Store> store_;
    c10::intrusive_ptr<c10d::ProcessGroup> pg_;
    std::optional<torch::Device> device_;
};

// The rendezvous store every rank joins (rank 0 serves it at MASTER_ADDR:MASTER_PORT).
c10::intrusive_ptr<c10d::Store> make_store(const DistEnv& env, int timeout_s) {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(env.master_port);
    so.isServer = env.rank == 0;
    so.numWorkers = env.world;
    so.waitWorkers = true;
    so.timeout = std::chrono::seconds(timeout_s);
    return c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
}

// Why the NCCL backend cannot be used here ("" when it can).
std::string nccl_unavailable_reason() {
#ifdef USE_C10D_NCCL
    if (!torch::cuda::is_available())
        return "this medforge has NCCL but the machine has no usable CUDA device";
    return "";
#else
    return "this medforge was built against a libtorch without NCCL (a CPU-only build such as "
           "Debian's: USE_C10D_NCCL is not defined); use --backend gloo, or rebuild with a CUDA "
           "libtorch (cmake -DTorch_DIR=<libtorch>/share/cmake/Torch, see docs/train.md)";
#endif
}

}  // namespace

bool nccl_compiled_in() {
#ifdef USE_C10D_NCCL
    return true;
#else
    return false;
#endif
}

Result<DistEnv> dist_env_from_environment() {
    DistEnv e;
    bool has_rank = false, has_world = false, p = false;
    MF_ASSIGN_OR_RETURN(int rank, env_int("RANK", &has_rank));
    MF_ASSIGN_OR_RETURN(int world, env_int("WORLD_SIZE", &has_world));
    if (has_rank && has_world) {
        e.rank = rank;
        e.world = world;
        e.source = "torchrun";
        MF_ASSIGN_OR_RETURN(int lr, env_int("LOCAL_RANK", &p));
        e.local_rank = p ? lr : 0;
    } else {
        bool sr = false, sw = false;
        MF_ASSIGN_OR_RETURN(int r, env_int("SLURM_PROCID", &sr));
        MF_ASSIGN_OR_RETURN(int w, env_int("SLURM_NTASKS", &sw));
        if (sr && sw) {
            e.rank = r;
            e.world = w;
            e.source = "slurm";
            MF_ASSIGN_OR_RETURN(int lr, env_int("SLURM_LOCALID", &p));
            e.local_rank = p ? lr : 0;
        }
    }
    if (e.world < 1) return Status::invalid_argument("WORLD_SIZE / SLURM_NTASKS must be >= 1");
    if (e.rank >= e.world)
        return Status::invalid_argument(fmt::format(
            "rank {} is not below the world size {} (RANK / SLURM_PROCID)", e.rank, e.world));
    if (const char* a = std::getenv("MASTER_ADDR"); a && *a) e.master_addr = a;
    MF_ASSIGN_OR_RETURN(int port, env_int("MASTER_PORT", &p));
    if (p) {
        if (port == 0 || port > 65535)
            return Status::invalid_argument("MASTER_PORT must be 1..65535");
        e.master_port = port;
    }
    if (const char* b = std::getenv("MF_DIST_BACKEND"); b && *b) {
        e.backend = b;
        if (e.backend != "gloo" && e.backend != "nccl")
            return Status::invalid_argument(
                fmt::format("environment variable MF_DIST_BACKEND='{}': expected gloo or nccl", b));
    }
    if (e.world > 1 && e.source == "slurm" && !std::getenv("MASTER_ADDR"))
        return Status::invalid_argument(
            "Slurm run with SLURM_NTASKS > 1 but no MASTER_ADDR: export MASTER_ADDR=$(scontrol "
            "show "
            "hostnames $SLURM_JOB_NODELIST | head -n1) in the batch script (docs/train.md)");
    return e;
}

Result<std::unique_ptr<ProcessGroup>> make_process_group(const DistEnv& env, int timeout_s) {
    if (env.backend != "gloo" && env.backend != "nccl")
        return Status::invalid_argument(
            fmt::format("unknown process-group backend '{}' (gloo or nccl)", env.backend));
    if (env.backend == "nccl") {
        std::string why = nccl_unavailable_reason();
        if (!why.empty())
            return Status::failed_precondition(
                "the NCCL backend was requested (--backend nccl / "
                "MF_DIST_BACKEND=nccl) but " +
                why);
    }
    if (env.world <= 1) return std::unique_ptr<ProcessGroup>(new LocalGroup());
#ifdef USE_C10D_NCCL
    if (env.backend == "nccl") {
        try {
            auto store = make_store(env, timeout_s);
            auto opts = c10d::ProcessGroupNCCL::Options::create();
            opts->timeout = std::chrono::seconds(timeout_s);
            torch::Device dev(torch::kCUDA, static_cast<c10::DeviceIndex>(
                                                env.local_rank % torch::cuda::device_count()));
            auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, env.rank, env.world, opts);
            return std::unique_ptr<ProcessGroup>(
                new C10dGroup("nccl", store, pg, env.rank, env.world, dev));
        } catch (const std::exception& e) {
            return Status::unavailable(
                fmt::format("cannot join the NCCL process group (rank {} of {}, master {}:{}): {}",
                            env.rank, env.world, env.master_addr, env.master_port, e.what()));
        }
    }
#endif
    try {
        auto store = make_store(env, timeout_s);
        auto opts = c10d::ProcessGroupGloo::Options::create();
        opts->timeout = std::chrono::seconds(timeout_s);
        // The interface that reaches MASTER_ADDR (loopback for a single node).
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
        auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world, opts);
        return std::unique_ptr<ProcessGroup>(new C10dGroup("gloo", store, pg, env.rank, env.world));
    } catch (const std::exception& e) {
        return Status::unavailable(fmt::format(
            "cannot join the process group (rank {} of {}, master {}:{}): {}; check MASTER_ADDR / "
            "MASTER_PORT and that every rank was started",
            env.rank, env.world, env.master_addr, env.master_port, e.what()));
    }
}

}  // namespace mf::train
