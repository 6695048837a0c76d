// medforge classifier train|eval|predict: the medical-vs-non-medical image classifier
// (curate/stats_classifier.h) on labelled folders of images.
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "cli/clip_probe.h"
#include "cli/commands.h"
#include "core/log.h"
#include "curate/stats_classifier.h"
#include "io/file.h"
#include "io/image.h"

namespace mf::cli {

namespace {

namespace fs = std::filesystem;

Result<curate::Dataset> load_labelled(const std::vector<std::string>& medical,
                                      const std::vector<std::string>& nonmedical, int threads) {
    curate::Dataset data;
    std::vector<fs::path> med(medical.begin(), medical.end());
    std::vector<fs::path> non(nonmedical.begin(), nonmedical.end());
    MF_RETURN_IF_ERROR(curate::add_image_dirs(med, 1, data, threads));
    MF_RETURN_IF_ERROR(curate::add_image_dirs(non, 0, data, threads));
    return data;
}

size_t count_label(const curate::Dataset& d, int label) {
    return std::count(d.y.begin(), d.y.end(), label);
}

// Decoded images of the folders (recursive), labelled; undecodable files are skipped with a
// warning.
Status decode_labelled(const std::vector<std::string>& dirs, int label,
                       std::vector<io::Image>& imgs, curate::Dataset& data) {
    for (const auto& d : dirs) {
        MF_ASSIGN_OR_RETURN(auto files, io::list_files(d, {".jpg", ".jpeg", ".png", ".gif", ".webp",
                                                           ".tif", ".tiff", ".bmp"}));
        for (const auto& f : files) {
            auto r = io::decode_image_file(f);
            if (!r.ok()) {
                log::warn("skipping {}: {}", f.string(), r.detail);
                continue;
            }
            imgs.push_back(std::move(r.image));
            data.y.push_back(label);
            data.paths.push_back(f.string());
        }
    }
    return Status::ok_status();
}

int train_clip_probe(const std::string& vision, const std::vector<std::string>& medical,
                     const std::vector<std::string>& nonmedical, const std::string& out, int folds,
                     uint64_t seed) {
    auto feats = ClipFeatures::open(vision);
    if (!feats.ok()) return fail(feats.status(), "classifier train");
    curate::Dataset data;
    std::vector<io::Image> imgs;
    Status st = decode_labelled(medical, 1, imgs, data);
    if (st.ok()) st = decode_labelled(nonmedical, 0, imgs, data);
    if (!st.ok()) return fail(st, "classifier train");
    auto x = (*feats)->embed(imgs);
    if (!x.ok()) return fail(x.status(), "classifier train");
    data.x = std::move(*x);
    size_t n_med = count_label(data, 1), n_non = count_label(data, 0);
    fmt::print("images: {} medical, {} non-medical; CLIP features from {}\n", n_med, n_non, vision);
    ProbeOptions opt;
    nlohmann::ordered_json info;
    info["medical_images"] = n_med;
    info["nonmedical_images"] = n_non;
    info["medical_dirs"] = medical;
    info["nonmedical_dirs"] = nonmedical;
    if (folds >= 2) {
        curate::Metrics m = cross_validate_probe(data, folds, seed, opt);
        fmt::print("{}-fold cross-validation (seed {}):\n{}\n", folds, seed, m.to_string());
        info["cv"] = {{"folds", folds},
                      {"seed", seed},
                      {"accuracy", m.accuracy()},
                      {"balanced_accuracy", m.balanced_accuracy()}};
    }
    auto model = ClipProbeClassifier::train(*feats, data, opt);
    if (!model.ok()) return fail(model.status(), "classifier train");
    model->training_info_json = info.dump();
    if (Status s2 = model->save(out); !s2.ok()) return fail(s2, "classifier train");
    fmt::print("CLIP probe written to {}\n", out);
    return kExitOk;
}

int use_clip_probe(const std::string& path, bool eval, const std::vector<std::string>& medical,
                   const std::vector<std::string>& nonmedical,
                   const std::vector<std::string>& images) {
    auto probe = ClipProbeClassifier::load(path);
    if (!probe.ok()) return fail(probe.status(), "classifier");
    if (eval) {
        curate::Dataset data;
        std::vector<io::Image> imgs;
        Status st = decode_labelled(medical, 1, imgs, data);
        if (st.ok()) st = decode_labelled(nonmedical, 0, imgs, data);
        if (!st.ok()) return fail(st, "classifier eval");
        curate::Metrics m;
        for (size_t i = 0; i < imgs.size(); ++i) {
            auto p = probe->medical_probability(imgs[i]);
            if (!p.ok()) return fail(p.status(), data.paths[i]);
            m.add(data.y[i], *p >= 0.5f);
        }
        fmt::print("images: {} medical, {} non-medical\n{}\n", count_label(data, 1),
                   count_label(data, 0), m.to_string());
        return kExitOk;
    }
    int failures = 0;
    for (const auto& f : images) {
        auto d = io::decode_image_file(f);
        if (!d.ok()) {
            fmt::print("{}\terror\t{}: {}\n", f, io::image_error_reason(d.error), d.detail);
            ++failures;
            continue;
        }
        auto p = probe->medical_probability(d.image);
        if (!p.ok()) return fail(p.status(), f);
        fmt::print("{}\t{:.4f}\t{}\n", f, *p, *p >= 0.5f ? "medical" : "non-medical");
    }
    return failures ? kExitFailed : kExitOk;
}

}  // namespace

int run_classifier(int argc, char** argv) {
    CLI::App app{
        "Train, evaluate and apply the medical-vs-non-medical image classifier: logistic\n"
        "regression over cheap image statistics, or (--features clip) a linear probe on CLIP\n"
        "image embeddings (docs/classifier.md).",
        argv[0]};
    app.require_subcommand(1);
    app.fallthrough();  // common options may also follow the subcommand
    CommonOptions common;
    add_common_options(app, common, false);

    std::vector<std::string> medical, nonmedical, images;
    std::string out, model_path;
    int folds = 5;
    uint64_t seed = 1;
    curate::TrainOptions topt;

    auto* train = app.add_subcommand("train", "k-fold cross-validate, then train on all and save");
    train->add_option("--medical", medical, "folders of medical images (recursive)")->required();
    train->add_option("--nonmedical", nonmedical, "folders of non-medical images (recursive)")
        ->required();
    train->add_option("--out", out, "where to write the model JSON")->required();
    train->add_option("--folds", folds, "cross-validation folds (0 = skip CV)")
        ->capture_default_str();
    train->add_option("--seed", seed, "seed for the fold assignment")->capture_default_str();
    train->add_option("--l2", topt.l2, "L2 penalty")->capture_default_str();
    train->add_option("--epochs", topt.epochs, "gradient descent steps")->capture_default_str();
    train->add_flag("!--no-class-weights", topt.class_weights,
                    "do not weight classes by inverse frequency");
    std::string features = "stats", vision;
    train
        ->add_option("--features", features,
                     "stats (20 image statistics, no download) or clip (a linear probe on CLIP "
                     "image embeddings; needs --vision)")
        ->check(CLI::IsMember({"stats", "clip"}))
        ->capture_default_str();
    train->add_option(
        "--vision", vision,
        "--features clip: a CLIP (e.g. clip-vit-large-patch14-336) or LLaVA checkpoint");

    auto* eval = app.add_subcommand("eval", "score a model on labelled folders");
    eval->add_option("--model", model_path, "model JSON (default: the shipped model)");
    eval->add_option("--medical", medical, "folders of medical images")->required();
    eval->add_option("--nonmedical", nonmedical, "folders of non-medical images")->required();

    auto* predict = app.add_subcommand("predict", "print the medical probability of images");
    predict->add_option("--model", model_path, "model JSON (default: the shipped model)");
    predict->add_option("images", images, "image files")->required();

    if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
    apply_common_options(common);

    auto load_model = [&]() -> Result<curate::StatsClassifier> {
        if (model_path.empty()) return curate::load_default_classifier();
        return curate::StatsClassifier::load(model_path);
    };

    if (*train && features == "clip") {
        if (vision.empty())
            return fail(Status::invalid_argument("--features clip needs --vision DIR"),
                        "classifier train");
        return train_clip_probe(vision, medical, nonmedical, out, folds, seed);
    }
    // eval / predict of a CLIP probe: features come from its vision checkpoint
    if (!*train && !model_path.empty()) {
        auto text = io::read_file(model_path);
        if (text.ok() && text->find("\"medforge-clip-probe\"") != std::string::npos)
            return use_clip_probe(model_path, static_cast<bool>(*eval), medical, nonmedical,
                                  images);
    }
    if (*train) {
        auto data = load_labelled(medical, nonmedical, common.threads);
        if (!data.ok()) return fail(data.status(), "classifier train");
        size_t n_med = count_label(*data, 1), n_non = count_label(*data, 0);
        fmt::print("images: {} medical, {} non-medical\n", n_med, n_non);
        nlohmann::ordered_json info;
        info["medical_images"] = n_med;
        info["nonmedical_images"] = n_non;
        info["medical_dirs"] = medical;
        info["nonmedical_dirs"] = nonmedical;
        info["l2"] = topt.l2;
        info["epochs"] = topt.epochs;
        info["class_weights"] = topt.class_weights;
        if (folds >= 2) {
            curate::Metrics m = curate::cross_validate(*data, folds, seed, topt);
            fmt::print("{}-fold cross-validation (seed {}):\n{}\n", folds, seed, m.to_string());
            info["cv"] = {{"folds", folds},
                          {"seed", seed},
                          {"accuracy", m.accuracy()},
                          {"balanced_accuracy", m.balanced_accuracy()},
                          {"medical_recall", m.medical_recall()},
                          {"nonmedical_recall", m.nonmedical_recall()},
                          {"confusion", {{m.tp, m.fn}, {m.fp, m.tn}}}};
        }
        auto model = curate::StatsClassifier::train(*data, topt);
        if (!model.ok()) return fail(model.status(), "classifier train");
        curate::Metrics fit;
        for (size_t i = 0; i < data->x.size(); ++i)
            fit.add(data->y[i], model->probability_from_features(data->x[i]) >= 0.5f);
        fmt::print("training-set fit (all images):\n{}\n", fit.to_string());
        model->training_info_json = info.dump();
        if (Status st = model->save(out); !st.ok()) return fail(st, "classifier train");
        fmt::print("model written to {}\n", out);
        return kExitOk;
    }
    auto model = load_model();
    if (!model.ok()) return fail(model.status(), "classifier");
    if (*eval) {
        auto data = load_labelled(medical, nonmedical, common.threads);
        if (!data.ok()) return fail(data.status(), "classifier eval");
        curate::Metrics m;
        for (size_t i = 0; i < data->x.size(); ++i) {
            bool pred = model->probability_from_features(data->x[i]) >= 0.5f;
            m.add(data->y[i], pred);
            if (pred != (data->y[i] == 1))
                log::info("misclassified ({}): {}", data->y[i] ? "medical" : "non-medical",
                          data->paths[i]);
        }
        fmt::print("images: {} medical, {} non-medical\n{}\n", count_label(*data, 1),
                   count_label(*data, 0), m.to_string());
        return kExitOk;
    }
    // predict
    int failures = 0;
    for (const auto& path : images) {
        auto d = io::decode_image_file(path);
        if (!d.ok()) {
            fmt::print("{}\terror\t{}: {}\n", path, io::image_error_reason(d.error), d.detail);
            ++failures;
            continue;
        }
        auto p = model->medical_probability(d.image);
        if (!p.ok()) return fail(p.status(), path);
        fmt::print("{}\t{:.4f}\t{}\n", path, *p, *p >= 0.5f ? "medical" : "non-medical");
    }
    return failures ? kExitFailed : kExitOk;
}

}  // namespace mf::cli
