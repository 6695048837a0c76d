// Generates the synthetic demo images of examples/demo (committed; re-run only to change them):
//   g++ -O2 -std=c++20 scripts/make_demo_images.cpp -lstb -o /tmp/mkimg && /tmp/mkimg examples/demo
// Everything is drawn from formulas with a fixed seed: CT-like and MR-like slices (ellipse
// phantoms with noise), a chest-radiograph-like image, a histology-like H&E texture, an
// endoscopy-like frame, a bar chart (a figure the classifier should reject) and a thumbnail
// below 336 px (rejected by the resolution rule).
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace {

struct Img {
    int w, h;
    std::vector<uint8_t> px;  // RGB
    Img(int w_, int h_, uint8_t fill = 0) : w(w_), h(h_), px(size_t(w_) * h_ * 3, fill) {}
    void set(int x, int y, double r, double g, double b) {
        if (x < 0 || y < 0 || x >= w || y >= h) return;
        uint8_t* p = &px[(size_t(y) * w + x) * 3];
        p[0] = uint8_t(std::clamp(r, 0.0, 255.0));
        p[1] = uint8_t(std::clamp(g, 0.0, 255.0));
        p[2] = uint8_t(std::clamp(b, 0.0, 255.0));
    }
};

struct Ellipse {
    double cx, cy, a, b, angle, value;
};

double phantom(const std::vector<Ellipse>& es, double x, double y) {
    double v = 0;
    for (const auto& e : es) {
        double c = std::cos(e.angle), s = std::sin(e.angle);
        double dx = x - e.cx, dy = y - e.cy;
        double u = (dx * c + dy * s) / e.a, t = (-dx * s + dy * c) / e.b;
        if (u * u + t * t <= 1) v += e.value;
    }
    return v;
}

void grey_slice(const char* path, int size, const std::vector<Ellipse>& es, double noise, int seed,
                bool jpeg) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> n(0, noise);
    Img img(size, size);
    for (int y = 0; y < size; ++y)
        for (int x = 0; x < size; ++x) {
            double v = 255 * phantom(es, 2.0 * x / size - 1, 2.0 * y / size - 1) + n(rng);
            img.set(x, y, v, v, v);
        }
    if (jpeg)
        stbi_write_jpg(path, img.w, img.h, 3, img.px.data(), 88);
    else
        stbi_write_png(path, img.w, img.h, 3, img.px.data(), img.w * 3);
}

}  // namespace

int main(int argc, char** argv) {
    std::string dir = argc > 1 ? argv[1] : "examples/demo";
    std::string j = dir + "/jats/";
    // Axial abdominal CT phantom: body outline, spine, liver, kidneys, a hypodense lesion.
    const std::vector<Ellipse> kAbdomen = {
        {0, 0, 0.9, 0.7, 0, 0.35},           {0, 0.45, 0.12, 0.12, 0, 0.5},
        {-0.35, -0.1, 0.35, 0.3, 0.3, 0.12}, {0.35, 0.2, 0.12, 0.18, 0, 0.15},
        {-0.3, 0.25, 0.12, 0.18, 0, 0.15},   {-0.4, -0.15, 0.08, 0.07, 0, -0.1}};
    // Axial CT of the abdomen: body outline, spine, liver, kidneys, a hypodense lesion.
    grey_slice((j + "PMC9000001_ct_axial.jpg").c_str(), 448, kAbdomen, 9, 1, true);
    // Coronal CT reformat of the same "patient".
    grey_slice((j + "PMC9000001_ct_coronal.jpg").c_str(), 400,
               {{0, 0, 0.6, 0.95, 0, 0.35},
                {0, 0, 0.07, 0.9, 0, 0.45},
                {-0.3, -0.3, 0.3, 0.25, 0.2, 0.12},
                {-0.35, -0.3, 0.06, 0.05, 0, -0.1}},
               9, 2, true);
    // The axial CT again, re-encoded with other noise: different bytes, near-identical caption in
    // extra.jsonl (a near duplicate for MinHash, not an exact image duplicate).
    grey_slice((dir + "/reposted_ct_axial.jpg").c_str(), 448, kAbdomen, 9, 11, true);
    // Brain MR (T2-like): skull ring, ventricles, a bright lesion.
    grey_slice((j + "PMC9000002_mri_t2.png").c_str(), 384,
               {{0, 0, 0.85, 0.95, 0, 0.9},
                {0, 0, 0.78, 0.88, 0, -0.55},
                {-0.12, 0, 0.07, 0.25, 0.15, 0.5},
                {0.12, 0, 0.07, 0.25, -0.15, 0.5},
                {0.4, -0.35, 0.1, 0.12, 0, 0.45}},
               7, 3, false);
    // Chest radiograph-like: bright mediastinum, dark lungs, rib arcs.
    {
        std::mt19937 rng(4);
        std::normal_distribution<double> n(0, 5);
        Img img(420, 480);
        for (int y = 0; y < img.h; ++y)
            for (int x = 0; x < img.w; ++x) {
                double u = 2.0 * x / img.w - 1, v = 2.0 * y / img.h - 1;
                double lung =
                    std::exp(-std::pow((std::abs(u) - 0.45) / 0.28, 2) - std::pow(v / 0.7, 2));
                double ribs = 0.12 * (std::sin(18 * (v + 0.25 * u * u)) > 0.7) * lung;
                double val = 200 - 150 * lung + 255 * ribs + 40 * (std::abs(u) > 0.9) + n(rng);
                img.set(x, y, val, val, val);
            }
        stbi_write_jpg((j + "PMC9000002_chest_xray.jpg").c_str(), img.w, img.h, 3, img.px.data(),
                       88);
    }
    // Histology-like H&E field: pink stroma, purple nuclei.
    {
        std::mt19937 rng(5);
        std::uniform_real_distribution<double> U(0, 1);
        Img img(400, 400);
        for (int y = 0; y < img.h; ++y)
            for (int x = 0; x < img.w; ++x) {
                double t = 0.5 + 0.25 * std::sin(x * 0.05 + 3 * std::sin(y * 0.02)) + 0.1 * U(rng);
                img.set(x, y, 235 - 25 * t, 120 - 60 * t, 190 - 30 * t);
            }
        for (int k = 0; k < 900; ++k) {
            double cx = U(rng) * 400, cy = U(rng) * 400, r = 3 + 4 * U(rng);
            for (int y = int(cy - r); y <= int(cy + r); ++y)
                for (int x = int(cx - r); x <= int(cx + r); ++x)
                    if ((x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r)
                        img.set(x, y, 60 + 30 * U(rng), 20 + 20 * U(rng), 110 + 30 * U(rng));
        }
        stbi_write_jpg((j + "PMC9000003_he_stain.jpg").c_str(), img.w, img.h, 3, img.px.data(), 90);
    }
    // Endoscopy-like frame: reddish mucosa in a dark circular field.
    {
        std::mt19937 rng(6);
        std::normal_distribution<double> n(0, 6);
        Img img(400, 400);
        for (int y = 0; y < img.h; ++y)
            for (int x = 0; x < img.w; ++x) {
                double u = (x - 200) / 190.0, v = (y - 200) / 190.0, r = std::sqrt(u * u + v * v);
                if (r > 1) continue;
                double fold = 0.5 + 0.5 * std::sin(10 * r + 2 * std::atan2(v, u));
                img.set(x, y, 190 + 40 * fold - 60 * r + n(rng), 90 + 30 * fold - 40 * r + n(rng),
                        80 + 20 * fold - 40 * r + n(rng));
            }
        stbi_write_jpg((j + "PMC9000003_endoscopy.jpg").c_str(), img.w, img.h, 3, img.px.data(),
                       90);
    }
    // A bar chart: white background, axes, flat coloured bars.
    {
        Img img(480, 360, 255);
        for (int x = 40; x < 460; ++x)
            img.set(x, 320, 0, 0, 0);
        for (int y = 20; y < 320; ++y)
            img.set(40, y, 0, 0, 0);
        int heights[] = {120, 210, 80, 260, 170};
        for (int b = 0; b < 5; ++b)
            for (int x = 60 + b * 80; x < 110 + b * 80; ++x)
                for (int y = 320 - heights[b]; y < 320; ++y)
                    img.set(x, y, 40 + 40 * b, 90, 200 - 30 * b);
        stbi_write_png((j + "PMC9000003_survival_chart.png").c_str(), img.w, img.h, 3,
                       img.px.data(), img.w * 3);
    }
    // A thumbnail below the 336-pixel floor.
    grey_slice((j + "PMC9000002_thumbnail.jpg").c_str(), 200,
               {{0, 0, 0.8, 0.8, 0, 0.5}, {0.2, 0.1, 0.2, 0.2, 0, 0.3}}, 6, 7, true);
    std::puts("demo images written");
    return 0;
}
