// Model configuration read from a Hugging Face config.json.
//
// Recognised layouts (the `architectures` / `model_type` fields decide):
//   llava-qwen2  HuatuoGPT-Vision (LlavaQwen2ForCausalLM, model_type "llava_qwen2"): Qwen2 keys at
//                top level plus mm_* keys; tensors model.*, lm_head, model.mm_projector.{0,2},
//                vision tower under model.vision_tower.vision_tower.* (or in the folder named by
//                mm_vision_tower).
//   llava-llama  same LLaVA-1.5 layout with a LLaMA decoder (LlavaLlamaForCausalLM, "llava").
//   llava-hf     LlavaForConditionalGeneration (llava-hf/llava-1.5-7b-hf): text_config,
//                vision_config; tensors language_model.*, vision_tower.*, multi_modal_projector.*.
//   qwen2, llama plain causal LMs (Qwen2ForCausalLM, LlamaForCausalLM).
//   clip-vision  CLIPVisionModel / CLIPModel (vision_config or top-level vision keys);
//   vision_model.*. bert, mpnet  sentence encoders (see text_encoder.h).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "core/status.h"

namespace mf::model {

enum class Arch { kQwen2, kLlama, kLlavaQwen2, kLlavaLlama, kLlavaHf, kClipVision, kBert, kMpnet };
std::string_view arch_name(Arch a);  // "qwen2", "llava-qwen2", ...
Result<Arch> parse_arch(std::string_view name);
bool is_llava(Arch a);

struct TextConfig {
    std::string family = "qwen2";  // "qwen2" | "llama"
    int64_t vocab_size = 0;
    int64_t hidden_size = 0;
    int64_t intermediate_size = 0;
    int64_t num_hidden_layers = 0;
    int64_t num_attention_heads = 0;
    int64_t num_key_value_heads = 0;
    int64_t head_dim = 0;  // hidden_size / heads unless given
    int64_t max_position_embeddings = 4096;
    double rms_norm_eps = 1e-6;
    double rope_theta = 10000.0;
    bool attention_bias = false;  // q/k/v biases: true for Qwen2
    bool tie_word_embeddings = false;
    std::string hidden_act = "silu";
    std::optional<int64_t> bos_token_id, eos_token_id, pad_token_id;
};

struct VisionConfig {
    int64_t hidden_size = 0;
    int64_t intermediate_size = 0;
    int64_t num_hidden_layers = 0;
    int64_t num_attention_heads = 0;
    int64_t image_size = 336;
    int64_t patch_size = 14;
    int64_t num_channels = 3;
    double layer_norm_eps = 1e-5;
    std::string hidden_act = "quick_gelu";
    int64_t num_patches() const { return (image_size / patch_size) * (image_size / patch_size); }
};

struct ModelConfig {
    Arch arch = Arch::kQwen2;
    std::string model_type;   // as written in config.json
    std::string torch_dtype;  // "bfloat16", "float32", ... (informational)
    TextConfig text;          // decoder (unused for clip-vision)
    VisionConfig vision;      // LLaVA and clip-vision
    // LLaVA fusion
    std::string projector_type = "mlp2x_gelu";
    int64_t vision_select_layer = -2;             // hidden_states index (penultimate layer)
    std::string vision_select_feature = "patch";  // "patch" drops CLS; "cls_patch" keeps it
    int64_t image_token_index = -200;  // llava-hf: a vocab id (32000); LLaVA code: -200 marker
    std::string image_aspect_ratio = "pad";
    std::string vision_tower_path;  // mm_vision_tower (LLaVA code), resolved against the checkpoint
};

// Parses config.json text. `origin` names the file in errors; a missing or mistyped key names
// itself ("config.json: text_config.hidden_size: missing").
Result<ModelConfig> parse_model_config(std::string_view json_text, std::string_view origin);
Result<ModelConfig> load_model_config(const std::filesystem::path& dir);
// config.json for `c` in the layout of its architecture (what `model init` writes).
std::string model_config_json(const ModelConfig& c);

}  // namespace mf::model
