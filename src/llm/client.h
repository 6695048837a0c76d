// OpenAI-compatible chat-completions client (libcurl multi interface): the one way medforge talks
// to an LLM or MLLM — GPT-4o, Azure-style deployments, vLLM, llama.cpp's server, medforge's own
// server. Used by reformat (data generation), judge and eval.
//
// Thread-safety: one LlmClient may be used from one thread at a time; run_batch() drives many
// requests concurrently itself.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace mf::llm {

// One part of a message's content: text, or an image given as a URL (usually a base64 data URL).
struct ContentPart {
    enum class Kind { kText, kImageUrl };
    Kind kind = Kind::kText;
    std::string text;       // kText
    std::string image_url;  // kImageUrl: "data:image/jpeg;base64,..." or https://...
    std::string detail;     // kImageUrl: "", "low", "high", "auto"
};

struct ChatMessage {
    std::string role;  // "system", "user", "assistant"
    std::vector<ContentPart> content;

    static ChatMessage text(std::string role, std::string text);
};

struct ChatRequest {
    std::string model;
    std::vector<ChatMessage> messages;
    double temperature = 0.7;
    int max_tokens = 1024;       // 0 = not sent
    double top_p = -1;           // < 0 = not sent
    int64_t seed = -1;           // < 0 = not sent
    bool json_object = false;    // response_format {"type":"json_object"}
    std::vector<std::string> stop;
    std::string user_tag;        // caller's id for logs (never sent)
};

// Serialises the request as the chat-completions JSON body.
std::string request_body(const ChatRequest& req);

struct Usage {
    int64_t prompt_tokens = 0;
    int64_t completion_tokens = 0;
    int64_t total_tokens = 0;
};

struct ChatResponse {
    std::string content;        // choices[0].message.content
    std::string finish_reason;  // "stop", "length", ...
    std::string model;          // model the server reports
    std::string id;             // response id
    Usage usage;
    std::string raw;            // the whole response body
    int http_status = 0;
    int attempts = 1;           // HTTP attempts made (retries + 1)
    double latency_s = 0;
};

// Parses a chat-completions response body. Errors name what is missing.
Result<ChatResponse> parse_response(const std::string& body);

struct ClientOptions {
    std::string base_url;              // e.g. "https://api.openai.com/v1" or "http://127.0.0.1:8080/v1"
    std::string api_key;               // sent as "Authorization: Bearer"; never logged
    std::string api_key_header;        // "" = Authorization Bearer; "api-key" for Azure
    std::string extra_query;           // appended to the URL, e.g. "api-version=2024-06-01" (Azure)
    int max_concurrency = 8;           // requests in flight at once
    double requests_per_minute = 0;    // token bucket; 0 = unlimited
    double tokens_per_minute = 0;      // token bucket on estimated tokens; 0 = unlimited
    int max_retries = 5;               // on 429, 5xx, timeouts and connection errors
    double backoff_initial_s = 1.0;    // exponential backoff with full jitter
    double backoff_max_s = 60.0;       // Retry-After (seconds or HTTP date) is honoured up to this
    double timeout_s = 300;            // per request
    double connect_timeout_s = 20;
    uint64_t seed = 1;                 // jitter RNG
};

// Called once per request when it finishes (success or final failure), on the thread that
// called run_batch(). `index` is the request's position in the batch.
using Completion = std::function<void(size_t index, Result<ChatResponse> result)>;

class LlmClient {
public:
    virtual ~LlmClient() = default;
    // Runs every request (concurrency, rate limits, retries per ClientOptions) and calls `done`
    // for each as it finishes. Returns when all are done or `cancel` becomes true (then requests
    // not finished get Status::cancelled). A non-retryable HTTP error (400, 401, 404...) is a
    // failed result carrying the server's error message, not a crash.
    virtual Status run_batch(const std::vector<ChatRequest>& requests, const Completion& done,
                             const std::atomic<bool>* cancel = nullptr) = 0;
    // Convenience: one request.
    Result<ChatResponse> complete(const ChatRequest& request);
};

Result<std::unique_ptr<LlmClient>> make_http_client(const ClientOptions& options);

// Rough token estimate for rate limiting and --dry-run (4 chars/token for text; images per the
// OpenAI tile rule when the size is known, else 765).
int64_t estimate_prompt_tokens(const ChatRequest& request);

}  // namespace mf::llm
