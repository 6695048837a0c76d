// OpenAI-compatible chat-completions client (libcurl multi interface): the one way medforge talks
// to an LLM or MLLM — GPT-4o, Azure-style deployments, vLLM, llama.cpp's server, medforge's own
// server. Used by reformat (data generation), judge and eval.
//
// Thread-safety: one LlmClient may be used from one thread at a time; run_batch() drives many
// requests concurrently itself (no threads: one libcurl multi loop on the calling thread).
// Documentation: docs/llm_client.md. Test server: tests/support/fake_openai.h.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
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

// A text part.
ContentPart text_part(std::string text);
// An image part from a URL (https://... or a data URL).
ContentPart image_url_part(std::string url, std::string detail = "");
// An image part from a file: image_data_url(image, max_side, jpeg_quality) as the URL.
Result<ContentPart> image_file_part(const std::filesystem::path& image, int max_side = 1024,
                                    int jpeg_quality = 90, std::string detail = "");

// Reads an image (any format io::decode_image_file handles), downscales it so that its longer
// side is <= max_side (aspect kept; never upscaled), re-encodes it as baseline JPEG 4:2:0 at
// jpeg_quality and returns "data:image/jpeg;base64,...". Errors name the file and the image
// reason code (image_missing, image_corrupt, ...).
Result<std::string> image_data_url(const std::filesystem::path& image, int max_side = 1024,
                                   int jpeg_quality = 90);

// Standard base64 (RFC 4648 section 4, with '=' padding).
std::string base64_encode(std::string_view bytes);
// Decodes standard base64; padding optional, whitespace not allowed. Errors give the offset.
Result<std::string> base64_decode(std::string_view text);

struct ChatRequest {
    std::string model;
    std::vector<ChatMessage> messages;
    double temperature = 0.7;
    int max_tokens = 1024;     // 0 = not sent
    double top_p = -1;         // < 0 = not sent
    int64_t seed = -1;         // < 0 = not sent
    bool json_object = false;  // response_format {"type":"json_object"}
    std::vector<std::string> stop;
    std::string user_tag;  // caller's id for logs (never sent)
};

// Serialises the request as the chat-completions JSON body: {"model", "messages", "temperature",
// "max_tokens" (when > 0), "top_p" (when >= 0), "seed" (when >= 0), "stop" (when any),
// "response_format": {"type":"json_object"} (when json_object)}. A message whose content is a
// single text part is sent as a plain string (what text-only servers expect); otherwise content
// is a list of {"type":"text","text"} and {"type":"image_url","image_url":{"url","detail"?}}
// parts in order. user_tag is never sent.
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
    std::string raw;  // the whole response body
    int http_status = 0;
    int attempts = 1;  // HTTP attempts made (retries + 1)
    double latency_s = 0;
};

// Parses a chat-completions response body. content may be a string, null (empty) or a list of
// parts (text parts are concatenated). Errors: an "error" object in the body (its message), a
// body that is not JSON, or missing choices[0].message: kCorruption naming what is missing.
Result<ChatResponse> parse_response(const std::string& body);

// base_url is everything before "/chat/completions": the client POSTs to
// base_url + "/chat/completions" (+ "?" + extra_query). A trailing "/" is ignored. Examples:
// "https://api.openai.com/v1", "http://127.0.0.1:8000/v1" (vLLM, llama.cpp's server, medforge
// serve), "https://RES.openai.azure.com/openai/deployments/DEPLOYMENT" (Azure, with
// api_key_header = "api-key" and extra_query = "api-version=2024-06-01").
struct ClientOptions {
    std::string base_url;        // e.g. "https://api.openai.com/v1" or "http://127.0.0.1:8080/v1"
    std::string api_key;         // sent as "Authorization: Bearer"; never logged
    std::string api_key_header;  // "" = Authorization Bearer; "api-key" for Azure
    std::string extra_query;     // appended to the URL, e.g. "api-version=2024-06-01" (Azure)
    int max_concurrency = 8;     // requests in flight at once
    double requests_per_minute = 0;  // token bucket; 0 = unlimited
    double tokens_per_minute = 0;    // token bucket on estimated tokens; 0 = unlimited
    double rate_burst_s = 1.0;       // bucket capacity: this many seconds of the rate (>= 1 req)
    int max_retries = 5;             // on 408, 409, 429, 5xx, timeouts and connection errors
    double backoff_initial_s = 1.0;  // exponential backoff with full jitter
    double backoff_max_s = 60.0;     // Retry-After (seconds or HTTP date) is honoured up to this
    double timeout_s = 300;          // per request
    double connect_timeout_s = 20;
    std::string ca_file;  // PEM CA bundle for TLS; "" = the system's default bundle
    uint64_t seed = 1;    // jitter RNG
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

// The libcurl client. Fails (kInvalidArgument) on an empty or non-http(s) base_url or
// max_concurrency < 1. run_batch() returns OK when every request got its callback, or
// kCancelled when `cancel` was set (unfinished requests then got kCancelled results).
// Final failures per request: HTTP 429 -> kResourceExhausted; 5xx, timeouts, connection
// errors -> kUnavailable; 400/422 -> kInvalidArgument; 401/403 -> kFailedPrecondition;
// 404 -> kNotFound; a 200 whose body is not a chat completion -> kCorruption. Messages read
// "<user_tag or request #i>: HTTP 500 from <url>: <server's error message> (after 3 attempts)"
// and never contain the API key (it is also scrubbed from server-echoed text). The rate-limit
// buckets and the connection cache belong to the client object: use one client per endpoint
// for a whole run so that limits hold across run_batch()/complete() calls.
Result<std::unique_ptr<LlmClient>> make_http_client(const ClientOptions& options);

// The API key from the environment variable `var_name` (default OPENAI_API_KEY). kNotFound
// when unset or empty; the message names the variable, never a value.
Result<std::string> api_key_from_env(const std::string& var_name = "OPENAI_API_KEY");

// Price per million tokens, e.g. {2.50, 10.00} for gpt-4o.
struct Price {
    double input_per_mtok = 0;
    double output_per_mtok = 0;
};
double cost_usd(const Usage& usage, const Price& price);
// For --dry-run: prompt_tokens = estimate_prompt_tokens(request), completion_tokens =
// max(0, max_tokens) (an upper bound of what the reply may cost).
Usage estimate_usage(const ChatRequest& request);
Usage& operator+=(Usage& a, const Usage& b);

// Rough token estimate for rate limiting and --dry-run (4 chars/token for text, rounded up, plus
// 4 per message and 3 for the reply priming; images per the OpenAI tile rule when the size can
// be read from a data URL: "low" detail 85, else fit in 2048x2048, shorter side to 768,
// 85 + 170 per 512-px tile; otherwise 765).
int64_t estimate_prompt_tokens(const ChatRequest& request);
// What the tokens/min bucket charges for a request: prompt estimate + max_tokens (the way
// OpenAI counts a request against a tokens-per-minute limit).
int64_t estimate_request_tokens(const ChatRequest& request);

}  // namespace mf::llm
