#include "cli/clip_probe.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "io/file.h"

namespace mf::cli {

namespace fs = std::filesystem;

Result<std::shared_ptr<ClipFeatures>> ClipFeatures::open(const fs::path& dir) {
    model::init_torch_threads();
    auto f = std::make_shared<ClipFeatures>();
    f->dir_ = io::absolute_normal(dir);
    MF_ASSIGN_OR_RETURN(f->model_,
                        model::load_multimodal_lm(dir, model::LoadOptions{torch::kFloat32}));
    if (!f->model_->vision)
        return Status::invalid_argument(fmt::format(
            "{}: has no CLIP vision tower (use a CLIP or LLaVA checkpoint)", dir.string()));
    if (fs::exists(dir / "preprocessor_config.json")) {
        MF_ASSIGN_OR_RETURN(f->improc_, model::load_image_processor_config(dir));
    } else {
        f->improc_ = model::ImageProcessorConfig::llava15();
    }
    return f;
}

Result<std::vector<std::vector<float>>> ClipFeatures::embed(
    const std::vector<io::Image>& images) const {
    torch::NoGradGuard ng;
    const int64_t S = model_->config().vision.image_size;
    std::vector<std::vector<float>> out;
    const size_t kBatch = 8;
    for (size_t b = 0; b < images.size(); b += kBatch) {
        size_t n = std::min(kBatch, images.size() - b);
        auto px = torch::empty({static_cast<int64_t>(n), 3, S, S}, torch::kFloat32);
        for (size_t i = 0; i < n; ++i) {
            MF_ASSIGN_OR_RETURN(std::vector<float> v, model::preprocess(images[b + i], improc_));
            if (static_cast<int64_t>(v.size()) != 3 * S * S)
                return Status::invalid_argument(
                    "the image processor's output size does not match the tower");
            std::memcpy(px[static_cast<int64_t>(i)].data_ptr<float>(), v.data(), v.size() * 4);
        }
        auto pooled = model_->vision->pooled(px).to(torch::kFloat32).contiguous();  // [n, H]
        for (size_t i = 0; i < n; ++i) {
            const float* p = pooled[static_cast<int64_t>(i)].data_ptr<float>();
            out.emplace_back(p, p + pooled.size(1));
        }
    }
    return out;
}

float ClipProbeClassifier::probability_from_features(const std::vector<float>& f) const {
    double z = bias_;
    for (size_t i = 0; i < w_.size() && i < f.size(); ++i)
        z += w_[i] * (f[i] - mean_[i]) / std_[i];
    return static_cast<float>(1.0 / (1.0 + std::exp(-z)));
}

Result<float> ClipProbeClassifier::medical_probability(const io::Image& image) const {
    MF_ASSIGN_OR_RETURN(auto f, feats_->embed({image}));
    return probability_from_features(f[0]);
}

Result<ClipProbeClassifier> ClipProbeClassifier::train(std::shared_ptr<ClipFeatures> feats,
                                                       const curate::Dataset& data,
                                                       const ProbeOptions& opt) {
    const size_t n = data.x.size();
    if (n < 2) return Status::invalid_argument("classifier train: need at least 2 images");
    size_t pos = std::count(data.y.begin(), data.y.end(), 1);
    if (pos == 0 || pos == n)
        return Status::invalid_argument("classifier train: need images of both classes");
    const size_t d = data.x[0].size();
    ClipProbeClassifier c;
    c.feats_ = std::move(feats);
    c.mean_.assign(d, 0);
    c.std_.assign(d, 0);
    for (const auto& r : data.x)
        for (size_t j = 0; j < d; ++j)
            c.mean_[j] += r[j] / double(n);
    for (const auto& r : data.x)
        for (size_t j = 0; j < d; ++j)
            c.std_[j] += (r[j] - c.mean_[j]) * (r[j] - c.mean_[j]) / double(n);
    for (auto& s : c.std_)
        s = std::sqrt(s) + 1e-6;
    // Full-batch gradient descent on the class-weighted, L2-regularised log loss (float64).
    auto X = torch::empty({static_cast<int64_t>(n), static_cast<int64_t>(d)}, torch::kFloat64);
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < d; ++j)
            X[i][j] = (data.x[i][j] - c.mean_[j]) / c.std_[j];
    auto y = torch::empty({static_cast<int64_t>(n)}, torch::kFloat64);
    auto sw = torch::empty({static_cast<int64_t>(n)}, torch::kFloat64);
    for (size_t i = 0; i < n; ++i) {
        y[i] = double(data.y[i]);
        double cls = data.y[i] ? double(pos) : double(n - pos);
        sw[i] = opt.class_weights ? double(n) / (2.0 * cls) : 1.0;
    }
    auto w = torch::zeros({static_cast<int64_t>(d)}, torch::kFloat64);
    double b = 0;
    for (int e = 0; e < opt.epochs; ++e) {
        auto p = torch::sigmoid(torch::mv(X, w) + b);
        auto g = (p - y) * sw / double(n);
        w = w - opt.learning_rate * (torch::mv(X.t(), g) + opt.l2 * w);
        b -= opt.learning_rate * g.sum().item<double>();
    }
    c.w_.resize(d);
    for (size_t j = 0; j < d; ++j)
        c.w_[j] = w[j].item<double>();
    c.bias_ = b;
    return c;
}

curate::Metrics cross_validate_probe(const curate::Dataset& data, int folds, uint64_t seed,
                                     const ProbeOptions& opt) {
    std::vector<int> fold(data.x.size());
    std::mt19937_64 rng(seed);
    for (int label : {0, 1}) {
        std::vector<size_t> idx;
        for (size_t i = 0; i < data.y.size(); ++i)
            if (data.y[i] == label) idx.push_back(i);
        std::shuffle(idx.begin(), idx.end(), rng);
        for (size_t k = 0; k < idx.size(); ++k)
            fold[idx[k]] = static_cast<int>(k % folds);
    }
    curate::Metrics m;
    for (int f = 0; f < folds; ++f) {
        curate::Dataset tr, te;
        for (size_t i = 0; i < data.x.size(); ++i) {
            auto& d = fold[i] == f ? te : tr;
            d.x.push_back(data.x[i]);
            d.y.push_back(data.y[i]);
        }
        auto c = ClipProbeClassifier::train(nullptr, tr, opt);
        if (!c.ok()) continue;
        for (size_t i = 0; i < te.x.size(); ++i)
            m.add(te.y[i], c->probability_from_features(te.x[i]) >= 0.5f);
    }
    return m;
}

std::string ClipProbeClassifier::to_json() const {
    nlohmann::ordered_json j;
    j["format"] = "medforge-clip-probe";
    j["version"] = 1;
    j["vision"] = feats_ ? feats_->dir().string() : "";
    j["feature"] = "pooled";
    j["mean"] = mean_;
    j["std"] = std_;
    j["weights"] = w_;
    j["bias"] = bias_;
    j["threshold"] = 0.5;
    j["training"] = nlohmann::json::parse(training_info_json, nullptr, false);
    return j.dump(1) + "\n";
}

Status ClipProbeClassifier::save(const fs::path& path) const {
    return io::write_file_atomic(path, to_json());
}

Result<ClipProbeClassifier> ClipProbeClassifier::load(const fs::path& path) {
    MF_ASSIGN_OR_RETURN(std::string text, io::read_file(path));
    auto j = nlohmann::json::parse(text, nullptr, false);
    auto bad = [&](const char* what) {
        return Status::invalid_argument(fmt::format("{}: {}", path.string(), what));
    };
    if (j.is_discarded() || !j.is_object() || j.value("format", "") != "medforge-clip-probe")
        return bad("not a medforge-clip-probe file");
    ClipProbeClassifier c;
    try {
        c.mean_ = j.at("mean").get<std::vector<double>>();
        c.std_ = j.at("std").get<std::vector<double>>();
        c.w_ = j.at("weights").get<std::vector<double>>();
        c.bias_ = j.at("bias").get<double>();
        std::string vision = j.at("vision").get<std::string>();
        if (c.mean_.size() != c.w_.size() || c.std_.size() != c.w_.size())
            return bad("mean, std and weights differ in length");
        fs::path vdir = vision;
        if (vdir.is_relative()) vdir = path.parent_path() / vdir;
        auto f = ClipFeatures::open(vdir);
        if (!f.ok())
            return f.status().with_context(fmt::format("{}: vision checkpoint", path.string()));
        c.feats_ = *f;
    } catch (const std::exception& e) {
        return bad(e.what());
    }
    return c;
}

void register_clip_probe_format() {
    curate::register_classifier_format(
        "medforge-clip-probe",
        [](const fs::path& p) -> Result<std::unique_ptr<curate::ImageClassifier>> {
            MF_ASSIGN_OR_RETURN(ClipProbeClassifier c, ClipProbeClassifier::load(p));
            return std::unique_ptr<curate::ImageClassifier>(new ClipProbeClassifier(std::move(c)));
        });
}

}  // namespace mf::cli
