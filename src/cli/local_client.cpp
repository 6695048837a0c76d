#include "cli/local_client.h"

#include <fmt/core.h>

#include <chrono>

#include "io/image.h"

namespace mf::cli {

Status to_engine_messages(const std::vector<llm::ChatMessage>& in,
                          std::vector<io::ChatMessage>& out, std::vector<io::Image>& images) {
    for (size_t mi = 0; mi < in.size(); ++mi) {
        const auto& m = in[mi];
        io::ChatMessage em{m.role, ""};
        for (size_t pi = 0; pi < m.content.size(); ++pi) {
            const auto& p = m.content[pi];
            if (p.kind == llm::ContentPart::Kind::kText) {
                em.text += p.text;
                continue;
            }
            const std::string& url = p.image_url;
            io::DecodeResult d;
            if (url.rfind("data:", 0) == 0) {
                size_t comma = url.find(',');
                if (comma == std::string::npos ||
                    url.substr(0, comma).find(";base64") == std::string::npos)
                    return Status::invalid_argument(
                        fmt::format("messages[{}].content[{}]: image data URL must be base64 "
                                    "(data:<mime>;base64,...)",
                                    mi, pi));
                MF_ASSIGN_OR_RETURN(std::string bytes,
                                    llm::base64_decode(std::string_view(url).substr(comma + 1)));
                d = io::decode_image_bytes(bytes);
            } else if (url.rfind("file://", 0) == 0) {
                d = io::decode_image_file(url.substr(7));
            } else {
                return Status::invalid_argument(fmt::format(
                    "messages[{}].content[{}]: only data: and file:// image URLs work with a local "
                    "model (got '{}')",
                    mi, pi, url.substr(0, 40)));
            }
            if (!d.ok())
                return Status::invalid_argument(fmt::format(
                    "messages[{}].content[{}]: the image cannot be decoded: {}", mi, pi, d.detail));
            images.push_back(std::move(d.image));
            em.text += "<image>\n";
        }
        out.push_back(std::move(em));
    }
    return Status::ok_status();
}

Result<std::unique_ptr<LocalModelClient>> LocalModelClient::open(const std::filesystem::path& dir,
                                                                 const model::EngineOptions& opt) {
    std::unique_ptr<LocalModelClient> c(new LocalModelClient());
    MF_ASSIGN_OR_RETURN(c->engine_, model::Engine::load(dir, opt));
    return c;
}

Result<llm::ChatResponse> LocalModelClient::answer(const llm::ChatRequest& req) {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<io::ChatMessage> msgs;
    std::vector<io::Image> images;
    MF_RETURN_IF_ERROR(to_engine_messages(req.messages, msgs, images));
    model::SamplingParams sp;
    sp.max_tokens = req.max_tokens > 0 ? req.max_tokens : 1024;
    sp.temperature = std::max(0.0, req.temperature);
    if (req.top_p > 0) sp.top_p = req.top_p;
    sp.seed = req.seed >= 0 ? static_cast<uint64_t>(req.seed) : counter_;
    sp.stop = req.stop;
    MF_ASSIGN_OR_RETURN(model::GenerationResult g, engine_->chat(msgs, images, sp));
    llm::ChatResponse r;
    r.content = g.text;
    r.finish_reason = g.finish_reason;
    r.model = engine_->model_id();
    r.id = fmt::format("local-{}", ++counter_);
    r.usage.prompt_tokens = g.prompt_tokens;
    r.usage.completion_tokens = static_cast<int64_t>(g.tokens.size());
    r.usage.total_tokens = r.usage.prompt_tokens + r.usage.completion_tokens;
    r.http_status = 200;
    r.latency_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

Status LocalModelClient::run_batch(const std::vector<llm::ChatRequest>& requests,
                                   const llm::Completion& done, const std::atomic<bool>* cancel) {
    for (size_t i = 0; i < requests.size(); ++i) {
        if (cancel && cancel->load()) {
            for (size_t j = i; j < requests.size(); ++j)
                done(j, Status::cancelled("cancelled before the local model ran it"));
            return Status::ok_status();
        }
        done(i, answer(requests[i]));
    }
    return Status::ok_status();
}

}  // namespace mf::cli
