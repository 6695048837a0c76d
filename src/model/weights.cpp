#include "model/weights.h"

#include <fmt/core.h>

#ifdef __linux__
#include <sys/mman.h>
#endif

#include <algorithm>
#include <memory>

namespace mf::model {

torch::Dtype to_torch_dtype(io::DType d) {
    switch (d) {
        case io::DType::kF64:
            return torch::kFloat64;
        case io::DType::kF32:
            return torch::kFloat32;
        case io::DType::kF16:
            return torch::kFloat16;
        case io::DType::kBF16:
            return torch::kBFloat16;
        case io::DType::kI64:
            return torch::kInt64;
        case io::DType::kI32:
            return torch::kInt32;
        case io::DType::kI16:
            return torch::kInt16;
        case io::DType::kI8:
            return torch::kInt8;
        case io::DType::kU8:
            return torch::kUInt8;
        case io::DType::kBool:
            return torch::kBool;
    }
    return torch::kFloat32;
}

Result<io::DType> from_torch_dtype(torch::Dtype d) {
    switch (d) {
        case torch::kFloat64:
            return io::DType::kF64;
        case torch::kFloat32:
            return io::DType::kF32;
        case torch::kFloat16:
            return io::DType::kF16;
        case torch::kBFloat16:
            return io::DType::kBF16;
        case torch::kInt64:
            return io::DType::kI64;
        case torch::kInt32:
            return io::DType::kI32;
        case torch::kInt16:
            return io::DType::kI16;
        case torch::kInt8:
            return io::DType::kI8;
        case torch::kUInt8:
            return io::DType::kU8;
        case torch::kBool:
            return io::DType::kBool;
        default:
            return Status::unsupported("tensor dtype has no safetensors equivalent");
    }
}

Result<torch::Dtype> parse_compute_dtype(std::string_view s) {
    if (s == "f32" || s == "float32" || s == "fp32") return torch::kFloat32;
    if (s == "bf16" || s == "bfloat16") return torch::kBFloat16;
    if (s == "f16" || s == "float16" || s == "fp16") return torch::kFloat16;
    return Status::invalid_argument(fmt::format("unknown dtype '{}' (use f32, bf16 or f16)", s));
}

std::string shape_str(torch::IntArrayRef sizes) {
    std::string s = "[";
    for (size_t i = 0; i < sizes.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(sizes[i]);
    }
    return s + "]";
}

torch::Tensor tensor_from(const io::TensorInfo& t, torch::Dtype dtype) {
    auto src = torch::from_blob(const_cast<uint8_t*>(t.data), t.shape,
                                torch::TensorOptions().dtype(to_torch_dtype(t.dtype)));
    return src.to(dtype, /*non_blocking=*/false, /*copy=*/true);
}

namespace {
// Buffers that checkpoints may carry but that are recomputed (e.g. rotary inv_freq, position_ids).
bool is_derived_buffer(const std::string& name) {
    return name.ends_with("rotary_emb.inv_freq") || name.ends_with("position_ids");
}
}  // namespace

Result<LoadReport> load_module(torch::nn::Module& module, const io::SafetensorsSet& ckpt,
                               const NameMap& map, std::string_view what) {
    torch::NoGradGuard no_grad;
    LoadReport rep;
    auto load_one = [&](const std::string& canonical, torch::Tensor& dst) -> Status {
        std::string name = map ? map(canonical) : canonical;
        const io::TensorInfo* t = ckpt.find(name);
        if (!t)
            return Status::not_found(fmt::format(
                "{}: tensor '{}' is missing from the checkpoint in {} (expected shape {}); is this "
                "the right architecture?",
                what, name, ckpt.dir().string(), shape_str(dst.sizes())));
        std::vector<int64_t> want(dst.sizes().begin(), dst.sizes().end());
        if (t->shape != want)
            return Status::invalid_argument(
                fmt::format("{}: tensor '{}' in {} has shape {} but the config implies {}", what,
                            name, ckpt.file_of(name), t->shape_str(), shape_str(dst.sizes())));
        dst.copy_(tensor_from(*t, dst.scalar_type()));
        ++rep.loaded;
        rep.params += static_cast<size_t>(t->numel());
        return Status::ok_status();
    };
    for (auto& p : module.named_parameters(/*recurse=*/true)) {
        MF_RETURN_IF_ERROR(load_one(p.key(), p.value()));
    }
    for (auto& b : module.named_buffers(/*recurse=*/true)) {
        if (is_derived_buffer(b.key())) continue;
        MF_RETURN_IF_ERROR(load_one(b.key(), b.value()));
    }
    return rep;
}

Result<OwnedTensors> module_tensors(const torch::nn::Module& module, const NameMap& map,
                                    torch::Dtype save_dtype) {
    OwnedTensors out;
    MF_ASSIGN_OR_RETURN(io::DType dt, from_torch_dtype(save_dtype));
    auto add = [&](const std::string& canonical, const torch::Tensor& t) {
        torch::Tensor c = t.detach().to(torch::kCPU).to(save_dtype).contiguous();
        out.keep.push_back(c);
        io::TensorToWrite w;
        w.name = map ? map(canonical) : canonical;
        w.dtype = dt;
        w.shape.assign(c.sizes().begin(), c.sizes().end());
        w.bytes = {static_cast<const uint8_t*>(c.data_ptr()), c.numel() * c.element_size()};
        out.tensors.push_back(std::move(w));
    };
    for (const auto& p : module.named_parameters(true))
        add(p.key(), p.value());
    for (const auto& b : module.named_buffers(true))
        if (!is_derived_buffer(b.key())) add(b.key(), b.value());
    return out;
}

void append_tensors(OwnedTensors& a, OwnedTensors&& b) {
    for (auto& t : b.tensors)
        a.tensors.push_back(std::move(t));
    for (auto& k : b.keep)
        a.keep.push_back(std::move(k));
}

size_t move_to_hugepage_arena(torch::nn::Module& module) {
#ifdef __linux__
    constexpr size_t kHuge = size_t{2} << 20;
    constexpr size_t kAlign = 64;
    std::vector<torch::Tensor> tensors;
    std::vector<const void*> seen;  // a tied tensor is listed once per owner: move it once
    auto add = [&](const torch::Tensor& t) {
        const void* impl = t.unsafeGetTensorImpl();
        if (!t.defined() || std::find(seen.begin(), seen.end(), impl) != seen.end()) return;
        seen.push_back(impl);
        tensors.push_back(t);
    };
    for (auto& p : module.parameters(/*recurse=*/true))
        add(p);
    for (auto& b : module.buffers(/*recurse=*/true))
        add(b);
    size_t total = 0;
    for (const auto& t : tensors)
        total += (t.numel() * t.element_size() + kAlign - 1) / kAlign * kAlign;
    if (total == 0) return 0;
    const size_t bytes = (total + kHuge - 1) / kHuge * kHuge;
    // Over-allocate by one huge page so the arena can start on a 2 MiB boundary.
    void* raw =
        mmap(nullptr, bytes + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return 0;
    auto* base =
        reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(raw) + kHuge - 1) / kHuge * kHuge);
    if (madvise(base, bytes, MADV_HUGEPAGE) != 0) {
        munmap(raw, bytes + kHuge);
        return 0;
    }
    std::shared_ptr<void> arena(raw, [len = bytes + kHuge](void* p) { munmap(p, len); });
    torch::NoGradGuard no_grad;
    size_t off = 0;
    for (auto& t : tensors) {
        const size_t n = t.numel() * t.element_size();
        auto moved = torch::from_blob(
            base + off, t.sizes(), [arena](void*) {}, t.options().requires_grad(false));
        moved.copy_(t);
        t.set_data(moved);
        off += (n + kAlign - 1) / kAlign * kAlign;
    }
    return bytes;
#else
    (void)module;
    return 0;
#endif
}

}  // namespace mf::model
