#include "train/data.h"

#include <fmt/core.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <sstream>

#include "core/thread_pool.h"
#include "io/file.h"
#include "model/llava.h"

namespace mf::train {

namespace {

using nlohmann::json;

// Parses one record; on a problem returns InvalidArgument with the reason.
Result<Record> parse_record(const json& j, const std::string& where) {
    Record r;
    r.where = where;
    if (!j.is_object()) return Status::invalid_argument("record is not a JSON object");
    if (auto it = j.find("id"); it != j.end()) {
        if (it->is_string())
            r.id = it->get<std::string>();
        else if (it->is_number_integer())
            r.id = std::to_string(it->get<int64_t>());
    }
    if (auto it = j.find("image"); it != j.end() && !it->is_null()) {
        if (it->is_string()) {
            r.images.push_back(it->get<std::string>());
        } else if (it->is_array()) {
            for (const auto& x : *it) {
                if (!x.is_string())
                    return Status::invalid_argument("\"image\" list holds a non-string");
                r.images.push_back(x.get<std::string>());
            }
        } else {
            return Status::invalid_argument("\"image\" is neither a string nor a list of strings");
        }
    }
    auto conv = j.find("conversations");
    if (conv == j.end() || !conv->is_array() || conv->empty())
        return Status::invalid_argument("no \"conversations\" list");
    for (const auto& t : *conv) {
        if (!t.is_object() || !t.contains("from") || !t.contains("value") ||
            !t["from"].is_string() || !t["value"].is_string())
            return Status::invalid_argument(
                "a conversation turn lacks string \"from\" / \"value\"");
        std::string from = t["from"].get<std::string>();
        std::string role;
        if (from == "human" || from == "user")
            role = "user";
        else if (from == "gpt" || from == "assistant")
            role = "assistant";
        else if (from == "system")
            role = "system";
        else
            return Status::invalid_argument(fmt::format("unknown speaker \"from\": \"{}\"", from));
        r.messages.push_back({role, t["value"].get<std::string>()});
    }
    return r;
}

size_t count_markers(const std::string& s) {
    size_t n = 0, at = 0;
    while ((at = s.find(io::kImageMarker, at)) != std::string::npos) {
        ++n;
        at += io::kImageMarker.size();
    }
    return n;
}

std::string strip_ws(std::string_view s) {
    std::string o;
    for (char c : s)
        if (!std::isspace(static_cast<unsigned char>(c))) o += c;
    return o;
}

}  // namespace

Result<std::vector<Record>> read_records(const fs::path& file, std::vector<Reject>& rejects) {
    MF_ASSIGN_OR_RETURN(std::string text, io::read_file(file));
    std::vector<Record> out;
    size_t first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) return out;
    auto add = [&](const json& j, const std::string& where) {
        auto r = parse_record(j, where);
        if (r.ok()) {
            out.push_back(std::move(*r));
        } else {
            std::string id = j.is_object() && j.contains("id") && j["id"].is_string()
                                 ? j["id"].get<std::string>()
                                 : "";
            rejects.push_back({where, id, r.status().message()});
        }
    };
    if (text[first] == '[') {
        json arr = json::parse(text, nullptr, false);
        if (arr.is_discarded() || !arr.is_array())
            return Status::invalid_argument(
                fmt::format("{}: starts with '[' but is not a valid JSON array; fix the file or "
                            "write it as JSONL",
                            file.string()));
        for (size_t i = 0; i < arr.size(); ++i)
            add(arr[i], fmt::format("{}:#{}", file.string(), i + 1));
        return out;
    }
    std::istringstream in(text);
    std::string line;
    size_t ln = 0;
    while (std::getline(in, line)) {
        ++ln;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        std::string where = fmt::format("{}:{}", file.string(), ln);
        json j = json::parse(line, nullptr, false);
        if (j.is_discarded()) {
            rejects.push_back({where, "", "not valid JSON"});
            continue;
        }
        add(j, where);
    }
    return out;
}

Result<Sample> tokenize_record(const Record& r, const io::Tokenizer& tok,
                               const io::ChatTemplate& tmpl, const fs::path& image_dir,
                               const TokenizeOptions& opt) {
    Sample s;
    s.id = r.id;
    s.where = r.where;
    std::vector<io::ChatMessage> msgs = r.messages;
    size_t n_img = r.images.size();
    if (n_img > 0 && opt.image_tokens <= 0)
        return Status::invalid_argument("the record has images but the model has no vision tower");
    size_t markers = 0;
    for (const auto& m : msgs)
        markers += count_markers(m.text);
    bool has_assistant = false;
    for (const auto& m : msgs)
        has_assistant |= m.role == "assistant";
    if (!has_assistant) return Status::invalid_argument("no assistant (\"gpt\") turn to learn");
    if (tmpl.format() == io::ChatFormat::kPlain && opt.plain_user_is_images) {
        // LLaVA pretraining: the user turn is just the image(s), the target the caption.
        for (auto& m : msgs)
            if (m.role == "user") m.text.clear();
        if (n_img == 0)
            return Status::invalid_argument("plain (align) training needs an image per record");
        std::string pre;
        for (size_t i = 0; i < n_img; ++i)
            pre += io::kImageMarker;
        for (auto& m : msgs)
            if (m.role == "user") {
                m.text = pre;
                break;
            }
        for (const auto& m : msgs)
            if (m.role == "assistant" && count_markers(m.text) > 0)
                return Status::invalid_argument("an assistant turn holds <image>");
    } else {
        if (markers == 0 && n_img > 0) {
            std::string pre;
            for (size_t i = 0; i < n_img; ++i)
                pre += "<image>\n";
            bool done = false;
            for (auto& m : msgs)
                if (m.role == "user") {
                    m.text = pre + m.text;
                    done = true;
                    break;
                }
            if (!done) return Status::invalid_argument("images but no user turn to put them in");
        } else if (markers != n_img) {
            return Status::invalid_argument(
                fmt::format("{} <image> markers for {} images", markers, n_img));
        }
    }
    for (const auto& rel : r.images) {
        fs::path p = fs::path(rel).is_absolute() ? fs::path(rel) : image_dir / rel;
        std::error_code ec;
        if (!fs::is_regular_file(p, ec))
            return Status::invalid_argument(
                fmt::format("image '{}' not found under {}", rel, image_dir.string()));
        s.images.push_back(p);
    }
    io::ChatTokenizeOptions to;
    to.image_token_id = io::kLlavaImageTokenIndex;
    to.verify = true;
    auto tc = tmpl.tokenize(tok, msgs, to);
    if (!tc.ok()) return Status::invalid_argument(tc.status().message());
    const std::string name = fmt::format("sample '{}' ({})", r.id, r.where);
    if (tc->mismatch)
        return Status::failed_precondition(fmt::format(
            "{}: tokenization mismatch: tokenizing the conversation turn by turn gives other ids "
            "than tokenizing the whole rendered text, so the labels would not line up with the "
            "assistant's tokens (the failure that silently trains LLaVA forks on loss 0). The chat "
            "template ('{}') does not suit this tokenizer; pass the right --chat-format",
            name, io::chat_format_name(tmpl.format())));
    if (tc->ids.size() != tc->mask.size() || tc->images != n_img)
        return Status::failed_precondition(fmt::format(
            "{}: the template gave {} ids, {} mask entries and {} image placeholders for {} images",
            name, tc->ids.size(), tc->mask.size(), tc->images, n_img));
    // Token-by-token check of the labels: each assistant reply must be inside the trained span,
    // in order, and no image placeholder may be trained.
    std::vector<int32_t> trained;
    for (size_t i = 0; i < tc->ids.size(); ++i) {
        if (tc->mask[i] && tc->ids[i] == io::kLlavaImageTokenIndex)
            return Status::failed_precondition(name +
                                               ": an image placeholder is marked for training");
        if (tc->mask[i]) trained.push_back(tc->ids[i]);
    }
    if (trained.empty())
        return Status::failed_precondition(
            name +
            ": no token is marked for training (the loss would be 0); check the chat template");
    {
        std::string dec = strip_ws(tok.decode(trained, false));
        size_t at = 0;
        for (const auto& m : msgs) {
            if (m.role != "assistant") continue;
            std::string want = strip_ws(m.text);
            size_t f = dec.find(want, at);
            if (f == std::string::npos)
                return Status::failed_precondition(fmt::format(
                    "{}: the trained tokens do not decode to the assistant reply \"{}\"; the "
                    "labels "
                    "are misaligned (tokenization mismatch); pass the right --chat-format",
                    name, m.text.substr(0, 60)));
            at = f + want.size();
        }
    }
    // Ids + labels, truncated to max_length positions (an image is never cut: a marker that does
    // not fit whole is dropped with everything after it).
    int64_t pos = 0;
    size_t img = 0;
    for (size_t i = 0; i < tc->ids.size(); ++i) {
        int64_t id = tc->ids[i];
        bool is_img = id == io::kLlavaImageTokenIndex;
        int64_t w = is_img ? opt.image_tokens : 1;
        if (pos + w > opt.max_length) {
            s.truncated = true;
            break;
        }
        pos += w;
        if (is_img) {
            s.ids.push_back(model::kImageMarker);
            s.labels.push_back(kIgnore);
            ++img;
        } else {
            s.ids.push_back(id);
            s.labels.push_back(tc->mask[i] ? id : kIgnore);
            if (tc->mask[i]) ++s.trained_tokens;
        }
    }
    s.images.resize(img);
    s.length = pos;
    // The first position predicts nothing: a label there is never learned.
    if (!s.labels.empty() && s.labels[0] != kIgnore) {
        s.labels[0] = kIgnore;
        --s.trained_tokens;
    }
    if (s.trained_tokens <= 0)
        return Status::invalid_argument(fmt::format(
            "after truncation to max_length {} no assistant token is left (the sample takes {} "
            "positions); raise max_length",
            opt.max_length, pos));
    return s;
}

Result<std::vector<Sample>> load_samples(const fs::path& file, const io::Tokenizer& tok,
                                         const io::ChatTemplate& tmpl, const fs::path& image_dir,
                                         const TokenizeOptions& opt, std::vector<Reject>& rejects) {
    MF_ASSIGN_OR_RETURN(std::vector<Record> recs, read_records(file, rejects));
    std::vector<Sample> out;
    out.reserve(recs.size());
    for (const auto& r : recs) {
        auto s = tokenize_record(r, tok, tmpl, image_dir, opt);
        if (s.ok()) {
            out.push_back(std::move(*s));
        } else if (s.status().code() == StatusCode::kInvalidArgument) {
            rejects.push_back({r.where, r.id, s.status().message()});
        } else {
            return s.status();
        }
    }
    return out;
}

Status write_rejects(const fs::path& path, const std::vector<Reject>& rejects) {
    std::string out;
    for (const auto& r : rejects)
        out += json{{"where", r.where}, {"id", r.id}, {"reason", r.reason}}.dump() + "\n";
    return io::write_file_atomic(path, out);
}

std::vector<std::vector<size_t>> epoch_batches(const std::vector<int64_t>& lengths,
                                               size_t global_batch, uint64_t seed, int64_t epoch) {
    std::vector<size_t> order(lengths.size());
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(seed * 1000003ULL + static_cast<uint64_t>(epoch));
    for (size_t i = order.size(); i > 1; --i)
        std::swap(order[i - 1], order[rng() % i]);
    std::vector<std::vector<size_t>> out;
    for (size_t at = 0; at < order.size(); at += global_batch) {
        std::vector<size_t> b(order.begin() + at,
                              order.begin() + std::min(order.size(), at + global_batch));
        std::stable_sort(b.begin(), b.end(),
                         [&](size_t a, size_t c) { return lengths[a] > lengths[c]; });
        out.push_back(std::move(b));
    }
    return out;
}

std::vector<size_t> micro_slice(const std::vector<size_t>& global, int world, int rank, int accum,
                                int micro) {
    size_t parts = static_cast<size_t>(world) * accum;
    size_t k = static_cast<size_t>(micro) * world + rank;
    size_t n = global.size();
    size_t begin = n * k / parts, end = n * (k + 1) / parts;
    return {global.begin() + begin, global.begin() + end};
}

Result<Batch> make_batch(const std::vector<const Sample*>& samples,
                         const model::ImageProcessorConfig& improc, int64_t image_size,
                         ThreadPool* pool) {
    Batch b;
    b.samples = samples;
    std::vector<fs::path> paths;
    for (const Sample* s : samples) {
        b.n_images.push_back(static_cast<int64_t>(s->images.size()));
        paths.insert(paths.end(), s->images.begin(), s->images.end());
    }
    if (paths.empty()) return b;
    auto px = model::preprocess_files(paths, improc, pool);
    if (!px.ok()) {
        // Name the sample of the failing image.
        return px.status().with_context("decoding the images of a batch (samples " + [&] {
            std::string ids;
            for (const Sample* s : samples)
                ids += (ids.empty() ? "" : ", ") + s->where;
            return ids;
        }() + ")");
    }
    const int64_t N = static_cast<int64_t>(paths.size());
    if (static_cast<int64_t>(px->size()) != N * 3 * image_size * image_size)
        return Status::invalid_argument(fmt::format(
            "the image processor gives {} floats per image but the vision tower takes {}x{}",
            px->size() / N, image_size, image_size));
    b.pixels =
        torch::from_blob(px->data(), {N, 3, image_size, image_size}, torch::kFloat32).clone();
    return b;
}

}  // namespace mf::train
