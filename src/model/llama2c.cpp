#include "model/llama2c.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "io/file.h"
#include "io/safetensors.h"

namespace mf::model::llama2c {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

constexpr uint32_t kMagicV1 = 0x616b3432;  // "ak42": llama2.c export versions 1 and 2
constexpr int32_t kMaxDim = 1 << 20;       // sanity bound: catches garbage headers

int32_t read_i32(const uint8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return v;
}
float read_f32(const uint8_t* p) {
    float v;
    std::memcpy(&v, p, 4);
    return v;
}

// Floats of the weights after the header, in file order (without freq_cis / wcls).
struct Layout {
    int64_t embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, freq_cis, wcls;
    int64_t total() const {
        return embedding + rms_att + wq + wk + wv + wo + rms_ffn + w1 + w2 + w3 + rms_final +
               freq_cis + wcls;
    }
};

Layout layout_of(const Config& c) {
    const int64_t L = c.n_layers, D = c.dim, H = c.hidden_dim, V = c.vocab_size, KV = c.kv_dim(),
                  hs = c.head_size();
    Layout l{};
    l.embedding = V * D;
    l.rms_att = L * D;
    l.wq = L * D * D;
    l.wk = L * KV * D;
    l.wv = L * KV * D;
    l.wo = L * D * D;
    l.rms_ffn = L * D;
    l.w1 = L * H * D;
    l.w2 = L * D * H;
    l.w3 = L * H * D;
    l.rms_final = D;
    l.freq_cis = int64_t{c.seq_len} * hs;  // real + imag, seq_len * hs/2 each
    l.wcls = c.shared_classifier ? 0 : V * D;
    return l;
}

std::string header_str(const Config& c) {
    return fmt::format(
        "dim {}, hidden_dim {}, n_layers {}, n_heads {}, n_kv_heads {}, vocab_size {}{}, seq_len "
        "{}",
        c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size,
        c.shared_classifier ? "" : " (unshared classifier)", c.seq_len);
}

bool is_byte_piece(const std::string& p, int* byte = nullptr) {
    if (p.size() != 6 || p.compare(0, 3, "<0x") != 0 || p[5] != '>') return false;
    auto hex = [](char ch) -> int {
        if (ch >= '0' && ch <= '9') return ch - '0';
        if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
        if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
        return -1;
    };
    int hi = hex(p[3]), lo = hex(p[4]);
    if (hi < 0 || lo < 0) return false;
    if (byte) *byte = hi * 16 + lo;
    return true;
}

// Length of the UTF-8 sequence starting at s[i] the way run.c groups bytes: a byte plus the
// continuation bytes (10xxxxxx) that follow it, at most 4 in all.
size_t utf8_group(std::string_view s, size_t i) {
    size_t j = i + 1;
    while (j < s.size() && (static_cast<uint8_t>(s[j]) & 0xC0) == 0x80 && j - i < 4)
        ++j;
    return j - i;
}

bool valid_utf8(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        uint8_t c = static_cast<uint8_t>(s[i]);
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (n == 0 || i + n > s.size()) return false;
        for (size_t k = 1; k < n; ++k)
            if ((static_cast<uint8_t>(s[i + k]) & 0xC0) != 0x80) return false;
        i += n;
    }
    return true;
}

void rmsnorm(float* o, const float* x, const float* w, int n) {
    float ss = 0.0f;
    for (int j = 0; j < n; ++j)
        ss += x[j] * x[j];
    ss = ss / static_cast<float>(n) + 1e-5f;
    ss = 1.0f / std::sqrt(ss);
    for (int j = 0; j < n; ++j)
        o[j] = w[j] * (ss * x[j]);
}

// out[d] = W[d, n] @ x[n]
void matmul(float* out, const float* x, const float* w, int n, int d) {
    for (int i = 0; i < d; ++i) {
        float v = 0.0f;
        const float* row = w + static_cast<int64_t>(i) * n;
        for (int j = 0; j < n; ++j)
            v += row[j] * x[j];
        out[i] = v;
    }
}

void softmax(float* x, int n) {
    float mx = x[0];
    for (int i = 1; i < n; ++i)
        mx = std::max(mx, x[i]);
    float sum = 0.0f;
    for (int i = 0; i < n; ++i) {
        x[i] = std::exp(x[i] - mx);
        sum += x[i];
    }
    for (int i = 0; i < n; ++i)
        x[i] /= sum;
}

std::string hf_piece(const std::string& p) {
    std::string o;
    for (char ch : p) {
        if (ch == ' ')
            o += "\xE2\x96\x81";  // U+2581
        else
            o += ch;
    }
    return o;
}

std::string special_name(const std::string& p) {
    // "\n<s>\n" -> "<s>"
    size_t b = p.find_first_not_of('\n'), e = p.find_last_not_of('\n');
    if (b == std::string::npos) return p;
    return p.substr(b, e - b + 1);
}

std::string dump(const ojson& j) {
    return j.dump(2, ' ', false, nlohmann::json::error_handler_t::strict) + "\n";
}

}  // namespace

// ---- model
// ---------------------------------------------------------------------------------------

Result<Config> parse_header(std::span<const uint8_t> bytes, std::string_view origin) {
    if (bytes.size() < 28)
        return Status::corruption(
            fmt::format("{}: {} bytes, shorter than the 28-byte llama2.c header (7 x int32)",
                        origin, bytes.size()));
    uint32_t magic;
    std::memcpy(&magic, bytes.data(), 4);
    if (magic == kMagicV1)
        return Status::unsupported(fmt::format(
            "{}: a llama2.c version-1/2 export (magic \"ak42\"); only the legacy format run.c "
            "reads is supported: export with `python export.py --version 0`",
            origin));
    Config c;
    c.dim = read_i32(bytes.data());
    c.hidden_dim = read_i32(bytes.data() + 4);
    c.n_layers = read_i32(bytes.data() + 8);
    c.n_heads = read_i32(bytes.data() + 12);
    c.n_kv_heads = read_i32(bytes.data() + 16);
    int32_t vocab = read_i32(bytes.data() + 20);
    c.seq_len = read_i32(bytes.data() + 24);
    c.shared_classifier = vocab > 0;
    c.vocab_size = vocab == INT32_MIN ? 0 : std::abs(vocab);
    auto bad = [&](std::string_view what) {
        return Status::corruption(fmt::format("{}: not a llama2.c model: header {}: {} ({})",
                                              origin, what, header_str(c),
                                              "expected 7 positive int32 sizes"));
    };
    const std::pair<const char*, int32_t> fields[] = {
        {"dim", c.dim},         {"hidden_dim", c.hidden_dim}, {"n_layers", c.n_layers},
        {"n_heads", c.n_heads}, {"n_kv_heads", c.n_kv_heads}, {"vocab_size", c.vocab_size},
        {"seq_len", c.seq_len}};
    for (const auto& [name, v] : fields) {
        if (v <= 0 || v > kMaxDim)
            return bad(fmt::format("{} = {} is out of range 1..{}", name, v, kMaxDim));
    }
    if (c.dim % c.n_heads != 0)
        return bad(fmt::format("dim {} is not a multiple of n_heads {}", c.dim, c.n_heads));
    if (c.n_heads % c.n_kv_heads != 0)
        return bad(
            fmt::format("n_heads {} is not a multiple of n_kv_heads {}", c.n_heads, c.n_kv_heads));
    if (c.head_size() % 2 != 0)
        return bad(fmt::format("head size {} is odd (RoPE rotates pairs)", c.head_size()));
    return c;
}

Result<Model> load_model(const fs::path& path) {
    MF_ASSIGN_OR_RETURN(std::string bytes, io::read_file(path));
    const std::string origin = path.string();
    auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
    MF_ASSIGN_OR_RETURN(Config c, parse_header({p, bytes.size()}, origin));
    Layout l = layout_of(c);
    const int64_t want = 28 + 4 * l.total();
    if (static_cast<int64_t>(bytes.size()) != want) {
        return Status::corruption(fmt::format(
            "{}: {} bytes, but the llama2.c header ({}) implies {} bytes ({}): the file is {} or "
            "not a legacy llama2.c export",
            origin, bytes.size(), header_str(c), want,
            c.shared_classifier ? "shared classifier" : "with wcls",
            static_cast<int64_t>(bytes.size()) < want ? "truncated" : "longer than expected"));
    }
    Model m;
    m.config = c;
    m.data.resize(static_cast<size_t>(l.total()));
    std::memcpy(m.data.data(), p + 28, m.data.size() * 4);
    for (size_t i = 0; i < m.data.size(); ++i) {
        if (!std::isfinite(m.data[i]))
            return Status::corruption(fmt::format("{}: weight #{} (byte offset {}) is {}", origin,
                                                  i, 28 + 4 * i, m.data[i]));
    }
    const float* base = m.data.data();
    int64_t off = 0;
    auto take = [&](int64_t n) {
        std::span<const float> s(base + off, static_cast<size_t>(n));
        off += n;
        return s;
    };
    m.token_embedding = take(l.embedding);
    m.rms_att = take(l.rms_att);
    m.wq = take(l.wq);
    m.wk = take(l.wk);
    m.wv = take(l.wv);
    m.wo = take(l.wo);
    m.rms_ffn = take(l.rms_ffn);
    m.w1 = take(l.w1);
    m.w2 = take(l.w2);
    m.w3 = take(l.w3);
    m.rms_final = take(l.rms_final);
    take(l.freq_cis);
    m.wcls = c.shared_classifier ? m.token_embedding : take(l.wcls);
    return m;
}

// ---- tokenizer
// -----------------------------------------------------------------------------------

Result<Tokenizer> Tokenizer::load(const fs::path& path, int32_t vocab_size) {
    MF_ASSIGN_OR_RETURN(std::string bytes, io::read_file(path));
    const std::string origin = path.string();
    auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
    const size_t n = bytes.size();
    if (n < 4)
        return Status::corruption(
            fmt::format("{}: {} bytes, too short for a llama2.c tokenizer", origin, n));
    Tokenizer t;
    t.max_token_length_ = read_i32(p);
    if (t.max_token_length_ <= 0 || t.max_token_length_ > (1 << 16))
        return Status::corruption(fmt::format(
            "{}: not a llama2.c tokenizer: max_token_length {} is out of range 1..65536", origin,
            t.max_token_length_));
    size_t off = 4;
    for (int32_t i = 0; i < vocab_size; ++i) {
        if (off + 8 > n)
            return Status::corruption(fmt::format(
                "{}: truncated at token {} of {} (byte {}): expected f32 score + int32 length",
                origin, i, vocab_size, off));
        float score = read_f32(p + off);
        int32_t len = read_i32(p + off + 4);
        off += 8;
        if (!std::isfinite(score))
            return Status::corruption(
                fmt::format("{}: token {}: score {} is not finite", origin, i, score));
        if (len < 0 || len > t.max_token_length_ || off + static_cast<size_t>(len) > n)
            return Status::corruption(fmt::format(
                "{}: token {}: length {} is invalid (max_token_length {}, {} bytes left)", origin,
                i, len, t.max_token_length_, n - off));
        t.pieces_.emplace_back(bytes.data() + off, static_cast<size_t>(len));
        t.scores_.push_back(score);
        off += static_cast<size_t>(len);
    }
    if (off != n)
        return Status::corruption(fmt::format(
            "{}: {} bytes left after {} tokens: the tokenizer does not match the model's vocab "
            "size {}",
            origin, n - off, vocab_size, vocab_size));
    if (vocab_size < kFirstByte + 256)
        return Status::unsupported(fmt::format(
            "{}: {} tokens; a llama2.c tokenizer has <unk>, <s>, </s> and 256 byte tokens first",
            origin, vocab_size));
    for (int b = 0; b < 256; ++b) {
        int v = -1;
        if (!is_byte_piece(t.pieces_[kFirstByte + b], &v) || v != b)
            return Status::unsupported(fmt::format(
                "{}: token {} is '{}', expected the byte token <0x{:02X}> (ids 3..258 are the "
                "byte fallback of llama2.c's tokenizer)",
                origin, kFirstByte + b, t.pieces_[kFirstByte + b], b));
    }
    t.sorted_.resize(t.pieces_.size());
    for (size_t i = 0; i < t.sorted_.size(); ++i)
        t.sorted_[i] = static_cast<int32_t>(i);
    std::stable_sort(t.sorted_.begin(), t.sorted_.end(),
                     [&](int32_t a, int32_t b) { return t.pieces_[a] < t.pieces_[b]; });
    return t;
}

int32_t Tokenizer::find(std::string_view piece) const {
    auto it = std::lower_bound(sorted_.begin(), sorted_.end(), piece,
                               [&](int32_t id, std::string_view s) { return pieces_[id] < s; });
    if (it != sorted_.end() && pieces_[*it] == piece) return *it;
    return -1;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool bos, bool eos) const {
    std::vector<int32_t> toks;
    if (bos) toks.push_back(kBos);
    std::vector<int32_t> w;  // the text's tokens
    if (!text.empty()) {
        if (int32_t sp = find(" "); sp >= 0) w.push_back(sp);  // the dummy prefix
    }
    for (size_t i = 0; i < text.size();) {
        size_t len = utf8_group(text, i);
        int32_t id = find(text.substr(i, len));
        if (id >= 0) {
            w.push_back(id);
        } else {
            for (size_t k = 0; k < len; ++k)
                w.push_back(static_cast<uint8_t>(text[i + k]) + kFirstByte);
        }
        i += len;
    }
    std::string buf;
    for (;;) {
        float best_score = -1e10f;
        int32_t best_id = -1;
        size_t best_idx = 0;
        for (size_t i = 0; i + 1 < w.size(); ++i) {
            buf = pieces_[w[i]];
            buf += pieces_[w[i + 1]];
            int32_t id = find(buf);
            if (id >= 0 && scores_[id] > best_score) {
                best_score = scores_[id];
                best_id = id;
                best_idx = i;
            }
        }
        if (best_id < 0) break;
        w[best_idx] = best_id;
        w.erase(w.begin() + static_cast<ptrdiff_t>(best_idx) + 1);
    }
    toks.insert(toks.end(), w.begin(), w.end());
    if (eos) toks.push_back(kEos);
    return toks;
}

std::string Tokenizer::decode_piece(int32_t prev, int32_t token) const {
    if (token < 0 || token >= size()) return {};
    std::string_view piece = pieces_[token];
    if (prev == kBos && !piece.empty() && piece[0] == ' ') piece.remove_prefix(1);
    int b = -1;
    if (is_byte_piece(std::string(piece), &b)) return std::string(1, static_cast<char>(b));
    return std::string(piece);
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
    std::string out;
    int32_t prev = kBos;
    for (int32_t t : ids) {
        out += decode_piece(prev, t);
        prev = t;
    }
    return out;
}

// ---- forward
// -------------------------------------------------------------------------------------

Runner::Runner(const Model& m) : m_(m) {
    const auto& c = m.config;
    size_t n = static_cast<size_t>(c.n_layers) * c.seq_len * c.kv_dim();
    key_cache_.assign(n, 0.0f);
    value_cache_.assign(n, 0.0f);
}

std::vector<float> Runner::forward(int32_t token, int32_t pos) {
    const Config& c = m_.config;
    MF_CHECK(token >= 0 && token < c.vocab_size, "token %d out of range", token);
    MF_CHECK(pos >= 0 && pos < c.seq_len, "pos %d out of range", pos);
    const int dim = c.dim, hs = c.head_size(), kv_dim = c.kv_dim(), hidden = c.hidden_dim;
    const int kv_mul = c.n_heads / c.n_kv_heads;
    std::vector<float> x(m_.token_embedding.begin() + int64_t{token} * dim,
                         m_.token_embedding.begin() + int64_t{token + 1} * dim);  // [dim]
    std::vector<float> xb(dim), xb2(dim), q(dim), hb(hidden), hb2(hidden), att(c.seq_len);
    for (int l = 0; l < c.n_layers; ++l) {
        rmsnorm(xb.data(), x.data(), m_.rms_att.data() + int64_t{l} * dim, dim);
        const int64_t loff = int64_t{l} * c.seq_len * kv_dim;
        float* k = key_cache_.data() + loff + int64_t{pos} * kv_dim;    // [kv_dim]
        float* v = value_cache_.data() + loff + int64_t{pos} * kv_dim;  // [kv_dim]
        matmul(q.data(), xb.data(), m_.wq.data() + int64_t{l} * dim * dim, dim, dim);
        matmul(k, xb.data(), m_.wk.data() + int64_t{l} * kv_dim * dim, dim, kv_dim);
        matmul(v, xb.data(), m_.wv.data() + int64_t{l} * kv_dim * dim, dim, kv_dim);
        // RoPE on interleaved pairs (x[i], x[i+1]) within each head.
        for (int i = 0; i < dim; i += 2) {
            int head_dim = i % hs;
            float freq = 1.0f / std::pow(10000.0f, static_cast<float>(head_dim) / hs);
            float val = static_cast<float>(pos) * freq;
            float fcr = std::cos(val), fci = std::sin(val);
            int rotn = i < kv_dim ? 2 : 1;
            for (int r = 0; r < rotn; ++r) {
                float* vec = r == 0 ? q.data() : k;
                float v0 = vec[i], v1 = vec[i + 1];
                vec[i] = v0 * fcr - v1 * fci;
                vec[i + 1] = v0 * fci + v1 * fcr;
            }
        }
        // Causal attention over positions 0..pos.
        for (int h = 0; h < c.n_heads; ++h) {
            const float* qh = q.data() + h * hs;
            const int kvh = h / kv_mul;
            for (int t = 0; t <= pos; ++t) {
                const float* kt = key_cache_.data() + loff + int64_t{t} * kv_dim + kvh * hs;
                float s = 0.0f;
                for (int i = 0; i < hs; ++i)
                    s += qh[i] * kt[i];
                att[t] = s / std::sqrt(static_cast<float>(hs));
            }
            softmax(att.data(), pos + 1);
            float* out = xb.data() + h * hs;
            std::fill(out, out + hs, 0.0f);
            for (int t = 0; t <= pos; ++t) {
                const float* vt = value_cache_.data() + loff + int64_t{t} * kv_dim + kvh * hs;
                for (int i = 0; i < hs; ++i)
                    out[i] += att[t] * vt[i];
            }
        }
        matmul(xb2.data(), xb.data(), m_.wo.data() + int64_t{l} * dim * dim, dim, dim);
        for (int i = 0; i < dim; ++i)
            x[i] += xb2[i];
        // SwiGLU FFN: w2(silu(w1 x) * w3 x)
        rmsnorm(xb.data(), x.data(), m_.rms_ffn.data() + int64_t{l} * dim, dim);
        matmul(hb.data(), xb.data(), m_.w1.data() + int64_t{l} * hidden * dim, dim, hidden);
        matmul(hb2.data(), xb.data(), m_.w3.data() + int64_t{l} * hidden * dim, dim, hidden);
        for (int i = 0; i < hidden; ++i) {
            float a = hb[i];
            a *= 1.0f / (1.0f + std::exp(-a));
            hb[i] = a * hb2[i];
        }
        matmul(xb.data(), hb.data(), m_.w2.data() + int64_t{l} * dim * hidden, hidden, dim);
        for (int i = 0; i < dim; ++i)
            x[i] += xb[i];
    }
    rmsnorm(x.data(), x.data(), m_.rms_final.data(), dim);
    std::vector<float> logits(c.vocab_size);
    matmul(logits.data(), x.data(), m_.wcls.data(), dim, c.vocab_size);
    return logits;
}

std::vector<int32_t> generate_greedy(const Model& m, std::span<const int32_t> prompt, int steps) {
    std::vector<int32_t> out;
    if (prompt.empty()) return out;
    Runner r(m);
    int32_t token = prompt[0];
    const int32_t n_prompt = static_cast<int32_t>(prompt.size());
    for (int32_t pos = 0; pos < m.config.seq_len; ++pos) {
        std::vector<float> logits = r.forward(token, pos);
        int32_t next;
        if (pos < n_prompt - 1) {
            next = prompt[pos + 1];
        } else {
            next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) -
                                        logits.begin());
            if (next == Tokenizer::kBos) break;  // run.c: BOS delimits sequences
            out.push_back(next);
            if (static_cast<int>(out.size()) >= steps) break;
        }
        token = next;
    }
    return out;
}

// ---- conversion
// ----------------------------------------------------------------------------------

std::vector<float> permute_rope_rows(std::span<const float> w, int32_t n_heads, int32_t head_size,
                                     int32_t cols) {
    MF_CHECK(static_cast<int64_t>(w.size()) == int64_t{n_heads} * head_size * cols,
             "permute_rope_rows: size mismatch");
    std::vector<float> out(w.size());
    const int32_t half = head_size / 2;
    for (int32_t h = 0; h < n_heads; ++h) {
        for (int32_t j = 0; j < 2; ++j) {
            for (int32_t i = 0; i < half; ++i) {
                int64_t dst = int64_t{h} * head_size + int64_t{j} * half + i;
                int64_t src = int64_t{h} * head_size + 2 * i + j;
                std::copy_n(w.begin() + src * cols, cols, out.begin() + dst * cols);
            }
        }
    }
    return out;
}

Result<std::string> hf_tokenizer_json(const Tokenizer& tok) {
    const int32_t n = tok.size();
    // Ordinary pieces: everything but the 3 specials and the byte tokens.
    auto ordinary = [&](int32_t id) { return id >= Tokenizer::kFirstByte + 256; };
    std::vector<std::string> names(static_cast<size_t>(n));
    for (int32_t id = 0; id < n; ++id) {
        const std::string& p = tok.piece(id);
        if (id < Tokenizer::kFirstByte)
            names[id] = special_name(p);
        else
            names[id] = hf_piece(p);
        if (!valid_utf8(names[id]))
            return Status::unsupported(
                fmt::format("token {} is not valid UTF-8; tokenizer.json cannot hold it", id));
    }
    ojson vocab = ojson::object();
    for (int32_t id = 0; id < n; ++id) {
        if (vocab.contains(names[id]))
            return Status::unsupported(fmt::format(
                "tokens {} and {} are both '{}' in the HF vocabulary (spaces become U+2581)",
                vocab[names[id]].get<int32_t>(), id, names[id]));
        vocab[names[id]] = id;
    }
    // Merges: every split of an ordinary piece into two ordinary pieces (at UTF-8 boundaries) is a
    // merge llama2.c's encoder can make; order them by the merged piece's score (higher first),
    // then its id, then the left part's id. HF BPE applies the lowest rank first, so it repeats
    // llama2.c's "merge the best-scoring pair" choice.
    struct Merge {
        int32_t left, right, merged;
    };
    std::vector<Merge> merges;
    for (int32_t id = 0; id < n; ++id) {
        if (!ordinary(id)) continue;
        const std::string& p = tok.piece(id);
        for (size_t k = 1; k < p.size(); ++k) {
            if ((static_cast<uint8_t>(p[k]) & 0xC0) == 0x80) continue;  // inside a code point
            int32_t l = tok.find(std::string_view(p).substr(0, k));
            int32_t r = tok.find(std::string_view(p).substr(k));
            if (l >= 0 && r >= 0 && ordinary(l) && ordinary(r)) merges.push_back({l, r, id});
        }
    }
    std::stable_sort(merges.begin(), merges.end(), [&](const Merge& a, const Merge& b) {
        if (tok.score(a.merged) != tok.score(b.merged))
            return tok.score(a.merged) > tok.score(b.merged);
        if (a.merged != b.merged) return a.merged < b.merged;
        return a.left < b.left;
    });
    ojson merge_list = ojson::array();
    for (const auto& m : merges)
        merge_list.push_back(names[m.left] + " " + names[m.right]);

    ojson added = ojson::array();
    for (int32_t id = 0; id < Tokenizer::kFirstByte; ++id) {
        added.push_back({{"id", id},
                         {"content", names[id]},
                         {"single_word", false},
                         {"lstrip", false},
                         {"rstrip", false},
                         {"normalized", false},
                         {"special", true}});
    }
    const std::string bos = names[Tokenizer::kBos];
    ojson j;
    j["version"] = "1.0";
    j["truncation"] = nullptr;
    j["padding"] = nullptr;
    j["added_tokens"] = added;
    j["normalizer"] = {
        {"type", "Sequence"},
        {"normalizers", ojson::array({ojson{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
                                      ojson{{"type", "Replace"},
                                            {"pattern", {{"String", " "}}},
                                            {"content", "\xE2\x96\x81"}}})}};
    j["pre_tokenizer"] = nullptr;
    auto special = [](const std::string& id, int type_id) {
        return ojson{{"SpecialToken", {{"id", id}, {"type_id", type_id}}}};
    };
    auto seq = [](const char* id, int type_id) {
        return ojson{{"Sequence", {{"id", id}, {"type_id", type_id}}}};
    };
    j["post_processor"] = {
        {"type", "TemplateProcessing"},
        {"single", ojson::array({special(bos, 0), seq("A", 0)})},
        {"pair", ojson::array({special(bos, 0), seq("A", 0), special(bos, 1), seq("B", 1)})},
        {"special_tokens", {{bos, {{"id", bos}, {"ids", {Tokenizer::kBos}}, {"tokens", {bos}}}}}}};
    j["decoder"] = {
        {"type", "Sequence"},
        {"decoders",
         ojson::array(
             {ojson{
                  {"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
              ojson{{"type", "ByteFallback"}}, ojson{{"type", "Fuse"}},
              ojson{{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}};
    j["model"] = {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"unk_token", names[Tokenizer::kUnk]},
                  {"continuing_subword_prefix", nullptr},
                  {"end_of_word_suffix", nullptr},
                  {"fuse_unk", true},
                  {"byte_fallback", true},
                  {"ignore_merges", false},
                  {"vocab", vocab},
                  {"merges", merge_list}};
    try {
        return dump(j);
    } catch (const std::exception& e) {
        return Status::internal(fmt::format("writing tokenizer.json: {}", e.what()));
    }
}

namespace {
ojson added_token(const char* content) {
    return {{"content", content}, {"lstrip", false},      {"normalized", false},
            {"rstrip", false},    {"single_word", false}, {"special", true}};
}
}  // namespace

std::string hf_tokenizer_config_json(const Config& c) {
    ojson j;
    j["add_bos_token"] = true;
    j["add_eos_token"] = false;
    j["added_tokens_decoder"] = {
        {"0", added_token("<unk>")}, {"1", added_token("<s>")}, {"2", added_token("</s>")}};
    j["bos_token"] = "<s>";
    j["clean_up_tokenization_spaces"] = false;
    j["eos_token"] = "</s>";
    j["legacy"] = true;
    j["model_max_length"] = c.seq_len;
    j["pad_token"] = nullptr;
    j["sp_model_kwargs"] = ojson::object();
    j["spaces_between_special_tokens"] = false;
    j["tokenizer_class"] = "LlamaTokenizer";
    j["unk_token"] = "<unk>";
    return dump(j);
}

std::string hf_special_tokens_map_json() {
    auto tok = [](const char* s) {
        return ojson{{"content", s},
                     {"lstrip", false},
                     {"normalized", false},
                     {"rstrip", false},
                     {"single_word", false}};
    };
    ojson j;
    j["bos_token"] = tok("<s>");
    j["eos_token"] = tok("</s>");
    j["unk_token"] = tok("<unk>");
    return dump(j);
}

std::string hf_config_json(const Config& c) {
    ojson j;
    j["architectures"] = {"LlamaForCausalLM"};
    j["model_type"] = "llama";
    j["attention_bias"] = false;
    j["attention_dropout"] = 0.0;
    j["bos_token_id"] = Tokenizer::kBos;
    j["eos_token_id"] = Tokenizer::kEos;
    j["head_dim"] = c.head_size();
    j["hidden_act"] = "silu";
    j["hidden_size"] = c.dim;
    j["initializer_range"] = 0.02;
    j["intermediate_size"] = c.hidden_dim;
    j["max_position_embeddings"] = c.seq_len;
    j["mlp_bias"] = false;
    j["num_attention_heads"] = c.n_heads;
    j["num_hidden_layers"] = c.n_layers;
    j["num_key_value_heads"] = c.n_kv_heads;
    j["pretraining_tp"] = 1;
    j["rms_norm_eps"] = 1e-5;
    j["rope_scaling"] = nullptr;
    j["rope_theta"] = 10000.0;
    j["tie_word_embeddings"] = c.shared_classifier;
    j["torch_dtype"] = "float32";
    j["use_cache"] = true;
    j["vocab_size"] = c.vocab_size;
    return dump(j);
}

std::string hf_generation_config_json() {
    ojson j;
    j["bos_token_id"] = Tokenizer::kBos;
    // llama2.c models separate documents with BOS and run.c stops when BOS is sampled: stop on
    // either BOS or EOS.
    j["eos_token_id"] = {Tokenizer::kEos, Tokenizer::kBos};
    j["do_sample"] = false;
    return dump(j);
}

Status convert_to_hf(const fs::path& model_path, const fs::path& tokenizer_path,
                     const fs::path& out_dir, ConvertReport* report) {
    MF_ASSIGN_OR_RETURN(Model m, load_model(model_path));
    const Config& c = m.config;
    MF_ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::load(tokenizer_path, c.vocab_size));
    auto tj = hf_tokenizer_json(tok);
    if (!tj.ok()) return tj.status().with_context(tokenizer_path.string());

    // Tensors in HF order; permuted q/k live in `owned`.
    std::vector<std::vector<float>> owned;
    owned.reserve(2 * static_cast<size_t>(c.n_layers));
    std::vector<io::TensorToWrite> tensors;
    auto add = [&](std::string name, std::span<const float> data, std::vector<int64_t> shape) {
        int64_t numel = 1;
        for (int64_t s : shape)
            numel *= s;
        MF_CHECK(numel == static_cast<int64_t>(data.size()), "%s: shape/size mismatch",
                 name.c_str());
        io::TensorToWrite t;
        t.name = std::move(name);
        t.dtype = io::DType::kF32;
        t.shape = std::move(shape);
        t.bytes = {reinterpret_cast<const uint8_t*>(data.data()), data.size() * sizeof(float)};
        tensors.push_back(std::move(t));
    };
    const int64_t D = c.dim, H = c.hidden_dim, KV = c.kv_dim(), V = c.vocab_size;
    auto slice = [](std::span<const float> s, int64_t layer, int64_t per) {
        return s.subspan(static_cast<size_t>(layer * per), static_cast<size_t>(per));
    };
    add("model.embed_tokens.weight", m.token_embedding, {V, D});
    for (int64_t l = 0; l < c.n_layers; ++l) {
        const std::string p = fmt::format("model.layers.{}.", l);
        add(p + "input_layernorm.weight", slice(m.rms_att, l, D), {D});
        owned.push_back(permute_rope_rows(slice(m.wq, l, D * D), c.n_heads, c.head_size(), c.dim));
        add(p + "self_attn.q_proj.weight", owned.back(), {D, D});
        owned.push_back(
            permute_rope_rows(slice(m.wk, l, KV * D), c.n_kv_heads, c.head_size(), c.dim));
        add(p + "self_attn.k_proj.weight", owned.back(), {KV, D});
        add(p + "self_attn.v_proj.weight", slice(m.wv, l, KV * D), {KV, D});
        add(p + "self_attn.o_proj.weight", slice(m.wo, l, D * D), {D, D});
        add(p + "post_attention_layernorm.weight", slice(m.rms_ffn, l, D), {D});
        add(p + "mlp.gate_proj.weight", slice(m.w1, l, H * D), {H, D});
        add(p + "mlp.up_proj.weight", slice(m.w3, l, H * D), {H, D});
        add(p + "mlp.down_proj.weight", slice(m.w2, l, D * H), {D, H});
    }
    add("model.norm.weight", m.rms_final, {D});
    if (!c.shared_classifier) add("lm_head.weight", m.wcls, {V, D});

    MF_RETURN_IF_ERROR(io::ensure_dir(out_dir));
    MF_RETURN_IF_ERROR(io::write_checkpoint_tensors(out_dir, tensors));
    const std::pair<const char*, std::string> files[] = {
        {"config.json", hf_config_json(c)},
        {"generation_config.json", hf_generation_config_json()},
        {"tokenizer.json", *tj},
        {"tokenizer_config.json", hf_tokenizer_config_json(c)},
        {"special_tokens_map.json", hf_special_tokens_map_json()},
    };
    for (const auto& [name, text] : files)
        MF_RETURN_IF_ERROR(io::write_file_atomic(out_dir / name, text));

    if (report) {
        report->config = c;
        report->n_tensors = static_cast<int64_t>(tensors.size());
        report->n_params = 0;
        for (const auto& t : tensors)
            report->n_params += static_cast<int64_t>(t.bytes.size() / 4);
        report->n_merges = 0;
        auto j = nlohmann::json::parse(*tj);
        report->n_merges = static_cast<int64_t>(j["model"]["merges"].size());
        report->files = {"config.json",    "generation_config.json", "model.safetensors",
                         "tokenizer.json", "tokenizer_config.json",  "special_tokens_map.json"};
    }
    return Status::ok_status();
}

}  // namespace mf::model::llama2c
