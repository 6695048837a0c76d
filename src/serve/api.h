// The OpenAI chat-completions wire format as `medforge serve` speaks it: request parsing with
// field-naming errors, image URL policy (data URLs; local files only under an allowed folder;
// http(s) only when allowed), error bodies. No torch here. See docs/serve.md.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/chat_template.h"
#include "model/sampler.h"

namespace mf::serve {

// An error as OpenAI sends it: HTTP status + {"error": {message, type, param, code}}.
struct ApiError {
    int status = 400;
    std::string message;
    std::string type = "invalid_request_error";
    std::string param;  // the offending field ("messages[2].content[1].image_url"), or empty
    std::string code;   // machine-readable ("context_length_exceeded"), or empty
};
nlohmann::json error_body(const ApiError& e);

struct ImagePolicy {
    std::filesystem::path allow_dir;  // empty: local paths and file:// URLs are refused
    bool allow_remote = false;        // http(s) URLs
    size_t max_image_bytes = size_t{20} << 20;
    int max_images = 8;  // per request; more is 422
    int remote_timeout_s = 10;
};

struct ImageRef {
    std::string bytes;  // the encoded file (JPEG, PNG, ...)
    std::string param;  // where it came from in the request, for errors
};

struct ChatRequest {
    std::string model;
    std::vector<io::ChatMessage> messages;  // images are "<image>" markers where their part was
    std::vector<ImageRef> images;           // in order
    model::SamplingParams sampling;
    bool max_tokens_given = false;
    bool stream = false;
    bool json_mode = false;  // response_format json_object (or json_schema)
};

// Parses and checks a chat-completions body; fetches/reads/decodes-from-base64 the images under
// `policy`. Returns the error to send, or nullopt with *out filled.
std::optional<ApiError> parse_chat_request(std::string_view body, const ImagePolicy& policy,
                                           ChatRequest* out);

// The bytes behind an image_url (data URL, file path / file:// URL, http(s) URL) under `policy`.
std::optional<ApiError> resolve_image_url(const std::string& url, const ImagePolicy& policy,
                                          const std::string& param, std::string* bytes);

// Whether `text` is a JSON object (what response_format json_object promises), surrounding
// whitespace allowed.
bool is_json_object(std::string_view text);

// Constant-time comparison of a presented API key with the expected one.
bool keys_equal(std::string_view presented, std::string_view expected);

}  // namespace mf::serve
