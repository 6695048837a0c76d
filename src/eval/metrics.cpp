// Prompt construction, open-question metrics, bootstrap CIs and shard membership.
#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "core/hash.h"
#include "core/text.h"
#include "eval/eval.h"

namespace mf::eval {

using namespace ::mf::text;  // NOLINT

std::string build_prompt(const EvalItem& item) {
    std::string p = item.question;
    if (!item.closed || item.options.empty()) return p;
    for (size_t i = 0; i < item.options.size() && i < 14; ++i) {
        p += "\n";
        p += kLetters[i];
        p += ". ";
        p += item.options[i];
    }
    p += "\n";
    p += kInstruction;
    return p;
}

std::string normalize_answer(std::string_view s) {
    std::string t;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c >= 0x80)
            t.push_back(static_cast<char>(std::tolower(c)));
        else
            t.push_back(' ');
    }
    std::string out;
    for (auto w : split(t, ' ')) {
        if (w.empty() || w == "a" || w == "an" || w == "the") continue;
        if (!out.empty()) out.push_back(' ');
        out.append(w);
    }
    return out;
}

std::vector<std::string> answer_tokens(std::string_view s) {
    std::vector<std::string> out;
    std::string n = normalize_answer(s);
    for (auto w : split(n, ' '))
        if (!w.empty()) out.emplace_back(w);
    return out;
}

OpenScores score_open(std::string_view prediction, std::string_view reference) {
    OpenScores sc;
    auto p = answer_tokens(prediction);
    auto r = answer_tokens(reference);
    sc.exact = normalize_answer(prediction) == normalize_answer(reference) ? 1.0 : 0.0;
    std::map<std::string, int> pc, rc;
    for (auto& w : p)
        pc[w]++;
    for (auto& w : r)
        rc[w]++;
    int overlap = 0;
    for (auto& [w, n] : rc) {
        auto it = pc.find(w);
        if (it != pc.end()) overlap += std::min(n, it->second);
    }
    if (!r.empty()) sc.recall = static_cast<double>(overlap) / static_cast<double>(r.size());
    if (!p.empty() && !r.empty() && overlap > 0) {
        double prec = static_cast<double>(overlap) / static_cast<double>(p.size());
        sc.f1 = 2 * prec * sc.recall / (prec + sc.recall);
    }
    if (!p.empty()) {
        double prec = static_cast<double>(overlap) / static_cast<double>(p.size());
        double c = static_cast<double>(p.size());
        double rl = static_cast<double>(r.size());
        double bp = c > rl ? 1.0 : std::exp(1.0 - rl / c);
        sc.bleu1 = prec * bp;
    }
    return sc;
}

namespace {
Interval percentile(std::vector<double> stats) {
    Interval iv;
    if (stats.empty()) return iv;
    std::sort(stats.begin(), stats.end());
    auto at = [&](double q) {
        double pos = q * static_cast<double>(stats.size() - 1);
        size_t lo = static_cast<size_t>(std::floor(pos));
        size_t hi = std::min(lo + 1, stats.size() - 1);
        double f = pos - static_cast<double>(lo);
        return stats[lo] * (1 - f) + stats[hi] * f;
    };
    iv.lo = at(0.025);
    iv.hi = at(0.975);
    return iv;
}
}  // namespace

Interval bootstrap_mean_ci(const std::vector<double>& values, int resamples, uint64_t seed) {
    Interval iv;
    if (values.empty()) return iv;
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<size_t> pick(0, values.size() - 1);
    std::vector<double> stats;
    stats.reserve(static_cast<size_t>(resamples));
    for (int b = 0; b < resamples; ++b) {
        double sum = 0;
        for (size_t i = 0; i < values.size(); ++i)
            sum += values[pick(rng)];
        stats.push_back(sum / static_cast<double>(values.size()));
    }
    return percentile(std::move(stats));
}

Interval bootstrap_macro_ci(const std::vector<double>& values, const std::vector<int>& group,
                            int resamples, uint64_t seed) {
    Interval iv;
    if (values.empty() || group.size() != values.size()) return iv;
    int ng = *std::max_element(group.begin(), group.end()) + 1;
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<size_t> pick(0, values.size() - 1);
    std::vector<double> stats;
    std::vector<double> sum(static_cast<size_t>(ng));
    std::vector<int64_t> cnt(static_cast<size_t>(ng));
    for (int b = 0; b < resamples; ++b) {
        std::fill(sum.begin(), sum.end(), 0.0);
        std::fill(cnt.begin(), cnt.end(), 0);
        for (size_t i = 0; i < values.size(); ++i) {
            size_t k = pick(rng);
            sum[static_cast<size_t>(group[k])] += values[k];
            cnt[static_cast<size_t>(group[k])]++;
        }
        double m = 0;
        int n = 0;
        for (int g = 0; g < ng; ++g) {
            if (cnt[static_cast<size_t>(g)] == 0) continue;  // group absent in this resample
            m += sum[static_cast<size_t>(g)] / static_cast<double>(cnt[static_cast<size_t>(g)]);
            ++n;
        }
        stats.push_back(n ? m / n : 0.0);
    }
    return percentile(std::move(stats));
}

bool Shard::owns(std::string_view id) const {
    return count <= 1 || xxh64(id) % count == index;
}

Result<Shard> parse_shard_spec(std::string_view text) {
    auto slash = text.find('/');
    Shard s;
    try {
        if (slash == std::string_view::npos) throw 1;
        s.index = static_cast<uint32_t>(std::stoul(std::string(text.substr(0, slash))));
        s.count = static_cast<uint32_t>(std::stoul(std::string(text.substr(slash + 1))));
    } catch (...) {
        return Status::invalid_argument("--shard '" + std::string(text) + "': expected i/N");
    }
    if (s.count == 0 || s.index >= s.count) {
        return Status::invalid_argument("--shard '" + std::string(text) + "': need 0 <= i < N");
    }
    return s;
}

}  // namespace mf::eval
