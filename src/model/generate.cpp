#include "model/generate.h"

#include <chrono>

#include "core/text.h"

namespace mf::model {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

size_t stream_safe_length(std::string_view text, const std::vector<std::string>& stop) {
    size_t n = text.size();
    // A byte-level token may end inside a multi-byte character; decoders show it as U+FFFD.
    static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
    while (n >= 3 && text.substr(n - 3, 3) == kReplacement)
        n -= 3;
    size_t hold = 0;
    for (const auto& s : stop)
        for (size_t k = std::min(s.size() - 1, n); k > hold; --k)
            if (text.substr(n - k, k) == std::string_view(s).substr(0, k)) {
                hold = k;
                break;
            }
    return n - hold;
}

torch::Tensor prompt_logits(MultimodalLM& m, const std::vector<int64_t>& ids,
                            const torch::Tensor& pixels) {
    torch::NoGradGuard ng;
    torch::Tensor img;
    if (pixels.defined() && pixels.numel() > 0) img = m->encode_images(pixels);
    auto emb = m->embed_prompt(ids, img);
    auto h = m->lm->forward_hidden(emb, nullptr);
    return m->lm->logits(h).squeeze(0);
}

GenerationResult generate(MultimodalLM& m, const GenerateRequest& req, const DecodeFn& decode,
                          const DeltaFn& on_delta) {
    torch::NoGradGuard ng;
    GenerationResult r;
    const auto& sp = req.sampling;
    auto t0 = std::chrono::steady_clock::now();
    torch::Tensor img;
    if (req.pixels.defined() && req.pixels.numel() > 0) img = m->encode_images(req.pixels);
    auto emb = m->embed_prompt(req.prompt_ids, img);  // [1, T, H]
    r.prompt_tokens = emb.size(1);
    int64_t cap = r.prompt_tokens + std::max(0, sp.max_tokens) + 1;
    KVCache cache = KVCache::create(m->lm->config(), 1, cap, m->dtype());
    auto h = m->lm->forward_hidden(emb, &cache);
    auto logits = m->lm->logits(h.select(1, h.size(1) - 1)).squeeze(0).contiguous();  // [V]
    r.prefill_seconds = seconds_since(t0);
    auto t1 = std::chrono::steady_clock::now();

    Sampler sampler(sp);
    std::vector<int64_t> history;
    for (auto id : req.prompt_ids)
        if (id >= 0) history.push_back(id);
    size_t emitted = 0;
    r.finish_reason = "length";
    for (int step = 0; step < sp.max_tokens; ++step) {
        std::span<float> lv(logits.data_ptr<float>(), static_cast<size_t>(logits.numel()));
        int32_t next = sampler.sample(lv, history);
        bool is_eos = std::find(req.eos_ids.begin(), req.eos_ids.end(), next) != req.eos_ids.end();
        if (is_eos && !sp.ignore_eos) {
            r.finish_reason = "stop";
            break;
        }
        r.tokens.push_back(next);
        history.push_back(next);
        // Byte-level tokens can end inside a character or form invalid UTF-8: show U+FFFD like
        // HF's decode(errors="replace"); a trailing partial character is held back below.
        std::string text = text::sanitize_utf8(decode(r.tokens));
        // stop strings: cut at the earliest occurrence
        size_t cut = std::string::npos;
        for (const auto& s : sp.stop) {
            if (s.empty()) continue;
            size_t at = text.find(s);
            if (at != std::string::npos) cut = std::min(cut, at);
        }
        if (cut != std::string::npos) {
            text.resize(cut);
            if (on_delta && cut > emitted) on_delta(std::string_view(text).substr(emitted));
            emitted = text.size();
            r.text = text;
            r.finish_reason = "stop";
            break;
        }
        size_t safe = stream_safe_length(text, sp.stop);
        if (on_delta && safe > emitted) {
            if (!on_delta(std::string_view(text).substr(emitted, safe - emitted))) {
                r.text = text;
                r.finish_reason = "cancelled";
                emitted = safe;
                break;
            }
            emitted = safe;
        }
        r.text = std::move(text);
        if (step + 1 == sp.max_tokens) break;
        auto x = m->lm->embed(torch::tensor({{static_cast<int64_t>(next)}}, torch::kInt64));
        auto hh = m->lm->forward_hidden(x, &cache);
        logits = m->lm->logits(hh.select(1, 0)).squeeze(0).contiguous();
    }
    if (r.finish_reason != "cancelled" && on_delta && r.text.size() > emitted)
        on_delta(std::string_view(r.text).substr(emitted));
    r.decode_seconds = seconds_since(t1);
    return r;
}

}  // namespace mf::model
