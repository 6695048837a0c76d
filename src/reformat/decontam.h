// Benchmark decontamination (issue 8): drops training samples whose images or text overlap the
// evaluation benchmarks, so reported scores are not inflated by test items seen in training.
//
//   image overlap  each sample image's perceptual hashes (io/phash.h) are compared with every
//                  benchmark image's, hashed whole and with 5% and 10% border crops (pHash
//                  moves up to 20 bits under a 5% crop); a sample is contaminated when some
//                  pair has
//                  pHash distance <= phash_threshold AND dHash distance <= dhash_threshold.
//   text overlap   the normalised text (lower case, punctuation to spaces, whitespace
//                  collapsed) of the caption + mentions is searched for every benchmark
//                  question: a question of >= ngram words is matched when the text shares any
//                  of its word n-grams; a shorter question (>= min_question_words) when the
//                  whole normalised question occurs in the text as a word sequence; and any
//                  question (even a 2-word one) when the caption or a mention, normalised, IS
//                  the question (exact normalised match).
//
// It is a map stage over Sample JSONL (curate/stage.h): samples.jsonl (kept lines verbatim),
// rejects.jsonl (reason contaminated_image / contaminated_text), stats.json, plus
// overlap_report.json / overlap_report.md listing every overlap and the benchmark item.
//
// It lives in mf_reformat because it needs both curate's stage framework and eval's benchmark
// loaders (mf_eval must not depend on mf_curate; mf_reformat already sits above curate and now
// also links mf_eval).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "curate/stage.h"

namespace mf::reformat {

namespace fs = std::filesystem;

// One --against value: "<benchmark>:<path>[:<images dir>]". The images dir defaults to
// <dir of path>/images when that directory exists; without one only text is checked.
struct AgainstSpec {
    std::string benchmark;  // a name from eval::benchmark_names()
    fs::path path;
    fs::path images_dir;  // empty = no image check for this benchmark
};
Result<AgainstSpec> parse_against(std::string_view spec);

struct DecontamParams {
    int phash_threshold = 10;    // max pHash Hamming distance for an image match
    int dhash_threshold = 16;    // max dHash Hamming distance for an image match
    int ngram = 8;               // word n-gram size for long questions
    int min_question_words = 5;  // shorter questions are never matched (too generic)
    bool check_images = true;
    bool check_text = true;
};

// "Lower case, ASCII punctuation to spaces, whitespace collapsed, trimmed". Non-ASCII bytes
// are kept (they are letters of other scripts or symbols, compared as they are).
std::string normalize_for_overlap(std::string_view s);
std::vector<std::string> overlap_words(std::string_view s);  // words of the normalised text

struct BenchImage {
    std::string benchmark;
    std::string item_id;  // first item that uses the image
    std::string file;     // resolved path
    uint64_t phash = 0;
    uint64_t dhash = 0;
    double crop = 0;  // border fraction cut on each side before hashing (0, 0.05, 0.10)
};
struct BenchQuestion {
    std::string benchmark;
    std::string item_id;
    std::string question;  // as in the benchmark
    std::vector<std::string> words;
};

// The loaded benchmarks: distinct images with hashes and questions. Images that cannot be
// decoded are listed in `unreadable` (file: reason), not fatal.
struct BenchmarkIndex {
    std::vector<BenchImage> images;  // one entry per (image, crop): 3 per distinct image
    std::vector<BenchQuestion> questions;
    std::vector<std::string> unreadable;
    std::vector<std::string> summary;  // "vqa-rad: 451 items, 203 images, 451 questions"
};
Result<BenchmarkIndex> load_benchmark_index(const std::vector<AgainstSpec>& specs,
                                            const DecontamParams& p, size_t n_threads = 0);

struct Overlap {
    std::string kind;  // "image" or "text"
    std::string benchmark;
    std::string item_id;
    std::string bench_file;   // benchmark image file (image) or data file (text)
    std::string sample_file;  // sample image (image)
    int phash_distance = -1;
    int dhash_distance = -1;
    double bench_crop = 0;    // which crop of the benchmark image matched
    std::string shared_text;  // the shared n-gram or the whole question (text)
};

// Finds the overlaps of one sample (all image matches, then text matches). Thread-safe.
class DecontamIndex {
  public:
    DecontamIndex(BenchmarkIndex bench, DecontamParams p);
    // `base` resolves relative sample image paths. Unreadable sample images are skipped and
    // counted in *unreadable_images when given.
    std::vector<Overlap> image_overlaps(const curate::Sample& s, const fs::path& base,
                                        int* unreadable_images = nullptr) const;
    std::vector<Overlap> text_overlaps(const curate::Sample& s) const;
    const BenchmarkIndex& bench() const { return bench_; }

  private:
    BenchmarkIndex bench_;
    DecontamParams p_;
    // n-gram (space-joined words) -> question index; short question -> question index.
    std::vector<std::pair<std::string, size_t>> ngrams_;  // sorted by string
    std::vector<size_t> short_questions_;
    std::unordered_map<std::string, size_t> exact_;  // whole normalised question -> index
};

struct DecontamOptions {
    fs::path input;  // Sample JSONL file or stage directory
    fs::path out_dir;
    std::vector<AgainstSpec> against;
    DecontamParams params;
    curate::ShardSpec shard;
    size_t n_threads = 0;
    bool progress = true;
};

// Runs the stage; writes the outputs named above. stats.extra carries the benchmark sizes,
// overlaps per benchmark and the thresholds.
Result<curate::StageStats> run_decontam(const DecontamOptions& opt);

}  // namespace mf::reformat
