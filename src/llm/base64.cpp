// Base64 (RFC 4648 section 4) and image data URLs for chat requests.

#include <algorithm>
#include <cmath>
#include <string>

#include "io/image.h"
#include "llm/client.h"

namespace mf::llm {

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int decode_char(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}
}  // namespace

std::string base64_encode(std::string_view bytes) {
    std::string out;
    out.resize((bytes.size() + 2) / 3 * 4);
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const size_t n = bytes.size();
    size_t i = 0, o = 0;
    for (; i + 3 <= n; i += 3) {
        const uint32_t v = (uint32_t(p[i]) << 16) | (uint32_t(p[i + 1]) << 8) | p[i + 2];
        out[o++] = kAlphabet[(v >> 18) & 63];
        out[o++] = kAlphabet[(v >> 12) & 63];
        out[o++] = kAlphabet[(v >> 6) & 63];
        out[o++] = kAlphabet[v & 63];
    }
    if (n - i == 1) {
        const uint32_t v = uint32_t(p[i]) << 16;
        out[o++] = kAlphabet[(v >> 18) & 63];
        out[o++] = kAlphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        const uint32_t v = (uint32_t(p[i]) << 16) | (uint32_t(p[i + 1]) << 8);
        out[o++] = kAlphabet[(v >> 18) & 63];
        out[o++] = kAlphabet[(v >> 12) & 63];
        out[o++] = kAlphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    return out;
}

Result<std::string> base64_decode(std::string_view text) {
    size_t len = text.size();
    size_t pad = 0;
    while (len > 0 && text[len - 1] == '=' && pad < 2) {
        --len;
        ++pad;
    }
    if (pad > 0 && (len + pad) % 4 != 0) {
        return Status::invalid_argument("base64: padding at offset " + std::to_string(len) +
                                        " does not complete a 4-character group");
    }
    if (len % 4 == 1) {
        return Status::invalid_argument("base64: length " + std::to_string(text.size()) +
                                        " leaves a single character in the last group");
    }
    std::string out;
    out.reserve(len / 4 * 3 + 2);
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; ++i) {
        const int d = decode_char(static_cast<unsigned char>(text[i]));
        if (d < 0) {
            return Status::invalid_argument("base64: invalid character at offset " +
                                            std::to_string(i));
        }
        acc = (acc << 6) | static_cast<uint32_t>(d);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xFF));
        }
    }
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
        return Status::invalid_argument("base64: non-zero trailing bits in the last group");
    }
    return out;
}

Result<std::string> image_data_url(const std::filesystem::path& image, int max_side,
                                   int jpeg_quality) {
    if (max_side < 1) return Status::invalid_argument("image_data_url: max_side must be >= 1");
    if (jpeg_quality < 1 || jpeg_quality > 100) {
        return Status::invalid_argument("image_data_url: jpeg_quality must be in 1..100");
    }
    io::DecodeResult dec = io::decode_image_file(image);
    if (!dec.ok()) {
        return Status::invalid_argument(image.string() + ": " +
                                        std::string(io::image_error_reason(dec.error)) + ": " +
                                        dec.detail);
    }
    io::Image img = std::move(dec.image);
    const int longer = std::max(img.width, img.height);
    if (longer > max_side) {
        const double scale = static_cast<double>(max_side) / longer;
        const int w =
            std::max(1, std::min(max_side, static_cast<int>(std::lround(img.width * scale))));
        const int h =
            std::max(1, std::min(max_side, static_cast<int>(std::lround(img.height * scale))));
        img = io::resize_image(img, w, h);
        if (img.pixels.empty()) {
            return Status::internal(image.string() + ": resize to " + std::to_string(w) + "x" +
                                    std::to_string(h) + " failed");
        }
    }
    std::string bytes = io::encode_jpeg(img, jpeg_quality);
    if (bytes.empty()) return Status::internal(image.string() + ": JPEG encoding failed");
    return "data:image/jpeg;base64," + base64_encode(bytes);
}

Result<ContentPart> image_file_part(const std::filesystem::path& image, int max_side,
                                    int jpeg_quality, std::string detail) {
    MF_ASSIGN_OR_RETURN(std::string url, image_data_url(image, max_side, jpeg_quality));
    return image_url_part(std::move(url), std::move(detail));
}

}  // namespace mf::llm
