// Chat-completions JSON (request body, response parsing), token estimates, cost, helpers.
#include "llm/client.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "io/image.h"

namespace mf::llm {

using nlohmann::json;

ChatMessage ChatMessage::text(std::string role, std::string text) {
    ChatMessage m;
    m.role = std::move(role);
    m.content.push_back(text_part(std::move(text)));
    return m;
}

ContentPart text_part(std::string text) {
    ContentPart p;
    p.kind = ContentPart::Kind::kText;
    p.text = std::move(text);
    return p;
}

ContentPart image_url_part(std::string url, std::string detail) {
    ContentPart p;
    p.kind = ContentPart::Kind::kImageUrl;
    p.image_url = std::move(url);
    p.detail = std::move(detail);
    return p;
}

std::string request_body(const ChatRequest& req) {
    json messages = json::array();
    for (const ChatMessage& m : req.messages) {
        json msg = {{"role", m.role}};
        if (m.content.size() == 1 && m.content[0].kind == ContentPart::Kind::kText) {
            msg["content"] = m.content[0].text;
        } else {
            json parts = json::array();
            for (const ContentPart& p : m.content) {
                if (p.kind == ContentPart::Kind::kText) {
                    parts.push_back({{"type", "text"}, {"text", p.text}});
                } else {
                    json iu = {{"url", p.image_url}};
                    if (!p.detail.empty()) iu["detail"] = p.detail;
                    parts.push_back({{"type", "image_url"}, {"image_url", std::move(iu)}});
                }
            }
            msg["content"] = std::move(parts);
        }
        messages.push_back(std::move(msg));
    }
    json body = {{"model", req.model}, {"messages", std::move(messages)}};
    body["temperature"] = req.temperature;
    if (req.max_tokens > 0) body["max_tokens"] = req.max_tokens;
    if (req.top_p >= 0) body["top_p"] = req.top_p;
    if (req.seed >= 0) body["seed"] = req.seed;
    if (!req.stop.empty()) body["stop"] = req.stop;
    if (req.json_object) body["response_format"] = {{"type", "json_object"}};
    // Invalid UTF-8 in a prompt is replaced rather than thrown on.
    return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

std::string snippet(const std::string& s, size_t max = 200) {
    if (s.size() <= max) return s;
    return s.substr(0, max) + "...";
}

int64_t get_int(const json& j, const char* key) {
    if (!j.is_object() || !j.contains(key)) return 0;
    const json& v = j[key];
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_number()) return static_cast<int64_t>(v.get<double>());
    return 0;
}

std::string get_str(const json& j, const char* key) {
    if (!j.is_object() || !j.contains(key) || !j[key].is_string()) return "";
    return j[key].get<std::string>();
}

}  // namespace

Result<ChatResponse> parse_response(const std::string& body) {
    json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
        return Status::corruption("response is not JSON: " + snippet(body));
    }
    if (!j.is_object())
        return Status::corruption("response is not a JSON object: " + snippet(body));
    if (j.contains("error") && !j["error"].is_null()) {
        const json& e = j["error"];
        std::string msg = e.is_string() ? e.get<std::string>() : get_str(e, "message");
        if (msg.empty()) msg = e.dump();
        const std::string type = get_str(e, "type");
        return Status::unavailable("server error" + (type.empty() ? "" : " (" + type + ")") + ": " +
                                   msg);
    }
    if (!j.contains("choices") || !j["choices"].is_array()) {
        return Status::corruption("response has no \"choices\" array: " + snippet(body));
    }
    if (j["choices"].empty()) return Status::corruption("response has an empty \"choices\" array");
    const json& c0 = j["choices"][0];
    if (!c0.is_object() || !c0.contains("message") || !c0["message"].is_object()) {
        return Status::corruption("response has no choices[0].message: " + snippet(body));
    }
    const json& msg = c0["message"];
    ChatResponse r;
    if (!msg.contains("content")) {
        return Status::corruption("response has no choices[0].message.content: " + snippet(body));
    }
    const json& content = msg["content"];
    if (content.is_string()) {
        r.content = content.get<std::string>();
    } else if (content.is_array()) {
        for (const json& p : content) {
            if (p.is_string()) {
                r.content += p.get<std::string>();
            } else if (p.is_object() && p.contains("text") && p["text"].is_string()) {
                r.content += p["text"].get<std::string>();
            }
        }
    } else if (!content.is_null()) {
        return Status::corruption("choices[0].message.content is neither a string nor a list");
    }
    r.finish_reason = get_str(c0, "finish_reason");
    r.model = get_str(j, "model");
    r.id = get_str(j, "id");
    if (j.contains("usage") && j["usage"].is_object()) {
        const json& u = j["usage"];
        r.usage.prompt_tokens = get_int(u, "prompt_tokens");
        r.usage.completion_tokens = get_int(u, "completion_tokens");
        r.usage.total_tokens = get_int(u, "total_tokens");
        if (r.usage.total_tokens == 0) {
            r.usage.total_tokens = r.usage.prompt_tokens + r.usage.completion_tokens;
        }
    }
    r.raw = body;
    return r;
}

Result<ChatResponse> LlmClient::complete(const ChatRequest& request) {
    std::vector<ChatRequest> one{request};
    Result<ChatResponse> out = Status::internal("request produced no result");
    Status st = run_batch(one, [&](size_t, Result<ChatResponse> r) { out = std::move(r); });
    if (!st.ok() && out.ok()) return st;
    return out;
}

namespace {

// Width and height of a base64 data-URL image, from its header bytes; {0,0} when unknown.
std::pair<int, int> data_url_size(const std::string& url) {
    if (url.rfind("data:", 0) != 0) return {0, 0};
    const size_t comma = url.find(',');
    if (comma == std::string::npos || url.find(";base64") > comma) return {0, 0};
    // Our own JPEGs have their size in the first few hundred bytes; others (EXIF, big PNG
    // chunks) may need more: try 3 KiB, then 64 KiB. Cut at a 4-character boundary.
    const size_t avail = url.size() - comma - 1;
    for (size_t want : {size_t(4096), size_t(87384)}) {
        size_t take = std::min(avail, want);
        take -= take % 4;
        auto bytes = base64_decode(std::string_view(url).substr(comma + 1, take));
        if (!bytes.ok()) return {0, 0};
        io::ProbeResult pr = io::probe_image_bytes(*bytes);
        if (pr.ok()) return {pr.info.width, pr.info.height};
        if (take == avail) break;
    }
    return {0, 0};
}

int64_t image_tokens(const ContentPart& p) {
    if (p.detail == "low") return 85;
    auto [w, h] = data_url_size(p.image_url);
    if (w <= 0 || h <= 0) return 765;
    double dw = w, dh = h;
    if (std::max(dw, dh) > 2048) {
        const double s = 2048 / std::max(dw, dh);
        dw *= s;
        dh *= s;
    }
    if (std::min(dw, dh) > 768) {
        const double s = 768 / std::min(dw, dh);
        dw *= s;
        dh *= s;
    }
    const int64_t tiles =
        static_cast<int64_t>(std::ceil(dw / 512)) * static_cast<int64_t>(std::ceil(dh / 512));
    return 85 + 170 * tiles;
}

}  // namespace

int64_t estimate_prompt_tokens(const ChatRequest& request) {
    int64_t total = 3;
    for (const ChatMessage& m : request.messages) {
        total += 4;
        for (const ContentPart& p : m.content) {
            if (p.kind == ContentPart::Kind::kText) {
                total += static_cast<int64_t>((p.text.size() + 3) / 4);
            } else {
                total += image_tokens(p);
            }
        }
    }
    return total;
}

int64_t estimate_request_tokens(const ChatRequest& request) {
    return estimate_prompt_tokens(request) + std::max(0, request.max_tokens);
}

Result<std::string> api_key_from_env(const std::string& var_name) {
    if (var_name.empty()) return Status::invalid_argument("API key variable name is empty");
    const char* v = std::getenv(var_name.c_str());
    if (v == nullptr || *v == '\0') {
        return Status::not_found("environment variable " + var_name +
                                 " is not set: export it with the API key (or choose another "
                                 "variable name in the endpoint config)");
    }
    return std::string(v);
}

double cost_usd(const Usage& usage, const Price& price) {
    return (static_cast<double>(usage.prompt_tokens) * price.input_per_mtok +
            static_cast<double>(usage.completion_tokens) * price.output_per_mtok) /
           1e6;
}

Usage estimate_usage(const ChatRequest& request) {
    Usage u;
    u.prompt_tokens = estimate_prompt_tokens(request);
    u.completion_tokens = std::max(0, request.max_tokens);
    u.total_tokens = u.prompt_tokens + u.completion_tokens;
    return u;
}

Usage& operator+=(Usage& a, const Usage& b) {
    a.prompt_tokens += b.prompt_tokens;
    a.completion_tokens += b.completion_tokens;
    a.total_tokens += b.total_tokens;
    return a;
}

}  // namespace mf::llm
