// The CLIP-feature medical-image classifier (the paper's filter uses CLIP features): a logistic-
// regression probe on the pooled CLIP image embedding (CLS after post_layernorm) of any CLIP
// vision checkpoint (openai/clip-vit-large-patch14-336, or the tower inside a LLaVA checkpoint).
// File format "medforge-clip-probe" (JSON): {"format","version":1,"vision": checkpoint dir,
// "mean","std","weights","bias","threshold","training"}. Trained by `medforge classifier train
// --features clip --vision DIR`; used by `filter` / `build` like the statistics classifier.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "curate/image_classifier.h"
#include "curate/stats_classifier.h"
#include "model/image_processor.h"
#include "model/llava.h"

namespace mf::cli {

class ClipFeatures {
  public:
    static Result<std::shared_ptr<ClipFeatures>> open(const std::filesystem::path& dir);
    // Pooled embeddings [N, H] (float) of decoded images, in batches.
    Result<std::vector<std::vector<float>>> embed(const std::vector<io::Image>& images) const;
    const std::filesystem::path& dir() const { return dir_; }

  private:
    std::filesystem::path dir_;
    mutable model::MultimodalLM model_{nullptr};  // inference only; torch modules are not const
    model::ImageProcessorConfig improc_;
};

struct ProbeOptions {
    double l2 = 1e-3;
    int epochs = 300;
    double learning_rate = 0.05;
    bool class_weights = true;
};

class ClipProbeClassifier : public curate::ImageClassifier {
  public:
    std::string name() const override { return "clip-probe-v1"; }
    Result<float> medical_probability(const io::Image& image) const override;
    float probability_from_features(const std::vector<float>& f) const;

    // data.x = CLIP features (from ClipFeatures::embed), y = labels (1 = medical).
    static Result<ClipProbeClassifier> train(std::shared_ptr<ClipFeatures> feats,
                                             const curate::Dataset& data, const ProbeOptions& opt);
    std::string to_json() const;
    Status save(const std::filesystem::path& path) const;
    static Result<ClipProbeClassifier> load(const std::filesystem::path& path);
    std::string training_info_json = "{}";

  private:
    std::shared_ptr<ClipFeatures> feats_;
    std::vector<double> mean_, std_, w_;
    double bias_ = 0;
};

// Stratified k-fold cross-validation of the probe on precomputed features.
curate::Metrics cross_validate_probe(const curate::Dataset& data, int folds, uint64_t seed,
                                     const ProbeOptions& opt);

// Registers the "medforge-clip-probe" format with curate::load_image_classifier.
void register_clip_probe_format();

}  // namespace mf::cli
