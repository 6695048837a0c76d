// The image filter: every image of a sample must exist, decode (or at least have a valid
// header), have min(width, height) >= min_side, stay under the pixel limit, and, when a
// classifier is given, look medical (probability >= min_medical_prob).
//
// Reject reasons (stable, documented in docs/filter.md): image_missing, image_empty,
// image_unreadable, image_unsupported, image_corrupt, image_truncated, image_too_large,
// image_too_small, non_medical_image, no_image. The detail names the image
// ("image 2/3 /p/x.png: 320x240, need min side 336").
#pragma once

#include <string>
#include <string_view>

#include "curate/filter.h"
#include "curate/image_classifier.h"
#include "io/image.h"

namespace mf::curate {

struct ImageFilterParams {
    int min_side = 336;                                  // keep when min(width, height) >= min_side
    uint64_t max_pixels = io::ImageLimits{}.max_pixels;  // decompression-bomb limit
    bool decode = true;  // full decode (catches truncated/corrupt data); else
                         // header only (fast, no classifier)
    const ImageClassifier* classifier = nullptr;  // not owned; null = no medical check
    float min_medical_prob = 0.5f;
};

class ImageFilter : public Filter {
  public:
    explicit ImageFilter(ImageFilterParams params) : params_(params) {}
    std::string_view name() const override { return "image"; }
    Verdict apply(const Sample& sample) const override;
    const ImageFilterParams& params() const { return params_; }

  private:
    ImageFilterParams params_;
};

}  // namespace mf::curate
