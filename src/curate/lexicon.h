// Lexicon: the set of medical terms the text filter counts (single and multi-word terms).
//
// Terms are stored normalised: lower-cased (ASCII + Latin-1 capitals), whitespace collapsed to
// one space, punctuation trimmed from both ends, a trailing possessive "'s" dropped, hyphens
// kept as written ("x-ray"; the matcher treats '-' like a space). Terms shorter than 3 bytes
// are dropped ("ab", "aa."), except abbreviations written in capitals in the source ("CT",
// "GI": 2+ capitals/digits, at least one capital).
//
// Loaders (medforge lexicon build --from <format>:<path>):
//   words      plain list, one term per line, '#' comments and blank lines skipped
//   hunspell   hunspell .dic: first line is the word count, "/FLAGS" and tab-separated
//              morphology stripped, "\/" unescaped, indented (comment) lines skipped
//   mesh-tree  MeSH tree TSV "Tree Number<TAB>Descriptor UI<TAB>Term" (header line; one row
//              per tree number, descriptors deduplicated)
//   mesh       NLM MeSH ASCII descriptors (d20XX.bin): "*NEWRECORD" records with "MH = ",
//              "ENTRY = " and "PRINT ENTRY = " lines ("term|T047|..." keeps the first field)
//   specialist UMLS SPECIALIST LEXICON records "{base=...", "spelling_variant=..." ... "}"
//   lexicon    a saved medforge lexicon (read like words; already normalised terms are kept
//              whatever their length)
// MeSH headings are inverted and plural ("Carcinoma, Squamous Cell", "Lymph Nodes"): the MeSH
// loaders turn "X, Y" into "Y X" and make the last word singular ("squamous cell carcinoma",
// "lymph node"); the matcher's plural variants still match the plural.
//
// Stop lists (common English words, e.g. Debian wamerican /usr/share/dict/american-english):
// one word per line, possessive lines ("AA's") skipped, compared case-insensitively with the
// normalised term. Only entries written in lower case are common words: capitalised entries are
// proper names and abbreviations ("CT", "MRI", "Parkinson") and do not remove terms.
#pragma once

#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/status.h"

namespace mf::curate {

namespace fs = std::filesystem;

// Normalised form of one raw term, or "" when it is not usable (empty, too short).
std::string normalize_term(std::string_view raw);

class Lexicon {
  public:
    // Normalises and adds; returns true when the term was new.
    bool add(std::string_view raw);
    // Adds a term that is already normalised (a saved lexicon): normalised again, but without
    // the length rule, so "ct" saved from "CT" stays.
    bool add_normalized(std::string_view term);
    bool contains(std::string_view raw) const;
    size_t size() const { return terms_.size(); }
    bool empty() const { return terms_.empty(); }
    const std::set<std::string>& terms() const { return terms_; }
    // Removes every term in `stop` (normalised words); returns how many were removed.
    size_t remove(const std::unordered_set<std::string>& stop);
    // How many terms remove() would remove.
    size_t remove_count(const std::unordered_set<std::string>& stop) const;

    // Plain sorted list, one term per line, with a '#' header. Loaded by load() / words format.
    Status save(const fs::path& path) const;
    static Result<Lexicon> load(const fs::path& path);

  private:
    std::set<std::string> terms_;
};

// kLexicon: a saved medforge lexicon (read like kWords; its short terms such as "ct" are kept).
enum class LexiconFormat { kWords, kHunspell, kMeshTree, kMeshAscii, kSpecialist, kLexicon };

// "words", "hunspell", "mesh-tree", "mesh", "specialist", "lexicon".
Result<LexiconFormat> parse_lexicon_format(std::string_view name);
std::string_view lexicon_format_name(LexiconFormat f);

// The raw terms of a source file as written (not normalised). Errors name the file.
Result<std::vector<std::string>> read_lexicon_terms(LexiconFormat format, const fs::path& path);

// Stop list: normalised lower-case common words (see the header comment for what is skipped).
Result<std::unordered_set<std::string>> load_stop_list(const fs::path& path);

struct LexiconSource {
    LexiconFormat format = LexiconFormat::kWords;
    fs::path path;
    bool apply_stop = true;  // false: added after stop-word removal (curated vocabularies)
};
// How a source takes part in a build.
enum class SourceRole {
    kFrom,  // its terms are added, then filtered by the stop lists
    kAdd,   // its terms are added after stop-word removal (curated vocabularies)
    kKeep,  // adds nothing; its terms are protected from the stop lists ("lung" is in both
            // hunspell-en-med and MeSH, so it is medical even though wamerican lists it)
};
// "<format>:<path>" (e.g. "hunspell:/usr/share/hunspell/en_med_glut.dic").
Result<LexiconSource> parse_lexicon_source(std::string_view spec, bool apply_stop = true);

struct LexiconBuildOptions {
    std::vector<LexiconSource> sources;  // apply_stop true: kFrom, false: kAdd
    std::vector<LexiconSource> keep;     // kKeep sources
    std::vector<fs::path> stop_lists;
};

struct LexiconBuildReport {
    struct Source {
        std::string spec;  // "hunspell:/path"
        size_t raw = 0;    // terms read
        size_t added = 0;  // new normalised terms
    };
    std::vector<Source> sources;
    size_t stop_words = 0;    // size of the stop set
    size_t removed = 0;       // terms removed by the stop list
    size_t kept_by_keep = 0;  // stop words kept because a --keep source lists them
    size_t final_size = 0;
};

Result<Lexicon> build_lexicon(const LexiconBuildOptions& opt, LexiconBuildReport* report = nullptr);

// Where setup installs the default lexicon, relative to the running binary:
// <dir of /proc/self/exe>/../share/medforge/lexicon/medical_en.txt.
fs::path default_lexicon_path();

}  // namespace mf::curate
