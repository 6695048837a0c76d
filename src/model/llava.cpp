#include "model/llava.h"

#include <fmt/core.h>

#include <thread>

#include "core/log.h"
#include "io/file.h"

namespace mf::model {

namespace fs = std::filesystem;
namespace F = torch::nn::functional;

ProjectorImpl::ProjectorImpl(const std::string& type, int64_t vh, int64_t th) {
    linear_1 = register_module("linear_1", torch::nn::Linear(vh, th));
    if (type == "mlp2x_gelu") linear_2 = register_module("linear_2", torch::nn::Linear(th, th));
}

torch::Tensor ProjectorImpl::forward(const torch::Tensor& x) {
    auto h = linear_1(x);
    if (!linear_2) return h;
    return linear_2(F::gelu(h));  // exact (erf) GELU, as nn.GELU()
}

MultimodalLMImpl::MultimodalLMImpl(const ModelConfig& c) : cfg_(c) {
    if (c.arch != Arch::kClipVision) lm = register_module("lm", CausalLM(c.text));
    if (is_llava(c.arch) || c.arch == Arch::kClipVision)
        vision = register_module("vision", ClipVision(c.vision));
    if (is_llava(c.arch))
        projector = register_module(
            "projector", Projector(c.projector_type, c.vision.hidden_size, c.text.hidden_size));
}

void MultimodalLMImpl::set_dtype(torch::Dtype d) {
    dtype_ = d;
    to(d);
}

int64_t MultimodalLMImpl::image_tokens() const {
    if (!vision) return 0;
    return cfg_.vision.num_patches() + (cfg_.vision_select_feature == "cls_patch" ? 1 : 0);
}

torch::Tensor MultimodalLMImpl::encode_images(const torch::Tensor& pixels) {
    TORCH_CHECK(vision && projector, "this model has no vision tower");
    int64_t L = cfg_.vision.num_hidden_layers;
    int64_t k =
        cfg_.vision_select_layer < 0 ? L + 1 + cfg_.vision_select_layer : cfg_.vision_select_layer;
    auto feats = vision->hidden_state(pixels.to(dtype_), k);  // [N, P+1, Hv]
    if (cfg_.vision_select_feature == "patch") feats = feats.narrow(1, 1, feats.size(1) - 1);
    return projector(feats);  // [N, P, Ht]
}

int64_t MultimodalLMImpl::expanded_length(const std::vector<int64_t>& ids) const {
    int64_t n = 0;
    for (auto id : ids)
        n += (id == kImageMarker) ? image_tokens() : 1;
    return n;
}

torch::Tensor MultimodalLMImpl::embed_prompt(const std::vector<int64_t>& ids,
                                             const torch::Tensor& image_embeds) {
    std::vector<torch::Tensor> parts;
    std::vector<int64_t> run;
    int64_t img = 0;
    auto flush = [&] {
        if (run.empty()) return;
        auto t = torch::tensor(run, torch::kInt64).unsqueeze(0);  // [1, n]
        parts.push_back(lm->embed(t));                            // [1, n, H]
        run.clear();
    };
    for (auto id : ids) {
        if (id == kImageMarker) {
            flush();
            TORCH_CHECK(image_embeds.defined() && img < image_embeds.size(0),
                        "the prompt has more <image> markers than images");
            parts.push_back(image_embeds[img++].unsqueeze(0).to(dtype_));
        } else {
            run.push_back(id);
        }
    }
    flush();
    TORCH_CHECK(!image_embeds.defined() || img == image_embeds.size(0),
                "the prompt has fewer <image> markers (", img, ") than images (",
                image_embeds.size(0), ")");
    return torch::cat(parts, 1);
}

std::string checkpoint_name(Arch a, const std::string& n, bool new_hf) {
    auto strip = [&](std::string_view pre) -> std::optional<std::string> {
        if (n.rfind(pre, 0) == 0) return n.substr(pre.size());
        return std::nullopt;
    };
    if (auto r = strip("lm.")) {
        if (a == Arch::kLlavaHf) {
            if (!new_hf) return "language_model." + *r;
            if (r->rfind("model.", 0) == 0) return "model.language_model." + r->substr(6);
            return *r;  // lm_head
        }
        return *r;
    }
    if (auto r = strip("vision.")) {
        switch (a) {
            case Arch::kLlavaQwen2:
            case Arch::kLlavaLlama:
                return "model.vision_tower.vision_tower." + *r;
            case Arch::kLlavaHf:
                return (new_hf ? "model.vision_tower." : "vision_tower.") + *r;
            default:
                return *r;
        }
    }
    if (auto r = strip("projector.")) {
        if (a == Arch::kLlavaHf)
            return (new_hf ? "model.multi_modal_projector." : "multi_modal_projector.") + *r;
        // LLaVA code: nn.Sequential(Linear, GELU, Linear) -> indices 0 and 2; "linear" type is a
        // plain nn.Linear named mm_projector.
        if (auto s = strip("projector.linear_1.")) return "model.mm_projector.0." + *s;
        if (auto s = strip("projector.linear_2.")) return "model.mm_projector.2." + *s;
    }
    return n;
}

namespace {
NameMap prefixed(Arch a, std::string prefix, bool new_hf) {
    return [a, prefix = std::move(prefix), new_hf](const std::string& c) {
        return checkpoint_name(a, prefix + c, new_hf);
    };
}
}  // namespace

Result<MultimodalLM> load_multimodal_lm(const fs::path& dir, const LoadOptions& opt) {
    MF_ASSIGN_OR_RETURN(ModelConfig cfg, load_model_config(dir));
    if (cfg.arch == Arch::kBert || cfg.arch == Arch::kMpnet)
        return Status::invalid_argument(
            fmt::format("{}: is a {} sentence encoder, not a causal LM (use it as an embedder)",
                        dir.string(), arch_name(cfg.arch)));
    MF_ASSIGN_OR_RETURN(io::SafetensorsSet ckpt, io::SafetensorsSet::open(dir));
    torch::Dtype dtype = torch::kFloat32;
    if (opt.dtype) {
        dtype = *opt.dtype;
    } else if (cfg.torch_dtype == "bfloat16" || cfg.torch_dtype == "float16") {
        dtype = torch::kBFloat16;
    }
    if (dtype == torch::kFloat16) dtype = torch::kBFloat16;  // no fp16 matmul on CPU
    MultimodalLM m(cfg);
    m->set_dtype(dtype);
    bool new_hf = cfg.arch == Arch::kLlavaHf &&
                  ckpt.find("language_model.model.embed_tokens.weight") == nullptr &&
                  ckpt.find("model.language_model.embed_tokens.weight") != nullptr;
    std::string what = dir.string();
    if (m->lm)
        MF_RETURN_IF_ERROR(
            load_module(*m->lm, ckpt, prefixed(cfg.arch, "lm.", new_hf), what).status());
    if (m->projector)
        MF_RETURN_IF_ERROR(
            load_module(*m->projector, ckpt, prefixed(cfg.arch, "projector.", new_hf), what)
                .status());
    if (m->vision) {
        // The tower is inside the checkpoint, or (LLaVA code) in the folder mm_vision_tower names.
        std::string probe =
            checkpoint_name(cfg.arch, "vision.vision_model.embeddings.class_embedding", new_hf);
        if (ckpt.find(probe) || cfg.arch == Arch::kClipVision || cfg.arch == Arch::kLlavaHf) {
            MF_RETURN_IF_ERROR(
                load_module(*m->vision, ckpt, prefixed(cfg.arch, "vision.", new_hf), what)
                    .status());
        } else {
            fs::path tower = cfg.vision_tower_path;
            if (tower.is_relative()) tower = dir / tower;
            if (cfg.vision_tower_path.empty() || !fs::exists(tower / "config.json"))
                return Status::not_found(fmt::format(
                    "{}: the vision tower is not inside the checkpoint (no '{}') and "
                    "mm_vision_tower "
                    "'{}' is not a local folder with config.json; download the CLIP checkpoint and "
                    "set mm_vision_tower to its path",
                    dir.string(), probe, cfg.vision_tower_path));
            MF_ASSIGN_OR_RETURN(ModelConfig vc, load_model_config(tower));
            if (vc.vision.hidden_size != cfg.vision.hidden_size ||
                vc.vision.num_hidden_layers != cfg.vision.num_hidden_layers ||
                vc.vision.image_size != cfg.vision.image_size)
                return Status::invalid_argument(fmt::format(
                    "{}: the vision tower config does not match the model's (hidden {} vs {})",
                    tower.string(), vc.vision.hidden_size, cfg.vision.hidden_size));
            MF_ASSIGN_OR_RETURN(io::SafetensorsSet vckpt, io::SafetensorsSet::open(tower));
            MF_RETURN_IF_ERROR(load_module(*m->vision, vckpt, nullptr, tower.string()).status());
        }
    }
    m->eval();
    return m;
}

Status save_multimodal_lm(MultimodalLM& m, const fs::path& dir, torch::Dtype save_dtype,
                          size_t max_shard_bytes) {
    const ModelConfig& cfg = m->config();
    OwnedTensors all;
    if (m->lm) {
        MF_ASSIGN_OR_RETURN(auto t,
                            module_tensors(*m->lm, prefixed(cfg.arch, "lm.", false), save_dtype));
        append_tensors(all, std::move(t));
    }
    if (m->projector) {
        MF_ASSIGN_OR_RETURN(
            auto t,
            module_tensors(*m->projector, prefixed(cfg.arch, "projector.", false), save_dtype));
        append_tensors(all, std::move(t));
    }
    if (m->vision) {
        MF_ASSIGN_OR_RETURN(
            auto t, module_tensors(*m->vision, prefixed(cfg.arch, "vision.", false), save_dtype));
        append_tensors(all, std::move(t));
    }
    MF_RETURN_IF_ERROR(io::ensure_dir(dir));
    ModelConfig out = cfg;
    out.torch_dtype = save_dtype == torch::kBFloat16  ? "bfloat16"
                      : save_dtype == torch::kFloat16 ? "float16"
                                                      : "float32";
    MF_RETURN_IF_ERROR(io::write_checkpoint_tensors(dir, all.tensors, max_shard_bytes));
    return io::write_file_atomic(dir / "config.json", model_config_json(out));
}

ParamCounts count_params(MultimodalLM& m) {
    ParamCounts c;
    auto sum = [](torch::nn::Module& mod) {
        int64_t n = 0;
        for (const auto& p : mod.parameters())
            n += p.numel();
        return n;
    };
    if (m->lm) c.lm = sum(*m->lm);
    if (m->vision) c.vision = sum(*m->vision);
    if (m->projector) c.projector = sum(*m->projector);
    return c;
}

void init_torch_threads(int threads) {
    static std::once_flag once;
    std::call_once(once, [threads] {
        int n = threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency());
        torch::set_num_threads(std::max(1, n));
    });
}

}  // namespace mf::model
