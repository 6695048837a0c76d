#include "model/engine.h"

#include <fmt/core.h>

#include "core/log.h"

namespace mf::model {

namespace fs = std::filesystem;

Result<std::unique_ptr<Engine>> Engine::load(const fs::path& dir, const EngineOptions& opt) {
    init_torch_threads(opt.threads);
    std::unique_ptr<Engine> e(new Engine());
    MF_ASSIGN_OR_RETURN(e->model_, load_multimodal_lm(dir, LoadOptions{opt.dtype}));
    // Decoding streams every weight each token: keep them on huge pages (model/weights.h).
    move_to_hugepage_arena(*e->model_);
    const ModelConfig& cfg = e->model_->config();
    if (!e->model_->lm)
        return Status::invalid_argument(
            fmt::format("{}: a {} checkpoint has no language model to chat with", dir.string(),
                        arch_name(cfg.arch)));
    MF_ASSIGN_OR_RETURN(e->tok_, io::load_tokenizer(dir));
    if (static_cast<int64_t>(e->tok_->vocab_size()) > cfg.text.vocab_size)
        return Status::invalid_argument(fmt::format(
            "{}: the tokenizer has {} ids but the model's vocab_size is {}; tokenizer and weights "
            "do not belong together",
            dir.string(), e->tok_->vocab_size(), cfg.text.vocab_size));
    if (!opt.chat_format.empty()) {
        MF_ASSIGN_OR_RETURN(io::ChatFormat f, io::parse_chat_format(opt.chat_format));
        e->template_.emplace(f);
    } else {
        auto t = io::detect_chat_template(dir);
        if (!t.ok())
            return t.status().with_context(
                "cannot tell the chat template; pass --chat-format (huatuo, chatml, llama3, "
                "llama2, plain)");
        e->template_.emplace(*t);
    }
    for (int32_t id : e->template_->stop_ids(*e->tok_))
        e->eos_.push_back(id);
    if (cfg.text.eos_token_id &&
        std::find(e->eos_.begin(), e->eos_.end(), *cfg.text.eos_token_id) == e->eos_.end())
        e->eos_.push_back(*cfg.text.eos_token_id);
    if (e->model_->has_vision()) {
        if (fs::exists(dir / "preprocessor_config.json")) {
            MF_ASSIGN_OR_RETURN(e->improc_, load_image_processor_config(dir));
        } else {
            e->improc_ = cfg.arch == Arch::kLlavaHf ? ImageProcessorConfig::llava_hf()
                                                    : ImageProcessorConfig::llava15();
        }
        if (cfg.arch != Arch::kLlavaHf) e->improc_.pad_to_square = cfg.image_aspect_ratio == "pad";
        auto [w, h] = e->improc_.output_size(cfg.vision.image_size, cfg.vision.image_size);
        if (w != cfg.vision.image_size || h != cfg.vision.image_size)
            return Status::invalid_argument(fmt::format(
                "{}: preprocessor_config.json gives {}x{} images but the vision tower takes {}",
                dir.string(), w, h, cfg.vision.image_size));
    }
    e->id_ = fs::absolute(dir).lexically_normal().filename().string();
    if (e->id_.empty())
        e->id_ = fs::absolute(dir).lexically_normal().parent_path().filename().string();
    return e;
}

int64_t Engine::max_context() const {
    return model_->config().text.max_position_embeddings;
}

Result<std::vector<int64_t>> Engine::prompt_ids(std::vector<io::ChatMessage> messages,
                                                size_t n_images) const {
    size_t markers = 0;
    for (const auto& m : messages) {
        size_t at = 0;
        while ((at = m.text.find(io::kImageMarker, at)) != std::string::npos) {
            ++markers;
            at += io::kImageMarker.size();
        }
    }
    if (n_images > 0 && markers == 0) {
        for (auto& m : messages)
            if (m.role == "user") {
                std::string pre;
                for (size_t i = 0; i < n_images; ++i)
                    pre += "<image>\n";
                m.text = pre + m.text;
                markers = n_images;
                break;
            }
    }
    if (markers != n_images)
        return Status::invalid_argument(fmt::format(
            "the conversation has {} <image> markers but {} images were given", markers, n_images));
    if (n_images > 0 && !model_->has_vision())
        return Status::invalid_argument(
            fmt::format("model '{}' is text-only ({}); it cannot take images", id_,
                        arch_name(model_->config().arch)));
    io::ChatTokenizeOptions o;
    o.add_generation_prompt = true;
    o.image_token_id = io::kLlavaImageTokenIndex;
    o.verify = false;
    MF_ASSIGN_OR_RETURN(io::TokenizedChat tc, template_->tokenize(*tok_, messages, o));
    std::vector<int64_t> ids(tc.ids.begin(), tc.ids.end());
    for (auto& id : ids)
        if (id == io::kLlavaImageTokenIndex) id = kImageMarker;
    return ids;
}

Result<torch::Tensor> Engine::pixels(const std::vector<io::Image>& images) const {
    if (images.empty()) return torch::Tensor();
    const int64_t S = model_->config().vision.image_size;
    auto out = torch::empty({static_cast<int64_t>(images.size()), 3, S, S}, torch::kFloat32);
    for (size_t i = 0; i < images.size(); ++i) {
        auto px = preprocess(images[i], improc_);
        if (!px.ok()) return px.status().with_context(fmt::format("image {}", i + 1));
        if (static_cast<int64_t>(px->size()) != 3 * S * S)
            return Status::internal("preprocessed image has the wrong size");
        std::memcpy(out[static_cast<int64_t>(i)].data_ptr<float>(), px->data(), px->size() * 4);
    }
    return out;
}

Result<GenerationResult> Engine::chat(const std::vector<io::ChatMessage>& messages,
                                      const std::vector<io::Image>& images,
                                      const SamplingParams& sp, const DeltaFn& on_delta) {
    MF_ASSIGN_OR_RETURN(std::vector<int64_t> ids, prompt_ids(messages, images.size()));
    int64_t len = model_->expanded_length(ids);
    if (len + sp.max_tokens > max_context())
        return Status::resource_exhausted(fmt::format(
            "the prompt takes {} positions and max_tokens is {}: more than the model's context of "
            "{}; shorten the conversation, use fewer images or lower max_tokens",
            len, sp.max_tokens, max_context()));
    MF_ASSIGN_OR_RETURN(torch::Tensor px, pixels(images));
    GenerateRequest req;
    req.prompt_ids = std::move(ids);
    req.pixels = px;
    req.sampling = sp;
    req.eos_ids = eos_;
    const io::Tokenizer& tok = *tok_;
    return generate(
        model_, req, [&tok](const std::vector<int32_t>& t) { return tok.decode(t, true); },
        on_delta);
}

}  // namespace mf::model
