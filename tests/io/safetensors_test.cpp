#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>

#include "io/file.h"
#include "test_util.h"

namespace mf::io {
namespace {

namespace fs = std::filesystem;

std::span<const uint8_t> bytes_of(const std::vector<float>& v) {
    return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4};
}

TEST(Safetensors, RoundTripSingleFile) {
    mf::test::TempDir tmp;
    std::vector<float> a = {1, 2, 3, 4, 5, 6};
    std::vector<uint16_t> b = {f32_to_bf16(1.5f), f32_to_bf16(-2.25f)};
    std::vector<TensorToWrite> ts = {
        {"layer.a", DType::kF32, {2, 3}, bytes_of(a)},
        {"layer.b", DType::kBF16, {2}, {reinterpret_cast<const uint8_t*>(b.data()), 4}},
        {"empty", DType::kF32, {0, 4}, {}},
    };
    ASSERT_TRUE(write_checkpoint_tensors(tmp.path(), ts).ok());
    ASSERT_TRUE(fs::exists(tmp.path() / "model.safetensors"));
    auto set = SafetensorsSet::open(tmp.path());
    ASSERT_TRUE(set.ok()) << set.status().to_string();
    EXPECT_EQ(set->size(), 3u);
    const TensorInfo* ta = set->find("layer.a");
    ASSERT_NE(ta, nullptr);
    EXPECT_EQ(ta->shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(ta->dtype, DType::kF32);
    EXPECT_EQ(std::memcmp(ta->data, a.data(), 24), 0);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(ta->data) % 8, 0u) << "data must be 8-byte aligned";
    const TensorInfo* tb = set->find("layer.b");
    ASSERT_NE(tb, nullptr);
    uint16_t v[2];
    std::memcpy(v, tb->data, 4);
    EXPECT_EQ(bf16_to_f32(v[0]), 1.5f);
    EXPECT_EQ(bf16_to_f32(v[1]), -2.25f);
    EXPECT_EQ(set->find("nope"), nullptr);
    EXPECT_EQ(set->find("empty")->nbytes, 0u);
}

// The header layout is the published one: 8-byte little-endian length, JSON, data.
TEST(Safetensors, ReadsHandWrittenFile) {
    mf::test::TempDir tmp;
    std::string header =
        R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})";
    std::string file(8, '\0');
    uint64_t n = header.size();
    for (int i = 0; i < 8; ++i)
        file[i] = static_cast<char>(n >> (8 * i));
    file += header;
    uint16_t h[2] = {0x3c00, 0xc000};  // 1.0, -2.0 in IEEE half
    file.append(reinterpret_cast<const char*>(h), 4);
    ASSERT_TRUE(write_file_atomic(tmp.path() / "x.safetensors", file).ok());
    auto f = SafetensorsFile::open(tmp.path() / "x.safetensors");
    ASSERT_TRUE(f.ok()) << f.status().to_string();
    EXPECT_EQ((*f)->metadata().at("format"), "pt");
    const TensorInfo* t = (*f)->find("w");
    ASSERT_NE(t, nullptr);
    uint16_t v[2];
    std::memcpy(v, t->data, 4);
    EXPECT_EQ(f16_to_f32(v[0]), 1.0f);
    EXPECT_EQ(f16_to_f32(v[1]), -2.0f);
}

TEST(Safetensors, ShardedWithIndex) {
    mf::test::TempDir tmp;
    std::vector<std::vector<float>> data;
    std::vector<TensorToWrite> ts;
    for (int i = 0; i < 5; ++i)
        data.push_back(std::vector<float>(100, float(i)));
    for (int i = 0; i < 5; ++i)
        ts.push_back({"t" + std::to_string(i), DType::kF32, {10, 10}, bytes_of(data[i])});
    // 400 bytes each, at most 900 per shard: t0 t1 | t2 t3 | t4
    ASSERT_TRUE(write_checkpoint_tensors(tmp.path(), ts, 900).ok());
    EXPECT_TRUE(fs::exists(tmp.path() / "model.safetensors.index.json"));
    EXPECT_TRUE(fs::exists(tmp.path() / "model-00001-of-00003.safetensors"));
    EXPECT_FALSE(fs::exists(tmp.path() / "model.safetensors"));
    auto set = SafetensorsSet::open(tmp.path());
    ASSERT_TRUE(set.ok()) << set.status().to_string();
    ASSERT_EQ(set->size(), 5u);
    for (int i = 0; i < 5; ++i) {
        const TensorInfo* t = set->find("t" + std::to_string(i));
        ASSERT_NE(t, nullptr);
        float x;
        std::memcpy(&x, t->data + 396, 4);
        EXPECT_EQ(x, float(i));
    }
    EXPECT_NE(set->file_of("t3").find("model-00002-of-00003"), std::string::npos);
}

void expect_corrupt(const fs::path& p, const std::string& content, const std::string& needle) {
    ASSERT_TRUE(write_file_atomic(p, content).ok());
    auto f = SafetensorsFile::open(p);
    ASSERT_FALSE(f.ok()) << needle;
    EXPECT_NE(f.status().message().find(needle), std::string::npos) << f.status().to_string();
    EXPECT_NE(f.status().message().find(p.filename().string()), std::string::npos);
}

std::string with_header(const std::string& h, size_t data_bytes) {
    std::string file(8, '\0');
    uint64_t n = h.size();
    for (int i = 0; i < 8; ++i)
        file[i] = static_cast<char>(n >> (8 * i));
    return file + h + std::string(data_bytes, '\0');
}

TEST(Safetensors, BadFilesNameTheProblem) {
    mf::test::TempDir tmp;
    auto p = tmp.path() / "bad.safetensors";
    expect_corrupt(p, "abc", "too short");
    expect_corrupt(p, std::string("\xff\xff\xff\xff\0\0\0\0", 8) + "{}", "does not fit");
    expect_corrupt(p, with_header("[1,2]", 0), "not a JSON object");
    expect_corrupt(p, with_header(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8),
                   "outside");
    expect_corrupt(p, with_header(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", 16),
                   "needs 12");
    expect_corrupt(p, with_header(R"({"w":{"dtype":"Q4","shape":[3],"data_offsets":[0,3]}})", 3),
                   "unsupported");
    expect_corrupt(
        p,
        with_header(
            R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
            12),
        "overlap");
    expect_corrupt(p, with_header(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", 0),
                   "negative");
    auto missing = SafetensorsSet::open(tmp.path() / "nowhere");
    EXPECT_FALSE(missing.ok());
}

TEST(Safetensors, IndexNamingAMissingTensorFails) {
    mf::test::TempDir tmp;
    std::vector<float> a(4, 1.f);
    std::vector<TensorToWrite> ts = {{"a", DType::kF32, {4}, bytes_of(a)}};
    ASSERT_TRUE(write_safetensors(tmp.path() / "s1.safetensors", ts).ok());
    ASSERT_TRUE(write_file_atomic(tmp.path() / "model.safetensors.index.json",
                                  R"({"weight_map":{"a":"s1.safetensors","b":"s1.safetensors"}})")
                    .ok());
    auto set = SafetensorsSet::open(tmp.path());
    ASSERT_FALSE(set.ok());
    EXPECT_NE(set.status().message().find("'b'"), std::string::npos) << set.status().to_string();
}

// Half / bfloat16 conversions against the exact values: every f16 bit pattern round-trips, and
// f32 -> f16/bf16 rounds to nearest even like numpy / torch.
TEST(Safetensors, HalfConversionsExact) {
    for (uint32_t h = 0; h < 65536; ++h) {
        uint16_t v = static_cast<uint16_t>(h);
        float f = f16_to_f32(v);
        if (std::isnan(f)) continue;
        ASSERT_EQ(f32_to_f16(f), v) << h;
        ASSERT_EQ(f32_to_bf16(bf16_to_f32(v)), v) << h;
    }
    // Ties: 1 + 2^-11 is halfway between 1 and 1 + 2^-10 -> even (1.0).
    EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
    EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
    EXPECT_EQ(f32_to_f16(65520.f), 0x7c00);  // rounds to inf
    EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);
    EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // tie to even (0)
    EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
    EXPECT_EQ(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
    // A naive reference: nearest representable by search.
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-70000.f, 70000.f);
    for (int i = 0; i < 20000; ++i) {
        float x = u(rng) * std::ldexp(1.0f, -(i % 30));
        uint16_t got = f32_to_f16(x);
        float g = f16_to_f32(got);
        if (std::isinf(g)) continue;
        float up = f16_to_f32(static_cast<uint16_t>(got + 1));
        float dn = f16_to_f32(static_cast<uint16_t>(got - 1));
        ASSERT_LE(std::fabs(g - x), std::fabs(up - x) + 0.f) << x;
        if ((got & 0x7fff) != 0) ASSERT_LE(std::fabs(g - x), std::fabs(dn - x)) << x;
    }
}

}  // namespace
}  // namespace mf::io
