#include "curate/stats_classifier.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <random>

#include "core/log.h"
#include "core/thread_pool.h"
#include "io/file.h"

namespace mf::curate {

namespace fs = std::filesystem;

const std::vector<std::string>& image_feature_names() {
    static const std::vector<std::string> names = {
        "mean_saturation",
        "colourful_fraction",
        "grey_fraction",
        "grey_entropy",
        "white_fraction",
        "black_fraction",
        "mode_colour_fraction",
        "distinct_colours",
        "edge_density",
        "mean_gradient",
        "axis_edge_fraction",
        "flat_fraction",
        "colourfulness",
        "log_aspect",
        "luma_std",
        "luma_mean",
        "long_run_fraction",
        "noise_level",
        "border_luma",
        "hue_entropy",
    };
    return names;
}

namespace {

struct Small {
    int w = 0, h = 0;
    std::vector<float> rgb;  // w*h*3, 0..255
};

// Box-filter downsample so the longest side is at most kFeatureSide.
Small downsample(const io::Image& im) {
    Small s;
    int longest = std::max(im.width, im.height);
    double scale = longest > kFeatureSide ? double(longest) / kFeatureSide : 1.0;
    s.w = std::max(1, int(std::lround(im.width / scale)));
    s.h = std::max(1, int(std::lround(im.height / scale)));
    s.rgb.assign(size_t(s.w) * s.h * 3, 0.f);
    for (int y = 0; y < s.h; ++y) {
        int y0 = int(int64_t(y) * im.height / s.h), y1 = int(int64_t(y + 1) * im.height / s.h);
        y1 = std::max(y1, y0 + 1);
        for (int x = 0; x < s.w; ++x) {
            int x0 = int(int64_t(x) * im.width / s.w), x1 = int(int64_t(x + 1) * im.width / s.w);
            x1 = std::max(x1, x0 + 1);
            double acc[3] = {0, 0, 0};
            for (int yy = y0; yy < y1; ++yy) {
                const uint8_t* row = im.pixels.data() + (size_t(yy) * im.width + x0) * 3;
                for (int xx = x0; xx < x1; ++xx, row += 3) {
                    acc[0] += row[0];
                    acc[1] += row[1];
                    acc[2] += row[2];
                }
            }
            double n = double(y1 - y0) * (x1 - x0);
            float* o = s.rgb.data() + (size_t(y) * s.w + x) * 3;
            for (int c = 0; c < 3; ++c)
                o[c] = float(acc[c] / n);
        }
    }
    return s;
}

double entropy(const double* hist, size_t n, double total) {
    if (total <= 0) return 0;
    double e = 0;
    for (size_t i = 0; i < n; ++i)
        if (hist[i] > 0) {
            double p = hist[i] / total;
            e -= p * std::log2(p);
        }
    return e;
}

}  // namespace

std::vector<float> image_features(const io::Image& image) {
    std::vector<float> f(image_feature_names().size(), 0.f);
    if (image.width <= 0 || image.height <= 0 ||
        image.pixels.size() != size_t(image.width) * image.height * 3)
        return f;
    Small s = downsample(image);
    const int w = s.w, h = s.h;
    const size_t n = size_t(w) * h;
    std::vector<float> luma(n);
    double sat_sum = 0, colourful = 0, grey = 0, white = 0, black = 0;
    double rg_sum = 0, yb_sum = 0, rg_sq = 0, yb_sq = 0, l_sum = 0, l_sq = 0;
    std::array<double, 32> lhist{};
    std::array<double, 12> huehist{};
    double hue_total = 0;
    std::vector<uint32_t> qhist(4096, 0);
    for (size_t i = 0; i < n; ++i) {
        const float* p = s.rgb.data() + 3 * i;
        float r = p[0], g = p[1], b = p[2];
        float mx = std::max({r, g, b}), mn = std::min({r, g, b});
        float sat = mx > 0 ? (mx - mn) / mx : 0.f;
        sat_sum += sat;
        if (sat > 0.25f && mx > 40) {
            colourful += 1;
            // Hue (degrees / 30 -> 12 bins).
            float d = mx - mn, hue;
            if (mx == r)
                hue = std::fmod((g - b) / d + 6.f, 6.f);
            else if (mx == g)
                hue = (b - r) / d + 2.f;
            else
                hue = (r - g) / d + 4.f;
            huehist[std::min(11, int(hue * 2))] += 1;
            hue_total += 1;
        }
        if (mx - mn < 12) grey += 1;
        if (mn > 235) white += 1;
        float l = 0.299f * r + 0.587f * g + 0.114f * b;
        luma[i] = l;
        if (l < 20) black += 1;
        lhist[std::min(31, int(l / 8))] += 1;
        l_sum += l;
        l_sq += double(l) * l;
        double rg = r - g, yb = 0.5 * (r + g) - b;
        rg_sum += rg, yb_sum += yb, rg_sq += rg * rg, yb_sq += yb * yb;
        int q = (std::min(15, int(r) >> 4) << 8) | (std::min(15, int(g) >> 4) << 4) |
                std::min(15, int(b) >> 4);
        ++qhist[q];
    }
    const double dn = double(n);
    f[0] = float(sat_sum / dn);
    f[1] = float(colourful / dn);
    f[2] = float(grey / dn);
    f[3] = float(entropy(lhist.data(), lhist.size(), dn) / 5.0);
    f[4] = float(white / dn);
    f[5] = float(black / dn);
    uint32_t mode = *std::max_element(qhist.begin(), qhist.end());
    size_t distinct = std::count_if(qhist.begin(), qhist.end(), [](uint32_t c) { return c > 0; });
    f[6] = float(mode / dn);
    f[7] = float(std::log2(1.0 + double(distinct)) / 12.0);

    // Gradients (Sobel on luma), interior pixels.
    double strong = 0, grad_sum = 0, axis = 0, flat = 0, interior = 0, noise = 0, smooth = 0;
    auto L = [&](int x, int y) { return luma[size_t(y) * w + x]; };
    for (int y = 1; y + 1 < h; ++y)
        for (int x = 1; x + 1 < w; ++x) {
            float gx = (L(x + 1, y - 1) + 2 * L(x + 1, y) + L(x + 1, y + 1)) -
                       (L(x - 1, y - 1) + 2 * L(x - 1, y) + L(x - 1, y + 1));
            float gy = (L(x - 1, y + 1) + 2 * L(x, y + 1) + L(x + 1, y + 1)) -
                       (L(x - 1, y - 1) + 2 * L(x, y - 1) + L(x + 1, y - 1));
            gx /= 4, gy /= 4;
            float mag = std::sqrt(gx * gx + gy * gy);
            interior += 1;
            grad_sum += mag;
            if (mag > 40) {
                strong += 1;
                float ax = std::abs(gx), ay = std::abs(gy);
                if (std::min(ax, ay) < 0.15f * std::max(ax, ay)) axis += 1;
            }
            if (mag < 2) flat += 1;
            if (mag < 20) {
                float lap = 4 * L(x, y) - L(x - 1, y) - L(x + 1, y) - L(x, y - 1) - L(x, y + 1);
                noise += std::abs(lap);
                smooth += 1;
            }
        }
    if (interior > 0) {
        f[8] = float(strong / interior);
        f[9] = float(grad_sum / interior / 255.0);
        f[10] = strong > 0 ? float(axis / strong) : 0.f;
        f[11] = float(flat / interior);
    }
    f[17] = smooth > 0 ? float(noise / smooth / 32.0) : 0.f;

    double mrg = rg_sum / dn, myb = yb_sum / dn;
    double srg = std::sqrt(std::max(0.0, rg_sq / dn - mrg * mrg));
    double syb = std::sqrt(std::max(0.0, yb_sq / dn - myb * myb));
    f[12] =
        float((std::sqrt(srg * srg + syb * syb) + 0.3 * std::sqrt(mrg * mrg + myb * myb)) / 100.0);
    f[13] = float(std::abs(std::log(double(image.width) / image.height)));
    double lm = l_sum / dn;
    f[14] = float(std::sqrt(std::max(0.0, l_sq / dn - lm * lm)) / 128.0);
    f[15] = float(lm / 255.0);

    // Long runs of (nearly) constant luma covering half a row / column: flat backgrounds,
    // axis and grid lines.
    int long_rows = 0;
    for (int y = 0; y < h; ++y) {
        int run = 1, best = 1;
        for (int x = 1; x < w; ++x) {
            run = std::abs(L(x, y) - L(x - 1, y)) < 3 ? run + 1 : 1;
            best = std::max(best, run);
        }
        if (best * 2 >= w) ++long_rows;
    }
    int long_cols = 0;
    for (int x = 0; x < w; ++x) {
        int run = 1, best = 1;
        for (int y = 1; y < h; ++y) {
            run = std::abs(L(x, y) - L(x, y - 1)) < 3 ? run + 1 : 1;
            best = std::max(best, run);
        }
        if (best * 2 >= h) ++long_cols;
    }
    f[16] = float(double(long_rows + long_cols) / (w + h));

    // Mean luma of the outer border (5% each side, at least one pixel).
    int bw = std::max(1, w / 20), bh = std::max(1, h / 20);
    double border = 0, nb = 0;
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            if (x < bw || x >= w - bw || y < bh || y >= h - bh) border += L(x, y), nb += 1;
    f[18] = float(border / std::max(1.0, nb) / 255.0);
    f[19] = float(entropy(huehist.data(), huehist.size(), hue_total) / std::log2(12.0));
    return f;
}

// ---- metrics -------------------------------------------------------------------------------

void Metrics::add(int label, bool pred) {
    if (label == 1)
        (pred ? tp : fn) += 1;
    else
        (pred ? fp : tn) += 1;
}
double Metrics::accuracy() const {
    int n = tp + fn + fp + tn;
    return n ? double(tp + tn) / n : 0;
}
double Metrics::medical_recall() const {
    return tp + fn ? double(tp) / (tp + fn) : 0;
}
double Metrics::nonmedical_recall() const {
    return tn + fp ? double(tn) / (tn + fp) : 0;
}
double Metrics::balanced_accuracy() const {
    return 0.5 * (medical_recall() + nonmedical_recall());
}
std::string Metrics::to_string() const {
    return fmt::format(
        "accuracy {:.4f}  balanced accuracy {:.4f}  recall medical {:.4f}  recall non-medical "
        "{:.4f}\n"
        "confusion (rows = truth, cols = predicted):\n"
        "                 medical  non-medical\n"
        "  medical     {:>10} {:>12}\n"
        "  non-medical {:>10} {:>12}",
        accuracy(), balanced_accuracy(), medical_recall(), nonmedical_recall(), tp, fn, fp, tn);
}

// ---- logistic regression ---------------------------------------------------------------------

namespace {

double sigmoid(double z) {
    if (z >= 0) return 1.0 / (1.0 + std::exp(-z));
    double e = std::exp(z);
    return e / (1.0 + e);
}

}  // namespace

float StatsClassifier::probability_from_features(const std::vector<float>& x) const {
    double z = bias_;
    for (size_t j = 0; j < w_.size() && j < x.size(); ++j)
        z += w_[j] * ((x[j] - mean_[j]) / std_[j]);
    return float(sigmoid(z));
}

Result<float> StatsClassifier::medical_probability(const io::Image& image) const {
    if (w_.empty()) return Status::failed_precondition("classifier has no weights: load a model");
    if (image.width <= 0 || image.height <= 0 ||
        image.pixels.size() != size_t(image.width) * image.height * 3)
        return Status::invalid_argument(
            fmt::format("image buffer is not {}x{} RGB", image.width, image.height));
    return probability_from_features(image_features(image));
}

Result<StatsClassifier> StatsClassifier::train(const Dataset& data, const TrainOptions& opt) {
    const size_t n = data.x.size();
    const size_t d = image_feature_names().size();
    if (n == 0 || data.y.size() != n) return Status::invalid_argument("empty training set");
    size_t n_pos = std::count(data.y.begin(), data.y.end(), 1), n_neg = n - n_pos;
    if (n_pos == 0 || n_neg == 0)
        return Status::invalid_argument(fmt::format(
            "training needs both classes: {} medical, {} non-medical images", n_pos, n_neg));
    for (const auto& row : data.x)
        if (row.size() != d)
            return Status::invalid_argument(
                fmt::format("feature row of size {}, want {}", row.size(), d));
    StatsClassifier m;
    m.mean_.assign(d, 0);
    m.std_.assign(d, 0);
    for (const auto& row : data.x)
        for (size_t j = 0; j < d; ++j)
            m.mean_[j] += row[j];
    for (auto& v : m.mean_)
        v /= double(n);
    for (const auto& row : data.x)
        for (size_t j = 0; j < d; ++j)
            m.std_[j] += (row[j] - m.mean_[j]) * (row[j] - m.mean_[j]);
    for (auto& v : m.std_)
        v = std::max(std::sqrt(v / double(n)), 1e-6);

    std::vector<std::vector<double>> z(n, std::vector<double>(d));
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < d; ++j)
            z[i][j] = (data.x[i][j] - m.mean_[j]) / m.std_[j];
    double w_pos = opt.class_weights ? double(n) / (2.0 * n_pos) : 1.0;
    double w_neg = opt.class_weights ? double(n) / (2.0 * n_neg) : 1.0;
    double wsum = n_pos * w_pos + n_neg * w_neg;

    m.w_.assign(d, 0);
    m.bias_ = 0;
    std::vector<double> grad(d);
    for (int epoch = 0; epoch < opt.epochs; ++epoch) {
        std::fill(grad.begin(), grad.end(), 0.0);
        double gb = 0;
        for (size_t i = 0; i < n; ++i) {
            double s = m.bias_;
            for (size_t j = 0; j < d; ++j)
                s += m.w_[j] * z[i][j];
            double sw = data.y[i] == 1 ? w_pos : w_neg;
            double err = sw * (sigmoid(s) - data.y[i]);
            for (size_t j = 0; j < d; ++j)
                grad[j] += err * z[i][j];
            gb += err;
        }
        for (size_t j = 0; j < d; ++j)
            m.w_[j] -= opt.learning_rate * (grad[j] / wsum + opt.l2 * m.w_[j]);
        m.bias_ -= opt.learning_rate * gb / wsum;
    }
    return m;
}

Metrics cross_validate(const Dataset& data, int folds, uint64_t seed, const TrainOptions& opt) {
    Metrics metrics;
    const size_t n = data.x.size();
    folds = std::max(2, folds);
    std::vector<int> fold(n, 0);
    std::mt19937_64 rng(seed);
    for (int label : {0, 1}) {
        std::vector<size_t> idx;
        for (size_t i = 0; i < n; ++i)
            if (data.y[i] == label) idx.push_back(i);
        std::shuffle(idx.begin(), idx.end(), rng);
        for (size_t k = 0; k < idx.size(); ++k)
            fold[idx[k]] = int(k % folds);
    }
    for (int f = 0; f < folds; ++f) {
        Dataset train, test;
        for (size_t i = 0; i < n; ++i) {
            Dataset& dst = fold[i] == f ? test : train;
            dst.x.push_back(data.x[i]);
            dst.y.push_back(data.y[i]);
        }
        if (test.x.empty()) continue;
        auto model = StatsClassifier::train(train, opt);
        if (!model.ok()) continue;
        for (size_t i = 0; i < test.x.size(); ++i)
            metrics.add(test.y[i], model->probability_from_features(test.x[i]) >= 0.5f);
    }
    return metrics;
}

// ---- JSON ----------------------------------------------------------------------------------

std::string StatsClassifier::to_json() const {
    nlohmann::ordered_json j;
    j["format"] = "medforge-image-classifier";
    j["version"] = kVersion;
    j["model"] = "logistic_regression";
    j["feature_side"] = kFeatureSide;
    j["features"] = image_feature_names();
    j["mean"] = mean_;
    j["std"] = std_;
    j["weights"] = w_;
    j["bias"] = bias_;
    j["threshold"] = 0.5;
    j["training"] = nlohmann::ordered_json::parse(training_info_json, nullptr, false);
    if (j["training"].is_discarded()) j["training"] = nlohmann::ordered_json::object();
    return j.dump(2) + "\n";
}

Result<StatsClassifier> StatsClassifier::from_json(std::string_view text) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return Status::corruption("classifier model is not a JSON object");
    try {
        if (j.value("format", "") != "medforge-image-classifier")
            return Status::corruption("field 'format': expected \"medforge-image-classifier\"");
        int version = j.at("version").get<int>();
        if (version != kVersion)
            return Status::unsupported(fmt::format(
                "classifier model version {} (this build reads version {}): retrain it with "
                "`medforge classifier train`",
                version, kVersion));
        auto feats = j.at("features").get<std::vector<std::string>>();
        if (feats != image_feature_names())
            return Status::corruption(
                "field 'features': the feature list differs from this build's; retrain the model");
        StatsClassifier m;
        m.mean_ = j.at("mean").get<std::vector<double>>();
        m.std_ = j.at("std").get<std::vector<double>>();
        m.w_ = j.at("weights").get<std::vector<double>>();
        m.bias_ = j.at("bias").get<double>();
        size_t d = feats.size();
        if (m.mean_.size() != d || m.std_.size() != d || m.w_.size() != d)
            return Status::corruption(
                fmt::format("fields 'mean'/'std'/'weights' must each have {} numbers", d));
        for (double s : m.std_)
            if (!(s > 0)) return Status::corruption("field 'std': values must be > 0");
        if (j.contains("training")) m.training_info_json = j["training"].dump();
        return m;
    } catch (const nlohmann::json::exception& e) {
        return Status::corruption(fmt::format("classifier model: {}", e.what()));
    }
}

Status StatsClassifier::save(const fs::path& path) const {
    return io::write_file_atomic(path, to_json());
}

Result<StatsClassifier> StatsClassifier::load(const fs::path& path) {
    MF_ASSIGN_OR_RETURN(std::string text, io::read_file(path));
    auto m = from_json(text);
    if (!m.ok()) return m.status().with_context(path.string());
    return m;
}

// ---- data loading --------------------------------------------------------------------------

Status add_image_dirs(const std::vector<fs::path>& dirs, int label, Dataset& data,
                      size_t n_threads) {
    std::vector<fs::path> files;
    for (const auto& dir : dirs) {
        MF_ASSIGN_OR_RETURN(auto found, io::list_files(dir, {".jpg", ".jpeg", ".png", ".gif",
                                                             ".webp", ".tif", ".tiff", ".bmp"}));
        if (found.empty())
            return Status::not_found(
                fmt::format("{}: no images (jpg/png/gif/webp/tiff/bmp)", dir.string()));
        files.insert(files.end(), found.begin(), found.end());
    }
    std::vector<std::vector<float>> feats(files.size());
    std::vector<std::string> errors(files.size());
    ThreadPool pool(n_threads);
    pool.parallel_for(files.size(), [&](size_t, size_t b, size_t e) {
        for (size_t i = b; i < e; ++i) {
            auto d = io::decode_image_file(files[i]);
            if (!d.ok()) {
                errors[i] = fmt::format("{}: {}", io::image_error_reason(d.error), d.detail);
                continue;
            }
            feats[i] = image_features(d.image);
        }
    });
    for (size_t i = 0; i < files.size(); ++i) {
        if (!errors[i].empty()) {
            log::warn("skipping {}: {}", files[i].string(), errors[i]);
            continue;
        }
        data.x.push_back(std::move(feats[i]));
        data.y.push_back(label);
        data.paths.push_back(files[i].string());
    }
    return {};
}

Result<fs::path> default_classifier_path() {
    std::vector<fs::path> tried;
    if (const char* env = std::getenv("MF_CLASSIFIER_MODEL"); env && *env) tried.emplace_back(env);
    std::error_code ec;
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec)
        tried.push_back(exe.parent_path().parent_path() / "share" / "medforge" /
                        "medical_image_classifier.json");
#ifdef MF_SOURCE_DIR
    tried.push_back(fs::path(MF_SOURCE_DIR) / "models" / "medical_image_classifier.json");
#endif
    std::string list;
    for (const auto& p : tried) {
        if (fs::is_regular_file(p, ec)) return p;
        list += (list.empty() ? "" : ", ") + p.string();
    }
    return Status::not_found(fmt::format(
        "medical image classifier model not found (tried {}): set MF_CLASSIFIER_MODEL, pass "
        "--classifier FILE (or \"classifier\" in the filter config), or 'none' to skip it",
        list));
}

Result<StatsClassifier> load_default_classifier() {
    MF_ASSIGN_OR_RETURN(fs::path p, default_classifier_path());
    return StatsClassifier::load(p);
}

}  // namespace mf::curate
