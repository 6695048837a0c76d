// Loading torch modules from Hugging Face safetensors checkpoints, and saving them back.
//
// Modules in src/model name their parameters canonically (e.g. "model.layers.0.self_attn.q_proj.
// weight" for a decoder, "vision_model.encoder..." for CLIP). A NameMap turns a canonical name into
// the checkpoint's name (e.g. prefix "language_model." for llava-hf). Every parameter must be found
// with the right shape, or the load fails naming the tensor, the expected and the found shape.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "io/safetensors.h"

namespace mf::model {

using NameMap = std::function<std::string(const std::string& canonical)>;

torch::Dtype to_torch_dtype(io::DType d);
Result<io::DType> from_torch_dtype(torch::Dtype d);
// "f32" | "float32" | "bf16" | "bfloat16" | "f16" | "float16"
Result<torch::Dtype> parse_compute_dtype(std::string_view s);

// "[4096, 11008]"
std::string shape_str(torch::IntArrayRef sizes);

// A copy of a checkpoint tensor as a torch tensor of `dtype` (conversion on the fly).
torch::Tensor tensor_from(const io::TensorInfo& t, torch::Dtype dtype);

struct LoadReport {
    size_t loaded = 0;
    size_t params = 0;  // number of scalar parameters loaded
};

// Copies every parameter and buffer named in `module` (canonical names, optionally under
// `module_prefix`) from `ckpt` via `map`, converting to the parameter's dtype.
Result<LoadReport> load_module(torch::nn::Module& module, const io::SafetensorsSet& ckpt,
                               const NameMap& map, std::string_view what);

// Canonical-named tensors of a module, ready to write (names mapped by `map`).
struct OwnedTensors {
    std::vector<io::TensorToWrite> tensors;
    std::vector<torch::Tensor> keep;  // owns the bytes the spans point to
};
Result<OwnedTensors> module_tensors(const torch::nn::Module& module, const NameMap& map,
                                    torch::Dtype save_dtype);
// Appends b's tensors to a.
void append_tensors(OwnedTensors& a, OwnedTensors&& b);

// Inference only: moves every parameter and buffer of `module` into one anonymous arena aligned to
// 2 MiB and advised MADV_HUGEPAGE (Linux; where transparent huge pages are "madvise" or "always").
// Batch-1 decoding streams all weights every token; with 4 KiB pages the hardware prefetcher stops
// at each page boundary and the TLB misses, which cost about 40% of the read rate on Zen 4
// (bench_model measures both). Values, dtypes, shapes and requires_grad are unchanged. Returns the
// arena's size in bytes (0 where huge pages are unavailable: the module is left as it was).
size_t move_to_hugepage_arena(torch::nn::Module& module);

}  // namespace mf::model
