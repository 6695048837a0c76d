// An llm::LlmClient that answers with a local checkpoint in this process (no server): what
// `eval --model-dir` and `reformat --model-dir` use. Requests run one after another on all cores;
// images come as data URLs (what eval and reformat send) or file:// URLs; remote URLs are refused.
#pragma once

#include <filesystem>
#include <memory>

#include "llm/client.h"
#include "model/engine.h"

namespace mf::cli {

class LocalModelClient : public llm::LlmClient {
  public:
    static Result<std::unique_ptr<LocalModelClient>> open(const std::filesystem::path& dir,
                                                          const model::EngineOptions& opt = {});
    Status run_batch(const std::vector<llm::ChatRequest>& requests, const llm::Completion& done,
                     const std::atomic<bool>* cancel = nullptr) override;
    const std::string& model_id() const { return engine_->model_id(); }
    model::Engine& engine() { return *engine_; }

  private:
    Result<llm::ChatResponse> answer(const llm::ChatRequest& req);
    std::unique_ptr<model::Engine> engine_;
    uint64_t counter_ = 0;
};

// Converts OpenAI-style messages (text and image_url parts, in order) into the engine's messages
// ("<image>\n" where an image part stands) and the decoded images.
Status to_engine_messages(const std::vector<llm::ChatMessage>& in,
                          std::vector<io::ChatMessage>& out, std::vector<io::Image>& images);

}  // namespace mf::cli
