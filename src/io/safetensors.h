// Safetensors (Hugging Face) reading and writing, without torch.
//
// Format: 8-byte little-endian header length N, N bytes of JSON
//   {"__metadata__": {str: str}, "<name>": {"dtype": "BF16", "shape": [..], "data_offsets": [b,
//   e]}}
// then the data buffer; offsets are relative to the end of the header. Files are memory-mapped
// read-only; a TensorInfo's data pointer stays valid while its file object lives.
//
// A checkpoint folder holds `model.safetensors`, or shards listed in
// `model.safetensors.index.json` ({"metadata": {...}, "weight_map": {name: file}}).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"

namespace mf::io {

enum class DType { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool };

size_t dtype_size(DType d);
std::string_view dtype_name(DType d);  // "F32", "BF16", ... as in the safetensors header
Result<DType> parse_dtype(std::string_view s);

float bf16_to_f32(uint16_t v);
uint16_t f32_to_bf16(float v);  // round to nearest even (NaN stays NaN)
float f16_to_f32(uint16_t v);
uint16_t f32_to_f16(float v);  // round to nearest even

struct TensorInfo {
    std::string name;
    DType dtype = DType::kF32;
    std::vector<int64_t> shape;
    const uint8_t* data = nullptr;  // into the mapped file
    size_t nbytes = 0;
    int64_t numel() const;
    std::string shape_str() const;  // "[4096, 4096]"
};

// One mapped .safetensors file. Every header entry is validated: known dtype, offsets inside the
// buffer, no overlaps, numel * dtype size == byte length.
class SafetensorsFile {
  public:
    static Result<std::unique_ptr<SafetensorsFile>> open(const std::filesystem::path& path);
    ~SafetensorsFile();
    SafetensorsFile(const SafetensorsFile&) = delete;
    SafetensorsFile& operator=(const SafetensorsFile&) = delete;

    const std::vector<TensorInfo>& tensors() const { return tensors_; }
    const TensorInfo* find(std::string_view name) const;
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    const std::filesystem::path& path() const { return path_; }

  private:
    SafetensorsFile() = default;
    std::filesystem::path path_;
    void* map_ = nullptr;
    size_t map_size_ = 0;
    std::vector<TensorInfo> tensors_;
    std::unordered_map<std::string, size_t> index_;
    std::map<std::string, std::string> metadata_;
};

// All tensors of a checkpoint folder (single file or sharded with an index).
class SafetensorsSet {
  public:
    // `dir` holds model.safetensors, model.safetensors.index.json, or (fallback) *.safetensors.
    // A path to a single .safetensors file also works.
    static Result<SafetensorsSet> open(const std::filesystem::path& dir);

    const TensorInfo* find(std::string_view name) const;
    std::vector<std::string> names() const;  // sorted
    size_t size() const { return by_name_.size(); }
    // The file that holds `name` (for error messages).
    std::string file_of(std::string_view name) const;
    const std::filesystem::path& dir() const { return dir_; }

  private:
    std::filesystem::path dir_;
    std::vector<std::shared_ptr<SafetensorsFile>> files_;
    std::unordered_map<std::string, std::pair<size_t, const TensorInfo*>> by_name_;
};

struct TensorToWrite {
    std::string name;
    DType dtype = DType::kF32;
    std::vector<int64_t> shape;
    std::span<const uint8_t> bytes;
};

// Writes one file (atomically: temp + rename). Tensors are laid out in the given order, each
// aligned to 8 bytes by padding the header with spaces as the reference writer does.
Status write_safetensors(const std::filesystem::path& path, std::span<const TensorToWrite> tensors,
                         const std::map<std::string, std::string>& metadata = {});

// Writes `model.safetensors`, or when the total exceeds `max_shard_bytes`,
// `model-0000i-of-0000N.safetensors` shards plus `model.safetensors.index.json`.
Status write_checkpoint_tensors(const std::filesystem::path& dir,
                                std::span<const TensorToWrite> tensors,
                                size_t max_shard_bytes = size_t{5} << 30,
                                const std::map<std::string, std::string>& metadata = {
                                    {"format", "pt"}});

}  // namespace mf::io
