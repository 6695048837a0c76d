// load_tokenizer: picks the implementation for a checkpoint. See tokenizer.h.
#include "io/tokenizer.h"

#include "io/bpe_tokenizer.h"
#include "io/file.h"
#include "io/spm_tokenizer.h"
#include "io/tokenizer_internal.h"
#include "io/wordpiece_tokenizer.h"

namespace mf::io {

using tok::json;

namespace {

// True when a (normalizer / decoder / pre-tokenizer) JSON tree holds a step of one of `types`.
bool has_type(const json& j, std::initializer_list<const char*> types) {
    if (j.is_object()) {
        if (j.contains("type") && j["type"].is_string()) {
            for (const char* t : types) {
                if (j["type"].get<std::string>() == t) return true;
            }
        }
        for (const auto& [k, v] : j.items()) {
            if ((v.is_array() || v.is_object()) && has_type(v, types)) return true;
        }
    } else if (j.is_array()) {
        for (const json& v : j) {
            if (has_type(v, types)) return true;
        }
    }
    return false;
}

std::optional<int32_t> id_of(const Tokenizer& t, const json& config, const char* key,
                             std::initializer_list<const char*> fallbacks) {
    if (auto name = tok::config_token(config, key)) return t.token_to_id(*name);
    if (config.is_object() && config.contains(key) && config[key].is_null()) return std::nullopt;
    for (const char* f : fallbacks) {
        if (auto id = t.token_to_id(f)) return id;
    }
    return std::nullopt;
}

void fill_specials(Tokenizer& t, const json& config) {
    SpecialTokenIds s;
    s.bos = id_of(t, config, "bos_token", {"<s>", "<|begin_of_text|>", "[CLS]"});
    s.eos = id_of(t, config, "eos_token", {"</s>", "<|end_of_text|>", "<|endoftext|>", "[SEP]"});
    s.pad = id_of(t, config, "pad_token", {"<pad>", "[PAD]", "<|endoftext|>"});
    s.unk = id_of(t, config, "unk_token", {"<unk>", "[UNK]"});
    t.set_special_ids(s);
}

Result<json> parse_config(std::string_view config_json, std::string_view origin) {
    if (config_json.empty()) return json::object();
    json c = json::parse(config_json, nullptr, false);
    if (c.is_discarded() || !c.is_object()) {
        return Status::invalid_argument(std::string(origin) +
                                        ": tokenizer_config.json is not a JSON object");
    }
    return c;
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> tokenizer_from_json(std::string_view tokenizer_json,
                                                       std::string_view config_json,
                                                       std::string_view origin) {
    json j = json::parse(tokenizer_json, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        return Status::invalid_argument(std::string(origin) +
                                        ": not a JSON object (is this a tokenizer.json?)");
    }
    MF_ASSIGN_OR_RETURN(json config, parse_config(config_json, origin));
    const json& model = j.value("model", json());
    std::string type = model.is_object() ? model.value("type", std::string("BPE")) : "";
    // transformers.js defaults clean_up_tokenization_spaces to true.
    bool cleanup = config.value("clean_up_tokenization_spaces", true);
    std::unique_ptr<Tokenizer> out;
    if (type == "WordPiece") {
        MF_ASSIGN_OR_RETURN(auto t, WordPieceTokenizer::from_json(tokenizer_json, origin));
        t.set_cleanup_spaces(cleanup);
        out = std::make_unique<WordPieceTokenizer>(std::move(t));
    } else if (type == "BPE") {
        bool spm = model.value("byte_fallback", false) ||
                   has_type(j.value("normalizer", json()), {"Prepend", "Replace"}) ||
                   has_type(j.value("pre_tokenizer", json()), {"Metaspace"}) ||
                   has_type(j.value("decoder", json()), {"ByteFallback", "Metaspace"});
        if (spm) {
            MF_ASSIGN_OR_RETURN(auto t, SpmBpeTokenizer::from_json(tokenizer_json, origin));
            t.set_cleanup_spaces(cleanup);
            out = std::make_unique<SpmBpeTokenizer>(std::move(t));
        } else {
            MF_ASSIGN_OR_RETURN(auto t, BpeTokenizer::from_json(tokenizer_json, origin));
            out = std::make_unique<BpeTokenizer>(std::move(t));
        }
    } else {
        return tok::field_error(origin, "model.type",
                                "'" + type + "' is not supported (BPE or WordPiece)");
    }
    fill_specials(*out, config);
    return out;
}

Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    fs::path tj, folder = dir;
    if (fs::is_regular_file(dir)) {
        tj = dir;
        folder = dir.parent_path();
    } else if (fs::exists(dir / "tokenizer.json")) {
        tj = dir / "tokenizer.json";
    }
    std::string config;
    if (fs::path c = folder / "tokenizer_config.json"; fs::exists(c)) {
        MF_ASSIGN_OR_RETURN(config, read_file(c));
    }
    if (!tj.empty()) {
        MF_ASSIGN_OR_RETURN(std::string text, read_file(tj));
        return tokenizer_from_json(text, config, tj.string());
    }
    fs::path vt = folder / "vocab.txt";
    if (!fs::exists(vt)) {
        return Status::not_found(folder.string() +
                                 ": no tokenizer.json or vocab.txt (is this a checkpoint folder?)");
    }
    MF_ASSIGN_OR_RETURN(json cfg,
                        parse_config(config, (folder / "tokenizer_config.json").string()));
    MF_ASSIGN_OR_RETURN(std::string text, read_file(vt));
    MF_ASSIGN_OR_RETURN(auto t, WordPieceTokenizer::from_vocab_txt(
                                    text, cfg.value("do_lower_case", true), vt.string()));
    t.set_cleanup_spaces(cfg.value("clean_up_tokenization_spaces", true));
    auto out = std::make_unique<WordPieceTokenizer>(std::move(t));
    fill_specials(*out, cfg);
    return std::unique_ptr<Tokenizer>(std::move(out));
}

}  // namespace mf::io
