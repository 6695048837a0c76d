// The default medical-vs-non-medical image classifier: class-weighted logistic regression over
// cheap image statistics (colour saturation, grey-level entropy, flat/white background, edge
// density and axis-aligned edges, distinct colours, colourfulness, aspect ratio...), computed on
// a copy downsampled to at most kFeatureSide pixels a side. No download, no torch: weights are a
// small JSON file (models/medical_image_classifier.json, documented in docs/classifier.md).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/status.h"
#include "curate/image_classifier.h"
#include "io/image.h"

namespace mf::curate {

// Longest side of the downsampled copy the features are computed on.
constexpr int kFeatureSide = 128;

// Feature names, in the order image_features() returns them.
const std::vector<std::string>& image_feature_names();
// The feature vector of an image (size == image_feature_names().size()). Deterministic.
std::vector<float> image_features(const io::Image& image);

struct TrainOptions {
    double l2 = 3e-2;   // L2 penalty on the weights (not the bias), per sample
    int epochs = 3000;  // full-batch gradient descent steps
    double learning_rate = 0.5;
    bool class_weights = true;  // weight each class by n / (2 * n_class): balances 218 vs 27
};

// A labelled feature matrix: label 1 = medical, 0 = non-medical.
struct Dataset {
    std::vector<std::vector<float>> x;
    std::vector<int> y;
    std::vector<std::string> paths;  // where each row came from (for error reports)
};

struct Metrics {
    int tp = 0, fn = 0, fp = 0, tn = 0;  // positive = medical
    double accuracy() const;
    double medical_recall() const;     // tp / (tp + fn)
    double nonmedical_recall() const;  // tn / (tn + fp)
    double balanced_accuracy() const;  // mean of the two recalls
    void add(int label, bool predicted_medical);
    std::string to_string() const;  // accuracy, recalls, balanced accuracy, confusion matrix
};

class StatsClassifier : public ImageClassifier {
  public:
    static constexpr int kVersion = 1;

    std::string name() const override { return "stats-logreg-v1"; }
    Result<float> medical_probability(const io::Image& image) const override;
    // Probability from an already computed feature vector.
    float probability_from_features(const std::vector<float>& features) const;

    // Fits feature means/stds and weights on `data`.
    static Result<StatsClassifier> train(const Dataset& data, const TrainOptions& opt = {});

    // JSON: {"format":"medforge-image-classifier","version":1,"features":[...],"mean":[...],
    //        "std":[...],"weights":[...],"bias":b,"threshold":0.5,"training":{...}}
    std::string to_json() const;
    static Result<StatsClassifier> from_json(std::string_view text);
    Status save(const std::filesystem::path& path) const;
    static Result<StatsClassifier> load(const std::filesystem::path& path);

    // Free-form training facts saved into the JSON (counts, CV figures); a JSON object text.
    std::string training_info_json = "{}";

    const std::vector<double>& weights() const { return w_; }

  private:
    std::vector<double> mean_, std_, w_;
    double bias_ = 0;
};

// Stratified k-fold cross-validation: trains on k-1 folds and scores the held-out one; the
// folds are drawn with `seed`. Every sample is predicted exactly once.
Metrics cross_validate(const Dataset& data, int folds, uint64_t seed, const TrainOptions& opt = {});

// Decodes every image under each directory (recursive; jpg/jpeg/png/gif/webp/tif/tiff/bmp) and
// appends its features with `label`. Files that fail to decode are skipped with a warning.
Status add_image_dirs(const std::vector<std::filesystem::path>& dirs, int label, Dataset& data,
                      size_t n_threads = 0);

// Where the shipped model is looked for, in order: $MF_CLASSIFIER_MODEL, <dir of the running
// binary>/../share/medforge/medical_image_classifier.json, <source tree>/models/
// medical_image_classifier.json (compile definition MF_SOURCE_DIR). Returns the first that
// exists, or NotFound listing the places tried.
Result<std::filesystem::path> default_classifier_path();
Result<StatsClassifier> load_default_classifier();

}  // namespace mf::curate
