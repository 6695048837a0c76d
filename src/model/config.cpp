#include "model/config.h"

#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "io/file.h"

namespace mf::model {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {
struct ArchRow {
    Arch a;
    std::string_view name;
};
constexpr ArchRow kArchs[] = {
    {Arch::kQwen2, "qwen2"},
    {Arch::kLlama, "llama"},
    {Arch::kLlavaQwen2, "llava-qwen2"},
    {Arch::kLlavaLlama, "llava-llama"},
    {Arch::kLlavaHf, "llava-hf"},
    {Arch::kClipVision, "clip-vision"},
    {Arch::kBert, "bert"},
    {Arch::kMpnet, "mpnet"},
};

// Reads optional typed keys with HF semantics: absent -> keep the default; present with the wrong
// type -> an error naming the key path.
class Reader {
  public:
    Reader(const json& j, std::string origin, std::string prefix)
        : j_(j), origin_(std::move(origin)), prefix_(std::move(prefix)) {}
    Status status() const { return st_; }
    void i64(const char* key, int64_t& out) {
        if (!has(key)) return;
        if (!j_[key].is_number_integer()) return fail(key, "an integer");
        out = j_[key].get<int64_t>();
    }
    void opt_i64(const char* key, std::optional<int64_t>& out) {
        if (!has(key)) return;
        if (j_[key].is_array() && !j_[key].empty() && j_[key][0].is_number_integer()) {
            out = j_[key][0].get<int64_t>();  // eos_token_id may be a list; the first is primary
            return;
        }
        if (!j_[key].is_number_integer()) return fail(key, "an integer");
        out = j_[key].get<int64_t>();
    }
    void f64(const char* key, double& out) {
        if (!has(key)) return;
        if (!j_[key].is_number()) return fail(key, "a number");
        out = j_[key].get<double>();
    }
    void boolean(const char* key, bool& out) {
        if (!has(key)) return;
        if (!j_[key].is_boolean()) return fail(key, "true or false");
        out = j_[key].get<bool>();
    }
    void str(const char* key, std::string& out) {
        if (!has(key)) return;
        if (!j_[key].is_string()) return fail(key, "a string");
        out = j_[key].get<std::string>();
    }
    bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }

  private:
    void fail(const char* key, const char* want) {
        if (st_.ok())
            st_ = Status::invalid_argument(fmt::format("{}: {}{}: expected {}, got {}", origin_,
                                                       prefix_, key, want,
                                                       j_[key].dump().substr(0, 60)));
    }
    const json& j_;
    std::string origin_, prefix_;
    Status st_;
};

void text_defaults(TextConfig& t, const std::string& family) {
    t.family = family;
    if (family == "qwen2") {  // transformers Qwen2Config defaults
        t.vocab_size = 151936;
        t.hidden_size = 4096;
        t.intermediate_size = 22016;
        t.num_hidden_layers = 32;
        t.num_attention_heads = 32;
        t.num_key_value_heads = 32;
        t.max_position_embeddings = 32768;
        t.rms_norm_eps = 1e-6;
        t.attention_bias = true;
    } else {  // LlamaConfig defaults
        t.vocab_size = 32000;
        t.hidden_size = 4096;
        t.intermediate_size = 11008;
        t.num_hidden_layers = 32;
        t.num_attention_heads = 32;
        t.num_key_value_heads = -1;  // = heads
        t.max_position_embeddings = 2048;
        t.rms_norm_eps = 1e-6;
        t.attention_bias = false;
    }
}

Status read_text(const json& j, const std::string& origin, const std::string& prefix,
                 const std::string& family, TextConfig& t) {
    text_defaults(t, family);
    Reader r(j, origin, prefix);
    r.i64("vocab_size", t.vocab_size);
    r.i64("hidden_size", t.hidden_size);
    r.i64("intermediate_size", t.intermediate_size);
    r.i64("num_hidden_layers", t.num_hidden_layers);
    r.i64("num_attention_heads", t.num_attention_heads);
    r.i64("num_key_value_heads", t.num_key_value_heads);
    r.i64("head_dim", t.head_dim);
    r.i64("max_position_embeddings", t.max_position_embeddings);
    r.f64("rms_norm_eps", t.rms_norm_eps);
    r.f64("rope_theta", t.rope_theta);
    if (family == "llama") r.boolean("attention_bias", t.attention_bias);
    r.boolean("tie_word_embeddings", t.tie_word_embeddings);
    r.str("hidden_act", t.hidden_act);
    r.opt_i64("bos_token_id", t.bos_token_id);
    r.opt_i64("eos_token_id", t.eos_token_id);
    r.opt_i64("pad_token_id", t.pad_token_id);
    MF_RETURN_IF_ERROR(r.status());
    if (j.contains("rope_scaling") && !j["rope_scaling"].is_null())
        return Status::unsupported(fmt::format(
            "{}: {}rope_scaling {} is not supported yet (only plain RoPE); remove it or use a "
            "model without context extension",
            origin, prefix, j["rope_scaling"].dump()));
    if (t.num_key_value_heads <= 0) t.num_key_value_heads = t.num_attention_heads;
    if (t.hidden_size <= 0 || t.num_attention_heads <= 0 || t.num_hidden_layers <= 0 ||
        t.vocab_size <= 0 || t.intermediate_size <= 0)
        return Status::invalid_argument(
            fmt::format("{}: {}hidden_size, num_attention_heads, num_hidden_layers, vocab_size and "
                        "intermediate_size must be positive",
                        origin, prefix));
    if (t.head_dim <= 0) {
        if (t.hidden_size % t.num_attention_heads != 0)
            return Status::invalid_argument(
                fmt::format("{}: {}hidden_size {} is not a multiple of num_attention_heads {}",
                            origin, prefix, t.hidden_size, t.num_attention_heads));
        t.head_dim = t.hidden_size / t.num_attention_heads;
    }
    if (t.num_attention_heads % t.num_key_value_heads != 0)
        return Status::invalid_argument(
            fmt::format("{}: {}num_attention_heads {} is not a multiple of num_key_value_heads {}",
                        origin, prefix, t.num_attention_heads, t.num_key_value_heads));
    if (t.head_dim % 2 != 0)
        return Status::invalid_argument(
            fmt::format("{}: {}head_dim {} must be even for RoPE", origin, prefix, t.head_dim));
    if (t.hidden_act != "silu")
        return Status::unsupported(
            fmt::format("{}: {}hidden_act '{}' is not supported for the decoder (only silu)",
                        origin, prefix, t.hidden_act));
    return Status::ok_status();
}

Status read_vision(const json& j, const std::string& origin, const std::string& prefix,
                   VisionConfig& v) {
    // CLIPVisionConfig defaults
    v = VisionConfig{};
    v.hidden_size = 768;
    v.intermediate_size = 3072;
    v.num_hidden_layers = 12;
    v.num_attention_heads = 12;
    v.image_size = 224;
    v.patch_size = 32;
    Reader r(j, origin, prefix);
    r.i64("hidden_size", v.hidden_size);
    r.i64("intermediate_size", v.intermediate_size);
    r.i64("num_hidden_layers", v.num_hidden_layers);
    r.i64("num_attention_heads", v.num_attention_heads);
    r.i64("image_size", v.image_size);
    r.i64("patch_size", v.patch_size);
    r.i64("num_channels", v.num_channels);
    r.f64("layer_norm_eps", v.layer_norm_eps);
    r.str("hidden_act", v.hidden_act);
    MF_RETURN_IF_ERROR(r.status());
    if (v.hidden_size <= 0 || v.num_attention_heads <= 0 || v.hidden_size % v.num_attention_heads ||
        v.patch_size <= 0 || v.image_size % v.patch_size)
        return Status::invalid_argument(fmt::format(
            "{}: {}vision sizes are inconsistent (hidden_size {} heads {} image_size {} "
            "patch_size {})",
            origin, prefix, v.hidden_size, v.num_attention_heads, v.image_size, v.patch_size));
    if (v.hidden_act != "quick_gelu" && v.hidden_act != "gelu")
        return Status::unsupported(fmt::format("{}: {}hidden_act '{}' (CLIP uses quick_gelu)",
                                               origin, prefix, v.hidden_act));
    return Status::ok_status();
}

// openai/clip-vit-large-patch14-336, the tower LLaVA-1.5 and HuatuoGPT-Vision use.
VisionConfig clip_vit_l14_336() {
    VisionConfig v;
    v.hidden_size = 1024;
    v.intermediate_size = 4096;
    v.num_hidden_layers = 24;
    v.num_attention_heads = 16;
    v.image_size = 336;
    v.patch_size = 14;
    return v;
}

std::string first_architecture(const json& j) {
    if (j.contains("architectures") && j["architectures"].is_array() &&
        !j["architectures"].empty() && j["architectures"][0].is_string())
        return j["architectures"][0].get<std::string>();
    return {};
}
}  // namespace

std::string_view arch_name(Arch a) {
    for (const auto& r : kArchs)
        if (r.a == a) return r.name;
    return "?";
}
Result<Arch> parse_arch(std::string_view name) {
    for (const auto& r : kArchs)
        if (r.name == name) return r.a;
    return Status::invalid_argument(fmt::format(
        "unknown architecture '{}' (one of: llava-qwen2 llava-llama llava-hf qwen2 llama "
        "clip-vision bert mpnet)",
        name));
}
bool is_llava(Arch a) {
    return a == Arch::kLlavaQwen2 || a == Arch::kLlavaLlama || a == Arch::kLlavaHf;
}

Result<ModelConfig> parse_model_config(std::string_view text, std::string_view origin_sv) {
    std::string origin(origin_sv);
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return Status::invalid_argument(fmt::format("{}: not a JSON object", origin));
    ModelConfig c;
    Reader top(j, origin, "");
    top.str("model_type", c.model_type);
    top.str("torch_dtype", c.torch_dtype);
    MF_RETURN_IF_ERROR(top.status());
    std::string archs = first_architecture(j);
    const std::string& mt = c.model_type;
    if (archs == "LlavaQwen2ForCausalLM" || mt == "llava_qwen2") {
        c.arch = Arch::kLlavaQwen2;
    } else if (archs == "LlavaLlamaForCausalLM" || mt == "llava_llama" ||
               (archs.empty() && mt == "llava" && !j.contains("text_config"))) {
        c.arch = Arch::kLlavaLlama;
    } else if (archs == "LlavaForConditionalGeneration" || mt == "llava") {
        c.arch = Arch::kLlavaHf;
    } else if (archs == "Qwen2ForCausalLM" || mt == "qwen2") {
        c.arch = Arch::kQwen2;
    } else if (archs == "LlamaForCausalLM" || archs == "MistralForCausalLM" || mt == "llama" ||
               mt == "mistral") {
        c.arch = Arch::kLlama;
    } else if (archs == "CLIPVisionModel" || archs == "CLIPModel" || mt == "clip" ||
               mt == "clip_vision_model") {
        c.arch = Arch::kClipVision;
    } else if (archs == "BertModel" || mt == "bert") {
        c.arch = Arch::kBert;
    } else if (archs == "MPNetModel" || mt == "mpnet") {
        c.arch = Arch::kMpnet;
    } else {
        return Status::unsupported(fmt::format(
            "{}: architecture '{}' / model_type '{}' is not supported (medforge loads "
            "LlavaQwen2ForCausalLM, LlavaLlamaForCausalLM, LlavaForConditionalGeneration, "
            "Qwen2ForCausalLM, LlamaForCausalLM, CLIPVisionModel, BertModel, MPNetModel)",
            origin, archs, mt));
    }

    switch (c.arch) {
        case Arch::kQwen2:
        case Arch::kLlama:
            MF_RETURN_IF_ERROR(
                read_text(j, origin, "", c.arch == Arch::kQwen2 ? "qwen2" : "llama", c.text));
            break;
        case Arch::kLlavaQwen2:
        case Arch::kLlavaLlama: {
            MF_RETURN_IF_ERROR(
                read_text(j, origin, "", c.arch == Arch::kLlavaQwen2 ? "qwen2" : "llama", c.text));
            Reader r(j, origin, "");
            r.str("mm_projector_type", c.projector_type);
            r.i64("mm_vision_select_layer", c.vision_select_layer);
            r.str("mm_vision_select_feature", c.vision_select_feature);
            r.str("image_aspect_ratio", c.image_aspect_ratio);
            r.str("mm_vision_tower", c.vision_tower_path);
            if (!r.has("mm_vision_tower")) r.str("vision_tower", c.vision_tower_path);
            int64_t mm_hidden = 0;
            r.i64("mm_hidden_size", mm_hidden);
            MF_RETURN_IF_ERROR(r.status());
            if (j.contains("vision_config") && j["vision_config"].is_object()) {
                MF_RETURN_IF_ERROR(
                    read_vision(j["vision_config"], origin, "vision_config.", c.vision));
            } else {
                // The LLaVA code names its tower; its config lives in that checkpoint. The tower
                // every published LLaVA-1.5 / HuatuoGPT-Vision model uses is CLIP ViT-L/14-336.
                c.vision = clip_vit_l14_336();
            }
            if (mm_hidden > 0 && mm_hidden != c.vision.hidden_size)
                return Status::invalid_argument(fmt::format(
                    "{}: mm_hidden_size {} does not match the vision tower's hidden_size {}",
                    origin, mm_hidden, c.vision.hidden_size));
            break;
        }
        case Arch::kLlavaHf: {
            if (!j.contains("text_config") || !j["text_config"].is_object())
                return Status::invalid_argument(fmt::format(
                    "{}: text_config: missing (LlavaForConditionalGeneration)", origin));
            if (!j.contains("vision_config") || !j["vision_config"].is_object())
                return Status::invalid_argument(fmt::format(
                    "{}: vision_config: missing (LlavaForConditionalGeneration)", origin));
            const json& tc = j["text_config"];
            std::string fam = "llama";
            if (tc.contains("model_type") && tc["model_type"].is_string() &&
                tc["model_type"].get<std::string>() == "qwen2")
                fam = "qwen2";
            MF_RETURN_IF_ERROR(read_text(tc, origin, "text_config.", fam, c.text));
            MF_RETURN_IF_ERROR(read_vision(j["vision_config"], origin, "vision_config.", c.vision));
            Reader r(j, origin, "");
            r.i64("image_token_index", c.image_token_index);
            if (!r.has("image_token_index")) r.i64("image_token_id", c.image_token_index);
            r.i64("vision_feature_layer", c.vision_select_layer);
            std::string strategy = "default";
            r.str("vision_feature_select_strategy", strategy);
            std::string act = "gelu";
            r.str("projector_hidden_act", act);
            MF_RETURN_IF_ERROR(r.status());
            // Top-level vocab_size / pad ids override text_config in older llava-hf configs.
            r.i64("vocab_size", c.text.vocab_size);
            r.opt_i64("pad_token_id", c.text.pad_token_id);
            c.vision_select_feature = strategy == "full" ? "cls_patch" : "patch";
            if (act != "gelu")
                return Status::unsupported(
                    fmt::format("{}: projector_hidden_act '{}' (only gelu)", origin, act));
            c.projector_type = "mlp2x_gelu";
            c.image_aspect_ratio = "none";
            break;
        }
        case Arch::kClipVision: {
            if (j.contains("vision_config") && j["vision_config"].is_object())
                MF_RETURN_IF_ERROR(
                    read_vision(j["vision_config"], origin, "vision_config.", c.vision));
            else
                MF_RETURN_IF_ERROR(read_vision(j, origin, "", c.vision));
            break;
        }
        case Arch::kBert:
        case Arch::kMpnet:
            break;  // text_encoder.cpp reads its own keys
    }
    if (is_llava(c.arch)) {
        if (c.projector_type != "mlp2x_gelu" && c.projector_type != "linear")
            return Status::unsupported(
                fmt::format("{}: mm_projector_type '{}' (supported: mlp2x_gelu, linear)", origin,
                            c.projector_type));
        if (c.vision_select_feature != "patch" && c.vision_select_feature != "cls_patch")
            return Status::unsupported(
                fmt::format("{}: mm_vision_select_feature '{}' (patch or cls_patch)", origin,
                            c.vision_select_feature));
        int64_t L = c.vision.num_hidden_layers;
        int64_t sel =
            c.vision_select_layer < 0 ? L + 1 + c.vision_select_layer : c.vision_select_layer;
        if (sel < 0 || sel > L)
            return Status::invalid_argument(fmt::format(
                "{}: vision feature layer {} is outside the {} hidden states of the tower", origin,
                c.vision_select_layer, L + 1));
    }
    return c;
}

Result<ModelConfig> load_model_config(const fs::path& dir) {
    fs::path p = dir / "config.json";
    MF_ASSIGN_OR_RETURN(std::string text, io::read_file(p));
    return parse_model_config(text, p.string());
}

std::string model_config_json(const ModelConfig& c) {
    auto text = [&](json& j, const TextConfig& t) {
        j["vocab_size"] = t.vocab_size;
        j["hidden_size"] = t.hidden_size;
        j["intermediate_size"] = t.intermediate_size;
        j["num_hidden_layers"] = t.num_hidden_layers;
        j["num_attention_heads"] = t.num_attention_heads;
        j["num_key_value_heads"] = t.num_key_value_heads;
        if (t.head_dim != t.hidden_size / t.num_attention_heads) j["head_dim"] = t.head_dim;
        j["max_position_embeddings"] = t.max_position_embeddings;
        j["rms_norm_eps"] = t.rms_norm_eps;
        j["rope_theta"] = t.rope_theta;
        j["tie_word_embeddings"] = t.tie_word_embeddings;
        j["hidden_act"] = t.hidden_act;
        if (t.family == "llama") j["attention_bias"] = t.attention_bias;
        if (t.bos_token_id) j["bos_token_id"] = *t.bos_token_id;
        if (t.eos_token_id) j["eos_token_id"] = *t.eos_token_id;
        if (t.pad_token_id) j["pad_token_id"] = *t.pad_token_id;
    };
    auto vision = [&](const VisionConfig& v) {
        return json{{"model_type", "clip_vision_model"},
                    {"hidden_size", v.hidden_size},
                    {"intermediate_size", v.intermediate_size},
                    {"num_hidden_layers", v.num_hidden_layers},
                    {"num_attention_heads", v.num_attention_heads},
                    {"image_size", v.image_size},
                    {"patch_size", v.patch_size},
                    {"num_channels", v.num_channels},
                    {"layer_norm_eps", v.layer_norm_eps},
                    {"hidden_act", v.hidden_act}};
    };
    json j;
    j["torch_dtype"] = c.torch_dtype.empty() ? "float32" : c.torch_dtype;
    switch (c.arch) {
        case Arch::kQwen2:
            j["architectures"] = {"Qwen2ForCausalLM"};
            j["model_type"] = "qwen2";
            text(j, c.text);
            break;
        case Arch::kLlama:
            j["architectures"] = {"LlamaForCausalLM"};
            j["model_type"] = "llama";
            text(j, c.text);
            break;
        case Arch::kLlavaQwen2:
        case Arch::kLlavaLlama:
            j["architectures"] = {c.arch == Arch::kLlavaQwen2 ? "LlavaQwen2ForCausalLM"
                                                              : "LlavaLlamaForCausalLM"};
            j["model_type"] = c.arch == Arch::kLlavaQwen2 ? "llava_qwen2" : "llava_llama";
            text(j, c.text);
            j["mm_hidden_size"] = c.vision.hidden_size;
            j["mm_projector_type"] = c.projector_type;
            j["mm_vision_select_layer"] = c.vision_select_layer;
            j["mm_vision_select_feature"] = c.vision_select_feature;
            j["mm_vision_tower"] = c.vision_tower_path.empty() ? "openai/clip-vit-large-patch14-336"
                                                               : c.vision_tower_path;
            j["mm_use_im_start_end"] = false;
            j["mm_use_im_patch_token"] = false;
            j["image_aspect_ratio"] = c.image_aspect_ratio;
            // medforge addition (ignored by the LLaVA code): the tower's own config, so a
            // checkpoint with the tower inside needs no second folder.
            j["vision_config"] = vision(c.vision);
            break;
        case Arch::kLlavaHf: {
            j["architectures"] = {"LlavaForConditionalGeneration"};
            j["model_type"] = "llava";
            json t;
            t["model_type"] = c.text.family;
            t["architectures"] = {c.text.family == "qwen2" ? "Qwen2ForCausalLM"
                                                           : "LlamaForCausalLM"};
            text(t, c.text);
            j["text_config"] = t;
            j["vision_config"] = vision(c.vision);
            j["image_token_index"] = c.image_token_index;
            j["vision_feature_layer"] = c.vision_select_layer;
            j["vision_feature_select_strategy"] =
                c.vision_select_feature == "patch" ? "default" : "full";
            j["projector_hidden_act"] = "gelu";
            j["vocab_size"] = c.text.vocab_size;
            if (c.text.pad_token_id) j["pad_token_id"] = *c.text.pad_token_id;
            break;
        }
        case Arch::kClipVision:
            j["architectures"] = {"CLIPVisionModel"};
            j.update(vision(c.vision));
            break;
        case Arch::kBert:
        case Arch::kMpnet:
            break;
    }
    return j.dump(2) + "\n";
}

}  // namespace mf::model
