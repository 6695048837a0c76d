#include "model/image_processor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <numbers>
#include <string>

#include "core/thread_pool.h"
#include "io/file.h"

namespace mf::model {

namespace fs = std::filesystem;

namespace {

// ---- Pillow's resampling (libImaging/Resample.c semantics) ------------------------------------
// Coefficients in double, normalised to sum 1, then fixed point with 22 fractional bits
// (32 - 8 - 2: 8 bits of pixel, 2 of headroom), rounded half away from zero; each pass adds a
// half (1 << 21), shifts back and clips to 0..255.
constexpr int kPrecisionBits = 32 - 8 - 2;

double filter_support(ResampleFilter f) {
    switch (f) {
        case ResampleFilter::kBox:
            return 0.5;
        case ResampleFilter::kBilinear:
            return 1.0;
        case ResampleFilter::kHamming:
            return 1.0;
        case ResampleFilter::kBicubic:
            return 2.0;
        case ResampleFilter::kLanczos:
            return 3.0;
    }
    return 2.0;
}

double sinc(double x) {
    if (x == 0.0) return 1.0;
    x *= std::numbers::pi;
    return std::sin(x) / x;
}

double filter_value(ResampleFilter f, double x) {
    switch (f) {
        case ResampleFilter::kBox:
            return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0;
        case ResampleFilter::kBilinear:
            if (x < 0.0) x = -x;
            return x < 1.0 ? 1.0 - x : 0.0;
        case ResampleFilter::kHamming:
            if (x < 0.0) x = -x;
            if (x == 0.0) return 1.0;
            if (x >= 1.0) return 0.0;
            x *= std::numbers::pi;
            return std::sin(x) / x * (0.54 + 0.46 * std::cos(x));
        case ResampleFilter::kBicubic: {
            // Keys' cubic convolution with a = -0.5 (Catmull-Rom).
            constexpr double a = -0.5;
            if (x < 0.0) x = -x;
            if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
            if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
            return 0.0;
        }
        case ResampleFilter::kLanczos:
            return (x >= -3.0 && x < 3.0) ? sinc(x) * sinc(x / 3.0) : 0.0;
    }
    return 0.0;
}

// Per output index: the first input index, how many inputs, and their fixed-point weights.
struct Coeffs {
    int ksize = 0;
    std::vector<int> first;
    std::vector<int> count;
    std::vector<int32_t> k;  // out_size * ksize
};

Coeffs precompute_coeffs(int in_size, int out_size, ResampleFilter f) {
    // The box is the whole input: (0, in_size), as Image.resize without box= passes.
    const double scale = double(float(in_size) - 0.0f) / out_size;
    const double filterscale = scale < 1.0 ? 1.0 : scale;  // antialias when reducing
    const double support = filter_support(f) * filterscale;
    Coeffs c;
    c.ksize = int(std::ceil(support)) * 2 + 1;
    c.first.resize(out_size);
    c.count.resize(out_size);
    c.k.assign(size_t(out_size) * c.ksize, 0);
    std::vector<double> w(c.ksize);
    const double ss = 1.0 / filterscale;
    for (int xx = 0; xx < out_size; ++xx) {
        const double center = 0.0 + (xx + 0.5) * scale;
        int xmin = int(center - support + 0.5);  // truncation, as C's (int)
        if (xmin < 0) xmin = 0;
        int xmax = int(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        xmax = std::min(xmax, c.ksize);
        double ww = 0.0;
        for (int x = 0; x < xmax; ++x) {
            w[x] = filter_value(f, (x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        int32_t* k = &c.k[size_t(xx) * c.ksize];
        for (int x = 0; x < xmax; ++x) {
            double v = ww != 0.0 ? w[x] / ww : w[x];
            k[x] = v < 0 ? int32_t(-0.5 + v * (1 << kPrecisionBits))
                         : int32_t(0.5 + v * (1 << kPrecisionBits));
        }
        c.first[xx] = xmin;
        c.count[xx] = std::max(xmax, 0);
    }
    return c;
}

inline uint8_t clip8(int32_t v) {
    if (v >= (1 << kPrecisionBits << 8)) return 255;
    if (v <= 0) return 0;
    return uint8_t(v >> kPrecisionBits);
}

// The resize input: an image, optionally pasted centred on a square of one colour (LLaVA's
// expand2square) without building the padded copy.
struct Source {
    const io::Image* img = nullptr;
    int width = 0, height = 0;  // logical (padded) size
    int ox = 0, oy = 0;         // where the image sits
    std::array<uint8_t, 3> color{};

    static Source plain(const io::Image& im) { return {&im, im.width, im.height, 0, 0, {}}; }
    static Source padded(const io::Image& im, std::array<uint8_t, 3> c) {
        const int side = std::max(im.width, im.height);
        return {&im, side, side, (side - im.width) / 2, (side - im.height) / 2, c};
    }
    bool background_row(int r) const { return r < oy || r >= oy + img->height; }
    // Logical row r as width * 3 bytes: the image row itself when it spans the width, else
    // `scratch` (width * 3 bytes) filled.
    const uint8_t* row(int r, uint8_t* scratch) const {
        if (!background_row(r) && img->width == width) {
            return &img->pixels[size_t(r - oy) * width * 3];
        }
        for (int x = 0; x < width; ++x)
            std::memcpy(scratch + 3 * x, color.data(), 3);
        if (!background_row(r)) {
            std::memcpy(scratch + 3 * ox, &img->pixels[size_t(r - oy) * img->width * 3],
                        size_t(img->width) * 3);
        }
        return scratch;
    }
};

// Horizontal pass on kBlock rows at once: the rows are transposed to [column][row][channel], so
// each tap is one multiply-add over 3 * kBlock contiguous lanes (vectorised), instead of a
// scalar dot product per pixel. Same integer sums as Pillow, so the same bytes.
constexpr int kBlock = 8;
constexpr int kLanes = 3 * kBlock;

// x86-64: an AVX2 clone (vpmulld) picked at load time when the CPU has it; SSE2 has no 32-bit
// lane multiply. Same integer results either way.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(MF_NO_MULTIVERSION)
#define MF_MULTIVERSION __attribute__((target_clones("avx2", "default")))
#else
#define MF_MULTIVERSION
#endif

MF_MULTIVERSION
void vertical_row(int32_t* acc, const uint8_t* s, int32_t ky, size_t n) {
    for (size_t i = 0; i < n; ++i)
        acc[i] += int32_t(s[i]) * ky;
}

MF_MULTIVERSION
void horizontal_block(const uint8_t* const rows[kBlock], int in_w, const Coeffs& ch, int x0,
                      int win_w, std::vector<int32_t>& t, uint8_t* const out_rows[kBlock]) {
    t.resize(size_t(in_w) * kLanes);
    for (int x = 0; x < in_w; ++x) {
        int32_t* col = &t[size_t(x) * kLanes];
        for (int r = 0; r < kBlock; ++r) {
            col[3 * r + 0] = rows[r][3 * x + 0];
            col[3 * r + 1] = rows[r][3 * x + 1];
            col[3 * r + 2] = rows[r][3 * x + 2];
        }
    }
    for (int xx = 0; xx < win_w; ++xx) {
        const int o = x0 + xx;
        const int32_t* k = &ch.k[size_t(o) * ch.ksize];
        const int32_t* src = &t[size_t(ch.first[o]) * kLanes];
        int32_t acc[kLanes];
        for (int j = 0; j < kLanes; ++j)
            acc[j] = 1 << (kPrecisionBits - 1);
        for (int x = 0; x < ch.count[o]; ++x) {
            const int32_t kx = k[x];
            const int32_t* s = src + size_t(x) * kLanes;
            for (int j = 0; j < kLanes; ++j)
                acc[j] += s[j] * kx;
        }
        uint8_t px[kLanes];
        for (int j = 0; j < kLanes; ++j) {
            const int32_t v = acc[j] >> kPrecisionBits;  // clip8, branch-free
            px[j] = uint8_t(acc[j] <= 0 ? 0 : (v > 255 ? 255 : v));
        }
        for (int r = 0; r < kBlock; ++r) {
            if (out_rows[r] != nullptr) std::memcpy(out_rows[r] + 3 * xx, px + 3 * r, 3);
        }
    }
}

// Pillow's two-pass resize of `src` to out_w x out_h, computing only the window
// [x0, x0 + win_w) x [y0, y0 + win_h) of the output (every output pixel is independent, so the
// window equals the same crop of the full result). The horizontal pass runs only on the input
// rows the window's vertical taps read, and once for all rows of pure pad colour.
io::Image resize_window(const Source& src, int out_w, int out_h, int x0, int y0, int win_w,
                        int win_h, ResampleFilter f) {
    const bool need_h = out_w != src.width;
    const bool need_v = out_h != src.height;

    // Vertical taps first: they say which rows the horizontal pass must produce.
    Coeffs cv;
    int row_first = y0, row_end = y0 + win_h;  // identity when !need_v
    if (need_v) {
        cv = precompute_coeffs(src.height, out_h, f);
        row_first = cv.first[y0];
        row_end = 0;
        for (int yy = y0; yy < y0 + win_h; ++yy) {
            row_first = std::min(row_first, cv.first[yy]);
            row_end = std::max(row_end, cv.first[yy] + cv.count[yy]);
        }
    }
    const int n_rows = row_end - row_first;

    // Horizontal pass: rows [row_first, row_end) of the source -> win_w columns.
    io::Image tmp;
    tmp.width = win_w;
    tmp.height = n_rows;
    tmp.pixels.resize(size_t(win_w) * n_rows * 3);
    const size_t tmp_row = size_t(win_w) * 3;
    if (need_h) {
        const Coeffs ch = precompute_coeffs(src.width, out_w, f);
        std::vector<uint8_t> scratch(size_t(kBlock) * src.width * 3);
        std::vector<int32_t> t;
        const uint8_t* rows[kBlock];
        uint8_t* outs[kBlock];
        std::vector<int> image_rows;
        int background = -1;  // first pad-colour row, computed once and copied
        for (int r = row_first; r < row_end; ++r) {
            if (src.background_row(r)) {
                if (background < 0) {
                    background = r;
                } else {
                    continue;
                }
            }
            image_rows.push_back(r);
        }
        for (size_t b = 0; b < image_rows.size(); b += kBlock) {
            for (int i = 0; i < kBlock; ++i) {
                const size_t idx = b + i;
                if (idx < image_rows.size()) {
                    const int r = image_rows[idx];
                    rows[i] = src.row(r, &scratch[size_t(i) * src.width * 3]);
                    outs[i] = &tmp.pixels[size_t(r - row_first) * tmp_row];
                } else {
                    rows[i] = rows[0];  // padding lanes of the last block, discarded
                    outs[i] = nullptr;
                }
            }
            horizontal_block(rows, src.width, ch, x0, win_w, t, outs);
        }
        if (background >= 0) {
            const uint8_t* bg = &tmp.pixels[size_t(background - row_first) * tmp_row];
            for (int r = row_first; r < row_end; ++r) {
                if (r != background && src.background_row(r)) {
                    std::memcpy(&tmp.pixels[size_t(r - row_first) * tmp_row], bg, tmp_row);
                }
            }
        }
    } else {
        std::vector<uint8_t> scratch(size_t(src.width) * 3);
        for (int r = 0; r < n_rows; ++r) {
            const uint8_t* row = src.row(row_first + r, scratch.data());
            std::memcpy(&tmp.pixels[size_t(r) * tmp_row], row + size_t(x0) * 3, tmp_row);
        }
    }
    if (!need_v) return tmp;

    // Vertical pass: row-wise accumulation (vectorises over the whole row).
    io::Image out;
    out.width = win_w;
    out.height = win_h;
    out.pixels.resize(size_t(win_w) * win_h * 3);
    std::vector<int32_t> acc(tmp_row);
    for (int yy = 0; yy < win_h; ++yy) {
        const int o = y0 + yy;
        const int32_t* k = &cv.k[size_t(o) * cv.ksize];
        const int first = cv.first[o] - row_first;
        std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
        for (int y = 0; y < cv.count[o]; ++y) {
            const uint8_t* s = &tmp.pixels[size_t(first + y) * tmp_row];
            const int32_t ky = k[y];
            vertical_row(acc.data(), s, ky, tmp_row);
        }
        uint8_t* dst = &out.pixels[size_t(yy) * tmp_row];
        for (size_t i = 0; i < tmp_row; ++i)
            dst[i] = clip8(acc[i]);
    }
    return out;
}

Status check_image(const io::Image& in) {
    if (in.width <= 0 || in.height <= 0) {
        return Status::invalid_argument("image processor: empty image (" +
                                        std::to_string(in.width) + "x" + std::to_string(in.height) +
                                        ")");
    }
    if (in.pixels.size() != size_t(in.width) * in.height * 3) {
        return Status::invalid_argument("image processor: pixel buffer has " +
                                        std::to_string(in.pixels.size()) +
                                        " bytes, expected width*height*3 = " +
                                        std::to_string(size_t(in.width) * in.height * 3));
    }
    return Status::ok_status();
}

// transformers' center_crop on HWC uint8: zero-padded, centred, when the image is smaller.
io::Image center_crop(const io::Image& in, int cw, int ch) {
    if (in.width == cw && in.height == ch) return in;
    const int nw = std::max(cw, in.width), nh = std::max(ch, in.height);
    const int pad_x = (nw - in.width) / 2, pad_y = (nh - in.height) / 2;
    const int left = (nw - cw) / 2 - pad_x, top = (nh - ch) / 2 - pad_y;  // in input coordinates
    io::Image out;
    out.width = cw;
    out.height = ch;
    out.pixels.assign(size_t(cw) * ch * 3, 0);
    for (int y = 0; y < ch; ++y) {
        const int sy = y + top;
        if (sy < 0 || sy >= in.height) continue;
        const int x_begin = std::max(0, -left), x_end = std::min(cw, in.width - left);
        if (x_end <= x_begin) continue;
        std::memcpy(&out.pixels[(size_t(y) * cw + x_begin) * 3],
                    &in.pixels[(size_t(sy) * in.width + x_begin + left) * 3],
                    size_t(x_end - x_begin) * 3);
    }
    return out;
}

std::array<std::array<float, 256>, 3> make_lut(const ImageProcessorConfig& cfg) {
    std::array<std::array<float, 256>, 3> lut{};
    for (int c = 0; c < 3; ++c) {
        const float mean = float(cfg.image_mean[c]), std = float(cfg.image_std[c]);
        for (int u = 0; u < 256; ++u) {
            // numpy: uint8 * python float -> float64, astype(float32); then float32 arithmetic.
            float x = cfg.do_rescale ? float(double(u) * cfg.rescale_factor) : float(u);
            if (cfg.do_normalize) x = (x - mean) / std;
            lut[c][u] = x;
        }
    }
    return lut;
}

void to_chw(const io::Image& img, const std::array<std::array<float, 256>, 3>& lut, float* out) {
    const size_t plane = size_t(img.width) * img.height;
    const uint8_t* p = img.pixels.data();
    for (size_t i = 0; i < plane; ++i) {
        out[i] = lut[0][p[3 * i + 0]];
        out[plane + i] = lut[1][p[3 * i + 1]];
        out[2 * plane + i] = lut[2][p[3 * i + 2]];
    }
}

Status decode_status(const fs::path& path, const io::DecodeResult& d) {
    std::string msg = "decoding " + path.string() + ": " +
                      std::string(io::image_error_reason(d.error)) +
                      (d.detail.empty() ? "" : " (" + d.detail + ")");
    switch (d.error) {
        case io::ImageError::kMissing:
            return Status::not_found(msg);
        case io::ImageError::kUnreadable:
            return Status::io_error(msg);
        case io::ImageError::kUnsupported:
            return Status::unsupported(msg);
        case io::ImageError::kTooLarge:
            return Status::resource_exhausted(msg);
        default:
            return Status::corruption(msg);
    }
}

}  // namespace

// ---- config -----------------------------------------------------------------------------------

ImageProcessorConfig ImageProcessorConfig::llava15() {
    return ImageProcessorConfig{};
}

ImageProcessorConfig ImageProcessorConfig::llava_hf() {
    ImageProcessorConfig c;
    c.pad_to_square = false;
    return c;
}

std::array<uint8_t, 3> ImageProcessorConfig::pad_color() const {
    std::array<uint8_t, 3> c{};
    for (int i = 0; i < 3; ++i)
        c[i] = uint8_t(std::clamp(int(image_mean[i] * 255), 0, 255));
    return c;
}

std::array<int, 2> ImageProcessorConfig::output_size(int width, int height) const {
    if (do_center_crop) return {crop_width, crop_height};
    if (pad_to_square) width = height = std::max(width, height);
    if (do_resize) return shortest_edge_size(width, height, shortest_edge);
    return {width, height};
}

Status ImageProcessorConfig::validate() const {
    auto bad = [](const std::string& m) {
        return Status::invalid_argument("image processor config: " + m);
    };
    if (do_resize && shortest_edge <= 0) {
        return bad("size.shortest_edge must be > 0, got " + std::to_string(shortest_edge));
    }
    if (do_center_crop && (crop_height <= 0 || crop_width <= 0)) {
        return bad("crop_size must be > 0, got " + std::to_string(crop_height) + "x" +
                   std::to_string(crop_width));
    }
    int r = int(resample);
    if (r < 1 || r > 5) {
        return bad("resample " + std::to_string(r) +
                   " is not supported (1 LANCZOS, 2 BILINEAR, 3 BICUBIC, 4 BOX, 5 HAMMING)");
    }
    for (int c = 0; c < 3; ++c) {
        if (do_normalize && !(image_std[c] != 0.0 && std::isfinite(image_std[c]))) {
            return bad("image_std[" + std::to_string(c) + "] must be a non-zero number");
        }
        if (!std::isfinite(image_mean[c])) {
            return bad("image_mean[" + std::to_string(c) + "] must be a number");
        }
    }
    if (do_rescale && !std::isfinite(rescale_factor)) return bad("rescale_factor must be a number");
    return Status::ok_status();
}

Result<ImageProcessorConfig> load_image_processor_config(const fs::path& path) {
    using nlohmann::json;
    const bool is_dir = fs::is_directory(path);
    const fs::path file = is_dir ? path / "preprocessor_config.json" : path;
    const fs::path dir = is_dir ? path : path.parent_path();
    MF_ASSIGN_OR_RETURN(std::string text, io::read_file(file));
    json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
        return Status::corruption(file.string() +
                                  ": not a JSON object; expected a Hugging Face "
                                  "preprocessor_config.json");
    }
    ImageProcessorConfig cfg = ImageProcessorConfig::llava_hf();
    auto err = [&](const std::string& field, const std::string& what) {
        return Status::invalid_argument(file.string() + ": field \"" + field + "\" " + what);
    };
    auto get_bool = [&](const char* key, bool& out) -> Status {
        if (!j.contains(key)) return Status::ok_status();
        if (!j[key].is_boolean()) return err(key, "must be true or false");
        out = j[key].get<bool>();
        return Status::ok_status();
    };
    auto get_triple = [&](const char* key, std::array<double, 3>& out) -> Status {
        if (!j.contains(key)) return Status::ok_status();
        const json& v = j[key];
        if (v.is_number()) {
            out.fill(v.get<double>());
            return Status::ok_status();
        }
        if (!v.is_array() || v.size() != 3) return err(key, "must be a list of 3 numbers");
        for (int c = 0; c < 3; ++c) {
            if (!v[c].is_number()) return err(key, "must be a list of 3 numbers");
            out[c] = v[c].get<double>();
        }
        return Status::ok_status();
    };
    MF_RETURN_IF_ERROR(get_bool("do_resize", cfg.do_resize));
    MF_RETURN_IF_ERROR(get_bool("do_center_crop", cfg.do_center_crop));
    MF_RETURN_IF_ERROR(get_bool("do_rescale", cfg.do_rescale));
    MF_RETURN_IF_ERROR(get_bool("do_normalize", cfg.do_normalize));
    MF_RETURN_IF_ERROR(get_triple("image_mean", cfg.image_mean));
    MF_RETURN_IF_ERROR(get_triple("image_std", cfg.image_std));
    if (j.contains("rescale_factor")) {
        if (!j["rescale_factor"].is_number()) return err("rescale_factor", "must be a number");
        cfg.rescale_factor = j["rescale_factor"].get<double>();
    }
    if (j.contains("resample")) {
        if (!j["resample"].is_number_integer()) return err("resample", "must be an integer");
        cfg.resample = ResampleFilter(j["resample"].get<int>());
    }
    if (j.contains("size")) {
        const json& s = j["size"];
        if (s.is_number_integer()) {
            cfg.shortest_edge = s.get<int>();
        } else if (s.is_object() && s.contains("shortest_edge") &&
                   s["shortest_edge"].is_number_integer()) {
            cfg.shortest_edge = s["shortest_edge"].get<int>();
        } else if (s.is_object() && s.contains("height") && s.contains("width") &&
                   s["height"].is_number_integer() && s["height"] == s["width"]) {
            // A square resize equals the shortest-edge resize only for square inputs; the
            // processors this file mirrors always use shortest_edge.
            return err("size", "{height, width} resizes are not supported; use shortest_edge");
        } else {
            return err("size", "must be an integer or {\"shortest_edge\": N}");
        }
    }
    if (j.contains("crop_size")) {
        const json& s = j["crop_size"];
        if (s.is_number_integer()) {
            cfg.crop_height = cfg.crop_width = s.get<int>();
        } else if (s.is_object() && s.contains("height") && s.contains("width") &&
                   s["height"].is_number_integer() && s["width"].is_number_integer()) {
            cfg.crop_height = s["height"].get<int>();
            cfg.crop_width = s["width"].get<int>();
        } else {
            return err("crop_size", "must be an integer or {\"height\": H, \"width\": W}");
        }
    }
    if (j.contains("do_pad")) {
        MF_RETURN_IF_ERROR(get_bool("do_pad", cfg.pad_to_square));
    } else if (fs::exists(dir / "config.json")) {
        auto model_text = io::read_file(dir / "config.json");
        if (model_text.ok()) {
            json m = json::parse(*model_text, nullptr, false);
            if (!m.is_discarded() && m.is_object() && m.contains("image_aspect_ratio") &&
                m["image_aspect_ratio"].is_string()) {
                cfg.pad_to_square = m["image_aspect_ratio"].get<std::string>() == "pad";
            }
        }
    }
    Status st = cfg.validate();
    if (!st.ok()) return st.with_context(file.string());
    return cfg;
}

// ---- steps ------------------------------------------------------------------------------------

io::Image pad_to_square(const io::Image& in, std::array<uint8_t, 3> color) {
    if (in.width == in.height) return in;
    const int side = std::max(in.width, in.height);
    io::Image out;
    out.width = out.height = side;
    out.pixels.resize(size_t(side) * side * 3);
    for (size_t i = 0; i < size_t(side) * side; ++i) {
        out.pixels[3 * i + 0] = color[0];
        out.pixels[3 * i + 1] = color[1];
        out.pixels[3 * i + 2] = color[2];
    }
    const int ox = (side - in.width) / 2, oy = (side - in.height) / 2;
    for (int y = 0; y < in.height; ++y) {
        std::memcpy(&out.pixels[(size_t(y + oy) * side + ox) * 3],
                    &in.pixels[size_t(y) * in.width * 3], size_t(in.width) * 3);
    }
    return out;
}

std::array<int, 2> shortest_edge_size(int width, int height, int shortest_edge) {
    const bool w_short = width <= height;
    const int s = w_short ? width : height, l = w_short ? height : width;
    if (s == shortest_edge) return {width, height};
    // Python: int(requested_new_short * long / short), true division then truncation.
    const int new_long = int(double(shortest_edge) * l / s);
    return w_short ? std::array<int, 2>{shortest_edge, new_long}
                   : std::array<int, 2>{new_long, shortest_edge};
}

Result<io::Image> resize_like_pil(const io::Image& in, int out_w, int out_h, ResampleFilter f) {
    MF_RETURN_IF_ERROR(check_image(in));
    if (out_w <= 0 || out_h <= 0) {
        return Status::invalid_argument("resize: target size " + std::to_string(out_w) + "x" +
                                        std::to_string(out_h) + " must be positive");
    }
    if (int(f) < 1 || int(f) > 5) {
        return Status::invalid_argument("resize: unsupported filter " + std::to_string(int(f)));
    }
    if (out_w == in.width && out_h == in.height) return in;
    return resize_window(Source::plain(in), out_w, out_h, 0, 0, out_w, out_h, f);
}

Result<io::Image> preprocess_uint8(const io::Image& in, const ImageProcessorConfig& cfg) {
    MF_RETURN_IF_ERROR(check_image(in));
    MF_RETURN_IF_ERROR(cfg.validate());
    const bool pad = cfg.pad_to_square && in.width != in.height;
    const Source src = pad ? Source::padded(in, cfg.pad_color()) : Source::plain(in);
    int rw = src.width, rh = src.height;
    if (cfg.do_resize) {
        auto sz = shortest_edge_size(rw, rh, cfg.shortest_edge);
        rw = sz[0];
        rh = sz[1];
    }
    const int cw = cfg.crop_width, ch = cfg.crop_height;
    if (cfg.do_center_crop && cw <= rw && ch <= rh) {
        // The crop lies inside the resized image: compute only those pixels.
        return resize_window(src, rw, rh, (rw - cw) / 2, (rh - ch) / 2, cw, ch, cfg.resample);
    }
    io::Image full = resize_window(src, rw, rh, 0, 0, rw, rh, cfg.resample);
    if (!cfg.do_center_crop) return full;
    return center_crop(full, cw, ch);
}

// ---- pipeline ---------------------------------------------------------------------------------

Result<std::vector<float>> preprocess(const io::Image& in, const ImageProcessorConfig& cfg) {
    MF_ASSIGN_OR_RETURN(io::Image img, preprocess_uint8(in, cfg));
    std::vector<float> out(size_t(img.width) * img.height * 3);
    to_chw(img, make_lut(cfg), out.data());
    return out;
}

Result<std::vector<float>> preprocess_file(const fs::path& path, const ImageProcessorConfig& cfg) {
    io::DecodeResult d = io::decode_image_file(path);
    if (!d.ok()) return decode_status(path, d);
    return preprocess(d.image, cfg);
}

namespace {

// Runs `one(i, dst)` for every item on the pool, each writing [3, H, W] floats at its slot.
template <typename One>
Result<std::vector<float>> run_batch(size_t n, size_t per_item, ThreadPool* pool, One one) {
    std::vector<float> out(n * per_item);
    std::vector<Status> errors(n);
    auto body = [&](size_t, size_t begin, size_t end) {
        for (size_t i = begin; i < end; ++i)
            errors[i] = one(i, out.data() + i * per_item);
    };
    if (pool != nullptr) {
        pool->parallel_for(n, body, 1);
    } else {
        body(0, 0, n);
    }
    for (size_t i = 0; i < n; ++i) {
        if (!errors[i].ok()) return errors[i].with_context("image " + std::to_string(i));
    }
    return out;
}

Status preprocess_into(const io::Image& in, const ImageProcessorConfig& cfg,
                       const std::array<std::array<float, 256>, 3>& lut, size_t per_item,
                       float* dst) {
    MF_ASSIGN_OR_RETURN(io::Image img, preprocess_uint8(in, cfg));
    if (size_t(img.width) * img.height * 3 != per_item) {
        return Status::invalid_argument(
            "batch: output " + std::to_string(img.width) + "x" + std::to_string(img.height) +
            " differs from the first image's; batches need do_center_crop or same-size inputs");
    }
    to_chw(img, lut, dst);
    return Status::ok_status();
}

size_t batch_item_size(const ImageProcessorConfig& cfg, int w, int h) {
    auto sz = cfg.output_size(w, h);
    return size_t(sz[0]) * sz[1] * 3;
}

}  // namespace

Result<std::vector<float>> preprocess_batch(const std::vector<io::Image>& images,
                                            const ImageProcessorConfig& cfg, ThreadPool* pool) {
    MF_RETURN_IF_ERROR(cfg.validate());
    if (images.empty()) return std::vector<float>{};
    const size_t per_item = batch_item_size(cfg, images[0].width, images[0].height);
    const auto lut = make_lut(cfg);
    return run_batch(images.size(), per_item, pool, [&](size_t i, float* dst) {
        return preprocess_into(images[i], cfg, lut, per_item, dst);
    });
}

Result<std::vector<float>> preprocess_files(const std::vector<fs::path>& paths,
                                            const ImageProcessorConfig& cfg, ThreadPool* pool) {
    MF_RETURN_IF_ERROR(cfg.validate());
    if (paths.empty()) return std::vector<float>{};
    if (!cfg.do_center_crop) {
        return Status::invalid_argument(
            "preprocess_files: needs do_center_crop (a fixed output size); decode the images and "
            "call preprocess() one by one");
    }
    const size_t per_item = batch_item_size(cfg, 1, 1);
    const auto lut = make_lut(cfg);
    return run_batch(paths.size(), per_item, pool, [&](size_t i, float* dst) -> Status {
        io::DecodeResult d = io::decode_image_file(paths[i]);
        if (!d.ok()) return decode_status(paths[i], d);
        return preprocess_into(d.image, cfg, lut, per_item, dst);
    });
}

}  // namespace mf::model
