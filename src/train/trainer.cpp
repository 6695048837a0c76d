#include "train/trainer.h"

#include <ATen/autocast_mode.h>
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/log.h"
#include "core/progress.h"
#include "core/thread_pool.h"
#include "io/file.h"
#include "io/tokenizer.h"
#include "model/decoder.h"

namespace mf::train {

using nlohmann::json;

// ---- loss ------------------------------------------------------------------------------------

namespace {

// Reentrant activation checkpointing of one decoder layer: the forward keeps only its input; the
// backward runs the layer again with grad enabled and back-propagates through it (parameter
// gradients accumulate as usual).
struct CheckpointedLayer : public torch::autograd::Function<CheckpointedLayer> {
    static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x,
                                 torch::Tensor cos, torch::Tensor sin, int64_t layer_ptr) {
        ctx->save_for_backward({x, cos, sin});
        ctx->saved_data["layer"] = layer_ptr;
        ctx->saved_data["autocast"] = at::autocast::is_cpu_enabled();
        auto* layer = reinterpret_cast<model::DecoderLayerImpl*>(layer_ptr);
        torch::NoGradGuard ng;
        return layer->forward(x, cos, sin, nullptr, 0, {});
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grad_out) {
        auto saved = ctx->get_saved_variables();
        auto* layer = reinterpret_cast<model::DecoderLayerImpl*>(ctx->saved_data["layer"].toInt());
        torch::Tensor x = saved[0].detach().requires_grad_(true);
        torch::Tensor out;
        {
            torch::AutoGradMode on(true);
            // The recomputation runs as the forward did (bf16 autocast or not).
            bool ac = ctx->saved_data["autocast"].toBool();
            bool was = at::autocast::is_cpu_enabled();
            at::autocast::set_cpu_enabled(ac);
            if (ac) at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
            out = layer->forward(x, saved[1], saved[2], nullptr, 0, {});
            at::autocast::set_cpu_enabled(was);
        }
        torch::autograd::backward({out}, {grad_out[0]});
        return {x.grad(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
    }
};

}  // namespace

torch::Tensor micro_batch_loss_sum(model::MultimodalLM& m,
                                   const std::vector<const Sample*>& samples,
                                   const torch::Tensor& pixels, int64_t* tokens, int64_t* positions,
                                   bool grad_checkpoint) {
    const auto dt = m->dtype();
    torch::Tensor img;
    if (pixels.defined() && pixels.size(0) > 0) img = m->encode_images(pixels);  // [N, P, H]
    const int64_t P = m->image_tokens();
    std::vector<torch::Tensor> embeds;
    std::vector<std::vector<int64_t>> labels;
    int64_t T = 0, off = 0;
    for (const Sample* s : samples) {
        int64_t n = static_cast<int64_t>(s->images.size());
        torch::Tensor e = m->embed_prompt(s->ids, n ? img.narrow(0, off, n) : torch::Tensor());
        off += n;
        std::vector<int64_t> lab;
        lab.reserve(e.size(1));
        for (size_t i = 0; i < s->ids.size(); ++i) {
            if (s->ids[i] == model::kImageMarker)
                lab.insert(lab.end(), P, kIgnore);
            else
                lab.push_back(s->labels[i]);
        }
        TORCH_CHECK(static_cast<int64_t>(lab.size()) == e.size(1),
                    "label/embedding length mismatch");
        T = std::max(T, e.size(1));
        embeds.push_back(e);
        labels.push_back(std::move(lab));
    }
    const int64_t B = static_cast<int64_t>(samples.size());
    const int64_t H = m->lm->config().hidden_size;
    // Right padding: with the causal mask no real position sees a pad key, so no pad mask.
    for (auto& e : embeds)
        if (e.size(1) < T) e = torch::cat({e, torch::zeros({1, T - e.size(1), H}, e.options())}, 1);
    torch::Tensor x = torch::cat(embeds, 0);  // [B, T, H]
    std::vector<int64_t> flat(B * T, kIgnore);
    for (int64_t b = 0; b < B; ++b)
        for (size_t t = 0; t < labels[b].size(); ++t)
            flat[b * T + t] = labels[b][t];
    // Position t predicts label t+1.
    std::vector<int64_t> rows, targets;
    for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t + 1 < T; ++t)
            if (flat[b * T + t + 1] != kIgnore) {
                rows.push_back(b * T + t);
                targets.push_back(flat[b * T + t + 1]);
            }
    if (tokens) *tokens = static_cast<int64_t>(rows.size());
    if (positions) *positions = B * T;
    // The decoder (CausalLM::forward_hidden without a cache, optionally checkpointed per layer).
    auto& lm = m->lm;
    const auto& tc = lm->config();
    auto pos = torch::arange(0, T, torch::kInt64);
    auto [cos, sin] = model::rope_tables(pos, tc.head_dim, tc.rope_theta);
    if (dt == torch::kFloat64) {
        cos = cos.to(torch::kFloat64);
        sin = sin.to(torch::kFloat64);
    }
    torch::Tensor h = x;
    for (auto& mod : *lm->model->layers) {
        auto* layer = mod->as<model::DecoderLayer>();
        if (grad_checkpoint && torch::GradMode::is_enabled())
            h = CheckpointedLayer::apply(h, cos, sin, reinterpret_cast<int64_t>(layer));
        else
            h = layer->forward(h, cos, sin, nullptr, 0, {});
    }
    h = lm->model->norm(h);
    auto idx = torch::tensor(rows, torch::kInt64);
    auto tgt = torch::tensor(targets, torch::kInt64);
    auto hs = h.reshape({B * T, H}).index_select(0, idx);
    torch::Tensor w = lm->lm_head ? lm->lm_head->weight : lm->model->embed_tokens->weight;
    auto logits = torch::matmul(hs, w.t());
    logits = logits.to(dt == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32);
    return torch::nn::functional::cross_entropy(
        logits, tgt, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
}

std::vector<torch::Tensor> set_trainable(model::MultimodalLM& m, bool vision, bool projector,
                                         bool lm) {
    std::vector<torch::Tensor> out;
    auto mark = [&](torch::nn::Module* mod, bool on) {
        if (!mod) return;
        for (auto& p : mod->parameters()) {
            p.set_requires_grad(on);
            if (on) out.push_back(p);
        }
    };
    mark(m->lm ? m->lm.get() : nullptr, lm);
    mark(m->vision ? m->vision.get() : nullptr, vision);
    mark(m->projector ? m->projector.get() : nullptr, projector);
    return out;
}

double cosine_lr(double base, int64_t step, int64_t warmup, int64_t total) {
    if (step < warmup) return base * static_cast<double>(step) / std::max<int64_t>(1, warmup);
    double progress = static_cast<double>(step - warmup) / std::max<int64_t>(1, total - warmup);
    return base * std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
}

std::string loss_svg(const std::vector<std::pair<int64_t, double>>& pts, const std::string& title) {
    const double W = 640, Hh = 360, L = 60, R = 20, Tp = 30, Bm = 40;
    std::string s = fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
        "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" "
        "fill=\"white\"/>\n<text x=\"{}\" y=\"18\" font-size=\"13\">{}</text>\n",
        W, Hh, L, title);
    if (pts.empty()) return s + "</svg>\n";
    int64_t x0 = pts.front().first, x1 = pts.back().first;
    double y0 = pts[0].second, y1 = pts[0].second;
    for (auto& [x, y] : pts) {
        y0 = std::min(y0, y);
        y1 = std::max(y1, y);
    }
    y0 = std::min(0.0, y0);
    if (y1 <= y0) y1 = y0 + 1;
    if (x1 <= x0) x1 = x0 + 1;
    auto px = [&](double x) { return L + (x - x0) / double(x1 - x0) * (W - L - R); };
    auto py = [&](double y) { return Hh - Bm - (y - y0) / (y1 - y0) * (Hh - Tp - Bm); };
    s += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"black\"/>\n", L,
                     Hh - Bm, W - R);
    s += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"black\"/>\n", L,
                     Tp, Hh - Bm);
    for (int k = 0; k <= 4; ++k) {
        double y = y0 + (y1 - y0) * k / 4;
        s += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{:.3g}</text>\n", L - 4,
                         py(y) + 4, y);
        double x = x0 + (x1 - x0) * k / 4.0;
        s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{:.0f}</text>\n",
                         px(x), Hh - Bm + 16, x);
    }
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">step</text>\n", (W + L) / 2,
                     Hh - 6);
    s += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"";
    for (auto& [x, y] : pts)
        s += fmt::format("{:.1f},{:.1f} ", px(double(x)), py(y));
    s += "\"/>\n</svg>\n";
    return s;
}

// ---- options ---------------------------------------------------------------------------------

Status resolve_options(TrainOptions& o) {
    if (o.stage != "align" && o.stage != "instruct")
        return Status::invalid_argument("--stage must be 'align' or 'instruct', not '" + o.stage +
                                        "'");
    bool align = o.stage == "align";
    if (o.lr <= 0) o.lr = align ? 1e-3 : 2e-5;
    if (o.global_batch <= 0) o.global_batch = align ? 256 : 128;
    if (!o.train_vision) o.train_vision = false;
    if (!o.train_projector) o.train_projector = true;
    if (!o.train_lm) o.train_lm = !align;
    if (o.model.empty() || o.data.empty() || o.out.empty())
        return Status::invalid_argument("--model, --data and --out are required");
    if (o.batch_size < 1) return Status::invalid_argument("--batch-size must be >= 1");
    if (o.max_length < 2) return Status::invalid_argument("--max-length must be >= 2");
    if (o.epochs < 1) return Status::invalid_argument("--epochs must be >= 1");
    if (o.warmup_ratio < 0 || o.warmup_ratio >= 1)
        return Status::invalid_argument("--warmup-ratio must be in [0, 1)");
    if (o.compute_dtype != "f32" && o.compute_dtype != "bf16")
        return Status::invalid_argument("--dtype must be f32 or bf16");
    if (o.save_dtype != "f32" && o.save_dtype != "bf16")
        return Status::invalid_argument("--save-dtype must be f32 or bf16");
    if (!*o.train_vision && !*o.train_projector && !*o.train_lm)
        return Status::invalid_argument("every part is frozen: nothing to train");
    if (o.log_every < 1) o.log_every = 1;
    return {};
}

// ---- the run ---------------------------------------------------------------------------------

namespace {

namespace fs = std::filesystem;

const char* kTokenizerFiles[] = {"tokenizer.json",
                                 "tokenizer_config.json",
                                 "special_tokens_map.json",
                                 "added_tokens.json",
                                 "vocab.json",
                                 "vocab.txt",
                                 "merges.txt",
                                 "tokenizer.model",
                                 "preprocessor_config.json",
                                 "generation_config.json",
                                 "chat_template.jinja",
                                 "chat_template.json"};

Status copy_tokenizer_files(const fs::path& from, const fs::path& to) {
    for (const char* f : kTokenizerFiles) {
        std::error_code ec;
        if (!fs::is_regular_file(from / f, ec)) continue;
        if (fs::equivalent(from / f, to / f, ec)) continue;
        fs::copy_file(from / f, to / f, fs::copy_options::overwrite_existing, ec);
        if (ec)
            return Status::io_error(
                fmt::format("copy {} to {}: {}", (from / f).string(), to.string(), ec.message()));
    }
    return {};
}

// checkpoint-<step> folders under `out`, newest last.
std::vector<std::pair<int64_t, fs::path>> list_checkpoints(const fs::path& out) {
    std::vector<std::pair<int64_t, fs::path>> v;
    std::error_code ec;
    if (!fs::is_directory(out, ec)) return v;
    for (auto& e : fs::directory_iterator(out, ec)) {
        std::string n = e.path().filename().string();
        if (!e.is_directory() || n.rfind("checkpoint-", 0) != 0) continue;
        if (!fs::exists(e.path() / "trainer_state.json")) continue;  // unfinished
        try {
            v.emplace_back(std::stoll(n.substr(11)), e.path());
        } catch (...) {
        }
    }
    std::sort(v.begin(), v.end());
    return v;
}

struct AutocastGuard {
    bool on;
    explicit AutocastGuard(bool enable) : on(enable) {
        if (on) {
            at::autocast::set_cpu_enabled(true);
            at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
        }
    }
    ~AutocastGuard() {
        if (on) {
            at::autocast::set_cpu_enabled(false);
            at::autocast::clear_cache();
        }
    }
};

std::string metrics_line(const StepMetrics& s) {
    return json{{"step", s.step},           {"epoch", s.epoch},
                {"loss", s.loss},           {"lr", s.lr},
                {"grad_norm", s.grad_norm}, {"tokens", s.tokens},
                {"positions", s.positions}, {"tokens_per_s", s.tokens_per_s},
                {"elapsed_s", s.elapsed_s}}
        .dump();
}

}  // namespace

Result<TrainResult> run_training(TrainOptions o, ProcessGroup* pg) {
    MF_RETURN_IF_ERROR(resolve_options(o));
    std::unique_ptr<ProcessGroup> local;
    if (!pg) {
        MF_ASSIGN_OR_RETURN(local, make_process_group(DistEnv{}));
        pg = local.get();
    }
    const int rank = pg->rank(), world = pg->world();
    const bool lead = rank == 0;
    if (o.global_batch % (o.batch_size * world) != 0)
        return Status::invalid_argument(
            fmt::format("--global-batch {} must be a multiple of --batch-size {} x {} processes",
                        o.global_batch, o.batch_size, world));
    const int accum = static_cast<int>(o.global_batch / (o.batch_size * world));
    if (lead) MF_RETURN_IF_ERROR(io::ensure_dir(o.out));

    // Tokenizer, template, image processor from the base model folder.
    MF_ASSIGN_OR_RETURN(auto tok, io::load_tokenizer(o.model));
    std::optional<io::ChatTemplate> tmpl;
    if (!o.chat_format.empty()) {
        MF_ASSIGN_OR_RETURN(io::ChatFormat f, io::parse_chat_format(o.chat_format));
        tmpl.emplace(f);
    } else if (o.stage == "align") {
        tmpl.emplace(io::ChatFormat::kPlain);
    } else {
        auto t = io::detect_chat_template(o.model);
        if (!t.ok())
            return t.status().with_context(
                "cannot tell the model's chat template; pass --chat-format");
        tmpl.emplace(*t);
    }

    // Resume point.
    auto ckpts = list_checkpoints(o.out);
    fs::path resume_dir;
    json state;
    if (o.resume && !ckpts.empty()) {
        resume_dir = ckpts.back().second;
        MF_ASSIGN_OR_RETURN(std::string st, io::read_file(resume_dir / "trainer_state.json"));
        state = json::parse(st, nullptr, false);
        if (state.is_discarded() || !state.contains("step"))
            return Status::corruption((resume_dir / "trainer_state.json").string() +
                                      ": not a trainer state");
    }
    MF_ASSIGN_OR_RETURN(model::MultimodalLM m,
                        model::load_multimodal_lm(resume_dir.empty() ? o.model : resume_dir,
                                                  model::LoadOptions{torch::kFloat32}));
    if (!m->lm) return Status::invalid_argument(o.model.string() + ": no language model to train");
    if (static_cast<int64_t>(tok->vocab_size()) > m->config().text.vocab_size)
        return Status::invalid_argument("the tokenizer has more ids than the model's vocab_size");
    m->train();
    model::ImageProcessorConfig improc;
    const auto& cfg = m->config();
    if (m->has_vision()) {
        if (fs::exists(o.model / "preprocessor_config.json")) {
            MF_ASSIGN_OR_RETURN(improc, model::load_image_processor_config(o.model));
        } else {
            improc = cfg.arch == model::Arch::kLlavaHf ? model::ImageProcessorConfig::llava_hf()
                                                       : model::ImageProcessorConfig::llava15();
        }
        if (cfg.arch != model::Arch::kLlavaHf)
            improc.pad_to_square = cfg.image_aspect_ratio == "pad";
    }

    // Data.
    std::vector<Reject> rejects;
    TokenizeOptions to;
    to.max_length = o.max_length;
    to.image_tokens = m->image_tokens();
    fs::path image_dir = o.images.empty() ? o.data.parent_path() : o.images;
    MF_ASSIGN_OR_RETURN(std::vector<Sample> samples,
                        load_samples(o.data, *tok, *tmpl, image_dir, to, rejects));
    if (lead) MF_RETURN_IF_ERROR(write_rejects(o.out / "rejects.jsonl", rejects));
    if (samples.empty())
        return Status::invalid_argument(fmt::format("{}: no usable sample ({} rejected; see {})",
                                                    o.data.string(), rejects.size(),
                                                    (o.out / "rejects.jsonl").string()));
    std::vector<int64_t> lengths;
    for (auto& s : samples)
        lengths.push_back(s.length);
    const int64_t GB = o.global_batch;
    const int64_t spe = (static_cast<int64_t>(samples.size()) + GB - 1) / GB;
    const int64_t total = spe * o.epochs;
    const int64_t warmup = static_cast<int64_t>(std::ceil(o.warmup_ratio * total));

    // Trainable parameters + optimizer.
    auto params = set_trainable(m, *o.train_vision, *o.train_projector, *o.train_lm);
    if (params.empty())
        return Status::invalid_argument(
            "no trainable parameter (the model lacks the unfrozen parts)");
    torch::optim::AdamW opt(params, torch::optim::AdamWOptions(o.lr)
                                        .betas({o.adam_beta1, o.adam_beta2})
                                        .eps(o.adam_eps)
                                        .weight_decay(o.weight_decay));
    int64_t start = 0;
    if (!resume_dir.empty()) {
        start = state["step"].get<int64_t>();
        if (state.value("global_batch", int64_t{0}) != GB ||
            state.value("samples", int64_t{0}) != static_cast<int64_t>(samples.size()) ||
            state.value("seed", uint64_t{0}) != o.seed || state.value("stage", "") != o.stage)
            return Status::failed_precondition(fmt::format(
                "{}: made with another setup (stage {}, global batch {}, {} samples, seed {}); "
                "resume needs the same, or pass --no-resume / another --out",
                resume_dir.string(), state.value("stage", "?"), state.value("global_batch", 0),
                state.value("samples", 0), state.value("seed", 0)));
        try {
            torch::load(opt, (resume_dir / "optimizer.pt").string());
            torch::Tensor rng;
            torch::load(rng, (resume_dir / "rng.pt").string());
            at::Generator gen = at::detail::getDefaultCPUGenerator();
            gen.set_state(rng);
        } catch (const std::exception& e) {
            return Status::corruption(fmt::format("{}: cannot read the optimizer / RNG state: {}",
                                                  resume_dir.string(), e.what()));
        }
    }
    if (lead) {
        // metrics.jsonl keeps the lines of the steps before the resume point.
        std::string kept;
        if (start > 0) {
            auto old = io::read_file(o.out / "metrics.jsonl");
            if (old.ok()) {
                std::istringstream in(*old);
                std::string line;
                while (std::getline(in, line)) {
                    auto j = json::parse(line, nullptr, false);
                    if (!j.is_discarded() && j.value("step", int64_t{0}) <= start)
                        kept += line + "\n";
                }
            }
        }
        MF_RETURN_IF_ERROR(io::write_file_atomic(o.out / "metrics.jsonl", kept));
        json cfgj{{"stage", o.stage},
                  {"model", o.model.string()},
                  {"data", o.data.string()},
                  {"chat_format", std::string(io::chat_format_name(tmpl->format()))},
                  {"lr", o.lr},
                  {"global_batch", GB},
                  {"batch_size", o.batch_size},
                  {"world", world},
                  {"grad_accum", accum},
                  {"epochs", o.epochs},
                  {"total_steps", total},
                  {"warmup_steps", warmup},
                  {"max_length", o.max_length},
                  {"dtype", o.compute_dtype},
                  {"train_vision", *o.train_vision},
                  {"train_projector", *o.train_projector},
                  {"train_lm", *o.train_lm},
                  {"samples", samples.size()},
                  {"rejected", rejects.size()}};
        MF_RETURN_IF_ERROR(io::write_file_atomic(o.out / "train_config.json", cfgj.dump(2) + "\n"));
    }
    if (!o.quiet && lead)
        fmt::print(stderr,
                   "train: stage {} | {} samples ({} rejected) | {} steps of {} samples ({} x {} "
                   "micro x {} procs) | lr {:.2e} | template {}{}\n",
                   o.stage, samples.size(), rejects.size(), total, GB, o.batch_size, accum, world,
                   o.lr, io::chat_format_name(tmpl->format()),
                   start ? fmt::format(" | resuming at step {}", start) : "");

    ThreadPool image_pool(o.workers > 0 ? o.workers : 0);
    ThreadPool loader(1);
    const int64_t S = m->has_vision() ? cfg.vision.image_size : 0;
    std::map<int64_t, std::vector<std::vector<size_t>>> epoch_cache;
    auto global_batch_of = [&](int64_t step) -> const std::vector<size_t>& {
        int64_t ep = step / spe;
        auto it = epoch_cache.find(ep);
        if (it == epoch_cache.end()) {
            epoch_cache.erase(ep - 1);
            it = epoch_cache.emplace(ep, epoch_batches(lengths, GB, o.seed, ep)).first;
        }
        return it->second[step % spe];
    };
    using Fut = std::future<Result<Batch>>;
    auto schedule = [&](int64_t step) {
        std::vector<Fut> v;
        const auto& g = global_batch_of(step);
        for (int k = 0; k < accum; ++k) {
            auto idx = micro_slice(g, world, rank, accum, k);
            std::vector<const Sample*> ss;
            for (size_t i : idx)
                ss.push_back(&samples[i]);
            v.push_back(loader.submit(
                [ss, &improc, S, &image_pool] { return make_batch(ss, improc, S, &image_pool); }));
        }
        return v;
    };

    int64_t end = total;
    if (o.max_steps > 0) end = std::min(end, o.max_steps);
    TrainResult res;
    res.total_steps = total;
    res.resumed_from = start;
    res.samples = samples.size();
    res.rejected = rejects.size();
    std::vector<Fut> pending;
    if (start < end) pending = schedule(start);
    auto t0 = std::chrono::steady_clock::now();
    const bool bf16 = o.compute_dtype == "bf16";
    // Flat gradient buffer for the all-reduce.
    int64_t n_params = 0;
    for (auto& p : params)
        n_params += p.numel();
    auto save_checkpoint = [&](int64_t step) -> Status {
        if (lead) {
            fs::path dir = o.out / fmt::format("checkpoint-{}", step);
            fs::path tmp = o.out / fmt::format(".checkpoint-{}.tmp", step);
            std::error_code ec;
            fs::remove_all(tmp, ec);
            MF_RETURN_IF_ERROR(model::save_multimodal_lm(m, tmp, torch::kFloat32));
            MF_RETURN_IF_ERROR(copy_tokenizer_files(o.model, tmp));
            try {
                torch::save(opt, (tmp / "optimizer.pt").string());
                torch::save(at::detail::getDefaultCPUGenerator().get_state(),
                            (tmp / "rng.pt").string());
            } catch (const std::exception& e) {
                return Status::io_error(std::string("saving the optimizer state: ") + e.what());
            }
            json st{{"step", step},        {"total_steps", total},
                    {"global_batch", GB},  {"samples", samples.size()},
                    {"seed", o.seed},      {"stage", o.stage},
                    {"epoch", step / spe}, {"step_in_epoch", step % spe},
                    {"world", world}};
            MF_RETURN_IF_ERROR(
                io::write_file_atomic(tmp / "trainer_state.json", st.dump(2) + "\n"));
            fs::remove_all(dir, ec);
            fs::rename(tmp, dir, ec);
            if (ec)
                return Status::io_error(
                    fmt::format("rename {} -> {}: {}", tmp.string(), dir.string(), ec.message()));
            auto all = list_checkpoints(o.out);
            for (size_t i = 0;
                 i + static_cast<size_t>(std::max<int64_t>(1, o.keep_checkpoints)) < all.size();
                 ++i)
                fs::remove_all(all[i].second, ec);
        }
        return pg->barrier();
    };
    auto write_plot = [&]() -> Status {
        auto txt = io::read_file(o.out / "metrics.jsonl");
        if (!txt.ok()) return txt.status();
        std::vector<std::pair<int64_t, double>> pts;
        std::istringstream in(*txt);
        std::string line;
        while (std::getline(in, line)) {
            auto j = json::parse(line, nullptr, false);
            if (!j.is_discarded())
                pts.emplace_back(j["step"].get<int64_t>(), j["loss"].get<double>());
        }
        return io::write_file_atomic(
            o.out / "loss.svg", loss_svg(pts, fmt::format("medforge train ({}) loss", o.stage)));
    };

    for (int64_t step = start; step < end; ++step) {
        auto ts = std::chrono::steady_clock::now();
        std::vector<Fut> cur = std::move(pending);
        if (step + 1 < end) pending = schedule(step + 1);
        std::vector<Batch> batches;
        double counts_local[2] = {0, 0};  // label tokens, positions
        for (auto& f : cur) {
            auto b = f.get();
            if (!b.ok()) return b.status();
            for (const Sample* s : b->samples)
                counts_local[0] += s->trained_tokens;
            batches.push_back(std::move(*b));
        }
        auto counts = torch::tensor({counts_local[0], 0.0, 0.0}, torch::kFloat64);
        MF_RETURN_IF_ERROR(pg->allreduce_sum(counts));
        const double global_tokens = counts[0].item<double>();
        opt.zero_grad();
        for (auto& p : params)
            if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
        double loss_local = 0, pos_local = 0;
        for (auto& b : batches) {
            if (b.samples.empty()) continue;
            int64_t ntok = 0, npos = 0;
            torch::Tensor loss;
            {
                AutocastGuard ag(bf16);
                loss =
                    micro_batch_loss_sum(m, b.samples, b.pixels, &ntok, &npos, o.grad_checkpoint);
            }
            (loss / global_tokens).backward();
            loss_local += loss.item<double>();
            pos_local += static_cast<double>(npos);
        }
        if (bf16) at::autocast::clear_cache();
        // Sum the gradients (each rank's are already divided by the global token count).
        if (world > 1) {
            std::vector<torch::Tensor> gs;
            for (auto& p : params)
                gs.push_back(p.grad().reshape({-1}));
            auto flat = torch::cat(gs);
            MF_RETURN_IF_ERROR(pg->allreduce_sum(flat));
            int64_t off = 0;
            for (auto& p : params) {
                p.mutable_grad().copy_(flat.narrow(0, off, p.numel()).view_as(p));
                off += p.numel();
            }
        }
        auto sums = torch::tensor({loss_local, pos_local}, torch::kFloat64);
        MF_RETURN_IF_ERROR(pg->allreduce_sum(sums));
        double gnorm = 0;
        if (o.max_grad_norm > 0)
            gnorm = torch::nn::utils::clip_grad_norm_(params, o.max_grad_norm);
        else {
            double sq = 0;
            for (auto& p : params)
                sq += p.grad().pow(2).sum().item<double>();
            gnorm = std::sqrt(sq);
        }
        double lr = cosine_lr(o.lr, step, warmup, total);
        for (auto& g : opt.param_groups())
            static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
        opt.step();

        auto now = std::chrono::steady_clock::now();
        double dt = std::chrono::duration<double>(now - ts).count();
        StepMetrics sm;
        sm.step = step + 1;
        sm.epoch = step / spe;
        sm.loss = sums[0].item<double>() / std::max(1.0, global_tokens);
        sm.lr = lr;
        sm.grad_norm = gnorm;
        sm.tokens = static_cast<int64_t>(global_tokens);
        sm.positions = static_cast<int64_t>(sums[1].item<double>());
        sm.tokens_per_s = dt > 0 ? sm.positions / dt : 0;
        sm.elapsed_s = std::chrono::duration<double>(now - t0).count();
        res.steps.push_back(sm);
        if (lead) {
            io::OutFile mf;
            MF_RETURN_IF_ERROR(mf.open(o.out / "metrics.jsonl", true));
            mf.write_line(metrics_line(sm));
            MF_RETURN_IF_ERROR(mf.close());
            if (!o.quiet && (sm.step % o.log_every == 0 || sm.step == end)) {
                double per = sm.elapsed_s / static_cast<double>(res.steps.size());
                fmt::print(
                    stderr,
                    "step {}/{} | loss {:.4f} | lr {:.3e} | grad {:.3f} | {} tok/s | ETA {}\n",
                    sm.step, total, sm.loss, sm.lr, sm.grad_norm,
                    Progress::human_count(sm.tokens_per_s),
                    Progress::human_duration(per * static_cast<double>(end - sm.step)));
            }
        }
        bool saved = false;
        if (o.save_every > 0 && sm.step % o.save_every == 0 && sm.step < total) {
            MF_RETURN_IF_ERROR(save_checkpoint(sm.step));
            if (lead) MF_RETURN_IF_ERROR(write_plot());
            saved = true;
        }
        // Graceful stop: the step is done; every rank must stop at the same one.
        if (o.cancel && sm.step < end) {
            auto flag = torch::tensor({o.cancel->load() ? 1.0 : 0.0}, torch::kFloat64);
            MF_RETURN_IF_ERROR(pg->allreduce_sum(flag));
            if (flag.item<double>() > 0) {
                if (!saved) MF_RETURN_IF_ERROR(save_checkpoint(sm.step));
                if (lead) MF_RETURN_IF_ERROR(write_plot());
                res.interrupted = true;
                res.checkpoint = o.out / fmt::format("checkpoint-{}", sm.step);
                MF_RETURN_IF_ERROR(pg->barrier());
                return res;
            }
        }
    }
    // Stopped early (--max-steps): leave a resumable checkpoint. Finished: the final model.
    if (end < total) {
        if (end > start && !(o.save_every > 0 && end % o.save_every == 0))
            MF_RETURN_IF_ERROR(save_checkpoint(end));
    } else if (lead) {
        MF_RETURN_IF_ERROR(model::save_multimodal_lm(
            m, o.out, o.save_dtype == "bf16" ? torch::kBFloat16 : torch::kFloat32));
        MF_RETURN_IF_ERROR(copy_tokenizer_files(o.model, o.out));
    }
    if (lead) MF_RETURN_IF_ERROR(write_plot());
    MF_RETURN_IF_ERROR(pg->barrier());
    return res;
}

}  // namespace mf::train
