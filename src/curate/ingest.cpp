// Ingest: the adapter registry, the shared helpers and run_ingest() (ordinals, sharding,
// duplicate ids, stage outputs, stats).
#include "curate/ingest.h"

#include <algorithm>
#include <array>
#include <map>
#include <string>
#include <unordered_set>

#include "core/hash.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/text.h"
#include "curate/ingest_internal.h"
#include "io/file.h"

namespace mf::curate {

namespace ingest_detail {

Result<std::vector<fs::path>> input_files(const fs::path& input,
                                          const std::vector<std::string>& exts) {
    std::error_code ec;
    if (fs::is_regular_file(input, ec)) return std::vector<fs::path>{input};
    if (!fs::exists(input, ec))
        return Status::not_found(input.string() + ": no such file or directory; check --input");
    if (!fs::is_directory(input, ec))
        return Status::invalid_argument(input.string() + ": not a regular file or a directory");
    MF_ASSIGN_OR_RETURN(std::vector<fs::path> files, io::list_files(input, exts, true));
    if (files.empty()) {
        std::string list;
        for (const auto& e : exts)
            list += (list.empty() ? "" : " ") + e;
        return Status::not_found(input.string() + ": no input files (" + list + ") in this folder");
    }
    return files;
}

fs::path image_base(const IngestOptions& opt, const fs::path& file) {
    if (!opt.image_root.empty()) return io::absolute_normal(opt.image_root);
    return io::absolute_normal(file).parent_path();
}

namespace {

// A relative path without "", "." or ".." segments: joining it to a normal path stays normal.
bool simple_relative(std::string_view ref) {
    if (ref.empty() || ref.front() == '/') return false;
    size_t start = 0;
    while (start <= ref.size()) {
        size_t slash = ref.find('/', start);
        size_t end = slash == std::string_view::npos ? ref.size() : slash;
        std::string_view seg = ref.substr(start, end - start);
        if (seg.empty() || seg == "." || seg == "..") return false;
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    return true;
}

}  // namespace

ImageLocator::ImageLocator(const fs::path& base, const std::vector<std::string>& subdirs) {
    base_ = io::absolute_normal(base).string();
    while (base_.size() > 1 && base_.back() == '/')
        base_.pop_back();
    for (const auto& sub : subdirs) {
        std::error_code ec;
        if (!sub.empty() && fs::is_directory(fs::path(base_) / sub, ec)) present_.push_back(sub);
    }
}

std::string ImageLocator::join(std::string_view sub, std::string_view ref) const {
    std::string rel = sub.empty() ? std::string(ref) : std::string(sub) + "/" + std::string(ref);
    if (simple_relative(rel)) return base_ == "/" ? "/" + rel : base_ + "/" + rel;
    return io::absolute_normal(fs::path(base_) / rel).string();
}

std::string ImageLocator::locate(std::string_view ref,
                                 std::initializer_list<std::string_view> subdirs) const {
    if (!ref.empty() && ref.front() == '/') return io::absolute_normal(fs::path(ref)).string();
    std::vector<std::string_view> cands;
    for (auto sub : subdirs) {
        if (sub.empty() || std::find(present_.begin(), present_.end(), sub) != present_.end())
            cands.push_back(sub);
    }
    std::string_view first = subdirs.size() ? *subdirs.begin() : std::string_view();
    if (cands.empty() || (cands.size() == 1 && cands[0] == first)) return join(first, ref);
    for (auto sub : cands) {
        std::string p = join(sub, ref);
        std::error_code ec;
        if (fs::is_regular_file(p, ec)) return p;
    }
    return join(first, ref);
}

std::string first_missing(const std::vector<std::string>& images) {
    for (const auto& img : images) {
        std::error_code ec;
        if (!fs::is_regular_file(img, ec)) return img;
    }
    return {};
}

Reject make_reject(std::string reason, std::string detail, const fs::path& file, int64_t line,
                   std::string id, std::string record_json) {
    Reject r;
    r.id = std::move(id);
    r.reason = std::move(reason);
    r.detail = std::move(detail);
    r.file = file.string();
    r.line = line;
    r.record_json = std::move(record_json);
    return r;
}

int64_t line_of_offset(std::string_view text, size_t offset) {
    offset = std::min(offset, text.size());
    return 1 + std::count(text.begin(), text.begin() + static_cast<ptrdiff_t>(offset), '\n');
}

}  // namespace ingest_detail

std::vector<std::string> ingest_formats() {
    return {"jats", "medicat", "llava-med", "pmc-oa", "pubmedvision", "jsonl"};
}

Result<std::unique_ptr<Ingestor>> make_ingestor(std::string_view format, const IngestOptions& opt) {
    if (format == "jats") return ingest_detail::make_jats_ingestor(opt);
    for (const auto& f : ingest_formats())
        if (f == format) return ingest_detail::make_json_ingestor(format, opt);
    std::string list;
    for (const auto& f : ingest_formats())
        list += (list.empty() ? "" : ", ") + f;
    return Status::invalid_argument("unknown ingest format '" + std::string(format) +
                                    "'; valid formats: " + list);
}

namespace {

// Receives the adapter's records in emission order and writes this shard's share.
class RunSink : public IngestSink {
  public:
    RunSink(const ShardSpec& shard, StageWriter& writer, StageStats& stats, Progress& progress,
            bool show_progress)
        : shard_(shard),
          writer_(writer),
          stats_(stats),
          progress_(progress),
          show_progress_(show_progress) {}

    void on_input_bytes(uint64_t n) override { pending_bytes_ += n; }

    void on_sample(Sample&& s) override {
        std::string json;
        on_sample_json(std::move(s), std::move(json));
    }

    // `json` may be empty: then it is computed here.
    void on_sample_json(Sample&& s, std::string&& json) override {
        uint64_t ord = next_ordinal();
        if (!shard_.owns(s.id)) return;
        count_input();
        if (json.empty()) json = sample_to_json(s);
        // Seed 1: independent of the shard hash, so ids of one shard still spread evenly.
        if (!kept_ids_.insert(xxh64(s.id, 1)).second) {
            Reject r;
            r.id = s.id;
            r.reason = "duplicate_id";
            r.detail = s.lineage.file +
                       (s.lineage.line ? ":" + std::to_string(s.lineage.line) : "") + ": id '" +
                       s.id +
                       "' repeats an id kept earlier in this input; the first one is "
                       "kept: give records unique ids";
            r.file = s.lineage.file;
            r.line = s.lineage.line;
            r.record_json = std::move(json);
            writer_.reject(ord, std::move(r));
            return;
        }
        writer_.keep(ord, json);
        if (!source_count_ || s.lineage.source != last_source_) {
            last_source_ = s.lineage.source;
            source_count_ = &by_source_[last_source_.empty() ? "unknown" : last_source_];
        }
        ++*source_count_;
        ++images_hist_[std::min<size_t>(s.images.size(), images_hist_.size() - 1)];
    }

    void on_reject(Reject&& r) override {
        uint64_t ord = next_ordinal();
        std::string key = r.id.empty() ? r.file + ":" + std::to_string(r.line) : r.id;
        if (!shard_.owns(key)) return;
        count_input();
        writer_.reject(ord, std::move(r));
    }

    // Adds the trailing bytes and the per-source / images-per-sample counts to the stats.
    void finish() {
        // Bytes after the last record (trailing blank lines) belong to shard 0.
        if (pending_bytes_ && shard_.index == 0) stats_.bytes_in += pending_bytes_;
        pending_bytes_ = 0;
        for (const auto& [source, n] : by_source_)
            stats_.extra["kept_by_source." + source] = n;
        for (size_t i = 0; i < images_hist_.size(); ++i) {
            if (!images_hist_[i]) continue;
            bool last = i + 1 == images_hist_.size();
            stats_.extra["images_per_sample." + std::to_string(i) + (last ? "+" : "")] =
                images_hist_[i];
        }
    }

  private:
    uint64_t next_ordinal() {
        bytes_of_record_ = pending_bytes_;
        pending_bytes_ = 0;
        return ordinal_++;
    }
    void count_input() {
        ++stats_.input;
        stats_.bytes_in += bytes_of_record_;
        if (show_progress_) progress_.add(1, bytes_of_record_);
    }

    const ShardSpec& shard_;
    StageWriter& writer_;
    StageStats& stats_;
    Progress& progress_;
    bool show_progress_;
    uint64_t ordinal_ = 0;
    uint64_t pending_bytes_ = 0;
    uint64_t bytes_of_record_ = 0;
    // 64-bit hashes of the kept ids (8 bytes per sample instead of the id string). Two different
    // ids collide with probability ~n^2/2^65 (3e-8 for a million samples).
    std::unordered_set<uint64_t> kept_ids_;
    std::map<std::string, uint64_t> by_source_;
    std::string last_source_;
    uint64_t* source_count_ = nullptr;
    std::array<uint64_t, 11> images_hist_{};  // 0..9 images, then "10+"
};

}  // namespace

Result<StageStats> run_ingest(const IngestRunOptions& opt) {
    MF_ASSIGN_OR_RETURN(std::unique_ptr<Ingestor> ingestor, make_ingestor(opt.format, opt.adapter));
    std::error_code ec;
    if (!fs::exists(opt.input, ec))
        return Status::not_found(opt.input.string() + ": no such file or directory; check --input");
    StageWriter writer;
    MF_RETURN_IF_ERROR(writer.open(opt.out_dir, opt.shard, "ingest"));
    StageStats stats;
    stats.shard = opt.shard.to_string();
    Progress progress("ingest " + opt.format, 0, "records");
    RunSink sink(opt.shard, writer, stats, progress, opt.progress);
    Status st = ingestor->run(opt.input, sink);
    sink.finish();
    progress.finish();
    if (!st.ok()) return st.with_context("ingest " + opt.format);
    stats.seconds = progress.elapsed_s();
    MF_RETURN_IF_ERROR(writer.finish(stats));
    return stats;
}

}  // namespace mf::curate
