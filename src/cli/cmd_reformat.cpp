// medforge reformat --in DIR --out DIR --endpoint URL --model NAME [--method M] ...: samples →
// Alignment VQA + Instruction-Tuning VQA through an OpenAI-compatible (M)LLM, exactly once
// (SQLite ledger), resumable. See docs/reformat.md.
#include <csignal>
#include <cstdio>

#include "cli/commands.h"
#include "core/log.h"
#include "reformat/build.h"
#include "reformat/reformat.h"

namespace mf::cli {

int run_reformat(int argc, char** argv) {
    CLI::App app{
        "Turn curated samples into PubMedVision-style Alignment VQA (a generic describe question\n"
        "+ a detailed description) and Instruction-Tuning VQA (a scenario question + answer)\n"
        "with an OpenAI-compatible (M)LLM. Every request goes through OUT/ledger.sqlite: a\n"
        "re-run (after a crash, Ctrl-C or kill) sends only what is not recorded yet and never\n"
        "pays twice for a recorded answer. Outputs: alignment_vqa.json, instruction_vqa.json,\n"
        "images/, samples.jsonl, rejects.jsonl, stats.json. Docs: docs/reformat.md.",
        argv[0]};
    std::string in, out, method = "mllm-unblinded";
    reformat::EndpointOptions ep;
    reformat::ReformatOptions o;
    bool copy_images = false, link_images = false, hardlink_images = false, no_images = false;
    bool dry_run = false;
    CommonOptions common;
    app.add_option("--in", in, "input: Sample JSONL file or a stage output directory")->required();
    app.add_option("--out", out, "output directory")->required();
    app.add_option("--endpoint", ep.endpoint,
                   "OpenAI-compatible base URL, e.g. https://api.openai.com/v1 or "
                   "http://127.0.0.1:8080/v1 (not needed for native-caption)");
    app.add_option("--model", o.prompt.model, "model name sent in each request");
    app.add_option("--method", method,
                   "mllm-unblinded (images + context as reference), native-caption (no model), "
                   "llm-text (text only, blinded), mllm-image-only (images only)")
        ->check(CLI::IsMember({"mllm-unblinded", "native-caption", "llm-text", "mllm-image-only"}))
        ->capture_default_str();
    app.add_option("--api-key-env", ep.api_key_env,
                   "environment variable holding the API key (never printed)")
        ->capture_default_str();
    app.add_option("--api-key-header", ep.api_key_header,
                   "header for the key: empty = 'Authorization: Bearer', 'api-key' for Azure");
    app.add_option("--extra-query", ep.extra_query,
                   "query string appended to the URL, e.g. api-version=2024-06-01 (Azure)");
    app.add_option("--concurrency", ep.concurrency, "requests in flight at once")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    app.add_option("--rpm", ep.rpm, "requests per minute limit (0 = none)")->capture_default_str();
    app.add_option("--tpm", ep.tpm, "estimated tokens per minute limit (0 = none)")
        ->capture_default_str();
    app.add_option("--max-retries", ep.max_retries,
                   "HTTP retries per request on 429, 5xx, timeouts, dropped connections")
        ->capture_default_str();
    app.add_option("--timeout", ep.timeout_s, "seconds per HTTP request")->capture_default_str();
    app.add_option("--max-reasks", o.max_reasks,
                   "invalid replies are asked again (with the error) at most this many times")
        ->capture_default_str();
    bool no_verify = false;
    app.add_flag("--no-verify", no_verify,
                 "do not check replies against the caption + mentions (the answer verifier: "
                 "laterality, negation, numbers, modality, MR sequence, anatomy)");
    app.add_option("--verify-reasks", o.verify_reasks,
                   "replies the verifier flags are asked again (with the contradictions named) "
                   "at most this many times, then the sample is rejected as verifier:<kind>")
        ->capture_default_str();
    app.add_option("--max-tokens", o.prompt.max_tokens, "max_tokens of each request")
        ->capture_default_str();
    app.add_option("--temperature", o.prompt.temperature)->capture_default_str();
    app.add_option("--seed", o.prompt.seed,
                   "seed of the per-sample scenario and describe-question draws")
        ->capture_default_str();
    app.add_flag("--json-mode", o.prompt.json_mode,
                 "send response_format {\"type\":\"json_object\"}");
    app.add_option("--image-max-side", o.image_max_side,
                   "images are re-encoded as JPEG with this longest side before sending")
        ->capture_default_str();
    app.add_flag("--image-tokens", o.image_tokens,
                 "start each human turn with one \"<image>\\n\" per image (LLaVA training)");
    auto* g = app.add_option_group("images", "how OUT/images/ gets the images");
    g->add_flag("--copy-images", copy_images, "copy the image files (default)");
    g->add_flag("--link-images", link_images, "symbolic links to the input images");
    g->add_flag("--hardlink-images", hardlink_images, "hard links (same file system)");
    g->add_flag("--no-images", no_images, "keep the input paths in \"image\", create no images/");
    g->require_option(0, 1);
    app.add_flag("--jsonl", o.jsonl, "also write alignment_vqa.jsonl / instruction_vqa.jsonl");
    app.add_flag("--dry-run", dry_run,
                 "print the number of requests, estimated tokens and cost; send nothing");
    app.add_option("--price-in", o.price_in, "price per 1M prompt tokens (for cost figures)")
        ->capture_default_str();
    app.add_option("--price-out", o.price_out, "price per 1M completion tokens")
        ->capture_default_str();
    app.add_option("--batch", o.batch, "requests handed to the client at a time")
        ->capture_default_str();
    add_common_options(app, common, false);
    if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
    apply_common_options(common);

    auto m = reformat::parse_method(method);
    if (!m.ok()) return fail(m.status(), "reformat");
    o.method = *m;
    o.verify = !no_verify;
    o.input = in;
    o.out_dir = out;
    o.progress = !common.quiet;
    o.threads = static_cast<size_t>(common.threads);
    if (link_images) o.image_mode = reformat::ImageMode::kSymLink;
    if (hardlink_images) o.image_mode = reformat::ImageMode::kHardLink;
    if (no_images) o.image_mode = reformat::ImageMode::kNone;
    o.batch = std::max<size_t>(o.batch, static_cast<size_t>(ep.concurrency) * 2);
    const bool needs_model = reformat::method_uses_model(o.method);
    if (needs_model && (ep.endpoint.empty() || o.prompt.model.empty()) && !dry_run) {
        log::error(
            "reformat: method {} needs --endpoint URL and --model NAME (or use --method "
            "native-caption)",
            method);
        return kExitUsage;
    }
    if (dry_run) {
        auto e = reformat::estimate_reformat(o);
        if (!e.ok()) return fail(e.status(), "reformat --dry-run");
        std::fputs(reformat::format_estimate(*e).c_str(), stdout);
        return kExitOk;
    }
    std::unique_ptr<llm::LlmClient> client;
    if (needs_model) {
        auto c = reformat::make_client(ep);
        if (!c.ok()) return fail(c.status(), "reformat");
        client = std::move(c).value();
    }
    o.cancel = install_cancel_handler();
    auto res = reformat::run_reformat(o, client.get());
    if (!res.ok()) {
        if (res.status().code() == StatusCode::kCancelled) {
            log::warn("{}", res.status().message());
            return 130;
        }
        return fail(res.status(), "reformat");
    }
    const auto& st = res->stats;
    print_stage_summary(st, out);
    log::info(
        "reformat: {} alignment + {} instruction VQA; {} HTTP requests this run; tokens "
        "{} in / {} out; cost {:.4f}",
        st.extra.value("alignment_vqa", 0), st.extra.value("instruction_vqa", 0),
        res->http_requests_this_run, st.extra["tokens"].value("prompt", 0),
        st.extra["tokens"].value("completion", 0), st.extra.value("cost", 0.0));
    return kExitOk;
}

}  // namespace mf::cli
