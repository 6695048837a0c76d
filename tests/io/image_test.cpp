// Image probe and decode: every format round-trips through its encoder, bad files (empty,
// random, truncated at several cut points, corrupt headers, decompression bombs) get the right
// reason code, and the probe agrees with full decode (and with stb's own header reader) on every
// real file in ../shared/data.
#include "io/image.h"

#include <gtest/gtest.h>
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#include <tiffio.h>
#include <turbojpeg.h>
#include <webp/encode.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <random>

#include "io/file.h"
#include "test_util.h"

namespace mf::io {
namespace {

using mf::test::TempDir;
namespace fs = std::filesystem;

Image pattern(int w, int h, bool noisy = false) {
    Image im;
    im.width = w;
    im.height = h;
    im.pixels.resize(size_t(w) * h * 3);
    std::mt19937 rng(w * 31 + h);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            uint8_t* p = im.pixels.data() + (size_t(y) * w + x) * 3;
            p[0] = uint8_t(x * 255 / std::max(1, w - 1));
            p[1] = uint8_t(y * 255 / std::max(1, h - 1));
            p[2] = noisy ? uint8_t(rng()) : uint8_t((x + y) & 0xFF);
        }
    return im;
}

void write_bytes(const fs::path& p, std::string_view b) {
    ASSERT_TRUE(write_file_atomic(p, b).ok());
}

void append_to_string(void* ctx, void* data, int size) {
    static_cast<std::string*>(ctx)->append(static_cast<char*>(data), size_t(size));
}

std::string png_bytes(const Image& im, int comps = 3, const uint8_t* data = nullptr) {
    std::string s;
    stbi_write_png_to_func(append_to_string, &s, im.width, im.height, comps,
                           data ? data : im.pixels.data(), im.width * comps);
    return s;
}

std::string jpeg_bytes(const Image& im, int quality = 95) {
    std::string s = encode_jpeg(im, quality, /*subsample_420=*/false);
    EXPECT_FALSE(s.empty());
    return s;
}

std::string bmp_bytes(const Image& im) {
    std::string out;
    stbi_write_bmp_to_func(append_to_string, &out, im.width, im.height, 3, im.pixels.data());
    return out;
}

std::string webp_bytes(const Image& im, bool lossless) {
    uint8_t* out = nullptr;
    size_t n =
        lossless ? WebPEncodeLosslessRGB(im.pixels.data(), im.width, im.height, im.width * 3, &out)
                 : WebPEncodeRGB(im.pixels.data(), im.width, im.height, im.width * 3, 90, &out);
    std::string s(reinterpret_cast<char*>(out), n);
    WebPFree(out);
    return s;
}

void write_tiff(const fs::path& p, const Image& im, bool big_endian) {
    TIFF* t = TIFFOpen(p.c_str(), big_endian ? "wb" : "wl");
    ASSERT_NE(t, nullptr);
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, uint32_t(im.width));
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, uint32_t(im.height));
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 3);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 8);
    for (int y = 0; y < im.height; ++y)
        ASSERT_EQ(
            TIFFWriteScanline(t, const_cast<uint8_t*>(im.pixels.data()) + size_t(y) * im.width * 3,
                              uint32_t(y), 0),
            1);
    TIFFClose(t);
}

// A 3x2 GIF87a with a 2-entry global palette, hand-assembled (LZW min code size 2).
std::string tiny_gif() {
    const unsigned char g[] = {
        'G',  'I', 'F',  '8',  '7',  'a',  3, 0, 2, 0, 0x80, 0, 0,  // screen 3x2, GCT 2 entries
        0,    0,   0,    255,  255,  255,                           // palette: black, white
        0x2C, 0,   0,    0,    0,    3,    0, 2, 0, 0,              // image descriptor 3x2
        2,    4,   0x44, 0x10, 0x10, 0x05, 0,  // LZW: clear,0,1,0 (3 bits) 1,0,1,end (4 bits)
        0x3B};
    return std::string(reinterpret_cast<const char*>(g), sizeof g);
}

double mean_abs_diff(const Image& a, const Image& b) {
    if (a.pixels.size() != b.pixels.size()) return 1e9;
    double s = 0;
    for (size_t i = 0; i < a.pixels.size(); ++i)
        s += std::abs(int(a.pixels[i]) - int(b.pixels[i]));
    return s / double(a.pixels.size());
}

// ---- reason codes ---------------------------------------------------------------------------

TEST(ImageReason, StableCodes) {
    EXPECT_EQ(image_error_reason(ImageError::kMissing), "image_missing");
    EXPECT_EQ(image_error_reason(ImageError::kEmpty), "image_empty");
    EXPECT_EQ(image_error_reason(ImageError::kUnreadable), "image_unreadable");
    EXPECT_EQ(image_error_reason(ImageError::kUnsupported), "image_unsupported");
    EXPECT_EQ(image_error_reason(ImageError::kCorrupt), "image_corrupt");
    EXPECT_EQ(image_error_reason(ImageError::kTruncated), "image_truncated");
    EXPECT_EQ(image_error_reason(ImageError::kTooLarge), "image_too_large");
}

TEST(ImageBad, MissingEmptyDirectoryRandom) {
    TempDir dir;
    EXPECT_EQ(probe_image_file(dir / "nope.png").error, ImageError::kMissing);
    EXPECT_EQ(decode_image_file(dir / "nope.png").error, ImageError::kMissing);
    write_bytes(dir / "empty.jpg", "");
    EXPECT_EQ(probe_image_file(dir / "empty.jpg").error, ImageError::kEmpty);
    EXPECT_EQ(decode_image_file(dir / "empty.jpg").error, ImageError::kEmpty);
    EXPECT_EQ(probe_image_bytes("").error, ImageError::kEmpty);
    EXPECT_EQ(probe_image_file(dir.path()).error, ImageError::kUnreadable);
    std::mt19937 rng(7);
    for (int trial = 0; trial < 50; ++trial) {
        std::string junk(1 + rng() % 5000, '\0');
        for (auto& c : junk)
            c = char(rng());
        if (junk[0] == char(0xFF) || junk[0] == char(0x89) || junk[0] == 'G' || junk[0] == 'R' ||
            junk[0] == 'I' || junk[0] == 'M' || junk[0] == 'B')
            junk[0] = 'x';
        auto p = probe_image_bytes(junk);
        EXPECT_EQ(p.error, ImageError::kUnsupported) << p.detail;
        EXPECT_EQ(decode_image_bytes(junk).error, ImageError::kUnsupported);
    }
    write_bytes(dir / "text.png", "hello, this is not a png");
    EXPECT_EQ(decode_image_file(dir / "text.png").error, ImageError::kUnsupported);
}

TEST(ImageBad, RandomBytesAfterValidMagicNeverCrash) {
    std::mt19937 rng(11);
    const std::vector<std::string> magics = {"\xFF\xD8\xFF",
                                             std::string("\x89PNG\r\n\x1a\n", 8),
                                             "GIF89a",
                                             "RIFF\x10\0\0\0WEBPVP8 ",
                                             std::string("II*\0", 4),
                                             std::string("MM\0*", 4),
                                             "BM"};
    for (const auto& m : magics)
        for (int trial = 0; trial < 40; ++trial) {
            std::string b = m + std::string(rng() % 400, '\0');
            for (size_t i = m.size(); i < b.size(); ++i)
                b[i] = char(rng());
            auto d = decode_image_bytes(b, ImageLimits{1u << 22});
            EXPECT_NE(d.error, ImageError::kOk) << "magic " << m.size();
            EXPECT_FALSE(d.detail.empty());
        }
}

// ---- each format round-trips ------------------------------------------------------------------

TEST(ImageFormats, PngExact) {
    TempDir dir;
    Image im = pattern(37, 23, true);
    write_bytes(dir / "a.png", png_bytes(im));
    auto p = probe_image_file(dir / "a.png");
    ASSERT_TRUE(p.ok()) << p.detail;
    EXPECT_EQ(p.info.format, ImageFormat::kPng);
    EXPECT_EQ(p.info.width, 37);
    EXPECT_EQ(p.info.height, 23);
    auto d = decode_image_file(dir / "a.png");
    ASSERT_TRUE(d.ok()) << d.detail;
    EXPECT_EQ(d.image.pixels, im.pixels);
}

TEST(ImageFormats, PngGreyAndAlphaOnWhite) {
    std::vector<uint8_t> grey = {0, 128, 255, 7};
    Image g2{2, 2, {}};
    auto d = decode_image_bytes(png_bytes(g2, 1, grey.data()));
    ASSERT_TRUE(d.ok()) << d.detail;
    EXPECT_EQ(d.image.pixels,
              (std::vector<uint8_t>{0, 0, 0, 128, 128, 128, 255, 255, 255, 7, 7, 7}));
    // RGBA: opaque red, transparent black (-> white), half-transparent black (-> ~128).
    std::vector<uint8_t> rgba = {255, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 128};
    Image r{3, 1, {}};
    d = decode_image_bytes(png_bytes(r, 4, rgba.data()));
    ASSERT_TRUE(d.ok()) << d.detail;
    EXPECT_EQ(d.image.pixels, (std::vector<uint8_t>{255, 0, 0, 255, 255, 255, 127, 127, 127}));
}

TEST(ImageFormats, JpegCloseToSource) {
    TempDir dir;
    Image im = pattern(64, 48);
    write_bytes(dir / "a.jpg", jpeg_bytes(im));
    auto p = probe_image_file(dir / "a.jpg");
    ASSERT_TRUE(p.ok()) << p.detail;
    EXPECT_EQ(p.info.format, ImageFormat::kJpeg);
    EXPECT_EQ(p.info.width, 64);
    EXPECT_EQ(p.info.height, 48);
    auto d = decode_image_file(dir / "a.jpg");
    ASSERT_TRUE(d.ok()) << d.detail;
    EXPECT_LT(mean_abs_diff(d.image, im), 3.0);
}

TEST(ImageFormats, JpegCmykUsesAdobeInvertedConvention) {
    // tjCompress2 from CMYK writes a 4-component (YCCK) JPEG; values are stored as given, which
    // for Adobe files means inverted: 255 = no ink. Red = no cyan ink, full magenta + yellow.
    const int w = 16, h = 8;
    std::vector<uint8_t> cmyk(size_t(w) * h * 4);
    for (int i = 0; i < w * h; ++i) {
        bool left = (i % w) < w / 2;
        uint8_t* p = cmyk.data() + 4 * i;
        p[0] = 255, p[1] = left ? 0 : 255, p[2] = left ? 0 : 255, p[3] = 255;  // red | white
    }
    tjhandle c = tjInitCompress();
    unsigned char* buf = nullptr;
    unsigned long size = 0;
    ASSERT_EQ(tjCompress2(c, cmyk.data(), w, 0, h, TJPF_CMYK, &buf, &size, TJSAMP_444, 100, 0), 0);
    std::string j(reinterpret_cast<char*>(buf), size);
    tjFree(buf);
    tjDestroy(c);
    auto d = decode_image_bytes(j);
    ASSERT_TRUE(d.ok()) << d.detail;
    ASSERT_EQ(d.image.width, w);
    const uint8_t* red = d.image.pixels.data() + 3 * (w * 4 + 2);
    const uint8_t* white = d.image.pixels.data() + 3 * (w * 4 + w - 2);
    EXPECT_GT(red[0], 240);
    EXPECT_LT(red[1], 15);
    EXPECT_LT(red[2], 15);
    EXPECT_GT(white[0], 240);
    EXPECT_GT(white[1], 240);
    EXPECT_GT(white[2], 240);
}

TEST(ImageFormats, JpegSofAfterLargeAppSegment) {
    // A 60 KB APP2 segment before the frame header: the probe must read past its first block.
    Image im = pattern(40, 30);
    std::string j = jpeg_bytes(im);
    std::string app(60000, 'x');
    std::string seg = "\xFF\xE2";
    seg += char((app.size() + 2) >> 8);
    seg += char((app.size() + 2) & 0xFF);
    seg += app;
    j.insert(2, seg);
    TempDir dir;
    write_bytes(dir / "big_app.jpg", j);
    auto p = probe_image_file(dir / "big_app.jpg");
    ASSERT_TRUE(p.ok()) << p.detail;
    EXPECT_EQ(p.info.width, 40);
    EXPECT_EQ(p.info.height, 30);
    EXPECT_TRUE(decode_image_file(dir / "big_app.jpg").ok());
}

TEST(ImageFormats, BmpExact) {
    Image im = pattern(13, 9, true);
    std::string b = bmp_bytes(im);
    auto p = probe_image_bytes(b);
    ASSERT_TRUE(p.ok()) << p.detail;
    EXPECT_EQ(p.info.format, ImageFormat::kBmp);
    EXPECT_EQ(p.info.width, 13);
    EXPECT_EQ(p.info.height, 9);
    auto d = decode_image_bytes(b);
    ASSERT_TRUE(d.ok()) << d.detail;
    EXPECT_EQ(d.image.pixels, im.pixels);
    // Truncated pixel data.
    auto t = decode_image_bytes(std::string_view(b).substr(0, b.size() / 2));
    EXPECT_EQ(t.error, ImageError::kTruncated) << t.detail;
}

TEST(ImageFormats, GifTiny) {
    std::string g = tiny_gif();
    auto p = probe_image_bytes(g);
    ASSERT_TRUE(p.ok()) << p.detail;
    EXPECT_EQ(p.info.format, ImageFormat::kGif);
    EXPECT_EQ(p.info.width, 3);
    EXPECT_EQ(p.info.height, 2);
    auto d = decode_image_bytes(g);
    ASSERT_TRUE(d.ok()) << d.detail;
    // Palette indices 0,1,0 / 1,0,1.
    std::vector<uint8_t> want = {0,   0,   0,   255, 255, 255, 0,   0,   0,
                                 255, 255, 255, 0,   0,   0,   255, 255, 255};
    EXPECT_EQ(d.image.pixels, want);
    EXPECT_EQ(probe_image_bytes(g.substr(0, 8)).error, ImageError::kTruncated);
}

TEST(ImageFormats, WebpLossyAndLossless) {
    Image im = pattern(50, 20, true);
    std::string lossless = webp_bytes(im, true);
    auto p = probe_image_bytes(lossless);
    ASSERT_TRUE(p.ok()) << p.detail;
    EXPECT_EQ(p.info.format, ImageFormat::kWebp);
    EXPECT_EQ(p.info.width, 50);
    EXPECT_EQ(p.info.height, 20);
    auto d = decode_image_bytes(lossless);
    ASSERT_TRUE(d.ok()) << d.detail;
    EXPECT_EQ(d.image.pixels, im.pixels);

    Image smooth = pattern(64, 40);
    std::string lossy = webp_bytes(smooth, false);
    p = probe_image_bytes(lossy);
    ASSERT_TRUE(p.ok()) << p.detail;
    EXPECT_EQ(p.info.width, 64);
    EXPECT_EQ(p.info.height, 40);
    d = decode_image_bytes(lossy);
    ASSERT_TRUE(d.ok()) << d.detail;
    EXPECT_LT(mean_abs_diff(d.image, smooth), 6.0);
    auto t = decode_image_bytes(std::string_view(lossy).substr(0, lossy.size() * 2 / 3));
    EXPECT_EQ(t.error, ImageError::kTruncated) << t.detail;
}

TEST(ImageFormats, TiffBothByteOrders) {
    TempDir dir;
    Image im = pattern(21, 17, true);
    for (bool be : {false, true}) {
        fs::path p = dir / (be ? "be.tif" : "le.tif");
        write_tiff(p, im, be);
        auto pr = probe_image_file(p);
        ASSERT_TRUE(pr.ok()) << pr.detail;
        EXPECT_EQ(pr.info.format, ImageFormat::kTiff);
        EXPECT_EQ(pr.info.width, 21);
        EXPECT_EQ(pr.info.height, 17);
        auto d = decode_image_file(p);
        ASSERT_TRUE(d.ok()) << d.detail;
        EXPECT_EQ(d.image.pixels, im.pixels) << (be ? "big-endian" : "little-endian");
        auto bytes = read_file(p);
        ASSERT_TRUE(bytes.ok());
        auto t = decode_image_bytes(std::string_view(*bytes).substr(0, bytes->size() / 2));
        EXPECT_EQ(t.error, ImageError::kTruncated) << t.detail;
    }
}

// ---- truncation -------------------------------------------------------------------------------

TEST(ImageTruncated, JpegAtSeveralCutPoints) {
    std::string j = jpeg_bytes(pattern(120, 90, true));
    ASSERT_TRUE(decode_image_bytes(j).ok());
    for (double frac : {0.3, 0.5, 0.8, 0.95}) {
        auto d = decode_image_bytes(std::string_view(j).substr(0, size_t(j.size() * frac)));
        EXPECT_EQ(d.error, ImageError::kTruncated) << frac << ": " << d.detail;
    }
    // Only the end-of-image marker missing.
    auto d = decode_image_bytes(std::string_view(j).substr(0, j.size() - 2));
    EXPECT_EQ(d.error, ImageError::kTruncated) << d.detail;
    // Cut inside the header (before the frame header).
    auto h = probe_image_bytes(std::string_view(j).substr(0, 30));
    EXPECT_EQ(h.error, ImageError::kTruncated) << h.detail;
}

TEST(ImageCorrupt, DamagedJpegDoesNotPoisonTheNextDecode) {
    // The decoder handle is reused per thread: a bogus Huffman table in one file must not make
    // the next, valid file fail.
    std::string good = jpeg_bytes(pattern(64, 48, true));
    std::string bad = good;
    size_t dht = bad.find("\xFF\xC4");
    ASSERT_NE(dht, std::string::npos);
    for (size_t i = dht + 5; i < dht + 40; ++i)
        bad[i] = char(0xFF);
    EXPECT_FALSE(decode_image_bytes(bad).ok());
    auto d = decode_image_bytes(good);
    EXPECT_TRUE(d.ok()) << d.detail;
}

TEST(ImageTruncated, PngAtSeveralCutPoints) {
    std::string p = png_bytes(pattern(120, 90, true));
    for (size_t cut :
         {size_t(20), size_t(40), p.size() / 2, p.size() * 9 / 10, p.size() - 12, p.size() - 1}) {
        auto d = decode_image_bytes(std::string_view(p).substr(0, cut));
        EXPECT_EQ(d.error, ImageError::kTruncated) << cut << " of " << p.size() << ": " << d.detail;
    }
}

// ---- corrupt headers and bombs ---------------------------------------------------------------

std::string png_header(uint32_t w, uint32_t h, bool good_crc = true) {
    std::string s("\x89PNG\r\n\x1a\n", 8);
    std::string ihdr = "IHDR";
    for (uint32_t v : {w, h})
        for (int k = 3; k >= 0; --k)
            ihdr += char((v >> (8 * k)) & 0xFF);
    ihdr += std::string("\x08\x02\x00\x00\x00", 5);
    s += std::string("\0\0\0\x0d", 4) + ihdr;
    // CRC-32 (reference bitwise implementation).
    uint32_t c = 0xFFFFFFFF;
    for (unsigned char b : ihdr) {
        c ^= b;
        for (int k = 0; k < 8; ++k)
            c = (c & 1) ? 0xEDB88320 ^ (c >> 1) : c >> 1;
    }
    c ^= 0xFFFFFFFF;
    if (!good_crc) c ^= 1;
    for (int k = 3; k >= 0; --k)
        s += char((c >> (8 * k)) & 0xFF);
    return s;
}

TEST(ImageBomb, PngAndJpegHeadersClaimingHugeSizes) {
    TempDir dir;
    std::string png = png_header(100000, 100000);
    png += std::string(1000, '\0');
    write_bytes(dir / "bomb.png", png);
    // JPEG: SOI + SOF0 65535x65535 (the format's maximum) + garbage.
    std::string jpg = "\xFF\xD8\xFF\xC0";
    jpg += std::string("\x00\x11\x08\xFF\xFF\xFF\xFF\x03\x01\x11\x00\x02\x11\x01\x03\x11\x01", 17);
    jpg += std::string(1000, '\0');
    write_bytes(dir / "bomb.jpg", jpg);
    for (const char* name : {"bomb.png", "bomb.jpg"}) {
        auto t0 = std::chrono::steady_clock::now();
        auto p = probe_image_file(dir / name);
        auto d = decode_image_file(dir / name);
        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                        .count();
        EXPECT_EQ(p.error, ImageError::kTooLarge) << name << ": " << p.detail;
        EXPECT_EQ(d.error, ImageError::kTooLarge) << name << ": " << d.detail;
        EXPECT_TRUE(d.image.pixels.empty());
        EXPECT_LT(ms, 50.0) << name << " took " << ms << " ms: it must not decode";
    }
    // The limit is configurable: a 64x48 image is too large under a 1000-pixel limit.
    auto small = decode_image_bytes(png_bytes(pattern(64, 48)), ImageLimits{1000});
    EXPECT_EQ(small.error, ImageError::kTooLarge);
    EXPECT_TRUE(decode_image_bytes(png_bytes(pattern(64, 48)), ImageLimits{64 * 48}).ok());
}

TEST(ImageCorrupt, BadHeaders) {
    EXPECT_EQ(probe_image_bytes(png_header(10, 10, false)).error, ImageError::kCorrupt);
    EXPECT_EQ(probe_image_bytes(png_header(0, 10)).error, ImageError::kCorrupt);
    EXPECT_TRUE(probe_image_bytes(png_header(10, 10)).ok());
    // JPEG whose first segment after SOI is not a marker.
    EXPECT_EQ(probe_image_bytes(std::string("\xFF\xD8\xFF\xE0\x00\x04\x00\x00\x12\x34", 10)).error,
              ImageError::kCorrupt);
    // JPEG with scan data before any frame header.
    EXPECT_EQ(probe_image_bytes(std::string("\xFF\xD8\xFF\xDA\x00\x02", 6)).error,
              ImageError::kCorrupt);
    // Lossless JPEG (SOF3) is reported as unsupported.
    std::string sof3 = "\xFF\xD8\xFF\xC3";
    sof3 += std::string("\x00\x0b\x08\x00\x10\x00\x10\x01\x01\x11\x00", 11);
    EXPECT_EQ(probe_image_bytes(sof3).error, ImageError::kUnsupported);
    // PNG with valid header but garbage image data and an IEND: corrupt, not truncated.
    std::string p = png_header(8, 8);
    p += std::string("\0\0\0\x04IDAT\x01\x02\x03\x04\0\0\0\0", 16);
    p += std::string("\0\0\0\0IEND\xae\x42\x60\x82", 12);
    EXPECT_EQ(decode_image_bytes(p).error, ImageError::kCorrupt);
}

TEST(ImageResize, ConstantStaysConstantAndSameSizeIsIdentity) {
    Image flat{500, 300, std::vector<uint8_t>(500 * 300 * 3, 77)};
    Image r = resize_image(flat, 336, 336);
    ASSERT_EQ(r.pixels.size(), 336u * 336 * 3);
    for (uint8_t v : r.pixels)
        ASSERT_EQ(v, 77);
    Image im = pattern(40, 30, true);
    EXPECT_EQ(resize_image(im, 40, 30).pixels, im.pixels);
    // Downsampling a 2x2 checkerboard of 4x4 blocks averages towards mid-grey at 1x1.
    Image two{2, 1, {0, 0, 0, 255, 255, 255}};
    Image one = resize_image(two, 1, 1);
    ASSERT_EQ(one.pixels.size(), 3u);
    EXPECT_NEAR(one.pixels[0], 127, 2);
    EXPECT_TRUE(resize_image(Image{}, 10, 10).pixels.empty());
    EXPECT_TRUE(resize_image(im, 0, 10).pixels.empty());
}

// ---- real files ------------------------------------------------------------------------------

TEST(ImageReal, ProbeMatchesDecodeAndStbOnSharedData) {
    fs::path data = mf::test::shared_data();
    if (!fs::exists(data)) GTEST_SKIP() << "no " << data;
    size_t checked = 0;
    for (const char* sub : {"vqa_rad/images", "medicat_sample/figures", "mmmu/images",
                            "llava_med/examples", "nonmedical/charts", "nonmedical/photos"}) {
        auto files = list_files(data / sub, {".jpg", ".jpeg", ".png"});
        ASSERT_TRUE(files.ok());
        for (const auto& f : *files) {
            auto p = probe_image_file(f);
            ASSERT_TRUE(p.ok()) << f << ": " << p.detail;
            auto d = decode_image_file(f);
            ASSERT_TRUE(d.ok()) << f << ": " << d.detail;
            EXPECT_EQ(p.info.width, d.image.width) << f;
            EXPECT_EQ(p.info.height, d.image.height) << f;
            EXPECT_EQ(d.image.pixels.size(), size_t(d.image.width) * d.image.height * 3);
            // Naive reference: stb's header reader on the whole file.
            auto bytes = read_file(f);
            ASSERT_TRUE(bytes.ok());
            int w = 0, h = 0, c = 0;
            ASSERT_TRUE(stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(bytes->data()),
                                              int(bytes->size()), &w, &h, &c))
                << f;
            EXPECT_EQ(p.info.width, w) << f;
            EXPECT_EQ(p.info.height, h) << f;
            ++checked;
        }
    }
    EXPECT_GE(checked, 250u);
}

TEST(ImageReal, TurboJpegDecodeAgreesWithStb) {
    fs::path dir = mf::test::shared_data() / "vqa_rad/images";
    if (!fs::exists(dir)) GTEST_SKIP() << "no " << dir;
    auto files = list_files(dir, {".jpg"});
    ASSERT_TRUE(files.ok());
    ASSERT_FALSE(files->empty());
    for (size_t i = 0; i < files->size(); i += 20) {
        const auto& f = (*files)[i];
        auto d = decode_image_file(f);
        ASSERT_TRUE(d.ok()) << d.detail;
        int w, h, c;
        stbi_uc* px = stbi_load(f.c_str(), &w, &h, &c, 3);
        ASSERT_NE(px, nullptr);
        Image ref{w, h, std::vector<uint8_t>(px, px + size_t(w) * h * 3)};
        stbi_image_free(px);
        EXPECT_LT(mean_abs_diff(d.image, ref), 1.0) << f;
    }
}

}  // namespace
}  // namespace mf::io
