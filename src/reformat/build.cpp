#include "reformat/build.h"

#include <fmt/core.h>

#include <cstdlib>

#include "core/log.h"
#include "curate/config_reader.h"

namespace mf::reformat {

Result<std::unique_ptr<llm::LlmClient>> make_client(const EndpointOptions& e) {
    if (e.endpoint.empty())
        return Status::invalid_argument(
            "no endpoint: give --endpoint URL (OpenAI-compatible "
            "base URL, e.g. https://api.openai.com/v1)");
    llm::ClientOptions c;
    c.base_url = e.endpoint;
    if (!e.api_key_env.empty()) {
        const char* key = std::getenv(e.api_key_env.c_str());
        if (key && *key) {
            c.api_key = key;
        } else {
            log::info("reformat: environment variable {} is not set; sending no API key",
                      e.api_key_env);
        }
    }
    c.api_key_header = e.api_key_header;
    c.extra_query = e.extra_query;
    c.max_concurrency = std::max(1, e.concurrency);
    c.requests_per_minute = e.rpm;
    c.tokens_per_minute = e.tpm;
    c.max_retries = e.max_retries;
    c.timeout_s = e.timeout_s;
    return llm::make_http_client(c);
}

Result<BuildReformat> parse_build_reformat(const nlohmann::json& j, const std::string& where) {
    BuildReformat b;
    curate::ConfigReader r(j, where);
    std::string method = "mllm-unblinded", images = "copy";
    auto& o = b.options;
    auto& e = b.endpoint;
    MF_RETURN_IF_ERROR(r.get("endpoint", &e.endpoint));
    MF_RETURN_IF_ERROR(r.get("model", &o.prompt.model));
    MF_RETURN_IF_ERROR(r.get("method", &method));
    MF_RETURN_IF_ERROR(r.get("api_key_env", &e.api_key_env));
    MF_RETURN_IF_ERROR(r.get("api_key_header", &e.api_key_header));
    MF_RETURN_IF_ERROR(r.get("extra_query", &e.extra_query));
    MF_RETURN_IF_ERROR(r.get("concurrency", &e.concurrency, 1, 4096));
    MF_RETURN_IF_ERROR(r.get("rpm", &e.rpm, 0, 1e9));
    MF_RETURN_IF_ERROR(r.get("tpm", &e.tpm, 0, 1e12));
    MF_RETURN_IF_ERROR(r.get("max_retries", &e.max_retries, 0, 100));
    MF_RETURN_IF_ERROR(r.get("timeout_s", &e.timeout_s, 0.1, 86400));
    MF_RETURN_IF_ERROR(r.get("max_tokens", &o.prompt.max_tokens, 0, 1 << 20));
    MF_RETURN_IF_ERROR(r.get("temperature", &o.prompt.temperature, 0, 2));
    MF_RETURN_IF_ERROR(r.get("seed", &o.prompt.seed));
    MF_RETURN_IF_ERROR(r.get("json_mode", &o.prompt.json_mode));
    MF_RETURN_IF_ERROR(r.get("image_tokens", &o.image_tokens));
    MF_RETURN_IF_ERROR(r.get("images", &images));
    MF_RETURN_IF_ERROR(r.get("jsonl", &o.jsonl));
    MF_RETURN_IF_ERROR(r.get("price_in", &o.price_in, 0, 1e9));
    MF_RETURN_IF_ERROR(r.get("price_out", &o.price_out, 0, 1e9));
    MF_RETURN_IF_ERROR(r.get("max_reasks", &o.max_reasks, 0, 100));
    MF_RETURN_IF_ERROR(r.get("verify", &o.verify));
    MF_RETURN_IF_ERROR(r.get("verify_reasks", &o.verify_reasks, 0, 10));
    MF_RETURN_IF_ERROR(r.get("image_max_side", &o.image_max_side, 16, 1 << 16));
    MF_RETURN_IF_ERROR(r.finish());
    auto m = parse_method(method);
    if (!m.ok()) return m.status().with_context(r.child_path("method"));
    o.method = *m;
    if (images == "copy")
        o.image_mode = ImageMode::kCopy;
    else if (images == "link")
        o.image_mode = ImageMode::kSymLink;
    else if (images == "hardlink")
        o.image_mode = ImageMode::kHardLink;
    else
        return Status::invalid_argument(r.child_path("images") + ": '" + images +
                                        "' is not one of copy, link, hardlink");
    if (e.endpoint.empty() && o.method != Method::kNativeCaption) {
        log::info(
            "reformat: no endpoint configured; using native-caption (the caption is the "
            "description, no instruction VQA). Set reformat.endpoint and reformat.model "
            "to build with an (M)LLM");
        o.method = Method::kNativeCaption;
    }
    if (o.method != Method::kNativeCaption && o.prompt.model.empty())
        return Status::invalid_argument(r.child_path("model") +
                                        ": a model name is required with an endpoint");
    return b;
}

Result<curate::StageStats> run_build_reformat(const BuildReformat& config,
                                              const std::filesystem::path& out_dir,
                                              const curate::DataCardInfo* card,
                                              const std::atomic<bool>* cancel, bool progress) {
    BuildReformat b = config;
    b.options.input = out_dir / "3-dedup" / "samples.jsonl";
    b.options.out_dir = out_dir / "4-reformat";
    b.options.cancel = cancel;
    b.options.progress = progress;
    std::unique_ptr<llm::LlmClient> client;
    if (method_uses_model(b.options.method)) {
        MF_ASSIGN_OR_RETURN(client, make_client(b.endpoint));
    }
    MF_ASSIGN_OR_RETURN(ReformatResult res, run_reformat(b.options, client.get()));
    if (card) MF_RETURN_IF_ERROR(curate::write_data_card(out_dir, *card));
    return res.stats;
}

}  // namespace mf::reformat
