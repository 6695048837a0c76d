// Reformat as a stage of `medforge build` (stage 4-reformat, after dedup), and the endpoint
// settings shared with `medforge reformat`. curate does not know about reformat (dependencies
// point downward: core ← io ← curate ← reformat): the CLI's build command calls
// run_build_reformat() after curate::run_build().
//
// The build config's optional "reformat" object (docs/reformat.md, docs/build.md):
//   {"endpoint": "https://api.openai.com/v1", "model": "gpt-4o", "method": "mllm-unblinded",
//    "api_key_env": "OPENAI_API_KEY", "concurrency": 8, "rpm": 0, "tpm": 0, "max_tokens": 2048,
//    "temperature": 0.7, "seed": 1, "image_tokens": false, "images": "copy"|"link"|"hardlink",
//    "jsonl": false, "price_in": 0, "price_out": 0, "max_retries": 5, "max_reasks": 2,
//    "timeout_s": 300, "image_max_side": 1024, "json_mode": false, "verify": true,
//    "verify_reasks": 1}
// With no endpoint (or no "reformat" object at all) the stage says so and uses native-caption;
// the outputs are labelled method "native-caption", model "none".
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include "core/status.h"
#include "curate/data_card.h"
#include "curate/stage.h"
#include "llm/client.h"
#include "reformat/reformat.h"

namespace mf::reformat {

struct EndpointOptions {
    std::string endpoint;  // base URL, e.g. https://api.openai.com/v1
    std::string api_key_env = "OPENAI_API_KEY";
    std::string api_key_header;  // "" = Authorization: Bearer; "api-key" for Azure
    std::string extra_query;     // e.g. api-version=2024-06-01
    int concurrency = 8;
    double rpm = 0, tpm = 0;
    int max_retries = 5;
    double timeout_s = 300;
};

// The HTTP client for an endpoint; the API key comes from the environment variable named by
// api_key_env (absent or empty: no key is sent, fine for local servers). The key is never logged.
Result<std::unique_ptr<llm::LlmClient>> make_client(const EndpointOptions& e);

struct BuildReformat {
    EndpointOptions endpoint;
    ReformatOptions options;  // input/out_dir set by run_build_reformat
};

// Parses the "reformat" object of a build config (unknown keys are errors naming the path).
Result<BuildReformat> parse_build_reformat(const nlohmann::json& j,
                                           const std::string& where = "reformat");

// Runs <out>/4-reformat from <out>/3-dedup (resumable through its ledger: a re-run sends only
// what is not recorded yet) and rewrites the data card (when `card` is given) so it shows the
// stage. Parse the section first (parse_build_reformat) so a config error stops the build before
// any stage runs.
Result<curate::StageStats> run_build_reformat(const BuildReformat& config,
                                              const std::filesystem::path& out_dir,
                                              const curate::DataCardInfo* card,
                                              const std::atomic<bool>* cancel, bool progress);

}  // namespace mf::reformat
