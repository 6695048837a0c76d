#include "serve/api.h"

#include <httplib.h>

#include <fmt/core.h>

#include <fstream>

#include "llm/client.h"

namespace mf::serve {

namespace fs = std::filesystem;
using nlohmann::json;

json error_body(const ApiError& e) {
    json err = {{"message", e.message}, {"type", e.type}, {"param", nullptr}, {"code", nullptr}};
    if (!e.param.empty()) err["param"] = e.param;
    if (!e.code.empty()) err["code"] = e.code;
    return json{{"error", err}};
}

namespace {

ApiError bad(std::string param, std::string message, std::string code = {}) {
    ApiError e;
    e.status = 400;
    e.param = std::move(param);
    e.message = std::move(message);
    e.code = std::move(code);
    return e;
}

bool starts_with_ci(std::string_view s, std::string_view p) {
    if (s.size() < p.size()) return false;
    for (size_t i = 0; i < p.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(s[i])) != p[i]) return false;
    return true;
}

// Is `p` (canonical) inside `dir` (canonical)?
bool inside(const fs::path& p, const fs::path& dir) {
    auto pi = p.begin();
    for (auto di = dir.begin(); di != dir.end(); ++di, ++pi) {
        if (di->empty()) continue;  // trailing slash
        if (pi == p.end() || *pi != *di) return false;
    }
    return true;
}

std::optional<ApiError> read_local(const std::string& path_s, const ImagePolicy& policy,
                                   const std::string& param, std::string* bytes) {
    if (policy.allow_dir.empty())
        return bad(param,
                   "local image paths are not allowed; send the image as a base64 data URL "
                   "or start the server with --allow-image-dir",
                   "image_path_not_allowed");
    std::error_code ec;
    fs::path dir = fs::canonical(policy.allow_dir, ec);
    if (ec)
        return bad(param, "the server's --allow-image-dir does not exist",
                   "image_path_not_allowed");
    fs::path p = fs::path(path_s);
    if (p.is_relative()) p = dir / p;
    fs::path c = fs::canonical(p, ec);
    if (ec)
        return bad(param, fmt::format("image file '{}' does not exist", path_s), "image_not_found");
    if (!inside(c, dir))
        return bad(param,
                   fmt::format("image file '{}' is outside the allowed image folder", path_s),
                   "image_path_not_allowed");
    if (!fs::is_regular_file(c, ec))
        return bad(param, fmt::format("image '{}' is not a regular file", path_s), "invalid_image");
    auto size = fs::file_size(c, ec);
    if (ec || size > policy.max_image_bytes)
        return bad(
            param,
            fmt::format("image file '{}' is larger than {} bytes", path_s, policy.max_image_bytes),
            "image_too_large");
    std::ifstream f(c, std::ios::binary);
    bytes->assign(std::istreambuf_iterator<char>(f), {});
    if (!f && !f.eof())
        return bad(param, fmt::format("cannot read image '{}'", path_s), "invalid_image");
    return std::nullopt;
}

std::optional<ApiError> fetch_remote(const std::string& url, const ImagePolicy& policy,
                                     const std::string& param, std::string* bytes) {
    // scheme://host[:port]/path
    size_t scheme_end = url.find("://");
    size_t path_at = url.find('/', scheme_end + 3);
    std::string base = url.substr(0, path_at);
    std::string path = path_at == std::string::npos ? "/" : url.substr(path_at);
    httplib::Client cli(base);
    cli.set_connection_timeout(policy.remote_timeout_s, 0);
    cli.set_read_timeout(policy.remote_timeout_s, 0);
    cli.set_follow_location(true);
    bytes->clear();
    bool too_big = false;
    auto res = cli.Get(path.c_str(), [&](const char* data, size_t n) {
        if (bytes->size() + n > policy.max_image_bytes) {
            too_big = true;
            return false;
        }
        bytes->append(data, n);
        return true;
    });
    if (too_big)
        return bad(param,
                   fmt::format("remote image is larger than {} bytes", policy.max_image_bytes),
                   "image_too_large");
    if (!res)
        return bad(param, "cannot fetch the remote image: " + httplib::to_string(res.error()),
                   "image_fetch_failed");
    if (res->status != 200)
        return bad(param, fmt::format("fetching the remote image gave HTTP {}", res->status),
                   "image_fetch_failed");
    return std::nullopt;
}

}  // namespace

std::optional<ApiError> resolve_image_url(const std::string& url, const ImagePolicy& policy,
                                          const std::string& param, std::string* bytes) {
    if (starts_with_ci(url, "data:")) {
        size_t comma = url.find(',');
        if (comma == std::string::npos)
            return bad(param, "malformed data URL (no ',')", "invalid_image_url");
        std::string_view meta(url.data() + 5, comma - 5);
        if (meta.size() < 7 || meta.substr(meta.size() - 7) != ";base64")
            return bad(param, "only base64 data URLs are supported (data:image/...;base64,...)",
                       "invalid_image_url");
        std::string_view payload(url.data() + comma + 1, url.size() - comma - 1);
        if (payload.size() / 4 * 3 > policy.max_image_bytes + 3)
            return bad(param, fmt::format("image is larger than {} bytes", policy.max_image_bytes),
                       "image_too_large");
        auto dec = llm::base64_decode(payload);
        if (!dec.ok())
            return bad(param, "invalid base64 in the data URL: " + dec.status().message(),
                       "invalid_image_url");
        *bytes = std::move(*dec);
        return std::nullopt;
    }
    if (starts_with_ci(url, "http://") || starts_with_ci(url, "https://")) {
        if (!policy.allow_remote)
            return bad(param,
                       "remote image URLs are refused by this server (start it with "
                       "--allow-remote-images); send the image as a base64 data URL",
                       "remote_images_not_allowed");
        return fetch_remote(url, policy, param, bytes);
    }
    if (starts_with_ci(url, "file://")) return read_local(url.substr(7), policy, param, bytes);
    if (url.find("://") != std::string::npos)
        return bad(param, "unsupported image URL scheme (use a base64 data URL)",
                   "invalid_image_url");
    return read_local(url, policy, param, bytes);
}

std::optional<ApiError> parse_chat_request(std::string_view body, const ImagePolicy& policy,
                                           ChatRequest* out) {
    json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return bad("", "the request body is not valid JSON", "invalid_json");
    if (!j.is_object()) return bad("", "the request body must be a JSON object");
    ChatRequest r;
    r.sampling.max_tokens = 0;
    if (auto it = j.find("model"); it != j.end() && !it->is_null()) {
        if (!it->is_string()) return bad("model", "'model' must be a string");
        r.model = it->get<std::string>();
    }
    auto mit = j.find("messages");
    if (mit == j.end()) return bad("messages", "'messages' is required");
    if (!mit->is_array()) return bad("messages", "'messages' must be an array");
    if (mit->empty()) return bad("messages", "'messages' must not be empty");
    for (size_t i = 0; i < mit->size(); ++i) {
        const json& m = (*mit)[i];
        std::string p = fmt::format("messages[{}]", i);
        if (!m.is_object()) return bad(p, p + " must be an object");
        auto role = m.find("role");
        if (role == m.end() || !role->is_string())
            return bad(p + ".role", p + ".role must be a string");
        std::string rs = role->get<std::string>();
        if (rs == "developer") rs = "system";
        if (rs != "system" && rs != "user" && rs != "assistant")
            return bad(p + ".role",
                       fmt::format("{}.role '{}' is not one of system, developer, user, "
                                   "assistant",
                                   p, rs));
        io::ChatMessage cm;
        cm.role = rs;
        auto content = m.find("content");
        if (content == m.end() || content->is_null()) {
            if (rs != "assistant") return bad(p + ".content", p + ".content is required");
        } else if (content->is_string()) {
            cm.text = content->get<std::string>();
        } else if (content->is_array()) {
            for (size_t k = 0; k < content->size(); ++k) {
                const json& part = (*content)[k];
                std::string pp = fmt::format("{}.content[{}]", p, k);
                if (!part.is_object()) return bad(pp, pp + " must be an object");
                auto type = part.find("type");
                if (type == part.end() || !type->is_string())
                    return bad(pp + ".type", pp + ".type must be a string");
                std::string ts = type->get<std::string>();
                if (ts == "text") {
                    auto t = part.find("text");
                    if (t == part.end() || !t->is_string())
                        return bad(pp + ".text", pp + ".text must be a string");
                    cm.text += t->get<std::string>();
                } else if (ts == "image_url") {
                    if (rs != "user") return bad(pp, "images are only allowed in user messages");
                    auto iu = part.find("image_url");
                    std::string url;
                    if (iu != part.end() && iu->is_string()) {
                        url = iu->get<std::string>();
                    } else if (iu != part.end() && iu->is_object() && iu->contains("url") &&
                               (*iu)["url"].is_string()) {
                        url = (*iu)["url"].get<std::string>();
                    } else {
                        return bad(pp + ".image_url", pp + ".image_url.url must be a string");
                    }
                    if (static_cast<int>(r.images.size()) >= policy.max_images) {
                        ApiError e = bad(
                            "messages",
                            fmt::format("more than {} images in one request", policy.max_images),
                            "too_many_images");
                        e.status = 422;
                        return e;
                    }
                    ImageRef ref;
                    ref.param = pp + ".image_url";
                    if (auto err = resolve_image_url(url, policy, ref.param, &ref.bytes))
                        return err;
                    r.images.push_back(std::move(ref));
                    cm.text += "<image>\n";
                } else {
                    return bad(
                        pp + ".type",
                        fmt::format("{}.type '{}' is not supported (text, image_url)", pp, ts));
                }
            }
        } else {
            return bad(p + ".content", p + ".content must be a string or an array of parts");
        }
        r.messages.push_back(std::move(cm));
    }
    auto int_field = [&](const char* name, int lo, int hi, int* dst) -> std::optional<ApiError> {
        auto it = j.find(name);
        if (it == j.end() || it->is_null()) return std::nullopt;
        if (!it->is_number_integer())
            return bad(name, fmt::format("'{}' must be an integer", name));
        auto v = it->get<int64_t>();
        if (v < lo || v > hi)
            return bad(name, fmt::format("'{}' must be in [{}, {}]", name, lo, hi));
        *dst = static_cast<int>(v);
        return std::nullopt;
    };
    for (const char* name : {"max_tokens", "max_completion_tokens"}) {
        int v = 0;
        if (auto e = int_field(name, 1, 1 << 20, &v)) return e;
        if (v > 0) {
            r.sampling.max_tokens = v;
            r.max_tokens_given = true;
        }
    }
    auto num_field = [&](const char* name, double lo, double hi,
                         double* dst) -> std::optional<ApiError> {
        auto it = j.find(name);
        if (it == j.end() || it->is_null()) return std::nullopt;
        if (!it->is_number()) return bad(name, fmt::format("'{}' must be a number", name));
        double v = it->get<double>();
        if (!(v >= lo && v <= hi))
            return bad(name, fmt::format("'{}' must be in [{}, {}]", name, lo, hi));
        *dst = v;
        return std::nullopt;
    };
    if (auto e = num_field("temperature", 0.0, 2.0, &r.sampling.temperature)) return e;
    if (auto e = num_field("top_p", 0.0, 1.0, &r.sampling.top_p)) return e;
    if (r.sampling.top_p <= 0.0) return bad("top_p", "'top_p' must be > 0");
    int top_k = 0;
    if (auto e = int_field("top_k", 0, 1 << 20, &top_k)) return e;  // extension (vLLM)
    r.sampling.top_k = top_k;
    if (auto e = num_field("repetition_penalty", 0.01, 100.0, &r.sampling.repetition_penalty))
        return e;
    if (auto it = j.find("seed"); it != j.end() && !it->is_null()) {
        if (!it->is_number_integer()) return bad("seed", "'seed' must be an integer");
        r.sampling.seed = static_cast<uint64_t>(it->get<int64_t>());
    }
    if (auto it = j.find("n"); it != j.end() && !it->is_null()) {
        if (!it->is_number_integer() || it->get<int64_t>() != 1)
            return bad("n", "only n = 1 is supported");
    }
    if (auto it = j.find("stop"); it != j.end() && !it->is_null()) {
        if (it->is_string()) {
            r.sampling.stop.push_back(it->get<std::string>());
        } else if (it->is_array()) {
            if (it->size() > 16) return bad("stop", "at most 16 stop strings");
            for (size_t i = 0; i < it->size(); ++i) {
                if (!(*it)[i].is_string())
                    return bad(fmt::format("stop[{}]", i), "stop strings must be strings");
                r.sampling.stop.push_back((*it)[i].get<std::string>());
            }
        } else {
            return bad("stop", "'stop' must be a string or an array of strings");
        }
        for (const auto& s : r.sampling.stop)
            if (s.empty()) return bad("stop", "stop strings must not be empty");
    }
    if (auto it = j.find("ignore_eos"); it != j.end() && !it->is_null()) {  // extension (vLLM)
        if (!it->is_boolean()) return bad("ignore_eos", "'ignore_eos' must be a boolean");
        r.sampling.ignore_eos = it->get<bool>();
    }
    if (auto it = j.find("stream"); it != j.end() && !it->is_null()) {
        if (!it->is_boolean()) return bad("stream", "'stream' must be a boolean");
        r.stream = it->get<bool>();
    }
    if (auto it = j.find("response_format"); it != j.end() && !it->is_null()) {
        if (!it->is_object() || !it->contains("type") || !(*it)["type"].is_string())
            return bad("response_format.type", "'response_format' must be an object with a 'type'");
        std::string t = (*it)["type"].get<std::string>();
        if (t == "json_object" || t == "json_schema") {
            r.json_mode = true;
        } else if (t != "text") {
            return bad("response_format.type",
                       fmt::format("response_format.type '{}' is not one of text, json_object, "
                                   "json_schema",
                                   t));
        }
    }
    *out = std::move(r);
    return std::nullopt;
}

bool is_json_object(std::string_view text) {
    json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    return !j.is_discarded() && j.is_object();
}

bool keys_equal(std::string_view presented, std::string_view expected) {
    // Time depends only on the expected key's length.
    unsigned char diff = presented.size() == expected.size() ? 0 : 1;
    for (size_t i = 0; i < expected.size(); ++i) {
        unsigned char p = i < presented.size() ? static_cast<unsigned char>(presented[i]) : 0;
        diff |= static_cast<unsigned char>(p ^ static_cast<unsigned char>(expected[i]));
    }
    return diff == 0;
}

}  // namespace mf::serve
