// Helpers of the reformat tests: sample fixtures (the demo images shipped in examples/demo), a
// reply builder that answers a prompt the way a well-behaved model would, and an in-process
// LlmClient test double (used by the engine unit tests; the end-to-end tests go through the fake
// OpenAI server over HTTP instead).
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "curate/sample.h"
#include "llm/client.h"
#include "test_util.h"

namespace mf::reformat::testing {

namespace fs = std::filesystem;

// The demo images in the repository (real JPEG/PNG files).
inline std::vector<fs::path> demo_images() {
    fs::path d = mf::test::source_dir() / "examples" / "demo" / "jats";
    return {d / "PMC9000001_ct_axial.jpg",   d / "PMC9000001_ct_coronal.jpg",
            d / "PMC9000002_chest_xray.jpg", d / "PMC9000002_mri_t2.png",
            d / "PMC9000003_endoscopy.jpg",  d / "PMC9000003_he_stain.jpg"};
}

// n samples "s0".."s{n-1}"; sample i has 1 + (i % 3 == 2) images (so some are multi-image),
// a caption naming its index ("Caption number i: ...") and one mention.
inline std::vector<curate::Sample> make_samples(size_t n) {
    auto imgs = demo_images();
    std::vector<curate::Sample> out;
    for (size_t i = 0; i < n; ++i) {
        curate::Sample s;
        s.id = "test:s" + std::to_string(i);
        s.images.push_back(imgs[i % imgs.size()].string());
        if (i % 3 == 2) s.images.push_back(imgs[(i + 1) % imgs.size()].string());
        s.caption = "Caption number " + std::to_string(i) +
                    ": axial contrast-enhanced CT shows a hypodense hepatic lesion.";
        s.mentions = {"The lesion measured 2 cm (Figure " + std::to_string(i) + ")."};
        s.lineage.source = "jsonl";
        s.lineage.article = "PMC" + std::to_string(9000 + i);
        s.lineage.figure = "F1";
        s.lineage.licence = "CC BY 4.0";
        out.push_back(std::move(s));
    }
    return out;
}

inline fs::path write_samples(const fs::path& path, const std::vector<curate::Sample>& samples,
                              const std::vector<std::string>& extra_lines = {}) {
    std::string text;
    for (const auto& s : samples)
        text += curate::sample_to_json(s) + "\n";
    for (const auto& l : extra_lines)
        text += l + "\n";
    mf::test::write_text(path, text);
    return path;
}

// The number after "Caption number " in a prompt, or -1.
inline int caption_number(const std::string& prompt) {
    size_t p = prompt.find("Caption number ");
    if (p == std::string::npos) return -1;
    return std::atoi(prompt.c_str() + p + 15);
}

// A valid reply for the sample whose prompt this is (depends only on the prompt's caption
// number, so two runs give identical answers).
inline std::string good_reply(const std::string& prompt) {
    int n = caption_number(prompt);
    return "```json\n{\"image_description\": \"Axial CT image number " + std::to_string(n) +
           " showing a well-defined hypodense lesion in the right hepatic lobe.\", "
           "\"question\": \"What abnormality is visible in image " +
           std::to_string(n) +
           "?\", \"answer\": \"A rounded hypodense lesion is seen in the right lobe of the "
           "liver without enhancement.\"}\n```";
}

// The text of all text parts of a request.
inline std::string request_text(const llm::ChatRequest& r) {
    std::string t;
    for (const auto& m : r.messages)
        for (const auto& p : m.content)
            if (p.kind == llm::ContentPart::Kind::kText) t += p.text;
    return t;
}

// In-process test double: answers each request with handler(request, call_index), serially.
class ScriptedClient : public llm::LlmClient {
  public:
    using Handler = std::function<Result<llm::ChatResponse>(const llm::ChatRequest&, int call)>;
    explicit ScriptedClient(Handler h) : handler_(std::move(h)) {}

    static Result<llm::ChatResponse> reply(const std::string& content) {
        llm::ChatResponse r;
        r.content = content;
        r.raw = "{\"choices\":[{\"message\":{\"content\":\"...\"}}]}";
        r.finish_reason = "stop";
        r.usage.prompt_tokens = 100;
        r.usage.completion_tokens = 50;
        r.usage.total_tokens = 150;
        r.http_status = 200;
        return r;
    }

    Status run_batch(const std::vector<llm::ChatRequest>& requests, const llm::Completion& done,
                     const std::atomic<bool>* cancel) override {
        for (size_t i = 0; i < requests.size(); ++i) {
            if (cancel && cancel->load()) {
                done(i, Status::cancelled("cancelled"));
                continue;
            }
            int call;
            {
                std::lock_guard lock(mu_);
                call = calls_++;
                seen_.push_back(requests[i]);
            }
            done(i, handler_(requests[i], call));
        }
        return {};
    }
    int calls() const { return calls_; }
    const std::vector<llm::ChatRequest>& seen() const { return seen_; }

  private:
    Handler handler_;
    std::mutex mu_;
    int calls_ = 0;
    std::vector<llm::ChatRequest> seen_;
};

}  // namespace mf::reformat::testing
