// The multimodal causal LM: an optional CLIP vision tower + projector in front of a Qwen2/LLaMA
// decoder (LLaVA-1.5 as HuatuoGPT-Vision uses it). Text-only checkpoints (qwen2, llama) load into
// the same class without the vision parts.
//
// Canonical parameter names: "lm.<decoder names>", "vision.<CLIP names>",
// "projector.linear_{1,2}.{weight,bias}"; checkpoint_name() maps them to each layout.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/clip.h"
#include "model/config.h"
#include "model/decoder.h"
#include "model/weights.h"

namespace mf::model {

// The id that stands for one image in a prompt's token ids (LLaVA's IMAGE_TOKEN_INDEX); it expands
// to the image's num_patches embeddings.
constexpr int64_t kImageMarker = -200;

class ProjectorImpl : public torch::nn::Module {
  public:
    ProjectorImpl(const std::string& type, int64_t vision_hidden, int64_t text_hidden);
    torch::Tensor forward(const torch::Tensor& x);  // [.., Hv] -> [.., Ht]
    torch::nn::Linear linear_1{nullptr}, linear_2{nullptr};
};
TORCH_MODULE(Projector);

class MultimodalLMImpl : public torch::nn::Module {
  public:
    explicit MultimodalLMImpl(const ModelConfig& c);

    bool has_vision() const { return static_cast<bool>(vision); }
    int64_t image_tokens() const;  // embeddings per image (576 for ViT-L/14-336, patch features)

    // pixels [N, 3, S, S] -> image embeddings in the decoder's space [N, P, Ht]
    torch::Tensor encode_images(const torch::Tensor& pixels);
    // ids (with kImageMarker entries, one per image, in order) + image embeddings [N, P, Ht]
    // -> input embeddings [1, T + N*(P-1), Ht]
    torch::Tensor embed_prompt(const std::vector<int64_t>& ids, const torch::Tensor& image_embeds);
    // Number of positions the prompt occupies after image expansion.
    int64_t expanded_length(const std::vector<int64_t>& ids) const;

    const ModelConfig& config() const { return cfg_; }
    torch::Dtype dtype() const { return dtype_; }
    void set_dtype(torch::Dtype d);

    CausalLM lm{nullptr};
    ClipVision vision{nullptr};
    Projector projector{nullptr};

  private:
    ModelConfig cfg_;
    torch::Dtype dtype_ = torch::kFloat32;
};
TORCH_MODULE(MultimodalLM);

// The checkpoint tensor name of a canonical one ("lm.model.norm.weight" -> "model.norm.weight" for
// Qwen2, "language_model.model.norm.weight" for llava-hf, ...). `new_hf_layout`: llava-hf as
// written by transformers >= 4.52 ("model.language_model.*").
std::string checkpoint_name(Arch a, const std::string& canonical, bool new_hf_layout = false);

struct LoadOptions {
    // kFloat32 / kBFloat16; unset = the checkpoint's torch_dtype (f16 -> bf16 on CPU).
    std::optional<torch::Dtype> dtype;
};

// Reads config.json + safetensors of a folder into a ready (eval-mode, no-grad) model. Fails
// naming any missing or misshapen tensor.
Result<MultimodalLM> load_multimodal_lm(const std::filesystem::path& dir,
                                        const LoadOptions& opt = {});

// Writes `m` as a Hugging Face checkpoint of its architecture into `dir` (config.json +
// model.safetensors or shards). Tokenizer files are the caller's business.
Status save_multimodal_lm(MultimodalLM& m, const std::filesystem::path& dir,
                          torch::Dtype save_dtype, size_t max_shard_bytes = size_t{5} << 30);

// Sum of parameter counts by part: "lm", "vision", "projector".
struct ParamCounts {
    int64_t lm = 0, vision = 0, projector = 0;
    int64_t total() const { return lm + vision + projector; }
};
ParamCounts count_params(MultimodalLM& m);

// torch::set_num_threads(hardware threads) once per process (libtorch defaults to 1 here).
void init_torch_threads(int threads = 0);

}  // namespace mf::model
