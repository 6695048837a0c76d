// medforge judge --data FILE... --images DIR --endpoint URL --model NAME [--sample N] --out DIR:
// an MLLM judge scores the same samples built by several construction methods (the paper's
// expert evaluation, automated), exactly once through a SQLite ledger. See docs/judge.md.
#include <fmt/core.h>

#include <cstdio>

#include "cli/commands.h"
#include "core/log.h"
#include "reformat/build.h"
#include "reformat/judge.h"

namespace mf::cli {

int run_judge(int argc, char** argv) {
    CLI::App app{
        "Score VQA data built by several construction methods with an MLLM judge, like the\n"
        "paper's expert evaluation: a seeded random sample of N sample ids present in every\n"
        "--data file; the judge sees the image(s), the source caption and mentions, the\n"
        "question and one answer (method label hidden, order shuffled) and scores accuracy,\n"
        "relevance, completeness and usefulness from 1 to 5. Every request goes through\n"
        "OUT/ledger.sqlite (a re-run never pays twice). Outputs: report.json, report.md,\n"
        "report.html (bar chart), items.jsonl. Docs: docs/judge.md.",
        argv[0]};
    reformat::JudgeOptions o;
    reformat::EndpointOptions ep, ep2;
    std::vector<std::string> data, labels, samples;
    std::string images, out;
    CommonOptions common;
    app.add_option("--data", data,
                   "VQA files, one per method (alignment_vqa.json or .jsonl of `medforge "
                   "reformat`, or any LLaVA/PubMedVision JSON / JSONL)")
        ->required()
        ->expected(1, -1);
    app.add_option("--label", labels,
                   "method label per --data file, in order (default: the records' \"method\" "
                   "field, else the file name)")
        ->expected(1, -1);
    app.add_option("--samples", samples,
                   "Sample JSONL with the source caption and mentions (default: samples.jsonl "
                   "beside each --data file)")
        ->expected(1, -1);
    app.add_option("--images", images,
                   "directory the records' relative \"image\" paths are resolved against "
                   "(default: each file's directory)");
    app.add_option("--out", out, "output directory")->required();
    app.add_option("--endpoint", ep.endpoint, "judge: OpenAI-compatible base URL")->required();
    app.add_option("--model", o.model, "judge: model name")->required();
    app.add_option("--sample", o.sample, "sample ids to score (0 = all shared ids)")
        ->capture_default_str();
    app.add_option("--seed", o.seed, "seed of the sample draw and of the request order")
        ->capture_default_str();
    app.add_option("--judge2-endpoint", ep2.endpoint,
                   "second judge's base URL (for inter-judge agreement)");
    app.add_option("--judge2-model", o.model2, "second judge's model name");
    app.add_option("--api-key-env", ep.api_key_env,
                   "environment variable holding the judge's API key (never printed)")
        ->capture_default_str();
    app.add_option("--judge2-api-key-env", ep2.api_key_env,
                   "environment variable holding the second judge's API key")
        ->capture_default_str();
    app.add_option("--api-key-header", ep.api_key_header,
                   "header for the key: empty = 'Authorization: Bearer', 'api-key' for Azure");
    app.add_option("--extra-query", ep.extra_query,
                   "query string appended to the URL, e.g. api-version=2024-06-01 (Azure)");
    app.add_option("--concurrency", ep.concurrency, "requests in flight at once (per judge)")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    app.add_option("--rpm", ep.rpm, "requests per minute limit (0 = none)")->capture_default_str();
    app.add_option("--max-retries", ep.max_retries,
                   "HTTP retries per request on 429, 5xx, timeouts, dropped connections")
        ->capture_default_str();
    app.add_option("--timeout", ep.timeout_s, "seconds per HTTP request")->capture_default_str();
    app.add_option("--max-reasks", o.max_reasks,
                   "invalid judge replies are asked again (with the error) at most this many "
                   "times, then recorded as failed")
        ->capture_default_str();
    app.add_option("--max-tokens", o.max_tokens, "max_tokens of each request")
        ->capture_default_str();
    app.add_option("--temperature", o.temperature)->capture_default_str();
    app.add_flag("--json-mode", o.json_mode, "send response_format {\"type\":\"json_object\"}");
    app.add_option("--image-max-side", o.image_max_side,
                   "images are re-encoded as JPEG with this longest side before sending")
        ->capture_default_str();
    app.add_option("--bootstrap", o.bootstrap_resamples, "bootstrap resamples for the 95% CIs")
        ->capture_default_str();
    add_common_options(app, common, false);
    if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
    apply_common_options(common);

    if (ep2.endpoint.empty() != o.model2.empty()) {
        log::error("judge: a second judge needs both --judge2-endpoint and --judge2-model");
        return kExitUsage;
    }
    for (const auto& d : data)
        o.data.emplace_back(d);
    for (const auto& s : samples)
        o.samples.emplace_back(s);
    o.labels = labels;
    o.images_dir = images;
    o.out_dir = out;
    o.progress = !common.quiet;
    o.batch = std::max<size_t>(64, static_cast<size_t>(ep.concurrency) * 2);
    ep2.api_key_header = ep.api_key_header;
    ep2.extra_query = ep.extra_query;
    ep2.concurrency = ep.concurrency;
    ep2.rpm = ep.rpm;
    ep2.max_retries = ep.max_retries;
    ep2.timeout_s = ep.timeout_s;

    auto c1 = reformat::make_client(ep);
    if (!c1.ok()) return fail(c1.status(), "judge");
    std::unique_ptr<llm::LlmClient> c2;
    if (!ep2.endpoint.empty()) {
        auto c = reformat::make_client(ep2);
        if (!c.ok()) return fail(c.status(), "judge (second judge)");
        c2 = std::move(c).value();
    }
    o.cancel = install_cancel_handler();
    auto res = reformat::run_judge(o, c1->get(), c2.get());
    if (!res.ok()) {
        if (res.status().code() == StatusCode::kCancelled) {
            log::warn("{}", res.status().message());
            return 130;
        }
        return fail(res.status(), "judge");
    }
    const auto& r = res->report;
    for (const auto& j : r["judges"]) {
        log::info("judge {} ({}):", j["judge"].get<int>(), j["model"].get<std::string>());
        for (const auto& label : r["methods"]) {
            const auto& m = j["methods"][label.get<std::string>()];
            std::string line;
            for (const char* c : reformat::kJudgeCriteria) {
                const auto& b = m["criteria"][c];
                line += fmt::format(" {} {}", c,
                                    b["mean"].is_number()
                                        ? fmt::format("{:.2f}", b["mean"].get<double>())
                                        : std::string("-"));
            }
            log::info("  {:<20} scored {:>4}, failed {:>3}:{}", label.get<std::string>(),
                      m["scored"].get<int64_t>(), m["failed"].get<int64_t>(), line);
        }
    }
    log::info("judge: {} HTTP requests this run; report in {}/report.html",
              res->http_requests_this_run, out);
    return kExitOk;
}

}  // namespace mf::cli
