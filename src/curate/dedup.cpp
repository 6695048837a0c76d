#include "curate/dedup.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "core/hash.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/text.h"
#include "core/thread_pool.h"
#include "curate/hashing_embedder.h"
#include "io/line_reader.h"

namespace mf::curate {

namespace {

constexpr char kSigMagic[8] = {'M', 'F', 'S', 'I', 'G', '0', '0', '1'};
constexpr const char* kFormat = "medforge-dedup-signatures/1";
constexpr uint8_t kBad = 1, kHasCaption = 2, kHasMinhash = 4, kHasEmbedding = 8;

using Digest = std::array<uint8_t, 32>;
struct DigestHash {
    size_t operator()(const Digest& d) const {
        uint64_t h;
        std::memcpy(&h, d.data(), 8);
        return h;
    }
};
struct CapKey {
    uint64_t a = 0, b = 0;
    bool operator==(const CapKey&) const = default;
};
struct CapKeyHash {
    size_t operator()(const CapKey& k) const { return k.a; }
};

// One signature record (phase 1 output, phase 2 input).
struct SigRecord {
    uint64_t ordinal = 0;
    uint64_t line_no = 0;
    uint8_t flags = 0;
    std::string id;
    std::string error;              // bad_record message
    std::vector<uint8_t> image_ok;  // per image: 1 when hashed
    std::vector<Digest> images;     // per image digest (zero when !ok)
    CapKey caption;
    std::vector<uint32_t> minhash;
};

int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 0;
}

std::string digest_hex(const Digest& d, size_t nbytes = 32) {
    static const char* hx = "0123456789abcdef";
    std::string s;
    for (size_t i = 0; i < nbytes; ++i) {
        s += hx[d[i] >> 4];
        s += hx[d[i] & 15];
    }
    return s;
}

Status hash_file(const fs::path& p, Digest* out) {
    std::FILE* f = std::fopen(p.c_str(), "rb");
    if (!f) return Status::io_error(p.string() + ": " + std::strerror(errno));
    Sha256 sha;
    std::vector<char> buf(1 << 20);
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0)
        sha.update(buf.data(), n);
    bool err = std::ferror(f);
    std::fclose(f);
    if (err) return Status::io_error(p.string() + ": read error");
    std::string hex = sha.hex_digest();
    for (size_t i = 0; i < 32; ++i)
        (*out)[i] = static_cast<uint8_t>(hexval(hex[2 * i]) * 16 + hexval(hex[2 * i + 1]));
    return {};
}

// ---- binary writer / reader ----
template <typename T>
void put(std::string& b, const T& v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof(T));
}
void put_str(std::string& b, std::string_view s) {
    put<uint32_t>(b, static_cast<uint32_t>(s.size()));
    b.append(s);
}

void encode(std::string& b, const SigRecord& r) {
    put(b, r.ordinal);
    put(b, r.line_no);
    put(b, r.flags);
    put_str(b, r.id);
    if (r.flags & kBad) {
        put_str(b, r.error);
        return;
    }
    put<uint32_t>(b, static_cast<uint32_t>(r.images.size()));
    for (size_t i = 0; i < r.images.size(); ++i) {
        put<uint8_t>(b, r.image_ok[i]);
        b.append(reinterpret_cast<const char*>(r.images[i].data()), 32);
    }
    if (r.flags & kHasCaption) {
        put(b, r.caption.a);
        put(b, r.caption.b);
    }
    if (r.flags & kHasMinhash)
        b.append(reinterpret_cast<const char*>(r.minhash.data()), r.minhash.size() * 4);
}

class SigReader {
  public:
    ~SigReader() {
        if (f_) std::fclose(f_);
    }
    Status open(const fs::path& p, uint32_t num_perm) {
        path_ = p;
        num_perm_ = num_perm;
        f_ = std::fopen(p.c_str(), "rb");
        if (!f_)
            return Status::io_error(p.string() + ": " + std::strerror(errno) +
                                    "; re-run the shard");
        std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
        char magic[8];
        uint32_t np = 0, dim = 0;
        if (std::fread(magic, 1, 8, f_) != 8 || std::memcmp(magic, kSigMagic, 8) != 0 ||
            std::fread(&np, 4, 1, f_) != 1 || std::fread(&dim, 4, 1, f_) != 1 || np != num_perm)
            return corrupt("bad header");
        return {};
    }
    // False at end of file; status() tells errors.
    bool next(SigRecord* r) {
        if (!get(&r->ordinal)) {
            if (!std::feof(f_)) st_ = corrupt("read error");
            return false;
        }
        uint32_t n = 0;
        if (!get(&r->line_no) || !get(&r->flags) || !get_str(&r->id)) return fail();
        r->error.clear();
        r->images.clear();
        r->image_ok.clear();
        if (r->flags & kBad) return get_str(&r->error) || fail();
        if (!get(&n) || n > (1u << 20)) return fail();
        r->images.resize(n);
        r->image_ok.resize(n);
        for (uint32_t i = 0; i < n; ++i)
            if (!get(&r->image_ok[i]) || std::fread(r->images[i].data(), 1, 32, f_) != 32)
                return fail();
        if ((r->flags & kHasCaption) && (!get(&r->caption.a) || !get(&r->caption.b))) return fail();
        if (r->flags & kHasMinhash) {
            r->minhash.resize(num_perm_);
            if (std::fread(r->minhash.data(), 4, num_perm_, f_) != num_perm_) return fail();
        }
        return true;
    }
    const Status& status() const { return st_; }

  private:
    template <typename T>
    bool get(T* v) {
        return std::fread(v, sizeof(T), 1, f_) == 1;
    }
    bool get_str(std::string* s) {
        uint32_t n = 0;
        if (!get(&n) || n > (1u << 30)) return false;
        s->resize(n);
        return n == 0 || std::fread(s->data(), 1, n, f_) == n;
    }
    bool fail() {
        st_ = corrupt("truncated record");
        return false;
    }
    Status corrupt(const std::string& what) {
        return Status::corruption(path_.string() + ": " + what +
                                  "; the signature file is damaged, re-run this dedup shard");
    }
    std::FILE* f_ = nullptr;
    fs::path path_;
    uint32_t num_perm_ = 0;
    Status st_;
};

// Read-only mmap of a file.
class MappedFile {
  public:
    ~MappedFile() {
        if (data_ && size_) ::munmap(data_, size_);
    }
    Status open(const fs::path& p) {
        int fd = ::open(p.c_str(), O_RDONLY);
        if (fd < 0) return Status::io_error(p.string() + ": " + std::strerror(errno));
        struct stat st {};
        ::fstat(fd, &st);
        size_ = static_cast<size_t>(st.st_size);
        if (size_ > 0) {
            data_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
            if (data_ == MAP_FAILED) {
                data_ = nullptr;
                ::close(fd);
                return Status::io_error(p.string() + ": mmap failed");
            }
        }
        ::close(fd);
        return {};
    }
    const char* data() const { return static_cast<const char*>(data_); }
    size_t size() const { return size_; }

  private:
    void* data_ = nullptr;
    size_t size_ = 0;
};

nlohmann::json params_json(const DedupParams& p) {
    nlohmann::json j;
    j["image_hash"] = p.image_hash;
    j["caption_hash"] = p.caption_hash;
    j["minhash"] = p.minhash;
    j["num_perm"] = p.minhash_params.num_perm;
    j["shingle"] = shingle_kind_name(p.minhash_params.shingle);
    j["shingle_size"] = p.minhash_params.shingle_size;
    j["minhash_seed"] = p.minhash_params.seed;
    j["minhash_threshold"] = p.minhash_threshold;
    LshShape sh = dedup_lsh_shape(p);
    j["bands"] = sh.bands;
    j["rows"] = sh.rows;
    if (p.embedder) {
        j["embedder"] = p.embedder->name();
        j["embedding_dim"] = p.embedder->dim();
        j["semantic_threshold"] = p.semantic.threshold;
        j["clusters"] = p.semantic.clusters;
        j["probe"] = p.semantic.probe;
        j["kmeans_iterations"] = p.semantic.niter;
        j["max_train_per_cluster"] = p.semantic.max_train_per_cluster;
        j["kmeans_seed"] = p.semantic.seed;
    } else {
        j["embedder"] = nullptr;
        j["embedding_dim"] = 0;
    }
    return j;
}

// Phase-2 parameters read back from dedup.json (no embedder object needed).
struct ResolveParams {
    DedupParams p;
    int embedding_dim = 0;
    std::string embedder_name;
};

Result<ResolveParams> params_from_json(const nlohmann::json& j) {
    ResolveParams r;
    try {
        r.p.image_hash = j.at("image_hash").get<bool>();
        r.p.caption_hash = j.at("caption_hash").get<bool>();
        r.p.minhash = j.at("minhash").get<bool>();
        r.p.minhash_params.num_perm = j.at("num_perm").get<int>();
        MF_ASSIGN_OR_RETURN(r.p.minhash_params.shingle,
                            parse_shingle_kind(j.at("shingle").get<std::string>()));
        r.p.minhash_params.shingle_size = j.at("shingle_size").get<int>();
        r.p.minhash_params.seed = j.at("minhash_seed").get<uint64_t>();
        r.p.minhash_threshold = j.at("minhash_threshold").get<double>();
        r.p.bands = j.at("bands").get<int>();
        r.p.rows = j.at("rows").get<int>();
        r.embedding_dim = j.at("embedding_dim").get<int>();
        if (r.embedding_dim > 0) {
            r.embedder_name = j.at("embedder").get<std::string>();
            r.p.semantic.threshold = j.at("semantic_threshold").get<double>();
            r.p.semantic.clusters = j.at("clusters").get<int>();
            r.p.semantic.probe = j.at("probe").get<int>();
            r.p.semantic.niter = j.at("kmeans_iterations").get<int>();
            r.p.semantic.max_train_per_cluster = j.at("max_train_per_cluster").get<int>();
            r.p.semantic.seed = j.at("kmeans_seed").get<uint64_t>();
        }
    } catch (const std::exception& e) {
        return Status::corruption(std::string("dedup.json: ") + e.what());
    }
    return r;
}

std::string record_quote(std::string_view line) {
    return text::valid_utf8(line) ? text::json_quote(line)
                                  : text::json_quote(text::sanitize_utf8(line));
}

// ---------------- phase 1 ----------------

Result<StageStats> phase1(const DedupOptions& opt, const fs::path& input, const fs::path& dir) {
    const DedupParams& P = opt.params;
    MF_RETURN_IF_ERROR(io::ensure_dir(dir));
    std::error_code ec;
    fs::remove(dir / "stats.json", ec);
    io::LineReader reader;
    MF_RETURN_IF_ERROR(reader.open(input));
    io::OutFile sig_out, emb_out;
    MF_RETURN_IF_ERROR(sig_out.open(dir / "signatures.bin"));
    MF_RETURN_IF_ERROR(emb_out.open(dir / "embeddings.f32"));
    const int num_perm = P.minhash_params.num_perm;
    const int dim = P.embedder ? P.embedder->dim() : 0;
    {
        std::string h(kSigMagic, 8);
        put<uint32_t>(h, static_cast<uint32_t>(num_perm));
        put<uint32_t>(h, static_cast<uint32_t>(dim));
        sig_out.write(h);
    }
    MinHasher hasher(P.minhash_params);
    ThreadPool pool(opt.n_threads);
    Progress progress("dedup signatures", reader.file_size(), "bytes");
    const std::string file = input.string();
    const fs::path base_dir = input.parent_path();

    struct Item {
        std::string line;
        bool mine = false;
        SigRecord rec;
        std::string caption;
        uint64_t unreadable = 0;
        std::string first_error;
        std::vector<float> emb;  // HashingEmbedder rows, computed on the workers
    };
    // The hashing embedder is thread-safe and cheap: embed on the workers. Other embedders get
    // one embed() call per batch from this thread (model embedders batch internally).
    const auto* hashing = dynamic_cast<const HashingEmbedder*>(P.embedder.get());
    std::vector<Item> batch(opt.batch_size);
    StageStats stats;
    stats.stage = "dedup";
    stats.shard = opt.shard.to_string();
    uint64_t ordinal = 0, images_hashed = 0, images_unreadable = 0, warned = 0;
    uint64_t n_embedded = 0;
    std::string buf;
    bool more = true;
    while (more) {
        size_t n = 0;
        std::string_view line;
        uint64_t bytes_before = reader.bytes_read();
        while (n < batch.size() && (more = reader.next(&line))) {
            if (text::trim(line).empty()) continue;
            Item& it = batch[n++];
            it.line.assign(line);
            it.rec = SigRecord{};
            it.rec.ordinal = ordinal++;
            it.rec.line_no = reader.line_no();
            it.caption.clear();
            it.unreadable = 0;
            it.first_error.clear();
        }
        if (!reader.status().ok()) return reader.status();
        pool.parallel_for(
            n,
            [&](size_t, size_t b, size_t e) {
                for (size_t i = b; i < e; ++i) {
                    Item& it = batch[i];
                    SigRecord& r = it.rec;
                    auto s = sample_from_json(it.line);
                    if (!s.ok()) {
                        it.mine = opt.shard.owns(file + ":" + std::to_string(r.line_no));
                        r.flags = kBad;
                        r.error = std::string(s.status().message());
                        continue;
                    }
                    it.mine = opt.shard.owns(s->id);
                    if (!it.mine) continue;
                    r.id = s->id;
                    if (P.image_hash) {
                        r.images.resize(s->images.size());
                        r.image_ok.assign(s->images.size(), 0);
                        for (size_t k = 0; k < s->images.size(); ++k) {
                            fs::path p = s->images[k];
                            if (p.is_relative()) p = base_dir / p;
                            Status hs = hash_file(p, &r.images[k]);
                            if (hs.ok()) {
                                r.image_ok[k] = 1;
                            } else {
                                ++it.unreadable;
                                if (it.first_error.empty())
                                    it.first_error = std::string(hs.message());
                            }
                        }
                    }
                    std::string norm = normalize_caption(s->caption);
                    if (!norm.empty()) {
                        r.flags |= kHasCaption;
                        r.caption = {xxh64(norm, 0x636170ULL), xxh64(norm, 0x74696f6eULL)};
                        if (P.minhash) {
                            r.minhash.resize(num_perm);
                            if (hasher.signature(norm, r.minhash.data())) r.flags |= kHasMinhash;
                        }
                    }
                    if (hashing) {
                        it.emb.resize(dim);
                        hashing->embed_one(s->caption, it.emb.data());
                    } else if (P.embedder) {
                        it.caption = std::move(s->caption);
                    }
                }
            },
            16);
        // Embeddings: one call per batch (model embedders batch internally).
        std::vector<float> emb;
        std::vector<size_t> emb_items;
        if (P.embedder) {
            std::vector<std::string> texts;
            bool call_embedder = hashing == nullptr;
            for (size_t i = 0; i < n; ++i) {
                if (!batch[i].mine || (batch[i].rec.flags & kBad)) continue;
                emb_items.push_back(i);
                if (call_embedder) texts.push_back(batch[i].caption);
            }
            if (!call_embedder) {
                emb.resize(emb_items.size() * static_cast<size_t>(dim));
                for (size_t e = 0; e < emb_items.size(); ++e)
                    std::copy(batch[emb_items[e]].emb.begin(), batch[emb_items[e]].emb.end(),
                              emb.begin() + e * dim);
            } else if (!texts.empty()) {
                MF_ASSIGN_OR_RETURN(emb, P.embedder->embed(texts));
                if (emb.size() != texts.size() * static_cast<size_t>(dim))
                    return Status::internal("embedder " + P.embedder->name() + " returned " +
                                            std::to_string(emb.size()) + " floats for " +
                                            std::to_string(texts.size()) + " texts");
            }
        }
        size_t e_next = 0;
        for (size_t i = 0; i < n; ++i) {
            Item& it = batch[i];
            if (!it.mine) continue;
            ++stats.input;
            stats.bytes_in += it.line.size() + 1;
            if (P.embedder && e_next < emb_items.size() && emb_items[e_next] == i) {
                const float* row = emb.data() + e_next * dim;
                ++e_next;
                it.rec.flags |= kHasEmbedding;
                std::string eb;
                put(eb, it.rec.ordinal);
                eb.append(reinterpret_cast<const char*>(row), sizeof(float) * dim);
                emb_out.write(eb);
                ++n_embedded;
            }
            buf.clear();
            encode(buf, it.rec);
            sig_out.write(buf);
            images_hashed += std::count(it.rec.image_ok.begin(), it.rec.image_ok.end(), 1);
            images_unreadable += it.unreadable;
            if (it.unreadable && warned < 5) {
                ++warned;
                log::warn("{}:{}: image not hashed ({}); it takes no part in image dedup", file,
                          it.rec.line_no, it.first_error);
            }
        }
        progress.add(reader.bytes_read() - bytes_before);
    }
    progress.finish();
    MF_RETURN_IF_ERROR(sig_out.close());
    MF_RETURN_IF_ERROR(emb_out.close());
    stats.seconds = progress.elapsed_s();
    stats.extra["phase"] = "signatures";
    stats.extra["pending"] = stats.input;
    stats.extra["images_hashed"] = images_hashed;
    stats.extra["images_unreadable"] = images_unreadable;
    stats.extra["captions_embedded"] = n_embedded;

    nlohmann::json meta;
    meta["format"] = kFormat;
    meta["input"] = io::absolute_normal(input).string();
    meta["input_size"] = reader.file_size();
    meta["input_records"] = ordinal;
    meta["shard"] = opt.shard.to_string();
    meta["params"] = params_json(P);
    MF_RETURN_IF_ERROR(io::write_file_atomic(dir / "dedup.json", meta.dump(2) + "\n"));
    // stats.json last: marks the shard finished. kept/rejected are 0: decided by phase 2.
    MF_RETURN_IF_ERROR(io::write_file_atomic(dir / "stats.json", stats.to_json().dump(2) + "\n"));
    return stats;
}

// ---------------- phase 2 ----------------

struct KeptInfo {
    std::string id;
    uint64_t line_no;
};

Result<StageStats> phase2(const std::vector<fs::path>& shard_dirs, const fs::path& out_dir,
                          const std::string& shard_label, bool progress_on) {
    // Parameters and input from dedup.json, identical across shards.
    nlohmann::json meta0;
    StageStats p1;  // summed phase-1 stats
    for (size_t s = 0; s < shard_dirs.size(); ++s) {
        MF_ASSIGN_OR_RETURN(std::string txt, io::read_file(shard_dirs[s] / "dedup.json"));
        auto j = nlohmann::json::parse(txt, nullptr, false);
        if (j.is_discarded() || j.value("format", "") != kFormat)
            return Status::corruption((shard_dirs[s] / "dedup.json").string() +
                                      ": not a dedup signature manifest; re-run the shard");
        if (s == 0) {
            meta0 = j;
        } else if (j["params"] != meta0["params"] || j["input"] != meta0["input"] ||
                   j["input_size"] != meta0["input_size"]) {
            return Status::failed_precondition(
                shard_dirs[s].string() + " was made with other options or another input than " +
                shard_dirs[0].string() + "; run every shard with the same dedup options");
        }
        MF_ASSIGN_OR_RETURN(StageStats st, load_stats(shard_dirs[s] / "stats.json"));
        p1.merge(st);
    }
    MF_ASSIGN_OR_RETURN(ResolveParams rp, params_from_json(meta0["params"]));
    const DedupParams& P = rp.p;
    const fs::path input = meta0["input"].get<std::string>();
    const std::string file = input.string();
    const uint64_t n_total = meta0["input_records"].get<uint64_t>();
    const int num_perm = P.minhash_params.num_perm;
    const int dim = rp.embedding_dim;

    io::LineReader reader;
    MF_RETURN_IF_ERROR(reader.open(input));
    if (reader.file_size() != meta0["input_size"].get<uint64_t>())
        return Status::failed_precondition(file +
                                           " changed since the dedup signatures were made "
                                           "(size differs); re-run phase 1");

    // Semantic index over all embeddings (mmapped).
    std::vector<std::unique_ptr<MappedFile>> maps;
    std::unique_ptr<SemanticIndex> sem;
    if (dim > 0) {
        std::vector<const float*> rows(n_total, nullptr);
        const size_t rec = 8 + sizeof(float) * dim;
        for (const auto& d : shard_dirs) {
            auto m = std::make_unique<MappedFile>();
            MF_RETURN_IF_ERROR(m->open(d / "embeddings.f32"));
            if (m->size() % rec != 0)
                return Status::corruption((d / "embeddings.f32").string() +
                                          ": truncated; re-run this dedup shard");
            for (size_t off = 0; off < m->size(); off += rec) {
                uint64_t o;
                std::memcpy(&o, m->data() + off, 8);
                if (o >= n_total)
                    return Status::corruption((d / "embeddings.f32").string() + ": bad ordinal");
                rows[o] = reinterpret_cast<const float*>(m->data() + off + 8);
            }
            maps.push_back(std::move(m));
        }
        Progress build_timer("dedup semantic index", 0, "");
        MF_ASSIGN_OR_RETURN(SemanticIndex ix,
                            SemanticIndex::build(std::move(rows), dim, P.semantic));
        build_timer.finish();
        log::debug("dedup: semantic index ({} clusters) built in {:.2f}s", ix.clusters(),
                   build_timer.elapsed_s());
        sem = std::make_unique<SemanticIndex>(std::move(ix));
    }

    std::vector<std::unique_ptr<SigReader>> readers;
    std::vector<SigRecord> heads(shard_dirs.size());
    std::vector<bool> live(shard_dirs.size());
    for (size_t s = 0; s < shard_dirs.size(); ++s) {
        auto r = std::make_unique<SigReader>();
        MF_RETURN_IF_ERROR(r->open(shard_dirs[s] / "signatures.bin", num_perm));
        live[s] = r->next(&heads[s]);
        MF_RETURN_IF_ERROR(r->status());
        readers.push_back(std::move(r));
    }

    StageWriter writer;
    MF_RETURN_IF_ERROR(writer.open(out_dir, ShardSpec{0, 1}, "dedup"));
    Progress progress("dedup resolve", reader.file_size(), "bytes");
    const LshShape shape = dedup_lsh_shape(P);
    LshIndex lsh(shape, num_perm);
    std::unordered_map<Digest, std::pair<uint32_t, uint32_t>, DigestHash> image_map;
    std::unordered_map<CapKey, uint32_t, CapKeyHash> caption_map;
    std::vector<KeptInfo> kept;
    std::vector<uint32_t> kept_sigs;  // num_perm per LSH handle
    std::vector<uint32_t> lsh_kept;   // LSH handle -> kept index
    std::vector<uint32_t> candidates;
    std::vector<uint32_t> kidx_of_ord(sem ? n_total : 0, 0);
    uint64_t lsh_candidates = 0, lsh_verified_false = 0;
    StageStats stats;
    stats.shard = shard_label;
    const std::string shingle_desc =
        fmt::format("{} {}-shingles", shingle_kind_name(P.minhash_params.shingle),
                    P.minhash_params.shingle_size);

    std::string_view line;
    uint64_t ordinal = 0;
    while (reader.next(&line)) {
        if (text::trim(line).empty()) continue;
        uint64_t o = ordinal++;
        // Pop the record with this ordinal.
        size_t src = SIZE_MAX;
        for (size_t s = 0; s < heads.size(); ++s)
            if (live[s] && (src == SIZE_MAX || heads[s].ordinal < heads[src].ordinal)) src = s;
        if (src == SIZE_MAX || heads[src].ordinal != o)
            return Status::failed_precondition(fmt::format(
                "{}:{}: no signature record for input record {} (shard set incomplete or input "
                "changed); re-run the dedup shards",
                file, reader.line_no(), o));
        SigRecord r = std::move(heads[src]);
        live[src] = readers[src]->next(&heads[src]);
        MF_RETURN_IF_ERROR(readers[src]->status());

        ++stats.input;
        stats.bytes_in += line.size() + 1;
        Reject rej;
        rej.file = file;
        rej.line = static_cast<int64_t>(r.line_no);
        if (r.flags & kBad) {
            rej.reason = "bad_record";
            rej.detail = fmt::format("{}:{}: {}", file, r.line_no, r.error);
            rej.record_json = record_quote(line);
            writer.reject(o, std::move(rej));
            progress.add(line.size() + 1);
            continue;
        }
        rej.id = r.id;
        bool dup = false;
        // (a) images
        if (P.image_hash) {
            for (size_t k = 0; k < r.images.size() && !dup; ++k) {
                if (!r.image_ok[k]) continue;
                auto it = image_map.find(r.images[k]);
                if (it == image_map.end()) continue;
                const KeptInfo& ki = kept[it->second.first];
                dup = true;
                rej.reason = "duplicate_image";
                rej.duplicate_of = ki.id;
                rej.detail = fmt::format(
                    "images[{}] has the same SHA-256 ({}...) as images[{}] of kept sample {} "
                    "({}:{}); similarity 1.0 (identical bytes)",
                    k, digest_hex(r.images[k], 8), it->second.second, ki.id, file, ki.line_no);
            }
        }
        // (b) exact caption
        if (!dup && P.caption_hash && (r.flags & kHasCaption)) {
            auto it = caption_map.find(r.caption);
            if (it != caption_map.end()) {
                const KeptInfo& ki = kept[it->second];
                dup = true;
                rej.reason = "duplicate_caption";
                rej.duplicate_of = ki.id;
                rej.detail = fmt::format(
                    "caption equals (after normalisation: lower-case, punctuation and extra "
                    "whitespace removed) the caption of kept sample {} ({}:{}); similarity 1.0",
                    ki.id, file, ki.line_no);
            }
        }
        // (c) MinHash LSH
        if (!dup && P.minhash && (r.flags & kHasMinhash)) {
            lsh.query(r.minhash.data(), &candidates);
            lsh_candidates += candidates.size();
            for (uint32_t c : candidates) {  // ascending handle = input order
                double jac = jaccard_estimate(r.minhash.data(),
                                              kept_sigs.data() + static_cast<size_t>(c) * num_perm,
                                              num_perm);
                if (jac >= P.minhash_threshold) {
                    const KeptInfo& ki = kept[lsh_kept[c]];
                    dup = true;
                    rej.reason = "near_duplicate_caption";
                    rej.duplicate_of = ki.id;
                    rej.detail = fmt::format(
                        "caption near-duplicates kept sample {} ({}:{}): estimated Jaccard {:.3f} "
                        ">= {:.2f} over {} MinHash permutations of {}",
                        ki.id, file, ki.line_no, jac, P.minhash_threshold, num_perm, shingle_desc);
                    break;
                }
                ++lsh_verified_false;
            }
        }
        // (d) semantic
        if (!dup && sem) {
            SemanticMatch m = sem->find(o);
            if (m.index >= 0) {
                const KeptInfo& ki = kept[kidx_of_ord[static_cast<size_t>(m.index)]];
                dup = true;
                rej.reason = "semantic_duplicate";
                rej.duplicate_of = ki.id;
                rej.detail = fmt::format(
                    "caption is semantically similar to kept sample {} ({}:{}): cosine {:.4f} >= "
                    "{:.3f} ({} embeddings)",
                    ki.id, file, ki.line_no, m.cosine, P.semantic.threshold, rp.embedder_name);
            }
        }
        if (dup) {
            rej.record_json = std::string(line);
            writer.reject(o, std::move(rej));
        } else {
            writer.keep(o, line);
            uint32_t kidx = static_cast<uint32_t>(kept.size());
            kept.push_back({r.id, r.line_no});
            if (P.image_hash)
                for (size_t k = 0; k < r.images.size(); ++k)
                    if (r.image_ok[k])
                        image_map.emplace(r.images[k],
                                          std::make_pair(kidx, static_cast<uint32_t>(k)));
            if (P.caption_hash && (r.flags & kHasCaption)) caption_map.emplace(r.caption, kidx);
            if (P.minhash && (r.flags & kHasMinhash)) {
                kept_sigs.insert(kept_sigs.end(), r.minhash.begin(), r.minhash.end());
                lsh.insert(r.minhash.data(), static_cast<uint32_t>(lsh_kept.size()));
                lsh_kept.push_back(kidx);
            }
            if (sem) {
                kidx_of_ord[o] = kidx;
                sem->add(o);
            }
        }
        progress.add(line.size() + 1);
    }
    MF_RETURN_IF_ERROR(reader.status());
    if (ordinal != n_total)
        return Status::failed_precondition(file +
                                           ": record count differs from the signatures; "
                                           "re-run the dedup shards");
    progress.finish();
    stats.seconds = progress.elapsed_s() + p1.seconds;
    stats.extra["images_hashed"] = p1.extra.value("images_hashed", 0);
    stats.extra["images_unreadable"] = p1.extra.value("images_unreadable", 0);
    stats.extra["captions_embedded"] = p1.extra.value("captions_embedded", 0);
    stats.extra["signature_seconds"] = p1.seconds;
    stats.extra["resolve_seconds"] = progress.elapsed_s();
    stats.extra["num_perm"] = num_perm;
    stats.extra["shingle"] = shingle_desc;
    stats.extra["minhash_threshold"] = P.minhash_threshold;
    stats.extra["lsh_bands"] = shape.bands;
    stats.extra["lsh_rows"] = shape.rows;
    stats.extra["lsh_candidates"] = lsh_candidates;
    stats.extra["lsh_candidates_below_threshold"] = lsh_verified_false;
    if (sem) {
        stats.extra["embedder"] = rp.embedder_name;
        stats.extra["semantic_threshold"] = P.semantic.threshold;
        stats.extra["clusters"] = sem->clusters();
        stats.extra["semantic_comparisons"] = sem->comparisons();
    }
    MF_RETURN_IF_ERROR(writer.finish(stats));
    return stats;
}

}  // namespace

LshShape dedup_lsh_shape(const DedupParams& p) {
    if (p.bands > 0 && p.rows > 0) return {p.bands, p.rows};
    // Candidates are verified on the full signature, so the S-curve favours recall: a false
    // positive costs one signature comparison, a false negative a missed duplicate.
    return optimal_lsh_shape(p.minhash_threshold, p.minhash_params.num_perm, 0.05, 0.95);
}

Result<StageStats> run_dedup(const DedupOptions& opt) {
    const DedupParams& P = opt.params;
    const int np = P.minhash_params.num_perm;
    if (np < 1 || np > 1024) return Status::invalid_argument("--num-perm must be in 1..1024");
    if (P.minhash_params.shingle_size < 1)
        return Status::invalid_argument("--shingle-size must be >= 1");
    if (P.minhash_threshold <= 0 || P.minhash_threshold > 1)
        return Status::invalid_argument("--minhash-threshold must be in (0, 1]");
    if ((P.bands > 0) != (P.rows > 0) || P.bands < 0 || P.rows < 0)
        return Status::invalid_argument("give --bands and --rows together (both > 0), or neither");
    LshShape sh = dedup_lsh_shape(P);
    if (sh.bands * sh.rows > np)
        return Status::invalid_argument(
            fmt::format("--bands {} x --rows {} = {} exceeds --num-perm {}", sh.bands, sh.rows,
                        sh.bands * sh.rows, np));
    if (!P.embedder_dir.empty() && !P.embedder)
        return Status::failed_precondition(
            "the model embedder in " + P.embedder_dir.string() +
            " must be loaded by the caller (medforge dedup --embedder / medforge build do it)");
    if (P.embedder && (P.semantic.threshold <= -1 || P.semantic.threshold > 1))
        return Status::invalid_argument("--semantic-threshold must be a cosine in (-1, 1]");
    MF_ASSIGN_OR_RETURN(fs::path input, stage_input(opt.input));
    if (opt.shard.sharded()) {
        fs::path dir = opt.out_dir / "shards" / opt.shard.dir_name();
        return phase1(opt, input, dir);
    }
    fs::path tmp = opt.out_dir / ".dedup-signatures";
    MF_ASSIGN_OR_RETURN(StageStats s1, phase1(opt, input, tmp));
    (void)s1;
    auto r = phase2({tmp}, opt.out_dir, opt.shard.to_string(), opt.progress);
    if (r.ok()) {
        std::error_code ec;
        fs::remove_all(tmp, ec);
    }
    return r;
}

bool is_dedup_shard_set(const fs::path& out_dir) {
    std::error_code ec;
    fs::path shards = out_dir / "shards";
    if (!fs::is_directory(shards, ec)) return false;
    for (const auto& e : fs::directory_iterator(shards, ec)) {
        if (!e.is_directory()) continue;
        if (fs::exists(e.path() / "dedup.json")) return true;
        auto st = load_stats(e.path() / "stats.json");
        if (st.ok() && st->stage == "dedup") return true;
    }
    return false;
}

Result<StageStats> merge_dedup_shards(const fs::path& out_dir, size_t n_threads, bool progress) {
    fs::path shards = out_dir / "shards";
    std::error_code ec;
    uint32_t n = 0;
    for (const auto& e : fs::directory_iterator(shards, ec)) {
        std::string name = e.path().filename().string();
        auto of = name.find("-of-");
        if (!e.is_directory() || of == std::string::npos) continue;
        uint32_t cnt = static_cast<uint32_t>(std::strtoul(name.c_str() + of + 4, nullptr, 10));
        if (n != 0 && cnt != n)
            return Status::failed_precondition(shards.string() + ": shards of different counts (" +
                                               std::to_string(n) + " and " + std::to_string(cnt) +
                                               "); remove the stale ones");
        n = cnt;
    }
    if (n == 0) return Status::not_found(shards.string() + ": no dedup shard directories");
    std::vector<fs::path> dirs;
    for (uint32_t i = 0; i < n; ++i) {
        ShardSpec s{i, n};
        fs::path d = shards / s.dir_name();
        if (!fs::exists(d / "stats.json"))
            return Status::failed_precondition("dedup shard " + s.to_string() +
                                               " is missing or unfinished (" + d.string() +
                                               "/stats.json); run it, then merge again");
        dirs.push_back(d);
    }
    (void)n_threads;
    return phase2(dirs, out_dir, "merged " + std::to_string(n), progress);
}

}  // namespace mf::curate
