// Medical-vs-non-medical image classifier interface. The default implementation
// (curate/stats_classifier.h) works on cheap image statistics and needs no download; the CLIP
// feature classifier of the paper plugs in from the model library through the same interface.
#pragma once

#include <string>

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

}  // namespace mf::curate
