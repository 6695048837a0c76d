// Chat templates. See chat_template.h.
#include "io/chat_template.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "io/file.h"
#include "io/tokenizer_internal.h"

namespace mf::io {

using json = nlohmann::json;

namespace {

// Python's str.strip() on the whitespace of these texts (ASCII and Unicode spaces).
std::string strip(std::string_view s) {
    return std::string(tok::trim_end(tok::trim_start(s)));
}

struct Builder {
    std::vector<ChatSegment> segs;
    void add(std::string text, bool train = false) {
        if (text.empty()) return;
        // Neighbouring prompt pieces are one segment: fewer boundaries, same string.
        if (!train && !segs.empty() && !segs.back().train) {
            segs.back().text += text;
            return;
        }
        segs.push_back({std::move(text), train});
    }
};

Status check_roles(const std::vector<ChatMessage>& msgs, bool system_ok, ChatFormat f) {
    std::string name(chat_format_name(f));
    if (msgs.empty()) return Status::invalid_argument("chat template " + name + ": no messages");
    std::string last;
    for (size_t i = 0; i < msgs.size(); ++i) {
        const std::string& r = msgs[i].role;
        std::string where = "chat template " + name + ": message " + std::to_string(i) + ": ";
        if (r != "system" && r != "user" && r != "assistant") {
            return Status::invalid_argument(where + "role '" + r +
                                            "' (use system, user or assistant)");
        }
        if (r == "system" && (!system_ok || i != 0)) {
            return Status::invalid_argument(
                where + (system_ok ? "a system message must come first"
                                   : "this format has no system prompt (drop the message)"));
        }
        if (r != "system" && r == last) {
            return Status::invalid_argument(where + "two '" + r +
                                            "' messages in a row (user and assistant alternate)");
        }
        last = r;
    }
    return Status::ok_status();
}

}  // namespace

std::string_view chat_format_name(ChatFormat f) {
    switch (f) {
        case ChatFormat::kPlain:
            return "plain";
        case ChatFormat::kHuatuo:
            return "huatuo";
        case ChatFormat::kChatML:
            return "chatml";
        case ChatFormat::kLlama3:
            return "llama3";
        case ChatFormat::kLlama2:
            return "llama2";
    }
    return "?";
}

Result<ChatFormat> parse_chat_format(std::string_view name) {
    for (ChatFormat f : {ChatFormat::kPlain, ChatFormat::kHuatuo, ChatFormat::kChatML,
                         ChatFormat::kLlama3, ChatFormat::kLlama2}) {
        if (chat_format_name(f) == name) return f;
    }
    if (name == "qwen2" || name == "qwen") return ChatFormat::kChatML;
    return Status::invalid_argument("unknown chat template '" + std::string(name) +
                                    "' (plain, huatuo, chatml, llama3, llama2)");
}

ChatTemplate::ChatTemplate(ChatFormat f) : format_(f) {
    if (f == ChatFormat::kChatML) default_system_ = "You are a helpful assistant.";
}

Result<std::vector<ChatSegment>> ChatTemplate::segments(const std::vector<ChatMessage>& msgs,
                                                        bool gen, std::string_view eos_text) const {
    bool system_ok = format_ == ChatFormat::kChatML || format_ == ChatFormat::kLlama3 ||
                     format_ == ChatFormat::kLlama2;
    MF_RETURN_IF_ERROR(check_roles(msgs, system_ok, format_));
    Builder b;
    switch (format_) {
        case ChatFormat::kChatML:
            if (msgs[0].role != "system" && !default_system_.empty()) {
                b.add("<|im_start|>system\n" + default_system_ + "<|im_end|>\n");
            }
            for (const ChatMessage& m : msgs) {
                if (m.role == "assistant") {
                    b.add("<|im_start|>assistant\n");
                    b.add(m.text + "<|im_end|>", true);
                    b.add("\n");
                } else {
                    b.add("<|im_start|>" + m.role + "\n" + m.text + "<|im_end|>\n");
                }
            }
            if (gen) b.add("<|im_start|>assistant\n");
            break;
        case ChatFormat::kLlama3:
            b.add("<|begin_of_text|>");
            for (const ChatMessage& m : msgs) {
                b.add("<|start_header_id|>" + m.role + "<|end_header_id|>\n\n");
                b.add(strip(m.text) + "<|eot_id|>", m.role == "assistant");
            }
            if (gen) b.add("<|start_header_id|>assistant<|end_header_id|>\n\n");
            break;
        case ChatFormat::kLlama2: {
            size_t i = 0;
            std::string system;
            if (msgs[0].role == "system") {
                system = msgs[0].text;
                i = 1;
            }
            bool first_user = true;
            for (; i < msgs.size(); ++i) {
                const ChatMessage& m = msgs[i];
                if (m.role == "user") {
                    std::string content = m.text;
                    if (first_user && !system.empty()) {
                        content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content;
                    }
                    first_user = false;
                    b.add("<s>[INST] " + strip(content) + " [/INST]");
                } else {
                    b.add(" " + strip(m.text) + " </s>", true);
                }
            }
            break;
        }
        case ChatFormat::kHuatuo:
            for (const ChatMessage& m : msgs) {
                if (m.role == "user") {
                    b.add("<|user|>\n" + strip(m.text) + "\n");
                } else {
                    b.add("<|assistant|>\n");
                    b.add(m.text + " \n" + std::string(eos_text), true);
                }
            }
            if (gen && msgs.back().role == "user") b.add("<|assistant|>\n");
            break;
        case ChatFormat::kPlain:
            for (const ChatMessage& m : msgs) {
                if (m.role == "user") {
                    b.add(m.text);
                } else {
                    b.add(m.text + "\n", true);
                }
            }
            break;
    }
    return std::move(b.segs);
}

Result<std::string> ChatTemplate::render(const std::vector<ChatMessage>& msgs, bool gen,
                                         std::string_view eos_text) const {
    MF_ASSIGN_OR_RETURN(auto segs, segments(msgs, gen, eos_text));
    std::string out;
    for (const auto& s : segs)
        out += s.text;
    return out;
}

namespace {

// Splits on "<image>" (chunks between markers, possibly empty).
std::vector<std::string_view> split_images(std::string_view s) {
    std::vector<std::string_view> out;
    size_t pos = 0;
    for (size_t hit; (hit = s.find(kImageMarker, pos)) != std::string_view::npos;
         pos = hit + kImageMarker.size()) {
        out.push_back(s.substr(pos, hit - pos));
    }
    out.push_back(s.substr(pos));
    return out;
}

}  // namespace

Result<TokenizedChat> ChatTemplate::tokenize(const Tokenizer& tok,
                                             const std::vector<ChatMessage>& msgs,
                                             const ChatTokenizeOptions& opt) const {
    std::string eos_text;
    if (format_ == ChatFormat::kHuatuo && tok.eos_id()) {
        eos_text = tok.id_to_token(*tok.eos_id()).value_or("");
    }
    MF_ASSIGN_OR_RETURN(auto segs, segments(msgs, opt.add_generation_prompt, eos_text));
    TokenizedChat out;
    bool boundary = true;  // at the start, or right after a special token / image
    auto encode_chunk = [&](std::string_view chunk, bool train) {
        if (chunk.empty()) return;
        std::vector<int32_t> ids =
            boundary ? tok.encode(chunk, false) : tok.encode_continuation(chunk);
        if (ids.empty()) return;
        out.ids.insert(out.ids.end(), ids.begin(), ids.end());
        out.mask.insert(out.mask.end(), ids.size(), train ? 1 : 0);
        boundary = tok.is_special(ids.back());
    };
    for (const ChatSegment& s : segs) {
        if (!opt.image_token_id || s.train) {
            encode_chunk(s.text, s.train);
            continue;
        }
        auto chunks = split_images(s.text);
        for (size_t i = 0; i < chunks.size(); ++i) {
            if (i > 0) {
                out.ids.push_back(*opt.image_token_id);
                out.mask.push_back(0);
                ++out.images;
                boundary = true;
            }
            encode_chunk(chunks[i], false);
        }
    }
    if (opt.verify) {
        std::string whole;
        for (const auto& s : segs)
            whole += s.text;
        std::vector<int32_t> ref;
        if (opt.image_token_id) {
            // LLaVA's tokenizer_image_token: chunks between markers tokenized on their own.
            auto chunks = split_images(whole);
            for (size_t i = 0; i < chunks.size(); ++i) {
                if (i > 0) ref.push_back(*opt.image_token_id);
                auto ids = tok.encode(chunks[i], false);
                ref.insert(ref.end(), ids.begin(), ids.end());
            }
        } else {
            ref = tok.encode(whole, false);
        }
        out.mismatch = ref != out.ids;
    }
    return out;
}

std::vector<int32_t> ChatTemplate::stop_ids(const Tokenizer& tok) const {
    std::vector<int32_t> out;
    const char* eot = format_ == ChatFormat::kChatML   ? "<|im_end|>"
                      : format_ == ChatFormat::kLlama3 ? "<|eot_id|>"
                      : format_ == ChatFormat::kLlama2 ? "</s>"
                                                       : nullptr;
    if (eot != nullptr) {
        if (auto id = tok.token_to_id(eot)) out.push_back(*id);
    }
    if (auto eos = tok.eos_id(); eos && std::find(out.begin(), out.end(), *eos) == out.end()) {
        out.push_back(*eos);
    }
    return out;
}

std::optional<ChatTemplate> chat_template_from_jinja(std::string_view j) {
    auto has = [&](std::string_view s) { return j.find(s) != std::string_view::npos; };
    if (has("<|im_start|>")) {
        ChatTemplate t(ChatFormat::kChatML);
        if (!has("You are a helpful assistant")) t.set_default_system("");
        return t;
    }
    if (has("<|start_header_id|>")) return ChatTemplate(ChatFormat::kLlama3);
    if (has("[INST]")) return ChatTemplate(ChatFormat::kLlama2);
    if (has("<|user|>") && has("<|assistant|>")) return ChatTemplate(ChatFormat::kHuatuo);
    return std::nullopt;
}

Result<ChatTemplate> detect_chat_template(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    auto read_json = [](const fs::path& p) -> json {
        auto text = read_file(p);
        if (!text.ok()) return json();
        json j = json::parse(text.value(), nullptr, false);
        return j.is_discarded() ? json() : j;
    };
    std::vector<std::string> jinjas;
    json cfg = read_json(dir / "tokenizer_config.json");
    const json& ct = cfg.is_object() ? cfg.value("chat_template", json()) : json();
    if (ct.is_string()) {
        jinjas.push_back(ct.get<std::string>());
    } else if (ct.is_array()) {
        for (const json& e : ct) {
            if (!e.is_object() || !e.contains("template") || !e["template"].is_string()) continue;
            if (e.value("name", std::string()) == "default") {
                jinjas.insert(jinjas.begin(), e["template"].get<std::string>());
            } else {
                jinjas.push_back(e["template"].get<std::string>());
            }
        }
    }
    if (fs::exists(dir / "chat_template.jinja")) {
        if (auto t = read_file(dir / "chat_template.jinja"); t.ok()) jinjas.push_back(t.value());
    }
    json ctj = read_json(dir / "chat_template.json");
    if (ctj.is_object() && ctj.contains("chat_template") && ctj["chat_template"].is_string()) {
        jinjas.push_back(ctj["chat_template"].get<std::string>());
    }
    for (const std::string& j : jinjas) {
        if (auto t = chat_template_from_jinja(j)) return *t;
    }
    json model = read_json(dir / "config.json");
    std::string type = model.is_object() ? model.value("model_type", std::string()) : "";
    if (type == "llava_qwen2" || type == "llava_llama") return ChatTemplate(ChatFormat::kHuatuo);
    if (type.rfind("qwen2", 0) == 0 || type.rfind("qwen3", 0) == 0) {
        return ChatTemplate(ChatFormat::kChatML);
    }
    if (type == "llama") {
        int64_t vocab = model.value("vocab_size", int64_t{0});
        return ChatTemplate(vocab >= 128000 ? ChatFormat::kLlama3 : ChatFormat::kLlama2);
    }
    if (type == "mistral") return ChatTemplate(ChatFormat::kLlama2);
    return Status::not_found(dir.string() +
                             ": no recognisable chat_template in tokenizer_config.json and no "
                             "known config.json model_type ('" +
                             type +
                             "'); pass the template name (plain, huatuo, chatml, llama3, "
                             "llama2)");
}

}  // namespace mf::io
