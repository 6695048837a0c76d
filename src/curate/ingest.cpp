// Ingest: the adapter registry, the shared helpers and run_ingest() (ordinals, sharding,
// duplicate ids, stage outputs, stats).
#include "curate/ingest.h"

#include <algorithm>
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

std::string locate_image(const fs::path& base, std::string_view ref,
                         const std::vector<std::string>& subdirs) {
    fs::path r(ref);
    if (r.is_absolute()) return io::absolute_normal(r).string();
    if (subdirs.size() == 1) {
        // One candidate: no need to look at the disk.
        return io::absolute_normal(subdirs[0].empty() ? base / r : base / subdirs[0] / r).string();
    }
    std::string first;
    for (const auto& sub : subdirs) {
        fs::path p = io::absolute_normal(sub.empty() ? base / r : base / sub / r);
        std::error_code ec;
        if (fs::is_regular_file(p, ec)) return p.string();
        if (first.empty()) first = p.string();
    }
    return first;
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
    RunSink(const ShardSpec& shard, StageWriter& writer, StageStats& stats, Progress& progress)
        : shard_(shard), writer_(writer), stats_(stats), progress_(progress) {}

    void on_input_bytes(uint64_t n) override { pending_bytes_ += n; }

    void on_sample(Sample&& s) override {
        uint64_t ord = next_ordinal();
        if (!shard_.owns(s.id)) return;
        count_input();
        std::string json = sample_to_json(s);
        // Seed 1: independent of the shard hash, so ids of one shard still spread evenly.
        if (!kept_ids_.insert(xxh64(s.id, 1)).second) {
            Reject r;
            r.id = s.id;
            r.reason = "duplicate_id";
            r.detail = "id '" + s.id + "' was already emitted earlier in this input (" +
                       s.lineage.file +
                       (s.lineage.line ? ":" + std::to_string(s.lineage.line) : "") +
                       "); the first one is kept: give records unique ids";
            r.file = s.lineage.file;
            r.line = s.lineage.line;
            r.record_json = std::move(json);
            writer_.reject(ord, std::move(r));
            return;
        }
        writer_.keep(ord, json);
        bump("kept_by_source." + (s.lineage.source.empty() ? "unknown" : s.lineage.source));
        size_t n = s.images.size();
        std::string bucket = n >= 10 ? "10+" : std::to_string(n);
        bump("images_per_sample." + bucket);
    }

    void on_reject(Reject&& r) override {
        uint64_t ord = next_ordinal();
        std::string key = r.id.empty() ? r.file + ":" + std::to_string(r.line) : r.id;
        if (!shard_.owns(key)) return;
        count_input();
        writer_.reject(ord, std::move(r));
    }

    void finish() {
        // Bytes after the last record (trailing blank lines) belong to shard 0.
        if (pending_bytes_ && shard_.index == 0) stats_.bytes_in += pending_bytes_;
        pending_bytes_ = 0;
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
        progress_.add(1, bytes_of_record_);
    }
    void bump(const std::string& key) {
        auto& v = stats_.extra[key];
        v = v.is_number_integer() ? v.get<int64_t>() + 1 : int64_t{1};
    }

    const ShardSpec& shard_;
    StageWriter& writer_;
    StageStats& stats_;
    Progress& progress_;
    uint64_t ordinal_ = 0;
    uint64_t pending_bytes_ = 0;
    uint64_t bytes_of_record_ = 0;
    // 64-bit hashes of the kept ids (8 bytes per sample instead of the id string). Two different
    // ids collide with probability ~n^2/2^65 (3e-8 for a million samples).
    std::unordered_set<uint64_t> kept_ids_;
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
    RunSink sink(opt.shard, writer, stats, progress);
    Status st = ingestor->run(opt.input, sink);
    sink.finish();
    progress.finish();
    if (!st.ok()) return st.with_context("ingest " + opt.format);
    stats.seconds = progress.elapsed_s();
    MF_RETURN_IF_ERROR(writer.finish(stats));
    return stats;
}

}  // namespace mf::curate
