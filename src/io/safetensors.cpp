#include "io/safetensors.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "io/file.h"

namespace mf::io {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
struct DTypeRow {
    DType d;
    std::string_view name;
    size_t size;
};
constexpr DTypeRow kDTypes[] = {
    {DType::kF64, "F64", 8},   {DType::kF32, "F32", 4}, {DType::kF16, "F16", 2},
    {DType::kBF16, "BF16", 2}, {DType::kI64, "I64", 8}, {DType::kI32, "I32", 4},
    {DType::kI16, "I16", 2},   {DType::kI8, "I8", 1},   {DType::kU8, "U8", 1},
    {DType::kBool, "BOOL", 1},
};
}  // namespace

size_t dtype_size(DType d) {
    for (const auto& r : kDTypes)
        if (r.d == d) return r.size;
    return 0;
}
std::string_view dtype_name(DType d) {
    for (const auto& r : kDTypes)
        if (r.d == d) return r.name;
    return "?";
}
Result<DType> parse_dtype(std::string_view s) {
    for (const auto& r : kDTypes)
        if (r.name == s) return r.d;
    return Status::unsupported(fmt::format(
        "unsupported safetensors dtype '{}' (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)",
        s));
}

float bf16_to_f32(uint16_t v) {
    uint32_t u = uint32_t{v} << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
uint16_t f32_to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
}
float f16_to_f32(uint16_t h) {
    uint32_t sign = uint32_t{h & 0x8000u} << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else {  // subnormal: renormalise
            int e = -1;
            do {
                ++e;
                man <<= 1;
            } while ((man & 0x400) == 0);
            man &= 0x3ff;
            u = sign | (uint32_t(127 - 15 - e) << 23) | (man << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
uint16_t f32_to_f16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);   // NaN
    if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
    if (abs < 0x38800000u) {  // subnormal or zero in f16
        if (abs < 0x33000000u) return static_cast<uint16_t>(sign);
        // f16 subnormal: q = round(value / 2^-24) = mantissa (with the implicit bit) >> (126 - e)
        uint32_t e = abs >> 23;
        uint32_t m = (abs & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e;  // 14..24
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (q & 1))) ++q;
        return static_cast<uint16_t>(sign | q);
    }
    uint32_t r = abs - 0x38000000u;  // rebias exponent 127 -> 15
    r += 0xfffu + ((r >> 13) & 1u);
    return static_cast<uint16_t>(sign | (r >> 13));
}

int64_t TensorInfo::numel() const {
    int64_t n = 1;
    for (auto d : shape)
        n *= d;
    return n;
}
std::string TensorInfo::shape_str() const {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

// ---------------------------------------------------------------------------------------------
Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const fs::path& path) {
    std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
    f->path_ = path;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return Status::not_found(fmt::format("{}: cannot open safetensors file: {}", path.string(),
                                             std::strerror(errno)));
    struct stat st {};
    if (fstat(fd, &st) != 0) {
        ::close(fd);
        return Status::io_error(fmt::format("{}: stat failed", path.string()));
    }
    size_t size = static_cast<size_t>(st.st_size);
    if (size < 8) {
        ::close(fd);
        return Status::corruption(fmt::format(
            "{}: {} bytes is too short for a safetensors file (needs an 8-byte header length)",
            path.string(), size));
    }
    void* m = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (m == MAP_FAILED)
        return Status::io_error(
            fmt::format("{}: mmap failed: {}", path.string(), std::strerror(errno)));
    f->map_ = m;
    f->map_size_ = size;
    const auto* base = static_cast<const uint8_t*>(m);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; --i)
        hlen = (hlen << 8) | base[i];
    if (hlen > size - 8 || hlen > (uint64_t{100} << 20))
        return Status::corruption(
            fmt::format("{}: header length {} does not fit the file ({} bytes); the file is "
                        "truncated or not safetensors",
                        path.string(), hlen, size));
    json h = json::parse(reinterpret_cast<const char*>(base + 8),
                         reinterpret_cast<const char*>(base + 8 + hlen), nullptr, false);
    if (h.is_discarded() || !h.is_object())
        return Status::corruption(fmt::format(
            "{}: the header is not a JSON object; not a safetensors file", path.string()));
    const uint8_t* data = base + 8 + hlen;
    size_t data_size = size - 8 - hlen;
    std::vector<std::pair<uint64_t, uint64_t>> spans;
    for (auto it = h.begin(); it != h.end(); ++it) {
        const std::string& name = it.key();
        if (name == "__metadata__") {
            if (it->is_object())
                for (auto m2 = it->begin(); m2 != it->end(); ++m2)
                    if (m2->is_string()) f->metadata_[m2.key()] = m2->get<std::string>();
            continue;
        }
        auto bad = [&](std::string_view what) {
            return Status::corruption(
                fmt::format("{}: tensor '{}': {}", path.string(), name, what));
        };
        const json& e = *it;
        if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") ||
            !e.contains("data_offsets"))
            return bad("entry needs dtype, shape and data_offsets");
        if (!e["dtype"].is_string()) return bad("dtype is not a string");
        auto dt = parse_dtype(e["dtype"].get<std::string>());
        if (!dt.ok()) return bad(dt.status().message());
        TensorInfo t;
        t.name = name;
        t.dtype = *dt;
        if (!e["shape"].is_array()) return bad("shape is not an array");
        for (const auto& d : e["shape"]) {
            if (!d.is_number_integer() || d.get<int64_t>() < 0)
                return bad("shape has a non-integer or negative dimension");
            t.shape.push_back(d.get<int64_t>());
        }
        const json& off = e["data_offsets"];
        if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
            !off[1].is_number_unsigned())
            return bad("data_offsets must be [begin, end]");
        uint64_t b = off[0].get<uint64_t>(), en = off[1].get<uint64_t>();
        if (b > en || en > data_size)
            return bad(
                fmt::format("data_offsets [{}, {}] outside the {}-byte data buffer "
                            "(truncated file?)",
                            b, en, data_size));
        uint64_t want = static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype);
        if (en - b != want)
            return bad(fmt::format("{} bytes for shape {} of {} (needs {})", en - b, t.shape_str(),
                                   dtype_name(t.dtype), want));
        t.data = data + b;
        t.nbytes = en - b;
        spans.emplace_back(b, en);
        f->tensors_.push_back(std::move(t));
    }
    std::sort(spans.begin(), spans.end());
    for (size_t i = 1; i < spans.size(); ++i)
        if (spans[i].first < spans[i - 1].second)
            return Status::corruption(
                fmt::format("{}: two tensors overlap in the data buffer", path.string()));
    std::sort(f->tensors_.begin(), f->tensors_.end(),
              [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
    for (size_t i = 0; i < f->tensors_.size(); ++i)
        f->index_[f->tensors_[i].name] = i;
    return f;
}

SafetensorsFile::~SafetensorsFile() {
    if (map_) munmap(map_, map_size_);
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
    auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &tensors_[it->second];
}

// ---------------------------------------------------------------------------------------------
Result<SafetensorsSet> SafetensorsSet::open(const fs::path& dir) {
    SafetensorsSet set;
    set.dir_ = dir;
    std::vector<fs::path> files;
    std::error_code ec;
    if (fs::is_regular_file(dir, ec)) {
        files.push_back(dir);
        set.dir_ = dir.parent_path();
    } else if (fs::exists(dir / "model.safetensors.index.json")) {
        auto idx_path = dir / "model.safetensors.index.json";
        MF_ASSIGN_OR_RETURN(std::string text, read_file(idx_path));
        json idx = json::parse(text, nullptr, false);
        if (idx.is_discarded() || !idx.is_object() || !idx.contains("weight_map") ||
            !idx["weight_map"].is_object())
            return Status::corruption(
                fmt::format("{}: not a safetensors index (needs an object field 'weight_map')",
                            idx_path.string()));
        std::vector<std::string> names;
        for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) {
            if (!it->is_string())
                return Status::corruption(fmt::format("{}: weight_map['{}'] is not a file name",
                                                      idx_path.string(), it.key()));
            names.push_back(it->get<std::string>());
        }
        std::sort(names.begin(), names.end());
        names.erase(std::unique(names.begin(), names.end()), names.end());
        for (const auto& n : names)
            files.push_back(dir / n);
        MF_ASSIGN_OR_RETURN(auto set2, [&]() -> Result<SafetensorsSet> {
            SafetensorsSet s;
            s.dir_ = dir;
            for (const auto& p : files) {
                auto f = SafetensorsFile::open(p);
                if (!f.ok())
                    return f.status().with_context(fmt::format("listed in {}", idx_path.string()));
                s.files_.push_back(std::shared_ptr<SafetensorsFile>(std::move(*f)));
            }
            return s;
        }());
        set = std::move(set2);
        // Every name of the index must be in the file it names.
        for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) {
            fs::path want = dir / it->get<std::string>();
            bool found = false;
            for (const auto& f : set.files_)
                if (f->path() == want && f->find(it.key())) found = true;
            if (!found)
                return Status::corruption(
                    fmt::format("{}: tensor '{}' is listed in {} but not there", idx_path.string(),
                                it.key(), want.filename().string()));
        }
        files.clear();
    } else if (fs::exists(dir / "model.safetensors")) {
        files.push_back(dir / "model.safetensors");
    } else if (fs::is_directory(dir, ec)) {
        for (const auto& e : fs::directory_iterator(dir, ec))
            if (e.path().extension() == ".safetensors") files.push_back(e.path());
        std::sort(files.begin(), files.end());
        if (files.empty())
            return Status::not_found(fmt::format(
                "{}: no model.safetensors, model.safetensors.index.json or *.safetensors; is this "
                "a Hugging Face checkpoint folder?",
                dir.string()));
    } else {
        return Status::not_found(
            fmt::format("{}: no such checkpoint folder or file", dir.string()));
    }
    for (const auto& p : files) {
        MF_ASSIGN_OR_RETURN(auto f, SafetensorsFile::open(p));
        set.files_.push_back(std::shared_ptr<SafetensorsFile>(std::move(f)));
    }
    for (size_t i = 0; i < set.files_.size(); ++i)
        for (const auto& t : set.files_[i]->tensors()) {
            auto [it, inserted] = set.by_name_.emplace(t.name, std::make_pair(i, &t));
            if (!inserted)
                return Status::corruption(
                    fmt::format("tensor '{}' is in both {} and {}", t.name,
                                set.files_[it->second.first]->path().filename().string(),
                                set.files_[i]->path().filename().string()));
        }
    return set;
}

const TensorInfo* SafetensorsSet::find(std::string_view name) const {
    auto it = by_name_.find(std::string(name));
    return it == by_name_.end() ? nullptr : it->second.second;
}
std::vector<std::string> SafetensorsSet::names() const {
    std::vector<std::string> v;
    v.reserve(by_name_.size());
    for (const auto& [k, _] : by_name_)
        v.push_back(k);
    std::sort(v.begin(), v.end());
    return v;
}
std::string SafetensorsSet::file_of(std::string_view name) const {
    auto it = by_name_.find(std::string(name));
    if (it == by_name_.end()) return {};
    return files_[it->second.first]->path().string();
}

// ---------------------------------------------------------------------------------------------
namespace {
std::string header_json(std::span<const TensorToWrite> tensors,
                        const std::map<std::string, std::string>& metadata) {
    json h = json::object();
    if (!metadata.empty()) h["__metadata__"] = metadata;
    uint64_t off = 0;
    for (const auto& t : tensors) {
        h[t.name] = {{"dtype", std::string(dtype_name(t.dtype))},
                     {"shape", t.shape},
                     {"data_offsets", {off, off + t.bytes.size()}}};
        off += t.bytes.size();
    }
    std::string s = h.dump();
    while ((8 + s.size()) % 8 != 0)
        s.push_back(' ');
    return s;
}
}  // namespace

Status write_safetensors(const fs::path& path, std::span<const TensorToWrite> tensors,
                         const std::map<std::string, std::string>& metadata) {
    for (const auto& t : tensors) {
        int64_t n = 1;
        for (auto d : t.shape)
            n *= d;
        if (static_cast<uint64_t>(n) * dtype_size(t.dtype) != t.bytes.size())
            return Status::invalid_argument(fmt::format(
                "write_safetensors {}: tensor '{}' has {} bytes, shape needs {}", path.string(),
                t.name, t.bytes.size(), static_cast<uint64_t>(n) * dtype_size(t.dtype)));
    }
    std::string header = header_json(tensors, metadata);
    fs::path tmp = path;
    tmp += ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f)
        return Status::io_error(
            fmt::format("{}: cannot create: {}", tmp.string(), std::strerror(errno)));
    uint8_t len[8];
    uint64_t hl = header.size();
    for (int i = 0; i < 8; ++i)
        len[i] = static_cast<uint8_t>(hl >> (8 * i));
    bool ok = std::fwrite(len, 1, 8, f) == 8 &&
              std::fwrite(header.data(), 1, header.size(), f) == header.size();
    for (const auto& t : tensors)
        if (ok && !t.bytes.empty())
            ok = std::fwrite(t.bytes.data(), 1, t.bytes.size(), f) == t.bytes.size();
    ok = (std::fflush(f) == 0) && ok;
    ok = (fsync(fileno(f)) == 0) && ok;
    ok = (std::fclose(f) == 0) && ok;
    if (!ok) {
        std::error_code ec;
        fs::remove(tmp, ec);
        return Status::io_error(fmt::format("{}: write failed (disk full?)", path.string()));
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec)
        return Status::io_error(fmt::format("{}: rename failed: {}", path.string(), ec.message()));
    return Status::ok_status();
}

Status write_checkpoint_tensors(const fs::path& dir, std::span<const TensorToWrite> tensors,
                                size_t max_shard_bytes,
                                const std::map<std::string, std::string>& metadata) {
    MF_RETURN_IF_ERROR(ensure_dir(dir));
    size_t total = 0;
    for (const auto& t : tensors)
        total += t.bytes.size();
    std::error_code ec;
    fs::remove(dir / "model.safetensors.index.json", ec);
    if (total <= max_shard_bytes)
        return write_safetensors(dir / "model.safetensors", tensors, metadata);
    fs::remove(dir / "model.safetensors", ec);
    std::vector<std::pair<size_t, size_t>> shards;  // [begin, end) into tensors
    size_t begin = 0, acc = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
        if (acc > 0 && acc + tensors[i].bytes.size() > max_shard_bytes) {
            shards.emplace_back(begin, i);
            begin = i;
            acc = 0;
        }
        acc += tensors[i].bytes.size();
    }
    shards.emplace_back(begin, tensors.size());
    json weight_map = json::object();
    for (size_t s = 0; s < shards.size(); ++s) {
        std::string name = fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1, shards.size());
        auto part = tensors.subspan(shards[s].first, shards[s].second - shards[s].first);
        MF_RETURN_IF_ERROR(write_safetensors(dir / name, part, metadata));
        for (const auto& t : part)
            weight_map[t.name] = name;
    }
    json idx = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    return write_file_atomic(dir / "model.safetensors.index.json", idx.dump(2) + "\n");
}

}  // namespace mf::io
