// medforge eval: run a medical VQA benchmark against an OpenAI-compatible endpoint with the
// paper's protocol; `medforge eval compare RUN_DIR...` puts runs and the paper's tables side by
// side. See docs/eval.md.
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "cli/commands.h"
#include "cli/local_client.h"
#include "core/log.h"
#include "eval/runner.h"
#include "io/file.h"

namespace mf::cli {

namespace {

int run_compare(int argc, char** argv) {
    CLI::App app{"Put several eval runs (and the paper's published tables) side by side.", argv[0]};
    std::vector<std::string> dirs;
    bool paper = false;
    std::string out;
    app.add_option("runs", dirs, "run directories (each holding results.json)")->required();
    app.add_flag("--paper", paper, "add the paper's tables (paper-spec §9.5)");
    app.add_option("--out", out,
                   "write compare.md and compare.html into this directory (default: print the "
                   "Markdown)");
    if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
    std::vector<std::filesystem::path> paths(dirs.begin(), dirs.end());
    auto md = eval::compare_markdown(paths, paper);
    if (!md.ok()) return fail(md.status(), "eval compare");
    if (out.empty()) {
        std::fputs(md->c_str(), stdout);
        return kExitOk;
    }
    auto html = eval::compare_html(paths, paper);
    if (!html.ok()) return fail(html.status(), "eval compare");
    Status st = io::ensure_dir(out);
    if (st.ok()) st = io::write_file_atomic(std::filesystem::path(out) / "compare.md", *md);
    if (st.ok()) st = io::write_file_atomic(std::filesystem::path(out) / "compare.html", *html);
    if (!st.ok()) return fail(st, "eval compare");
    log::info("eval compare: wrote {}/compare.md and compare.html", out);
    return kExitOk;
}

}  // namespace

int run_eval(int argc, char** argv) {
    if (argc >= 2 && std::strcmp(argv[1], "compare") == 0) {
        std::string name = std::string(argv[0]) + " compare";
        argv[1] = name.data();
        return run_compare(argc - 1, argv + 1);
    }
    CLI::App app{
        "Evaluate a model on a medical VQA benchmark through an OpenAI-compatible endpoint (or a\n"
        "local checkpoint with --model-dir),\n"
        "with the paper's protocol (lettered options, 'Answer with the option's letter from the\n"
        "given choices directly.'). Responses are cached in OUT/cache.sqlite: a re-run sends only\n"
        "missing items. Writes results.json, results.md and report.html.\n"
        "Also: medforge eval compare RUN_DIR... [--paper] [--out DIR]",
        argv[0]};
    eval::RunParams p;
    std::string benchmark, data, images, out, extractor = "robust", shard = "0/1";
    std::string api_key_env = "OPENAI_API_KEY";
    std::vector<std::string> reuse;
    int concurrency = 8;
    int max_retries = 5;
    double timeout_s = 300;
    bool all_questions = false, no_open = false, quiet = false;
    app.add_option("--benchmark", benchmark,
                   "vqa-rad | slake | pathvqa | pmc-vqa | omnimedvqa | mmmu | huatuo-bundle")
        ->required();
    app.add_option("--data", data, "the benchmark file (omnimedvqa: also a directory of QA json)")
        ->required();
    app.add_option("--images", images, "image directory (default: the data file's directory)");
    app.add_flag("--no-images", p.no_images, "send text only (recorded in the protocol card)");
    std::string model_dir, dtype_s;
    auto* ep_opt =
        app.add_option("--endpoint", p.endpoint, "base URL, e.g. http://127.0.0.1:8000/v1");
    app.add_option("--model", p.model, "model name sent to the endpoint");
    auto* md_opt = app.add_option("--model-dir", model_dir,
                                  "run a local checkpoint in this process instead of an endpoint");
    ep_opt->excludes(md_opt);
    app.add_option("--dtype", dtype_s,
                   "--model-dir: compute dtype f32 or bf16 (default: the checkpoint's)");
    app.add_option("--out", out, "output directory")->required();
    app.add_option("--extractor", extractor, "robust (default) | official (match_choice3)");
    app.add_option("--limit", p.limit, "evaluate only the first N items");
    app.add_option("--temperature", p.decoding.temperature, "default 0.2 (paper)");
    app.add_option("--top-p", p.decoding.top_p, "default: not sent");
    app.add_option("--max-tokens", p.decoding.max_tokens, "default 256 (paper)");
    app.add_option("--seed", p.decoding.seed, "default 42 (paper); -1 = not sent");
    app.add_option("--concurrency", concurrency, "requests in flight (default 8)");
    app.add_option("--max-retries", max_retries, "retries on 429/5xx/timeouts (default 5)");
    app.add_option("--timeout", timeout_s, "seconds per request (default 300)");
    app.add_option("--api-key-env", api_key_env,
                   "environment variable holding the API key (default OPENAI_API_KEY; unset = "
                   "no key)");
    app.add_option("--shard", shard, "i/N: evaluate only the items whose id hash falls in shard i");
    app.add_option("--reuse-cache", reuse,
                   "other runs' OUT directories or cache.sqlite files to take responses from "
                   "(e.g. the shards' outputs)");
    app.add_flag("--all-questions", all_questions,
                 "SLAKE: all English questions (default: CLOSED only); MMMU: all subjects "
                 "(default: Health & Medicine)");
    app.add_flag("--no-open", no_open, "drop open questions (VQA-RAD, SLAKE, PathVQA)");
    app.add_option("--bootstrap", p.bootstrap_resamples, "bootstrap resamples (default 1000)");
    app.add_flag("-q,--quiet", quiet, "warnings and errors only");
    if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
    if (quiet) log::set_level(log::Level::kWarn);

    p.benchmark = benchmark;
    p.data = data;
    p.images = images;
    p.out = out;
    p.load.all_questions = all_questions;
    p.load.include_open = !no_open;
    p.medforge_version = "0.1.0";
    for (auto& r : reuse)
        p.reuse_caches.emplace_back(r);
    auto ex = eval::parse_extractor(extractor);
    if (!ex) return fail(Status::invalid_argument("--extractor must be robust or official"));
    p.extractor = *ex;
    auto sh = eval::parse_shard_spec(shard);
    if (!sh.ok()) return fail(sh.status());
    p.shard = *sh;

    std::unique_ptr<llm::LlmClient> local;
    if (!model_dir.empty()) {
        model::EngineOptions eo;
        if (!dtype_s.empty()) {
            auto d = model::parse_compute_dtype(dtype_s);
            if (!d.ok()) return fail(d.status(), "eval");
            eo.dtype = *d;
        }
        auto lc = LocalModelClient::open(model_dir, eo);
        if (!lc.ok()) return fail(lc.status(), "eval");
        // The cache key and the protocol card name the model: the folder, unless --model says.
        if (p.model.empty()) p.model = (*lc)->model_id();
        p.endpoint = "local:" + io::absolute_normal(model_dir).string();
        local = std::move(lc).value();
    } else if (p.endpoint.empty() || p.model.empty()) {
        log::error("eval: give --endpoint URL and --model NAME, or --model-dir DIR");
        return kExitUsage;
    }
    llm::ClientOptions co;
    co.base_url = p.endpoint;
    if (const char* key = std::getenv(api_key_env.c_str())) co.api_key = key;
    co.max_concurrency = concurrency;
    co.max_retries = max_retries;
    co.timeout_s = timeout_s;
    std::unique_ptr<llm::LlmClient> http;
    if (!local) {
        auto client = llm::make_http_client(co);
        if (!client.ok()) return fail(client.status(), "eval");
        http = std::move(client).value();
    }
    // Ctrl-C: requests in flight are cancelled; finished responses are already in the cache,
    // so the same command resumes.
    auto res = eval::run_eval(p, local ? *local : *http, install_cancel_handler());
    std::signal(SIGINT, SIG_DFL);
    if (!res.ok()) return fail(res.status(), "eval");
    const auto& r = res->results;
    const auto& micro = r["closed"]["micro"];
    log::info(
        "eval {}: {} items ({} sent, {} cached, {} failed); closed accuracy {:.1f}% "
        "[{:.1f}, {:.1f}] over {}; macro {:.1f}%; reports in {}",
        benchmark, res->items, res->sent, res->cached, res->failed,
        micro["mean"].get<double>() * 100, micro["ci95"][0].get<double>() * 100,
        micro["ci95"][1].get<double>() * 100, micro["n"].get<int64_t>(),
        r["closed"]["macro"]["mean"].get<double>() * 100, out);
    if (res->failed > 0) {
        return fail(Status::unavailable(std::to_string(res->failed) +
                                        " requests failed (scored wrong); run the same command "
                                        "again to retry them (cached responses are reused)"),
                    "eval");
    }
    return kExitOk;
}

}  // namespace mf::cli
