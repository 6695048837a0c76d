// Shared by the model tests: tiny checkpoints and the numpy reference
// (scripts/reference/llava_ref.py).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>

#include "model/generate.h"
#include "model/init.h"
#include "model/llava.h"
#include "test_util.h"

namespace mf::model::testing {

namespace fs = std::filesystem;

inline const char* kPython = "/usr/bin/python3";

inline bool have_numpy() {
    static int ok = -1;
    if (ok < 0) ok = std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
    return ok == 1;
}

inline fs::path make_model(const mf::test::TempDir& tmp, const std::string& arch,
                           bool random_all = true) {
    InitOptions o;
    o.arch = arch;
    o.size = "tiny";
    o.out = tmp.path() / arch;
    o.seed = 42;
    o.random_all = random_all;
    auto st = init_model(o);
    EXPECT_TRUE(st.ok()) << st.to_string();
    return o.out;
}

// Runs the numpy reference on (ids, pixels) and returns its logits [T, V].
inline torch::Tensor reference_logits(const fs::path& model, const fs::path& work,
                                      const std::vector<int64_t>& ids, const torch::Tensor& pixels,
                                      int64_t vocab) {
    std::string ids_s = "[";
    for (size_t i = 0; i < ids.size(); ++i)
        ids_s += (i ? "," : "") + std::to_string(ids[i]);
    ids_s += "]";
    std::string px = "null";
    int64_t n_img = 0;
    if (pixels.defined()) {
        auto c = pixels.contiguous();
        std::ofstream f(work / "pixels.f32", std::ios::binary);
        f.write(static_cast<const char*>(c.data_ptr()), c.numel() * 4);
        px = "\"" + (work / "pixels.f32").string() + "\"";
        n_img = pixels.size(0);
    }
    mf::test::write_text(work / "in.json", "{\"ids\": " + ids_s + ", \"pixels\": " + px +
                                               ", \"n_images\": " + std::to_string(n_img) + "}");
    std::string cmd = std::string(kPython) + " " +
                      (mf::test::source_dir() / "scripts/reference/llava_ref.py").string() + " " +
                      model.string() + " " + (work / "in.json").string() + " " +
                      (work / "out.f32").string();
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::string bytes(
        (std::istreambuf_iterator<char>(std::ifstream(work / "out.f32", std::ios::binary).rdbuf())),
        {});
    std::vector<float> vals(bytes.size() / 4);
    std::memcpy(vals.data(), bytes.data(), bytes.size());
    auto t =
        torch::from_blob(vals.data(), {static_cast<int64_t>(vals.size()) / vocab, vocab}).clone();
    return t;
}

inline std::vector<int64_t> random_ids(int n, int64_t vocab, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<int64_t> ids;
    for (int i = 0; i < n; ++i)
        ids.push_back(static_cast<int64_t>(rng() % vocab));
    return ids;
}

inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
    return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

}  // namespace mf::model::testing
