// Data-parallel process group for `medforge train`: libtorch's c10d ProcessGroupGloo (CPU
// tensors, TCP) with a c10d::TCPStore rendezvous. The rank / world / master address come from
// torchrun-style variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK) or from Slurm
// (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID; MASTER_ADDR / MASTER_PORT must still be exported,
// see docs/train.md). Without them the run is a single process (world 1).
//
// Backend: "gloo" (default; CPU tensors over TCP) or "nccl" (MF_DIST_BACKEND or `train
// --backend`). NCCL exists only when medforge is compiled against a CUDA libtorch (USE_C10D_NCCL,
// set by CMake when Torch reports CUDA libraries): gradients are then staged through the GPU
// cuda:<local rank> for each all-reduce. Requesting it otherwise is an error naming the cause.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

#include "core/status.h"

namespace mf::train {

struct DistEnv {
    int rank = 0, world = 1, local_rank = 0;
    std::string master_addr = "127.0.0.1";
    int master_port = 29500;
    std::string source = "single";  // "torchrun", "slurm" or "single"
    std::string backend = "gloo";   // "gloo" or "nccl" (MF_DIST_BACKEND)
};

// Whether this build has the NCCL backend (compiled against a CUDA libtorch with c10d NCCL).
bool nccl_compiled_in();

// Reads the variables; errors name the malformed one.
Result<DistEnv> dist_env_from_environment();

class ProcessGroup {
  public:
    virtual ~ProcessGroup() = default;
    int rank() const { return rank_; }
    int world() const { return world_; }
    // In-place sum over all ranks (contiguous CPU tensor). A no-op for world 1.
    virtual Status allreduce_sum(torch::Tensor& t) = 0;
    virtual Status barrier() = 0;

  protected:
    int rank_ = 0, world_ = 1;
};

// world 1: a local no-op group; otherwise Gloo (or NCCL) with a TCP store (rank 0 hosts it at
// master_addr:master_port). Blocks until every rank has joined (timeout_s). backend "nccl" is a
// failed_precondition error, even for world 1, when the build or the machine lacks it (no
// USE_C10D_NCCL, or no CUDA device): a misconfigured launch is caught on the first try.
Result<std::unique_ptr<ProcessGroup>> make_process_group(const DistEnv& env, int timeout_s = 300);

}  // namespace mf::train
