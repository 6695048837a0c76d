// Ingest adapters: turn the formats people have (PMC JATS articles, MedICaT, LLaVA-Med, PMC-OA,
// PubMedVision/LLaVA JSON, plain JSONL) into Sample JSONL. Documented in docs/ingest.md and
// docs/formats/.
//
// An adapter walks its input in a deterministic order (files sorted by path, records in file
// order) and reports every record to the sink exactly once: as a Sample or as a Reject with a
// reason code and a detail naming file:line (or the XML element) and what is wrong. It never
// stops the run for one bad record; it returns a non-OK Status only when it cannot read the input
// at all (no such path, unknown format).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "curate/sample.h"
#include "curate/stage.h"

namespace mf::curate {

class IngestSink {
  public:
    virtual ~IngestSink() = default;
    virtual void on_sample(Sample&& sample) = 0;
    // The same, with sample_to_json(sample) already computed (adapters that serialise on worker
    // threads); `json` must equal sample_to_json(sample).
    virtual void on_sample_json(Sample&& sample, std::string&& json) {
        on_sample(std::move(sample));
    }
    // r.stage is filled by the framework; r.id may be empty for unparseable records.
    virtual void on_reject(Reject&& r) = 0;
    // Input bytes read since the last record (for throughput); counted with the next record.
    virtual void on_input_bytes(uint64_t n) {}
};

struct IngestOptions {
    // Image files are looked up relative to this folder (default: the input file's folder).
    std::filesystem::path image_root;
    // Reject samples whose image files are missing at ingest (reason "image_missing").
    // Off by default: the image filter checks it with the other image reasons.
    bool require_images = false;
    // Licence to record when the source states none (e.g. "CC BY 4.0" for a known corpus).
    std::string default_licence;
    // Worker threads for parsing JSONL lines / JATS articles (0 = all cores). The output does not
    // depend on it.
    size_t threads = 0;
};

class Ingestor {
  public:
    virtual ~Ingestor() = default;
    virtual std::string_view format() const = 0;
    // Walks `input` (a file or a directory, per format) and reports every record to `sink`.
    virtual Status run(const std::filesystem::path& input, IngestSink& sink) = 0;
};

// Formats: jats, medicat, llava-med, pmc-oa, pubmedvision, jsonl.
std::vector<std::string> ingest_formats();
// Unknown formats give InvalidArgument naming the valid ones.
Result<std::unique_ptr<Ingestor>> make_ingestor(std::string_view format, const IngestOptions& opt);

struct IngestRunOptions {
    std::string format;
    std::filesystem::path input;
    std::filesystem::path out_dir;
    ShardSpec shard;
    IngestOptions adapter;
    bool progress = true;
};

// Runs the adapter and writes the stage outputs (see stage.h) with stage name "ingest".
// Every reported record gets an ordinal in emission order. Samples are sharded by id, rejects
// without an id by "file:line"; a repeated id is rejected with reason "duplicate_id" (the first
// one is kept). stats.extra holds "kept_by_source.<source>" and "images_per_sample.<n>" counts.
Result<StageStats> run_ingest(const IngestRunOptions& opt);

}  // namespace mf::curate
