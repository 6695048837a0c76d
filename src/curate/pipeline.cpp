#include "curate/pipeline.h"

#include <fmt/core.h>

#include <functional>
#include <unordered_set>

#include "core/hash.h"
#include "core/log.h"
#include "core/text.h"
#include "curate/config_reader.h"
#include "curate/data_card.h"
#include "curate/hashing_embedder.h"
#include "io/file.h"
#include "io/line_reader.h"

namespace mf::curate {

namespace {

fs::path resolve(const fs::path& base, const std::string& p) {
    fs::path path(p);
    if (path.is_relative() && !base.empty()) path = base / path;
    return io::absolute_normal(path);
}

}  // namespace

Result<FilterConfig> parse_filter_config(const nlohmann::json& j, const fs::path& base_dir,
                                         const std::string& where) {
    FilterConfig c;
    ConfigReader r(j, where);
    MF_ASSIGN_OR_RETURN(nlohmann::json text, r.object("text"));
    MF_ASSIGN_OR_RETURN(nlohmann::json image, r.object("image"));
    MF_RETURN_IF_ERROR(r.finish());

    ConfigReader t(text, r.child_path("text"));
    std::string lexicon = "default";
    MF_RETURN_IF_ERROR(t.get("enabled", &c.text_enabled));
    MF_RETURN_IF_ERROR(t.get("min_terms", &c.text.min_terms, 0, 100000));
    MF_RETURN_IF_ERROR(t.get("use_mentions", &c.text.use_mentions));
    MF_RETURN_IF_ERROR(t.get("lexicon", &lexicon));
    MF_RETURN_IF_ERROR(t.finish());
    if (lexicon != "default") c.text.lexicon = resolve(base_dir, lexicon);

    ConfigReader im(image, r.child_path("image"));
    MF_RETURN_IF_ERROR(im.get("enabled", &c.image_enabled));
    MF_RETURN_IF_ERROR(im.get("min_side", &c.image.min_side, 0, 1 << 20));
    MF_RETURN_IF_ERROR(im.get("max_pixels", &c.image.max_pixels));
    MF_RETURN_IF_ERROR(im.get("decode", &c.image.decode));
    MF_RETURN_IF_ERROR(im.get("classifier", &c.classifier));
    MF_RETURN_IF_ERROR(im.get("min_medical_prob", &c.image.min_medical_prob, 0, 1));
    MF_RETURN_IF_ERROR(im.finish());
    if (c.classifier != "default" && c.classifier != "none")
        c.classifier = resolve(base_dir, c.classifier);
    return c;
}

Result<std::unique_ptr<FilterSet>> FilterSet::create(const FilterConfig& config) {
    auto set = std::unique_ptr<FilterSet>(new FilterSet());
    set->config_ = config;
    if (config.text_enabled) {
        auto t = TextFilter::create(config.text);
        if (!t.ok()) return t.status().with_context("text filter");
        set->text_ = std::move(t).value();
    }
    if (config.image_enabled) {
        ImageFilterParams p = config.image;
        p.classifier = nullptr;
        if (config.classifier != "none") {
            if (!p.decode) {
                return Status::invalid_argument(
                    "filter.image: the classifier needs decoded images; set \"decode\": true or "
                    "\"classifier\": \"none\"");
            }
            Result<fs::path> path = config.classifier == "default"
                                        ? default_classifier_path()
                                        : Result<fs::path>(fs::path(config.classifier));
            if (!path.ok()) return path.status().with_context("image classifier");
            auto cls = load_image_classifier(*path);
            if (!cls.ok()) return cls.status().with_context("image classifier " + path->string());
            set->classifier_ = std::move(cls).value();
            set->classifier_path_ = path->string();
            p.classifier = set->classifier_.get();
        }
        set->image_ = std::make_unique<ImageFilter>(p);
    }
    return set;
}

Verdict FilterSet::apply(const Sample& sample) const {
    if (text_) {
        Verdict v = text_->apply(sample);
        if (!v.keep) return v;
    }
    if (image_) return image_->apply(sample);
    return Verdict::kept();
}

nlohmann::json FilterSet::describe() const {
    nlohmann::json j;
    if (text_) {
        j["text"] = {
            {"min_terms", config_.text.min_terms},
            {"use_mentions", config_.text.use_mentions},
            {"lexicon", config_.text.lexicon.empty() ? "default" : config_.text.lexicon.string()},
            {"lexicon_terms", text_->matcher().n_terms()}};
    }
    if (image_) {
        j["image"] = {{"min_side", config_.image.min_side},
                      {"decode", config_.image.decode},
                      {"classifier", classifier_path_.empty() ? "none" : classifier_path_},
                      {"min_medical_prob", config_.image.min_medical_prob}};
    }
    return j;
}

Result<StageStats> run_filter(const FilterRunOptions& opt, const FilterSet& filters) {
    MapStageOptions m;
    m.stage = "filter";
    m.input = opt.input;
    m.out_dir = opt.out_dir;
    m.shard = opt.shard;
    m.n_threads = opt.n_threads;
    m.progress = opt.progress;
    m.batch_size = 1024;
    return run_map_stage(m, [&](const Sample& s, size_t) { return filters.apply(s); });
}

Result<DedupParams> parse_dedup_config(const nlohmann::json& j, const std::string& where,
                                       const fs::path& base) {
    DedupParams p;
    ConfigReader r(j, where);
    std::string shingle = shingle_kind_name(p.minhash_params.shingle);
    std::string semantic = "none", embedder;
    MF_RETURN_IF_ERROR(r.get("image_hash", &p.image_hash));
    MF_RETURN_IF_ERROR(r.get("exact_caption", &p.caption_hash));
    MF_RETURN_IF_ERROR(r.get("minhash", &p.minhash));
    MF_RETURN_IF_ERROR(r.get("minhash_threshold", &p.minhash_threshold, 0, 1));
    MF_RETURN_IF_ERROR(r.get("num_perm", &p.minhash_params.num_perm, 1, 4096));
    MF_RETURN_IF_ERROR(r.get("shingle", &shingle));
    MF_RETURN_IF_ERROR(r.get("shingle_size", &p.minhash_params.shingle_size, 1, 64));
    MF_RETURN_IF_ERROR(r.get("bands", &p.bands, 0, 4096));
    MF_RETURN_IF_ERROR(r.get("rows", &p.rows, 0, 4096));
    MF_RETURN_IF_ERROR(r.get("semantic", &semantic));
    MF_RETURN_IF_ERROR(r.get("semantic_threshold", &p.semantic.threshold, -1, 1));
    MF_RETURN_IF_ERROR(r.get("clusters", &p.semantic.clusters, 0, 1 << 24));
    MF_RETURN_IF_ERROR(r.get("embedder", &embedder));
    MF_RETURN_IF_ERROR(r.finish());
    auto kind = parse_shingle_kind(shingle);
    if (!kind.ok()) return kind.status().with_context(r.child_path("shingle"));
    p.minhash_params.shingle = *kind;
    if (!embedder.empty()) {
        if (semantic != "none" && semantic != "model")
            return Status::invalid_argument(r.child_path("embedder") + ": a model embedder " +
                                            "needs \"semantic\": \"model\" (or no \"semantic\")");
        p.embedder_dir = base.empty() ? fs::path(embedder) : resolve(base, embedder);
    } else if (semantic == "hashing") {
        p.embedder = std::make_shared<HashingEmbedder>();
    } else if (semantic == "model") {
        return Status::invalid_argument(r.child_path("embedder") +
                                        ": missing; \"semantic\": \"model\" needs a "
                                        "sentence-transformers folder, e.g. all-mpnet-base-v2/");
    } else if (semantic != "none") {
        return Status::invalid_argument(r.child_path("semantic") + ": '" + semantic +
                                        "' is not available; use \"none\", \"hashing\" or "
                                        "\"model\" (with \"embedder\": DIR)");
    }
    return p;
}

Result<BuildConfig> load_build_config(const fs::path& path) {
    MF_ASSIGN_OR_RETURN(std::string bytes, io::read_file(path));
    MF_ASSIGN_OR_RETURN(nlohmann::json j, load_json_file(path.string()));
    BuildConfig c;
    c.path = io::absolute_normal(path);
    c.sha256 = sha256_hex(bytes);
    fs::path base = c.path.parent_path();
    auto ctx = [&](const Status& st) { return st.with_context(path.string()); };
    ConfigReader r(j, "");
    if (Status st = r.get("name", &c.name); !st.ok()) return ctx(st);
    if (Status st = r.get("threads", &c.threads, 0, 4096); !st.ok()) return ctx(st);
    auto sources_r = r.objects("sources");
    if (!sources_r.ok()) return ctx(sources_r.status());
    std::vector<nlohmann::json> sources = std::move(sources_r).value();
    auto filter_r = r.object("filter");
    if (!filter_r.ok()) return ctx(filter_r.status());
    nlohmann::json filter = std::move(filter_r).value();
    auto dedup_r = r.object("dedup");
    if (!dedup_r.ok()) return ctx(dedup_r.status());
    c.dedup_json = std::move(dedup_r).value();
    auto reformat_r = r.object("reformat");  // parsed by reformat/build.h, not here
    if (!reformat_r.ok()) return ctx(reformat_r.status());
    c.reformat_json = std::move(reformat_r).value();
    if (Status st = r.finish(); !st.ok()) return ctx(st);
    if (sources.empty())
        return ctx(
            Status::invalid_argument("sources: at least one source is needed, e.g. "
                                     "[{\"format\": \"jats\", \"input\": \"articles/\"}]"));
    for (size_t i = 0; i < sources.size(); ++i) {
        ConfigReader s(sources[i], "sources[" + std::to_string(i) + "]");
        SourceConfig sc;
        std::string input, image_root;
        if (Status st = s.get("format", &sc.format); !st.ok()) return ctx(st);
        if (Status st = s.get("input", &input); !st.ok()) return ctx(st);
        if (Status st = s.get("image_root", &image_root); !st.ok()) return ctx(st);
        if (Status st = s.get("licence", &sc.options.default_licence); !st.ok()) return ctx(st);
        if (Status st = s.get("require_images", &sc.options.require_images); !st.ok())
            return ctx(st);
        if (Status st = s.finish(); !st.ok()) return ctx(st);
        if (sc.format.empty() || input.empty())
            return ctx(
                Status::invalid_argument(s.path() + ": \"format\" and \"input\" are required"));
        sc.input = resolve(base, input);
        if (!image_root.empty()) sc.options.image_root = resolve(base, image_root);
        c.sources.push_back(std::move(sc));
    }
    auto fc = parse_filter_config(filter, base);
    if (!fc.ok()) return ctx(fc.status());
    c.filter = std::move(fc).value();
    auto dc = parse_dedup_config(c.dedup_json, "dedup", base);
    if (!dc.ok()) return ctx(dc.status());
    c.dedup = std::move(dc).value();
    return c;
}

namespace {

// Fingerprint of a stage: its config plus the fingerprint of its input.
std::string file_fingerprint(const fs::path& p) {
    std::error_code ec;
    auto size = fs::file_size(p, ec);
    auto mtime = fs::last_write_time(p, ec).time_since_epoch().count();
    return fmt::format("{}:{}:{}", p.string(), ec ? 0 : size, ec ? 0 : mtime);
}

bool up_to_date(const fs::path& dir, const std::string& fingerprint) {
    auto done = io::read_file(dir / "stage.done");
    return done.ok() && *done == fingerprint && fs::exists(dir / "stats.json");
}

Status mark_done(const fs::path& dir, const std::string& fingerprint) {
    return io::write_file_atomic(dir / "stage.done", fingerprint);
}

// Ingests every source into <dir>/sources/<k>-<format>/ and joins them into <dir>, rejecting ids
// that repeat across sources.
Result<StageStats> ingest_sources(const BuildConfig& c, const fs::path& dir, size_t threads,
                                  bool progress) {
    StageStats total;
    total.stage = "ingest";
    nlohmann::json per_source = nlohmann::json::object();
    io::OutFile samples, rejects;
    MF_RETURN_IF_ERROR(io::ensure_dir(dir));
    MF_RETURN_IF_ERROR(samples.open(dir / "samples.jsonl"));
    MF_RETURN_IF_ERROR(rejects.open(dir / "rejects.jsonl"));
    std::unordered_set<std::string> ids;
    double seconds = 0;  // sources run one after another
    for (size_t k = 0; k < c.sources.size(); ++k) {
        const auto& src = c.sources[k];
        IngestRunOptions o;
        o.format = src.format;
        o.input = src.input;
        o.out_dir = dir / "sources" / fmt::format("{}-{}", k + 1, src.format);
        o.adapter = src.options;
        o.progress = progress;
        auto st = run_ingest(o);
        if (!st.ok())
            return st.status().with_context(
                fmt::format("source {} ({} {})", k + 1, src.format, src.input.string()));
        StageStats s = std::move(st).value();
        per_source[fmt::format("{}-{}", k + 1, src.format)] = {{"input", src.input.string()},
                                                               {"records", s.input},
                                                               {"kept", s.kept},
                                                               {"rejected", s.rejected}};
        // Copy kept samples, rejecting ids already seen in an earlier source.
        io::LineReader lines;
        MF_RETURN_IF_ERROR(lines.open(o.out_dir / "samples.jsonl"));
        std::string_view line;
        while (lines.next(&line)) {
            auto sample = sample_from_json(line);
            if (!sample.ok()) return sample.status().with_context(lines.path().string());
            if (!ids.insert(sample->id).second) {
                Reject r;
                r.id = sample->id;
                r.stage = "ingest";
                r.reason = "duplicate_id";
                r.detail = "id already used by an earlier source; give the sources distinct ids";
                r.file = sample->lineage.file;
                r.line = sample->lineage.line;
                r.record_json = std::string(line);
                rejects.write_line(reject_to_json(r));
                s.kept -= 1;
                s.count_reject("duplicate_id");
                continue;
            }
            samples.write_line(line);
        }
        MF_RETURN_IF_ERROR(lines.status());
        io::LineReader rej;
        MF_RETURN_IF_ERROR(rej.open(o.out_dir / "rejects.jsonl"));
        while (rej.next(&line))
            rejects.write_line(line);
        MF_RETURN_IF_ERROR(rej.status());
        total.merge(s);
        seconds += s.seconds;
    }
    MF_RETURN_IF_ERROR(samples.close());
    MF_RETURN_IF_ERROR(rejects.close());
    total.seconds = seconds;
    total.extra["sources"] = per_source;
    MF_RETURN_IF_ERROR(io::write_file_atomic(dir / "stats.json", total.to_json().dump(2) + "\n"));
    return total;
}

}  // namespace

Result<std::vector<StageStats>> run_build(const BuildConfig& c, const BuildOptions& opt) {
    size_t threads =
        opt.threads >= 0 ? static_cast<size_t>(opt.threads) : static_cast<size_t>(c.threads);
    MF_RETURN_IF_ERROR(io::ensure_dir(opt.out_dir));
    nlohmann::json effective = {
        {"name", c.name}, {"config", c.path.string()}, {"config_sha256", c.sha256}};
    MF_RETURN_IF_ERROR(io::write_file_atomic(opt.out_dir / "build.json", effective.dump(2) + "\n"));
    std::vector<StageStats> out;

    // Runs one stage unless its stage.done fingerprint says it is up to date.
    auto stage = [&](const fs::path& dir, const std::string& fingerprint,
                     const std::function<Result<StageStats>()>& run) -> Status {
        std::string name = dir.filename().string();
        if (!opt.force && up_to_date(dir, fingerprint)) {
            log::info("{}: up to date, skipped (use --force to redo)", name);
            MF_ASSIGN_OR_RETURN(StageStats st, load_stats(dir / "stats.json"));
            out.push_back(std::move(st));
            return {};
        }
        MF_ASSIGN_OR_RETURN(StageStats st, run());
        MF_RETURN_IF_ERROR(mark_done(dir, fingerprint));
        log::info("{}: {} in, {} kept, {} rejected", name, st.input, st.kept, st.rejected);
        out.push_back(std::move(st));
        return {};
    };
    const std::string config_fp = "config:" + c.sha256;

    fs::path ingest_dir = opt.out_dir / "1-ingest";
    std::string sources_fp = config_fp;
    for (const auto& s : c.sources)
        sources_fp += "|" + s.format + ":" + s.input.string();
    MF_RETURN_IF_ERROR(stage(ingest_dir, sources_fp,
                             [&] { return ingest_sources(c, ingest_dir, threads, opt.progress); }));

    fs::path filter_dir = opt.out_dir / "2-filter";
    MF_RETURN_IF_ERROR(
        stage(filter_dir, config_fp + "|" + file_fingerprint(ingest_dir / "samples.jsonl"),
              [&]() -> Result<StageStats> {
                  MF_ASSIGN_OR_RETURN(auto filters, FilterSet::create(c.filter));
                  FilterRunOptions fo{ingest_dir, filter_dir, {}, threads, opt.progress};
                  MF_ASSIGN_OR_RETURN(StageStats st, run_filter(fo, *filters));
                  st.extra["filters"] = filters->describe();
                  MF_RETURN_IF_ERROR(io::write_file_atomic(filter_dir / "stats.json",
                                                           st.to_json().dump(2) + "\n"));
                  return st;
              }));

    fs::path dedup_dir = opt.out_dir / "3-dedup";
    MF_RETURN_IF_ERROR(
        stage(dedup_dir, config_fp + "|" + file_fingerprint(filter_dir / "samples.jsonl"), [&] {
            DedupOptions d;
            d.input = filter_dir;
            d.out_dir = dedup_dir;
            d.n_threads = threads;
            d.progress = opt.progress;
            d.params = c.dedup;
            return run_dedup(d);
        }));

    DataCardInfo info;
    info.name = c.name;
    info.config_path = c.path.string();
    info.config_sha256 = c.sha256;
    info.final_samples = dedup_dir / "samples.jsonl";
    MF_RETURN_IF_ERROR(write_data_card(opt.out_dir, info));
    return out;
}

}  // namespace mf::curate
