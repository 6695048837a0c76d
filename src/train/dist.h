// Data-parallel process group for `medforge train`: libtorch's c10d ProcessGroupGloo (CPU
// tensors, TCP) with a c10d::TCPStore rendezvous. The rank / world / master address come from
// torchrun-style variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK) or from Slurm
// (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID; MASTER_ADDR / MASTER_PORT must still be exported,
// see docs/train.md). Without them the run is a single process (world 1).
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
};

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

// world 1: a local no-op group; otherwise Gloo over TCP (rank 0 hosts the store at
// master_addr:master_port). Blocks until every rank has joined (timeout_s).
Result<std::unique_ptr<ProcessGroup>> make_process_group(const DistEnv& env, int timeout_s = 300);

}  // namespace mf::train
