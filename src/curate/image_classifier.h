// Medical-vs-non-medical image classifier interface. The default implementation
// (curate/stats_classifier.h) works on cheap image statistics and needs no download; the CLIP
// feature classifier of the paper plugs in from the model library through the same interface.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "io/image.h"

namespace mf::curate {

class ImageClassifier {
  public:
    virtual ~ImageClassifier() = default;
    virtual std::string name() const = 0;
    // Probability in [0,1] that the image is a medical image (radiology, pathology, endoscopy,
    // clinical photo...), as opposed to a chart, plot, diagram or everyday photo.
    // Thread-safe (const).
    virtual Result<float> medical_probability(const io::Image& image) const = 0;
};

// Classifier files are JSON with a "format" field. "medforge-image-classifier" (the statistics
// model) is built in; other formats (e.g. "medforge-clip-probe", whose loader lives with the model
// engine) are registered by the program at start-up.
using ClassifierLoader =
    std::function<Result<std::unique_ptr<ImageClassifier>>(const std::filesystem::path& path)>;
void register_classifier_format(const std::string& format, ClassifierLoader loader);
// Loads any registered format; an unknown one is an error naming the format and the file.
Result<std::unique_ptr<ImageClassifier>> load_image_classifier(const std::filesystem::path& path);

}  // namespace mf::curate
