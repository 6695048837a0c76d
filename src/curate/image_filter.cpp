#include "curate/image_filter.h"

#include <fmt/core.h>

namespace mf::curate {

Verdict ImageFilter::apply(const Sample& sample) const {
    if (sample.images.empty())
        return Verdict::drop("no_image", "sample has no images: field 'images' is empty");
    const size_t n = sample.images.size();
    io::ImageLimits limits;
    limits.max_pixels = params_.max_pixels;
    for (size_t i = 0; i < n; ++i) {
        const std::string& path = sample.images[i];
        auto where = [&] { return fmt::format("image {}/{} {}", i + 1, n, path); };
        io::ImageInfo info;
        io::Image image;
        io::ImageError err;
        std::string detail;
        if (params_.decode) {
            io::DecodeResult d = io::decode_image_file(path, limits);
            err = d.error;
            detail = std::move(d.detail);
            info = d.info;
            image = std::move(d.image);
        } else {
            io::ProbeResult p = io::probe_image_file(path, limits);
            err = p.error;
            detail = std::move(p.detail);
            info = p.info;
        }
        if (err != io::ImageError::kOk)
            return Verdict::drop(std::string(io::image_error_reason(err)),
                                 fmt::format("{}: {}", where(), detail));
        if (std::min(info.width, info.height) < params_.min_side)
            return Verdict::drop("image_too_small",
                                 fmt::format("{}: {}x{}, need min side {}", where(), info.width,
                                             info.height, params_.min_side));
        if (params_.classifier && params_.decode) {
            auto p = params_.classifier->medical_probability(image);
            if (!p.ok())
                return Verdict::drop("image_corrupt", fmt::format("{}: classifier failed: {}",
                                                                  where(), p.status().message()));
            if (*p < params_.min_medical_prob)
                return Verdict::drop(
                    "non_medical_image",
                    fmt::format("{}: {}x{} {}, medical probability {:.3f} < {:.2f} ({})", where(),
                                info.width, info.height, io::image_format_name(info.format), *p,
                                params_.min_medical_prob, params_.classifier->name()));
        }
    }
    return Verdict::kept();
}

}  // namespace mf::curate
