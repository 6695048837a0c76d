// `medforge model init`: random checkpoints in the exact Hugging Face layout (config.json,
// model.safetensors, tokenizer.json + tokenizer_config.json, generation_config.json and, for LLaVA,
// preprocessor_config.json), for tests, demos and benchmarks. Weights follow HF's initialisation
// (normal(0, 0.02) for linear and embedding weights, zero biases, unit norms), seeded.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "core/status.h"
#include "model/config.h"

namespace mf::model {

struct InitOptions {
    std::string arch =
        "llava-qwen2";  // llava-qwen2 | llava-llama | llava-hf | qwen2 | llama | clip-vision
    std::string size = "tiny";  // tiny | small (~100M LLaVA-shaped) | 0.5b (Qwen2-0.5B shape)
                                // | clip-l336 (the real CLIP ViT-L/14-336 shape)
    std::filesystem::path out;
    uint64_t seed = 0;
    std::string dtype = "f32";  // saved dtype: f32 | bf16
    // Also draw biases and norm weights at random (HF starts them at 0 / 1), so parity tests see
    // every tensor take part.
    bool random_all = false;
    // A published tokenizer.json to use instead of the small generated one (e.g. the real Qwen
    // vocabulary, for benchmarks whose prompt lengths and LM head should be the real model's).
    // vocab_size follows it (Qwen2-family vocabularies: 151936, as published).
    std::filesystem::path tokenizer;
};

// The config an (arch, size) pair describes; vocab_size is filled in from the tokenizer.
Result<ModelConfig> init_config(const std::string& arch, const std::string& size);

Status init_model(const InitOptions& o);

// Writes a byte-level BPE tokenizer (256 byte tokens + `merges` merges learned from a built-in
// English/medical corpus + the family's special tokens) as tokenizer.json and
// tokenizer_config.json into `dir`. Returns the vocabulary size (largest id + 1).
// `chat_template` (Jinja, may be empty) goes into tokenizer_config.json.
Result<int64_t> write_tiny_tokenizer(const std::filesystem::path& dir, const std::string& family,
                                     const std::string& chat_template = {}, int merges = 256);

}  // namespace mf::model
