// A loaded chat model: weights + tokenizer + chat template + image processor, as `medforge chat`,
// `serve` and `eval --model-dir` use it.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "io/chat_template.h"
#include "io/image.h"
#include "io/tokenizer.h"
#include "model/generate.h"
#include "model/image_processor.h"
#include "model/llava.h"

namespace mf::model {

struct EngineOptions {
    std::optional<torch::Dtype> dtype;  // default: the checkpoint's (f16 -> bf16)
    int threads = 0;                    // 0 = all hardware threads
    std::string chat_format;            // override: plain | huatuo | chatml | llama3 | llama2
};

class Engine {
  public:
    static Result<std::unique_ptr<Engine>> load(const std::filesystem::path& dir,
                                                const EngineOptions& opt = {});

    // Prompt ids for a conversation; "<image>" in the text marks each image (kImageMarker in
    // the ids). When `n_images` > 0 and the messages have no "<image>", one "<image>\n" per image
    // is put in front of the first user message (what the LLaVA CLI does).
    Result<std::vector<int64_t>> prompt_ids(std::vector<io::ChatMessage> messages,
                                            size_t n_images) const;
    // Preprocessed pixels [N, 3, S, S] (float32) for decoded images.
    Result<torch::Tensor> pixels(const std::vector<io::Image>& images) const;

    Result<GenerationResult> chat(const std::vector<io::ChatMessage>& messages,
                                  const std::vector<io::Image>& images, const SamplingParams& sp,
                                  const DeltaFn& on_delta = {});

    MultimodalLM& model() { return model_; }
    const io::Tokenizer& tokenizer() const { return *tok_; }
    const io::ChatTemplate& chat_template() const { return *template_; }
    const std::vector<int64_t>& eos_ids() const { return eos_; }
    const std::string& model_id() const { return id_; }  // the folder name
    int64_t max_context() const;

  private:
    Engine() = default;
    MultimodalLM model_{nullptr};
    std::unique_ptr<io::Tokenizer> tok_;
    std::optional<io::ChatTemplate> template_;
    ImageProcessorConfig improc_;
    std::vector<int64_t> eos_;
    std::string id_;
};

}  // namespace mf::model
