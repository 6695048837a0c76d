#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

namespace mf::model {

int32_t Sampler::sample(std::span<float> logits, std::span<const int64_t> history) {
    const int64_t V = static_cast<int64_t>(logits.size());
    if (p_.repetition_penalty != 1.0) {
        std::unordered_set<int64_t> seen(history.begin(), history.end());
        for (int64_t id : seen) {
            if (id < 0 || id >= V) continue;
            float& l = logits[id];
            l = l > 0 ? static_cast<float>(l / p_.repetition_penalty)
                      : static_cast<float>(l * p_.repetition_penalty);
        }
    }
    if (p_.temperature <= 0.0) {
        return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) -
                                    logits.begin());
    }
    cand_.clear();
    cand_.reserve(V);
    for (int64_t i = 0; i < V; ++i)
        cand_.emplace_back(static_cast<float>(logits[i] / p_.temperature), static_cast<int32_t>(i));
    auto by_logit = [](const auto& a, const auto& b) {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
    };
    size_t keep = cand_.size();
    if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < keep) {
        keep = p_.top_k;
        std::partial_sort(cand_.begin(), cand_.begin() + keep, cand_.end(), by_logit);
        cand_.resize(keep);
    } else {
        std::sort(cand_.begin(), cand_.end(), by_logit);
    }
    // softmax over the survivors
    float mx = cand_.front().first;
    double sum = 0;
    std::vector<double> prob(cand_.size());
    for (size_t i = 0; i < cand_.size(); ++i)
        sum += (prob[i] = std::exp(double(cand_[i].first - mx)));
    for (auto& x : prob)
        x /= sum;
    if (p_.top_p < 1.0) {
        double acc = 0;
        size_t n = 0;
        while (n < prob.size()) {
            acc += prob[n++];
            if (acc >= p_.top_p) break;
        }
        prob.resize(n);
        double s2 = 0;
        for (auto x : prob)
            s2 += x;
        for (auto& x : prob)
            x /= s2;
    }
    std::uniform_real_distribution<double> u(0.0, 1.0);
    double r = u(rng_), acc = 0;
    for (size_t i = 0; i < prob.size(); ++i) {
        acc += prob[i];
        if (r < acc) return cand_[i].second;
    }
    return cand_[prob.size() - 1].second;
}

}  // namespace mf::model
