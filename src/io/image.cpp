#include "io/image.h"

#include <fcntl.h>
#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
#include <sys/stat.h>
#include <tiffio.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <webp/decode.h>

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>

namespace mf::io {

std::string_view image_format_name(ImageFormat f) {
    switch (f) {
        case ImageFormat::kJpeg:
            return "jpeg";
        case ImageFormat::kPng:
            return "png";
        case ImageFormat::kGif:
            return "gif";
        case ImageFormat::kWebp:
            return "webp";
        case ImageFormat::kTiff:
            return "tiff";
        case ImageFormat::kBmp:
            return "bmp";
        case ImageFormat::kUnknown:
            break;
    }
    return "unknown";
}

std::string_view image_error_reason(ImageError e) {
    switch (e) {
        case ImageError::kOk:
            return "ok";
        case ImageError::kMissing:
            return "image_missing";
        case ImageError::kEmpty:
            return "image_empty";
        case ImageError::kUnreadable:
            return "image_unreadable";
        case ImageError::kUnsupported:
            return "image_unsupported";
        case ImageError::kCorrupt:
            return "image_corrupt";
        case ImageError::kTruncated:
            return "image_truncated";
        case ImageError::kTooLarge:
            return "image_too_large";
    }
    return "image_corrupt";
}

namespace {

// ---- byte sources: the probe reads through one so a file is read only where needed ----------

// Random access to the image bytes. read_at() returns how many bytes it copied (short at EOF).
class ByteSource {
  public:
    virtual ~ByteSource() = default;
    virtual uint64_t size() const = 0;
    virtual size_t read_at(uint64_t off, void* dst, size_t n) = 0;
    // Reads exactly n bytes or returns false (the data ends first).
    bool read_exact(uint64_t off, void* dst, size_t n) { return read_at(off, dst, n) == n; }
};

class MemorySource : public ByteSource {
  public:
    explicit MemorySource(std::string_view b) : b_(b) {}
    uint64_t size() const override { return b_.size(); }
    size_t read_at(uint64_t off, void* dst, size_t n) override {
        if (off >= b_.size()) return 0;
        size_t k = std::min<uint64_t>(n, b_.size() - off);
        std::memcpy(dst, b_.data() + off, k);
        return k;
    }

  private:
    std::string_view b_;
};

// A file: the first kHead bytes are read once; anything further (a JPEG with a large EXIF or ICC
// segment before its SOF) is fetched with pread.
class FileSource : public ByteSource {
  public:
    static constexpr size_t kHead = 16384;
    FileSource(int fd, uint64_t size) : fd_(fd), size_(size) {}
    bool load_head() {
        head_.resize(std::min<uint64_t>(kHead, size_));
        size_t got = 0;
        while (got < head_.size()) {
            ssize_t r = ::pread(fd_, head_.data() + got, head_.size() - got, got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) return false;
            got += static_cast<size_t>(r);
        }
        return true;
    }
    uint64_t size() const override { return size_; }
    size_t read_at(uint64_t off, void* dst, size_t n) override {
        if (off >= size_) return 0;
        n = std::min<uint64_t>(n, size_ - off);
        if (off + n <= head_.size()) {
            std::memcpy(dst, head_.data() + off, n);
            return n;
        }
        size_t got = 0;
        while (got < n) {
            ssize_t r = ::pread(fd_, static_cast<char*>(dst) + got, n - got, off + got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            got += static_cast<size_t>(r);
        }
        return got;
    }

  private:
    int fd_;
    uint64_t size_;
    std::string head_;
};

uint16_t be16(const uint8_t* p) {
    return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
uint16_t le16(const uint8_t* p) {
    return static_cast<uint16_t>(p[1] << 8 | p[0]);
}
uint32_t be32(const uint8_t* p) {
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
uint32_t le32(const uint8_t* p) {
    return uint32_t(p[3]) << 24 | uint32_t(p[2]) << 16 | uint32_t(p[1]) << 8 | p[0];
}
uint64_t le64(const uint8_t* p) {
    return uint64_t(le32(p + 4)) << 32 | le32(p);
}
uint64_t be64(const uint8_t* p) {
    return uint64_t(be32(p)) << 32 | be32(p + 4);
}

uint32_t crc32(const uint8_t* p, size_t n) {
    static const std::array<uint32_t, 256> table = [] {
        std::array<uint32_t, 256> t{};
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k)
                c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; ++i)
        c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

ProbeResult fail(ImageError e, std::string detail, ImageFormat f = ImageFormat::kUnknown) {
    ProbeResult r;
    r.error = e;
    r.detail = std::move(detail);
    r.info.format = f;
    return r;
}

ImageFormat sniff(const uint8_t* p, size_t n) {
    if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return ImageFormat::kJpeg;
    if (n >= 8 && std::memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0) return ImageFormat::kPng;
    if (n >= 6 && (std::memcmp(p, "GIF87a", 6) == 0 || std::memcmp(p, "GIF89a", 6) == 0))
        return ImageFormat::kGif;
    if (n >= 12 && std::memcmp(p, "RIFF", 4) == 0 && std::memcmp(p + 8, "WEBP", 4) == 0)
        return ImageFormat::kWebp;
    if (n >= 4 && (std::memcmp(p, "II*\0", 4) == 0 || std::memcmp(p, "MM\0*", 4) == 0 ||
                   std::memcmp(p, "II+\0", 4) == 0 || std::memcmp(p, "MM\0+", 4) == 0))
        return ImageFormat::kTiff;
    if (n >= 2 && p[0] == 'B' && p[1] == 'M') return ImageFormat::kBmp;
    return ImageFormat::kUnknown;
}

ProbeResult truncated_header(ImageFormat f) {
    return fail(ImageError::kTruncated,
                fmt::format("{} file ends inside its header", image_format_name(f)), f);
}

ProbeResult probe_jpeg(ByteSource& src) {
    const auto f = ImageFormat::kJpeg;
    uint64_t pos = 2;
    const uint64_t n = src.size();
    for (int segments = 0; segments < 100000; ++segments) {
        uint8_t m[2];
        if (!src.read_exact(pos, m, 2)) return truncated_header(f);
        if (m[0] != 0xFF)
            return fail(
                ImageError::kCorrupt,
                fmt::format("jpeg: expected a marker at byte {}, found 0x{:02x}", pos, m[0]), f);
        uint8_t marker = m[1];
        pos += 2;
        // Fill bytes: 0xFF repeated before a marker.
        while (marker == 0xFF) {
            if (!src.read_exact(pos, &marker, 1)) return truncated_header(f);
            ++pos;
        }
        if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) continue;  // no length
        if (marker == 0xD9 || marker == 0xDA)
            return fail(ImageError::kCorrupt,
                        fmt::format("jpeg: {} before any frame header (SOF)",
                                    marker == 0xD9 ? "end of image" : "scan data"),
                        f);
        uint8_t len_b[2];
        if (!src.read_exact(pos, len_b, 2)) return truncated_header(f);
        uint16_t len = be16(len_b);
        if (len < 2)
            return fail(ImageError::kCorrupt,
                        fmt::format("jpeg: segment 0x{:02x} at byte {} has length {}", marker,
                                    pos - 2, len),
                        f);
        bool sof =
            marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
        if (sof) {
            uint8_t h[6];
            if (!src.read_exact(pos + 2, h, 6)) return truncated_header(f);
            int height = be16(h + 1), width = be16(h + 3), comps = h[5];
            // Baseline, extended, progressive (Huffman or arithmetic) decode; lossless and
            // hierarchical (SOF3, 5-7, 11, 13-15) do not.
            bool supported = marker == 0xC0 || marker == 0xC1 || marker == 0xC2 || marker == 0xC9 ||
                             marker == 0xCA;
            if (!supported)
                return fail(ImageError::kUnsupported,
                            fmt::format("jpeg: frame type SOF{} (lossless/hierarchical) is not "
                                        "supported",
                                        marker - 0xC0),
                            f);
            if (width == 0 || height == 0)
                return fail(ImageError::kCorrupt,
                            fmt::format("jpeg: frame header gives size {}x{}", width, height), f);
            if (comps != 1 && comps != 3 && comps != 4)
                return fail(ImageError::kUnsupported,
                            fmt::format("jpeg: {} colour components", comps), f);
            ProbeResult r;
            r.info = {f, width, height};
            return r;
        }
        pos += len;
        if (pos > n) return truncated_header(f);
    }
    return fail(ImageError::kCorrupt, "jpeg: no frame header (SOF) found", f);
}

ProbeResult probe_png(ByteSource& src) {
    const auto f = ImageFormat::kPng;
    uint8_t h[33];
    if (!src.read_exact(0, h, 33)) return truncated_header(f);
    if (be32(h + 8) != 13 || std::memcmp(h + 12, "IHDR", 4) != 0)
        return fail(ImageError::kCorrupt, "png: first chunk is not a 13-byte IHDR", f);
    if (crc32(h + 12, 17) != be32(h + 29))
        return fail(ImageError::kCorrupt, "png: IHDR checksum (CRC) mismatch", f);
    uint32_t w = be32(h + 16), hh = be32(h + 20);
    int depth = h[24], ctype = h[25];
    if (w == 0 || hh == 0 || w > 0x7FFFFFFFu || hh > 0x7FFFFFFFu)
        return fail(ImageError::kCorrupt, fmt::format("png: IHDR gives size {}x{}", w, hh), f);
    bool valid_type = ctype == 0 || ctype == 2 || ctype == 3 || ctype == 4 || ctype == 6;
    bool valid_depth = depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
    if (!valid_type || !valid_depth)
        return fail(ImageError::kCorrupt,
                    fmt::format("png: invalid colour type {} / bit depth {}", ctype, depth), f);
    ProbeResult r;
    r.info = {f, static_cast<int>(std::min<uint32_t>(w, 0x7FFFFFFF)),
              static_cast<int>(std::min<uint32_t>(hh, 0x7FFFFFFF))};
    return r;
}

ProbeResult probe_gif(ByteSource& src) {
    const auto f = ImageFormat::kGif;
    uint8_t h[13];
    if (!src.read_exact(0, h, 13)) return truncated_header(f);
    int w = le16(h + 6), hh = le16(h + 8);
    if (w == 0 || hh == 0) {
        // Logical screen 0x0: fall back to the first image descriptor.
        uint64_t pos = 13;
        if (h[10] & 0x80) pos += 3u * (1u << ((h[10] & 7) + 1));  // global colour table
        for (int guard = 0; guard < 10000; ++guard) {
            uint8_t b;
            if (!src.read_exact(pos, &b, 1)) return truncated_header(f);
            if (b == 0x2C) {
                uint8_t d[9];
                if (!src.read_exact(pos + 1, d, 9)) return truncated_header(f);
                w = le16(d + 4);
                hh = le16(d + 6);
                break;
            }
            if (b != 0x21) return fail(ImageError::kCorrupt, "gif: no image descriptor", f);
            pos += 2;  // introducer + label, then sub-blocks
            for (;;) {
                uint8_t sz;
                if (!src.read_exact(pos, &sz, 1)) return truncated_header(f);
                pos += 1 + sz;
                if (sz == 0) break;
            }
        }
    }
    if (w == 0 || hh == 0)
        return fail(ImageError::kCorrupt, fmt::format("gif: size {}x{}", w, hh), f);
    ProbeResult r;
    r.info = {f, w, hh};
    return r;
}

ProbeResult probe_webp(ByteSource& src) {
    const auto f = ImageFormat::kWebp;
    uint8_t h[30];
    size_t got = src.read_at(0, h, sizeof h);
    if (got < 20) return truncated_header(f);
    const uint8_t* c = h + 12;
    if (std::memcmp(c, "VP8 ", 4) == 0) {
        if (got < 30) return truncated_header(f);
        const uint8_t* d = h + 20;
        if (d[3] != 0x9d || d[4] != 0x01 || d[5] != 0x2a)
            return fail(ImageError::kCorrupt, "webp: VP8 start code missing", f);
        int w = le16(d + 6) & 0x3FFF, hh = le16(d + 8) & 0x3FFF;
        if (w == 0 || hh == 0)
            return fail(ImageError::kCorrupt, fmt::format("webp: size {}x{}", w, hh), f);
        ProbeResult r;
        r.info = {f, w, hh};
        return r;
    }
    if (std::memcmp(c, "VP8L", 4) == 0) {
        if (got < 25) return truncated_header(f);
        const uint8_t* d = h + 20;
        if (d[0] != 0x2f) return fail(ImageError::kCorrupt, "webp: VP8L signature missing", f);
        uint32_t bits = le32(d + 1);
        int w = int(bits & 0x3FFF) + 1, hh = int((bits >> 14) & 0x3FFF) + 1;
        ProbeResult r;
        r.info = {f, w, hh};
        return r;
    }
    if (std::memcmp(c, "VP8X", 4) == 0) {
        if (got < 30) return truncated_header(f);
        const uint8_t* d = h + 24;
        int w = int(d[0] | d[1] << 8 | d[2] << 16) + 1;
        int hh = int(d[3] | d[4] << 8 | d[5] << 16) + 1;
        ProbeResult r;
        r.info = {f, w, hh};
        return r;
    }
    return fail(ImageError::kUnsupported,
                fmt::format("webp: unknown first chunk '{}'",
                            std::string(reinterpret_cast<const char*>(c), 4)),
                f);
}

ProbeResult probe_tiff(ByteSource& src) {
    const auto f = ImageFormat::kTiff;
    uint8_t h[16];
    if (!src.read_exact(0, h, 8)) return truncated_header(f);
    const bool le = h[0] == 'I';
    const bool big = (le ? le16(h + 2) : be16(h + 2)) == 43;
    auto u16 = [le](const uint8_t* p) { return le ? le16(p) : be16(p); };
    auto u32 = [le](const uint8_t* p) { return le ? le32(p) : be32(p); };
    auto u64 = [le](const uint8_t* p) { return le ? le64(p) : be64(p); };
    uint64_t ifd;
    if (big) {
        if (!src.read_exact(0, h, 16)) return truncated_header(f);
        ifd = u64(h + 8);
    } else {
        ifd = u32(h + 4);
    }
    if (ifd < 8) return fail(ImageError::kCorrupt, "tiff: invalid first IFD offset", f);
    uint8_t cnt_b[8];
    if (!src.read_exact(ifd, cnt_b, big ? 8 : 2)) return truncated_header(f);
    uint64_t count = big ? u64(cnt_b) : u16(cnt_b);
    if (count == 0 || count > 4096)
        return fail(ImageError::kCorrupt, fmt::format("tiff: IFD0 has {} entries", count), f);
    const size_t esz = big ? 20 : 12;
    std::vector<uint8_t> entries(count * esz);
    if (!src.read_exact(ifd + (big ? 8 : 2), entries.data(), entries.size()))
        return truncated_header(f);
    int64_t w = -1, hh = -1;
    for (uint64_t i = 0; i < count; ++i) {
        const uint8_t* e = entries.data() + i * esz;
        uint16_t tag = u16(e), type = u16(e + 2);
        if (tag != 256 && tag != 257) continue;
        const uint8_t* v = e + (big ? 12 : 8);
        int64_t val;
        if (type == 3)
            val = u16(v);
        else if (type == 4)
            val = u32(v);
        else if (type == 16)
            val = static_cast<int64_t>(std::min<uint64_t>(u64(v), INT64_MAX));
        else
            return fail(ImageError::kCorrupt,
                        fmt::format("tiff: size tag {} has type {}", tag, type), f);
        (tag == 256 ? w : hh) = val;
    }
    if (w <= 0 || hh <= 0)
        return fail(ImageError::kCorrupt, "tiff: IFD0 lacks ImageWidth/ImageLength", f);
    ProbeResult r;
    r.info = {f, static_cast<int>(std::min<int64_t>(w, INT32_MAX)),
              static_cast<int>(std::min<int64_t>(hh, INT32_MAX))};
    return r;
}

ProbeResult probe_bmp(ByteSource& src) {
    const auto f = ImageFormat::kBmp;
    uint8_t h[26];
    if (!src.read_exact(0, h, 18)) return truncated_header(f);
    uint32_t dib = le32(h + 14);
    int64_t w, hh;
    if (dib == 12) {
        if (!src.read_exact(0, h, 22)) return truncated_header(f);
        w = le16(h + 18);
        hh = le16(h + 20);
    } else if (dib >= 40 && dib <= 124) {
        if (!src.read_exact(0, h, 26)) return truncated_header(f);
        w = static_cast<int32_t>(le32(h + 18));
        hh = static_cast<int32_t>(le32(h + 22));
        if (hh < 0) hh = -hh;  // top-down
    } else {
        return fail(ImageError::kCorrupt, fmt::format("bmp: unknown info header size {}", dib), f);
    }
    if (w <= 0 || hh <= 0)
        return fail(ImageError::kCorrupt, fmt::format("bmp: size {}x{}", w, hh), f);
    ProbeResult r;
    r.info = {f, static_cast<int>(std::min<int64_t>(w, INT32_MAX)),
              static_cast<int>(std::min<int64_t>(hh, INT32_MAX))};
    return r;
}

ProbeResult probe_source(ByteSource& src, const ImageLimits& limits) {
    if (src.size() == 0) return fail(ImageError::kEmpty, "file is empty (0 bytes)");
    uint8_t magic[12];
    size_t got = src.read_at(0, magic, sizeof magic);
    ImageFormat f = sniff(magic, got);
    ProbeResult r;
    switch (f) {
        case ImageFormat::kJpeg:
            r = probe_jpeg(src);
            break;
        case ImageFormat::kPng:
            r = probe_png(src);
            break;
        case ImageFormat::kGif:
            r = probe_gif(src);
            break;
        case ImageFormat::kWebp:
            r = probe_webp(src);
            break;
        case ImageFormat::kTiff:
            r = probe_tiff(src);
            break;
        case ImageFormat::kBmp:
            r = probe_bmp(src);
            break;
        case ImageFormat::kUnknown: {
            // A file shorter than a signature it starts with: cut inside the magic bytes.
            static const std::string_view kMagics[] = {std::string_view("\xFF\xD8\xFF", 3),
                                                       std::string_view("\x89PNG\r\n\x1a\n", 8),
                                                       "GIF8",
                                                       "RIFF",
                                                       std::string_view("II*\0", 4),
                                                       std::string_view("MM\0*", 4)};
            for (std::string_view m : kMagics)
                if (got < m.size() && std::memcmp(magic, m.data(), got) == 0)
                    return fail(
                        ImageError::kTruncated,
                        fmt::format("file is only {} bytes, cut inside the signature", src.size()));
            std::string hex;
            for (size_t i = 0; i < std::min<size_t>(got, 8); ++i)
                hex += fmt::format("{:02x}", magic[i]);
            return fail(ImageError::kUnsupported,
                        fmt::format("not a JPEG/PNG/GIF/WebP/TIFF/BMP file (first bytes {})", hex));
        }
    }
    if (!r.ok()) return r;
    uint64_t pixels = uint64_t(r.info.width) * uint64_t(r.info.height);
    if (pixels > limits.max_pixels)
        return fail(ImageError::kTooLarge,
                    fmt::format("{}x{} = {} pixels, above the limit of {} (decompression bomb?)",
                                r.info.width, r.info.height, pixels, limits.max_pixels),
                    f);
    return r;
}

// Opens `path`, mapping failures to missing / unreadable.
struct OpenedFile {
    int fd = -1;
    uint64_t size = 0;
    ImageError error = ImageError::kOk;
    std::string detail;
    ~OpenedFile() {
        if (fd >= 0) ::close(fd);
    }
};

void open_file(const std::filesystem::path& path, OpenedFile& o) {
    o.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (o.fd < 0) {
        int err = errno;
        o.error =
            (err == ENOENT || err == ENOTDIR) ? ImageError::kMissing : ImageError::kUnreadable;
        o.detail = o.error == ImageError::kMissing
                       ? "file does not exist"
                       : fmt::format("cannot open: {}", std::strerror(err));
        return;
    }
    struct stat st;
    if (::fstat(o.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        o.error = ImageError::kUnreadable;
        o.detail = "not a regular file";
        return;
    }
    o.size = static_cast<uint64_t>(st.st_size);
}

}  // namespace

ProbeResult probe_image_bytes(std::string_view bytes, const ImageLimits& limits) {
    MemorySource src(bytes);
    return probe_source(src, limits);
}

ProbeResult probe_image_file(const std::filesystem::path& path, const ImageLimits& limits) {
    OpenedFile o;
    open_file(path, o);
    if (o.error != ImageError::kOk) return fail(o.error, o.detail);
    if (o.size == 0) return fail(ImageError::kEmpty, "file is empty (0 bytes)");
    FileSource src(o.fd, o.size);
    if (!src.load_head()) return fail(ImageError::kUnreadable, "read error");
    return probe_source(src, limits);
}

// ---- full decode ----------------------------------------------------------------------------

namespace {

DecodeResult dfail(ImageError e, std::string detail, ImageInfo info = {}) {
    DecodeResult r;
    r.error = e;
    r.detail = std::move(detail);
    r.info = info;
    return r;
}

inline uint8_t over_white(uint8_t c, uint8_t a) {
    return static_cast<uint8_t>((c * a + 255 * (255 - a) + 127) / 255);
}

// Converts `comps`-channel 8-bit pixels (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA) to RGB.
void to_rgb(const uint8_t* src, int comps, size_t n_pixels, std::vector<uint8_t>& out) {
    out.resize(n_pixels * 3);
    uint8_t* o = out.data();
    for (size_t i = 0; i < n_pixels; ++i, o += 3) {
        const uint8_t* s = src + i * comps;
        switch (comps) {
            case 1:
                o[0] = o[1] = o[2] = s[0];
                break;
            case 2:
                o[0] = o[1] = o[2] = over_white(s[0], s[1]);
                break;
            case 3:
                o[0] = s[0], o[1] = s[1], o[2] = s[2];
                break;
            default:
                o[0] = over_white(s[0], s[3]);
                o[1] = over_white(s[1], s[3]);
                o[2] = over_white(s[2], s[3]);
        }
    }
}

// One decompressor per thread. After any error or warning the handle is replaced: libjpeg state
// left over from a damaged file (e.g. a bogus Huffman table) would otherwise fail the next one.
struct TjHandle {
    tjhandle h = tjInitDecompress();
    ~TjHandle() {
        if (h) tjDestroy(h);
    }
    void reset() {
        if (h) tjDestroy(h);
        h = tjInitDecompress();
    }
};

DecodeResult decode_jpeg_with(tjhandle handle, std::string_view bytes, const ImageInfo& info,
                              bool& had_error);

DecodeResult decode_jpeg(std::string_view bytes, const ImageInfo& info) {
    thread_local TjHandle tj;
    if (!tj.h) tj.reset();
    if (!tj.h) return dfail(ImageError::kUnsupported, "libturbojpeg failed to initialise", info);
    bool had_error = false;
    DecodeResult r = decode_jpeg_with(tj.h, bytes, info, had_error);
    if (had_error) tj.reset();
    return r;
}

DecodeResult decode_jpeg_with(tjhandle handle, std::string_view bytes, const ImageInfo& info,
                              bool& had_error) {
    had_error = true;  // until the decode completes cleanly
    auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
    int w = 0, h = 0, subsamp = 0, cs = 0;
    if (tjDecompressHeader3(handle, data, bytes.size(), &w, &h, &subsamp, &cs) != 0)
        return dfail(ImageError::kCorrupt, fmt::format("jpeg header: {}", tjGetErrorStr2(handle)),
                     info);
    DecodeResult r;
    r.info = info;
    r.info.width = w;
    r.info.height = h;
    const bool cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
    std::vector<uint8_t> buf;
    const int pf = cmyk ? TJPF_CMYK : TJPF_RGB;
    const size_t bpp = cmyk ? 4 : 3;
    buf.resize(size_t(w) * h * bpp);
    int rc = tjDecompress2(handle, data, bytes.size(), buf.data(), w, 0, h, pf, TJFLAG_ACCURATEDCT);
    had_error = rc != 0;
    if (rc != 0) {
        std::string msg = tjGetErrorStr2(handle);
        bool warning = tjGetErrorCode(handle) == TJERR_WARNING;
        std::string lower = msg;
        std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
        if (lower.find("premature end") != std::string::npos)
            return dfail(ImageError::kTruncated, "jpeg: " + msg + " (file is cut short)", r.info);
        if (!warning) return dfail(ImageError::kCorrupt, "jpeg: " + msg, r.info);
        // Other warnings (e.g. extraneous bytes before a marker): the image decoded; keep it,
        // as libjpeg-based readers (Pillow) do.
    }
    if (cmyk) {
        // libjpeg's CMYK output of Adobe JPEGs is inverted: R = C*K/255 etc.
        r.image.pixels.resize(size_t(w) * h * 3);
        for (size_t i = 0, n = size_t(w) * h; i < n; ++i) {
            const uint8_t* s = buf.data() + 4 * i;
            uint8_t* o = r.image.pixels.data() + 3 * i;
            for (int c = 0; c < 3; ++c)
                o[c] = static_cast<uint8_t>((s[c] * s[3] + 127) / 255);
        }
    } else {
        r.image.pixels = std::move(buf);
    }
    r.image.width = w;
    r.image.height = h;
    return r;
}

// Walks PNG chunks: false when the data ends before IEND (a truncated file).
bool png_has_iend(std::string_view b) {
    auto* p = reinterpret_cast<const uint8_t*>(b.data());
    uint64_t pos = 8;
    while (pos + 8 <= b.size()) {
        uint32_t len = be32(p + pos);
        if (std::memcmp(p + pos + 4, "IEND", 4) == 0) return pos + 12 + len <= b.size();
        pos += 12ull + len;
    }
    return false;
}

DecodeResult decode_stb(std::string_view bytes, const ImageInfo& info) {
    int w = 0, h = 0, comps = 0;
    auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
    if (info.format == ImageFormat::kPng && !png_has_iend(bytes))
        return dfail(ImageError::kTruncated, "png: data ends before the IEND chunk", info);
    if (info.format == ImageFormat::kBmp) {
        // Uncompressed BMP: the pixel rows must all be present (stb would pad with zeros).
        auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
        if (bytes.size() >= 34 && le32(p + 14) >= 40 && le32(p + 30) == 0) {
            uint64_t bpp = le16(p + 28);
            uint64_t stride = (uint64_t(info.width) * bpp + 31) / 32 * 4;
            uint64_t need = le32(p + 10) + stride * uint64_t(info.height);
            if (need > bytes.size())
                return dfail(
                    ImageError::kTruncated,
                    fmt::format("bmp: pixel data needs {} bytes, file has {}", need, bytes.size()),
                    info);
        }
    }
    std::unique_ptr<stbi_uc, void (*)(void*)> px(
        stbi_load_from_memory(data, static_cast<int>(bytes.size()), &w, &h, &comps, 0),
        stbi_image_free);
    if (!px) {
        std::string why = stbi_failure_reason() ? stbi_failure_reason() : "unknown error";
        auto name = image_format_name(info.format);
        ImageError e = ImageError::kCorrupt;
        if (info.format == ImageFormat::kGif && bytes.back() != 0x3B) e = ImageError::kTruncated;
        if (info.format == ImageFormat::kBmp && bytes.size() >= 6 &&
            le32(reinterpret_cast<const uint8_t*>(bytes.data()) + 2) > bytes.size())
            e = ImageError::kTruncated;
        if (why.find("not supported") != std::string::npos ||
            why.find("unsupported") != std::string::npos)
            e = ImageError::kUnsupported;
        return dfail(e, fmt::format("{}: decoder says '{}'", name, why), info);
    }
    DecodeResult r;
    r.info = info;
    r.info.width = w;
    r.info.height = h;
    r.image.width = w;
    r.image.height = h;
    to_rgb(px.get(), comps, size_t(w) * h, r.image.pixels);
    return r;
}

DecodeResult decode_webp(std::string_view bytes, const ImageInfo& info) {
    auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
    WebPDecoderConfig config;
    if (!WebPInitDecoderConfig(&config))
        return dfail(ImageError::kUnsupported, "libwebp version mismatch", info);
    VP8StatusCode st = WebPGetFeatures(data, bytes.size(), &config.input);
    auto map = [&](VP8StatusCode s, const char* what) {
        ImageError e = s == VP8_STATUS_NOT_ENOUGH_DATA       ? ImageError::kTruncated
                       : s == VP8_STATUS_UNSUPPORTED_FEATURE ? ImageError::kUnsupported
                                                             : ImageError::kCorrupt;
        return dfail(e, fmt::format("webp {}: libwebp status {}", what, int(s)), info);
    };
    if (st != VP8_STATUS_OK) return map(st, "header");
    if (bytes.size() >= 8 && uint64_t(le32(data + 4)) + 8 > bytes.size())
        return dfail(ImageError::kTruncated, "webp: file shorter than its RIFF size", info);
    config.output.colorspace = MODE_RGBA;
    st = WebPDecode(data, bytes.size(), &config);
    if (st != VP8_STATUS_OK) {
        WebPFreeDecBuffer(&config.output);
        return map(st, "data");
    }
    DecodeResult r;
    r.info = info;
    int w = config.output.width, h = config.output.height;
    r.info.width = r.image.width = w;
    r.info.height = r.image.height = h;
    const auto& rgba = config.output.u.RGBA;
    std::vector<uint8_t> packed(size_t(w) * h * 4);
    for (int y = 0; y < h; ++y)
        std::memcpy(packed.data() + size_t(y) * w * 4, rgba.rgba + size_t(y) * rgba.stride,
                    size_t(w) * 4);
    WebPFreeDecBuffer(&config.output);
    to_rgb(packed.data(), 4, size_t(w) * h, r.image.pixels);
    return r;
}

struct TiffMem {
    std::string_view b;
    uint64_t pos = 0;
    std::string first_error;
};

tmsize_t tiff_read(thandle_t h, void* buf, tmsize_t n) {
    auto* m = static_cast<TiffMem*>(h);
    if (m->pos >= m->b.size()) return 0;
    size_t k = std::min<uint64_t>(static_cast<uint64_t>(n), m->b.size() - m->pos);
    std::memcpy(buf, m->b.data() + m->pos, k);
    m->pos += k;
    return static_cast<tmsize_t>(k);
}
tmsize_t tiff_write(thandle_t, void*, tmsize_t) {
    return 0;
}
toff_t tiff_seek(thandle_t h, toff_t off, int whence) {
    auto* m = static_cast<TiffMem*>(h);
    uint64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : m->b.size();
    m->pos = base + off;
    return m->pos;
}
int tiff_close(thandle_t) {
    return 0;
}
toff_t tiff_size(thandle_t h) {
    return static_cast<TiffMem*>(h)->b.size();
}
int tiff_map(thandle_t, void**, toff_t*) {
    return 0;
}
void tiff_unmap(thandle_t, void*, toff_t) {}

int tiff_on_error(TIFF*, void* user, const char* module, const char* fmt_, va_list ap) {
    auto* m = static_cast<TiffMem*>(user);
    if (m->first_error.empty()) {
        char buf[512];
        std::vsnprintf(buf, sizeof buf, fmt_, ap);
        m->first_error = buf;
    }
    return 1;  // handled: libtiff does not print
}
int tiff_on_warning(TIFF*, void*, const char*, const char*, va_list) {
    return 1;
}

DecodeResult decode_tiff(std::string_view bytes, const ImageInfo& info) {
    TiffMem mem{bytes, 0, {}};
    TIFFOpenOptions* opts = TIFFOpenOptionsAlloc();
    TIFFOpenOptionsSetErrorHandlerExtR(opts, tiff_on_error, &mem);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, tiff_on_warning, &mem);
    TIFF* tif = TIFFClientOpenExt("memory", "rm", &mem, tiff_read, tiff_write, tiff_seek,
                                  tiff_close, tiff_size, tiff_map, tiff_unmap, opts);
    TIFFOpenOptionsFree(opts);
    if (!tif) return dfail(ImageError::kCorrupt, "tiff: " + mem.first_error, info);
    std::unique_ptr<TIFF, void (*)(TIFF*)> guard(tif, TIFFClose);
    uint32_t w = 0, h = 0;
    TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
    if (w == 0 || h == 0) return dfail(ImageError::kCorrupt, "tiff: no image size", info);
    // Truncation: a strip or tile that points past the end of the data.
    {
        const bool tiled = TIFFIsTiled(tif);
        uint64_t *offs = nullptr, *counts = nullptr;
        uint32_t n = tiled ? TIFFNumberOfTiles(tif) : TIFFNumberOfStrips(tif);
        TIFFGetField(tif, tiled ? TIFFTAG_TILEOFFSETS : TIFFTAG_STRIPOFFSETS, &offs);
        TIFFGetField(tif, tiled ? TIFFTAG_TILEBYTECOUNTS : TIFFTAG_STRIPBYTECOUNTS, &counts);
        if (offs && counts)
            for (uint32_t i = 0; i < n; ++i)
                if (offs[i] + counts[i] > bytes.size())
                    return dfail(
                        ImageError::kTruncated,
                        fmt::format("tiff: {} {} extends to byte {}, file has {}",
                                    tiled ? "tile" : "strip", i, offs[i] + counts[i], bytes.size()),
                        info);
    }
    std::vector<uint32_t> raster(size_t(w) * h);
    if (!TIFFReadRGBAImageOriented(tif, w, h, raster.data(), ORIENTATION_TOPLEFT, 1)) {
        std::string why = mem.first_error.empty() ? "cannot read image data" : mem.first_error;
        ImageError e = (why.find("not supported") != std::string::npos ||
                        why.find("Sorry") != std::string::npos)
                           ? ImageError::kUnsupported
                           : ImageError::kCorrupt;
        return dfail(e, "tiff: " + why, info);
    }
    DecodeResult r;
    r.info = info;
    r.info.width = r.image.width = int(w);
    r.info.height = r.image.height = int(h);
    r.image.pixels.resize(size_t(w) * h * 3);
    for (size_t i = 0; i < raster.size(); ++i) {
        uint32_t p = raster[i];
        uint8_t a = TIFFGetA(p);
        uint8_t* o = r.image.pixels.data() + 3 * i;
        // TIFFReadRGBAImage returns alpha premultiplied (it premultiplies unassociated alpha
        // too), so compositing on white is c + (255 - a).
        o[0] = static_cast<uint8_t>(std::min<int>(255, int(TIFFGetR(p)) + 255 - a));
        o[1] = static_cast<uint8_t>(std::min<int>(255, int(TIFFGetG(p)) + 255 - a));
        o[2] = static_cast<uint8_t>(std::min<int>(255, int(TIFFGetB(p)) + 255 - a));
    }
    return r;
}

}  // namespace

DecodeResult decode_image_bytes(std::string_view bytes, const ImageLimits& limits) {
    ProbeResult p = probe_image_bytes(bytes, limits);
    if (!p.ok()) return dfail(p.error, p.detail, p.info);
    switch (p.info.format) {
        case ImageFormat::kJpeg:
            return decode_jpeg(bytes, p.info);
        case ImageFormat::kPng:
        case ImageFormat::kGif:
        case ImageFormat::kBmp:
            return decode_stb(bytes, p.info);
        case ImageFormat::kWebp:
            return decode_webp(bytes, p.info);
        case ImageFormat::kTiff:
            return decode_tiff(bytes, p.info);
        case ImageFormat::kUnknown:
            break;
    }
    return dfail(ImageError::kUnsupported, "unknown format", p.info);
}

DecodeResult decode_image_file(const std::filesystem::path& path, const ImageLimits& limits) {
    OpenedFile o;
    open_file(path, o);
    if (o.error != ImageError::kOk) return dfail(o.error, o.detail);
    if (o.size == 0) return dfail(ImageError::kEmpty, "file is empty (0 bytes)");
    // Header first, so a bomb is rejected before the whole file is read.
    {
        FileSource src(o.fd, o.size);
        if (!src.load_head()) return dfail(ImageError::kUnreadable, "read error");
        ProbeResult p = probe_source(src, limits);
        if (!p.ok()) return dfail(p.error, p.detail, p.info);
    }
    std::string bytes(o.size, '\0');
    size_t got = 0;
    while (got < bytes.size()) {
        ssize_t r = ::pread(o.fd, bytes.data() + got, bytes.size() - got, got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0)
            return dfail(ImageError::kUnreadable,
                         fmt::format("read error: {}", std::strerror(errno)));
        if (r == 0) break;
        got += static_cast<size_t>(r);
    }
    bytes.resize(got);
    return decode_image_bytes(bytes, limits);
}

Image resize_image(const Image& in, int out_w, int out_h) {
    Image out;
    if (out_w <= 0 || out_h <= 0 || in.width <= 0 || in.height <= 0 ||
        in.pixels.size() != size_t(in.width) * in.height * 3)
        return out;
    out.width = out_w;
    out.height = out_h;
    out.pixels.resize(size_t(out_w) * out_h * 3);
    stbir_resize_uint8_generic(in.pixels.data(), in.width, in.height, in.width * 3,
                               out.pixels.data(), out_w, out_h, out_w * 3, 3,
                               STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_CLAMP,
                               STBIR_FILTER_CATMULLROM, STBIR_COLORSPACE_LINEAR, nullptr);
    return out;
}

std::string encode_jpeg(const Image& image, int quality, bool subsample_420) {
    if (image.width <= 0 || image.height <= 0 ||
        image.pixels.size() != static_cast<size_t>(image.width) * image.height * 3)
        return {};
    tjhandle tj = tjInitCompress();
    if (!tj) return {};
    unsigned char* buf = nullptr;
    unsigned long size = 0;
    int rc = tjCompress2(tj, image.pixels.data(), image.width, image.width * 3, image.height,
                         TJPF_RGB, &buf, &size, subsample_420 ? TJSAMP_420 : TJSAMP_444, quality,
                         TJFLAG_ACCURATEDCT);
    std::string out;
    if (rc == 0) out.assign(reinterpret_cast<const char*>(buf), size);
    tjFree(buf);
    tjDestroy(tj);
    return out;
}

}  // namespace mf::io
