#include "model/init.h"

#include <fmt/core.h>

#include <map>
#include <nlohmann/json.hpp>

#include "io/bpe_tokenizer.h"
#include "io/file.h"
#include "model/llava.h"

namespace mf::model {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A small corpus for the tokenizer's merges: everyday English and radiology report language.
constexpr std::string_view kCorpus =
    "The chest radiograph shows a right lower lobe opacity consistent with pneumonia. "
    "Axial CT of the abdomen demonstrates a hypodense lesion in the liver measuring 2.3 cm. "
    "There is no evidence of pleural effusion or pneumothorax. The heart size is normal. "
    "MRI of the brain, T2-weighted image, shows a hyperintense lesion in the left frontal lobe. "
    "Histopathology (H&E stain, 40x) reveals infiltrating ductal carcinoma of the breast. "
    "Ultrasound of the kidney shows mild hydronephrosis. What is the abnormality in this image? "
    "Which organ is shown? Is there a fracture? Answer with the option's letter from the given "
    "choices directly. The patient is a 45-year-old woman with abdominal pain and fever. "
    "Figure 1. Contrast-enhanced computed tomography of the pelvis in the coronal plane. "
    "The image shows the lungs, the mediastinum and the diaphragm. Yes. No. A. B. C. D. "
    "Endoscopy of the stomach shows an ulcer with a clean base. The arrow points to the mass. "
    "You are a helpful assistant. Describe the image in detail. This is an X-ray image.";

// The chat templates of Qwen2-Instruct and Llama-3-Instruct (tokenizer_config.json).
constexpr const char* kChatMLJinja =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
constexpr const char* kLlama3Jinja =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | "
    "trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
    "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

std::vector<std::string> utf8_chars(std::string_view s) {
    std::vector<std::string> out;
    for (size_t i = 0; i < s.size();) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
        out.emplace_back(s.substr(i, n));
        i += n;
    }
    return out;
}

struct Special {
    std::string content;
    bool special = true;
};

std::vector<Special> special_tokens(const std::string& family) {
    if (family == "llama")
        return {{"<|begin_of_text|>"}, {"<|end_of_text|>"}, {"<|start_header_id|>"},
                {"<|end_header_id|>"}, {"<|eot_id|>"},      {"<image>"}};
    return {{"<|endoftext|>"}, {"<|im_start|>"}, {"<|im_end|>"}, {"<image>"}};
}

}  // namespace

Result<int64_t> write_tiny_tokenizer(const fs::path& dir, const std::string& family,
                                     const std::string& chat_template, int n_merges) {
    // Pre-tokenize: words with their leading space, digits and punctuation alone.
    std::map<std::string, int> words;
    std::string cur;
    auto flush = [&] {
        if (!cur.empty()) ++words[io::BpeTokenizer::bytes_to_unicode(cur)];
        cur.clear();
    };
    for (char ch : kCorpus) {
        bool alpha = std::isalpha(static_cast<unsigned char>(ch));
        if (ch == ' ') {
            flush();
            cur = " ";
        } else if (alpha) {
            if (!cur.empty() && cur != " " && !std::isalpha(static_cast<unsigned char>(cur.back())))
                flush();
            cur.push_back(ch);
        } else {
            flush();
            cur.push_back(ch);
            flush();
        }
    }
    flush();
    // Vocabulary: the 256 byte-level symbols in byte order.
    json vocab = json::object();
    int64_t next = 0;
    for (int b = 0; b < 256; ++b) {
        std::string byte(1, static_cast<char>(b));
        vocab[io::BpeTokenizer::bytes_to_unicode(byte)] = next++;
    }
    std::vector<std::pair<std::vector<std::string>, int>> seqs;
    for (const auto& [w, c] : words)
        seqs.push_back({utf8_chars(w), c});
    json merges = json::array();
    for (int m = 0; m < n_merges; ++m) {
        std::map<std::pair<std::string, std::string>, int> counts;
        for (const auto& [s, c] : seqs)
            for (size_t i = 0; i + 1 < s.size(); ++i)
                counts[{s[i], s[i + 1]}] += c;
        if (counts.empty()) break;
        auto best = counts.begin();
        for (auto it = counts.begin(); it != counts.end(); ++it)
            if (it->second > best->second) best = it;  // ties: first in lexicographic order
        if (best->second < 2) break;
        auto [a, b] = best->first;
        merges.push_back(a + " " + b);
        vocab[a + b] = next++;
        for (auto& [s, c] : seqs) {
            std::vector<std::string> out;
            for (size_t i = 0; i < s.size(); ++i) {
                if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
                    out.push_back(a + b);
                    ++i;
                } else {
                    out.push_back(s[i]);
                }
            }
            s = std::move(out);
        }
    }
    json added = json::array();
    std::map<std::string, int64_t> ids;
    for (const auto& sp : special_tokens(family)) {
        ids[sp.content] = next;
        added.push_back({{"id", next++},
                         {"content", sp.content},
                         {"single_word", false},
                         {"lstrip", false},
                         {"rstrip", false},
                         {"normalized", false},
                         {"special", sp.special}});
    }
    // The Qwen2 / LLaMA-3 pre-tokenizer regex (same as the published tokenizer.json files).
    const std::string qwen_re =
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
        "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
        "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    json tok = {{"version", "1.0"},
                {"truncation", nullptr},
                {"padding", nullptr},
                {"added_tokens", added},
                {"normalizer", nullptr},
                {"pre_tokenizer",
                 {{"type", "Sequence"},
                  {"pretokenizers", json::array({{{"type", "Split"},
                                                  {"pattern", {{"Regex", qwen_re}}},
                                                  {"behavior", "Isolated"},
                                                  {"invert", false}},
                                                 {{"type", "ByteLevel"},
                                                  {"add_prefix_space", false},
                                                  {"trim_offsets", false},
                                                  {"use_regex", false}}})}}},
                {"post_processor",
                 {{"type", "ByteLevel"},
                  {"add_prefix_space", false},
                  {"trim_offsets", false},
                  {"use_regex", false}}},
                {"decoder",
                 {{"type", "ByteLevel"},
                  {"add_prefix_space", false},
                  {"trim_offsets", false},
                  {"use_regex", false}}},
                {"model",
                 {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"unk_token", nullptr},
                  {"continuing_subword_prefix", ""},
                  {"end_of_word_suffix", ""},
                  {"fuse_unk", false},
                  {"byte_fallback", false},
                  {"vocab", vocab},
                  {"merges", merges}}}};
    MF_RETURN_IF_ERROR(io::ensure_dir(dir));
    MF_RETURN_IF_ERROR(io::write_file_atomic(dir / "tokenizer.json", tok.dump(1) + "\n"));
    json cfg;
    if (family == "llama") {
        cfg = {{"bos_token", "<|begin_of_text|>"}, {"eos_token", "<|eot_id|>"},
               {"pad_token", "<|end_of_text|>"},   {"add_bos_token", true},
               {"model_max_length", 4096},         {"tokenizer_class", "PreTrainedTokenizerFast"}};
    } else {
        cfg = {{"bos_token", nullptr},
               {"eos_token", "<|im_end|>"},
               {"pad_token", "<|endoftext|>"},
               {"model_max_length", 4096},
               {"tokenizer_class", "Qwen2Tokenizer"}};
    }
    json added_dec = json::object();
    for (const auto& a : added)
        added_dec[std::to_string(a["id"].get<int64_t>())] = {{"content", a["content"]},
                                                             {"special", true}};
    cfg["added_tokens_decoder"] = added_dec;
    if (!chat_template.empty()) cfg["chat_template"] = chat_template;
    MF_RETURN_IF_ERROR(io::write_file_atomic(dir / "tokenizer_config.json", cfg.dump(2) + "\n"));
    return next;
}

Result<ModelConfig> init_config(const std::string& arch_s, const std::string& size) {
    MF_ASSIGN_OR_RETURN(Arch arch, parse_arch(arch_s));
    if (arch == Arch::kBert || arch == Arch::kMpnet)
        return Status::invalid_argument("bert / mpnet checkpoints are written by the text encoder");
    ModelConfig c;
    c.arch = arch;
    TextConfig& t = c.text;
    t.family = (arch == Arch::kLlama || arch == Arch::kLlavaLlama) ? "llama" : "qwen2";
    t.attention_bias = t.family == "qwen2";
    t.rope_theta = t.family == "qwen2" ? 1000000.0 : 500000.0;
    t.rms_norm_eps = 1e-6;
    VisionConfig& v = c.vision;
    if (size == "tiny") {
        t.hidden_size = 64;
        t.intermediate_size = 160;
        t.num_hidden_layers = 2;
        t.num_attention_heads = 4;
        t.num_key_value_heads = 2;
        t.max_position_embeddings = 8192;  // room for 8+ images of 576 embeddings
        v.hidden_size = 32;
        v.intermediate_size = 64;
        v.num_hidden_layers = 3;
        v.num_attention_heads = 4;
    } else if (size == "small") {  // ~100M parameters, LLaVA-shaped
        t.hidden_size = 768;
        t.intermediate_size = 2048;
        t.num_hidden_layers = 8;
        t.num_attention_heads = 12;
        t.num_key_value_heads = 4;
        t.max_position_embeddings = 4096;
        v.hidden_size = 256;
        v.intermediate_size = 1024;
        v.num_hidden_layers = 4;
        v.num_attention_heads = 4;
    } else if (size == "0.5b") {  // Qwen2-0.5B
        t.hidden_size = 896;
        t.intermediate_size = 4864;
        t.num_hidden_layers = 24;
        t.num_attention_heads = 14;
        t.num_key_value_heads = 2;
        t.max_position_embeddings = 32768;
        t.tie_word_embeddings = true;
        v.hidden_size = 1024;
        v.intermediate_size = 4096;
        v.num_hidden_layers = 24;
        v.num_attention_heads = 16;
    } else if (size == "clip-l336") {
        v.hidden_size = 1024;
        v.intermediate_size = 4096;
        v.num_hidden_layers = 24;
        v.num_attention_heads = 16;
        t.hidden_size = 896;
        t.intermediate_size = 4864;
        t.num_hidden_layers = 2;
        t.num_attention_heads = 14;
        t.num_key_value_heads = 2;
    } else {
        return Status::invalid_argument(
            fmt::format("unknown --size '{}' (tiny, small, 0.5b, clip-l336)", size));
    }
    t.head_dim = t.hidden_size / t.num_attention_heads;
    v.image_size = 336;
    v.patch_size = 14;
    v.hidden_act = "quick_gelu";
    return c;
}

Status init_model(const InitOptions& o) {
    if (o.out.empty()) return Status::invalid_argument("model init: --out is required");
    MF_ASSIGN_OR_RETURN(ModelConfig c, init_config(o.arch, o.size));
    MF_ASSIGN_OR_RETURN(torch::Dtype save_dtype, parse_compute_dtype(o.dtype));
    MF_RETURN_IF_ERROR(io::ensure_dir(o.out));
    if (c.arch != Arch::kClipVision) {
        // Plain LMs carry their chat template in tokenizer_config.json as the published ones do;
        // LLaVA-code checkpoints (HuatuoGPT-Vision) have none: their model_type selects it.
        std::string jinja;
        if (c.arch == Arch::kQwen2 || c.arch == Arch::kLlavaHf) jinja = kChatMLJinja;
        if (c.arch == Arch::kLlama) jinja = kLlama3Jinja;
        MF_ASSIGN_OR_RETURN(int64_t vocab, write_tiny_tokenizer(o.out, c.text.family, jinja));
        if (!o.tokenizer.empty()) {
            // the given vocabulary replaces the generated one (tokenizer_config.json stays: chat
            // template and special-token names are the family's)
            auto given = io::BpeTokenizer::load(o.tokenizer);
            if (!given.ok())
                return Status::invalid_argument(fmt::format("model init --tokenizer {}: {}",
                                                            o.tokenizer.string(),
                                                            given.status().message()));
            vocab = static_cast<int64_t>(given->vocab_size());
            std::error_code ec;
            fs::copy_file(o.tokenizer, o.out / "tokenizer.json",
                          fs::copy_options::overwrite_existing, ec);
            if (ec)
                return Status::io_error(
                    fmt::format("model init: copying {}: {}", o.tokenizer.string(), ec.message()));
        }
        // Published checkpoints pad the embedding matrix (Qwen2: 151936 > tokenizer size).
        c.text.vocab_size = (vocab + 63) / 64 * 64;
        if (c.text.family == "qwen2" && vocab > 150000 && vocab <= 151936)
            c.text.vocab_size = 151936;
        // Token ids: the tokenizer's specials follow the merges (see write_tiny_tokenizer).
        auto tok = io::BpeTokenizer::load(o.out / "tokenizer.json");
        if (!tok.ok()) return tok.status();
        auto id = [&](const char* s) -> std::optional<int64_t> {
            auto v = tok->token_to_id(s);
            return v ? std::optional<int64_t>(*v) : std::nullopt;
        };
        if (c.text.family == "llama") {
            c.text.bos_token_id = id("<|begin_of_text|>");
            c.text.eos_token_id = id("<|eot_id|>");
            c.text.pad_token_id = id("<|end_of_text|>");
        } else {
            c.text.eos_token_id = id("<|im_end|>");
            c.text.pad_token_id = id("<|endoftext|>");
        }
        if (c.arch == Arch::kLlavaHf) c.image_token_index = *id("<image>");
        json gen = {{"do_sample", false}, {"max_new_tokens", 256}};
        if (c.text.bos_token_id) gen["bos_token_id"] = *c.text.bos_token_id;
        if (c.text.eos_token_id) gen["eos_token_id"] = *c.text.eos_token_id;
        if (c.text.pad_token_id) gen["pad_token_id"] = *c.text.pad_token_id;
        MF_RETURN_IF_ERROR(
            io::write_file_atomic(o.out / "generation_config.json", gen.dump(2) + "\n"));
    }
    if (is_llava(c.arch) || c.arch == Arch::kClipVision) {
        json pp = {{"image_processor_type", "CLIPImageProcessor"},
                   {"do_resize", true},
                   {"size", {{"shortest_edge", c.vision.image_size}}},
                   {"resample", 3},
                   {"do_center_crop", true},
                   {"crop_size", {{"height", c.vision.image_size}, {"width", c.vision.image_size}}},
                   {"do_rescale", true},
                   {"rescale_factor", 1.0 / 255.0},
                   {"do_normalize", true},
                   {"image_mean", {0.48145466, 0.4578275, 0.40821073}},
                   {"image_std", {0.26862954, 0.26130258, 0.27577711}},
                   {"do_convert_rgb", true}};
        MF_RETURN_IF_ERROR(
            io::write_file_atomic(o.out / "preprocessor_config.json", pp.dump(2) + "\n"));
    }
    torch::manual_seed(o.seed);
    MultimodalLM m(c);
    {
        torch::NoGradGuard ng;
        for (auto& p : m->named_parameters(true)) {
            const std::string& n = p.key();
            torch::Tensor& w = p.value();
            if (n.ends_with("norm.weight") || n.ends_with("layernorm.weight") ||
                n.ends_with("layrnorm.weight") || n.find("layer_norm") != std::string::npos ||
                n.ends_with("norm1.weight") || n.ends_with("norm2.weight")) {
                if (n.ends_with(".bias"))
                    w.zero_();
                else
                    w.fill_(1.0);
                if (o.random_all) w.add_(torch::randn_like(w) * 0.1);
            } else if (n.ends_with(".bias")) {
                w.zero_();
                if (o.random_all) w.normal_(0.0, 0.1);
            } else {
                w.normal_(0.0, 0.02);
            }
        }
    }
    return save_multimodal_lm(m, o.out, save_dtype);
}

}  // namespace mf::model
