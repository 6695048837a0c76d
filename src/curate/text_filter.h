// Text filter (paper, App. B): keep a sample when its caption holds at least `min_terms`
// DISTINCT medical terms of the lexicon (see term_matcher.h for what a match is).
//
// Reasons (stable codes, docs/filter.md "Text filter"):
//   empty_caption   the caption is empty or whitespace only (and so are the mentions when
//                   use_mentions is set)
//   too_few_terms   "3 medical terms (ct, thorax, nodule), need 5"
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "curate/filter.h"
#include "curate/lexicon.h"
#include "curate/term_matcher.h"

namespace mf::curate {

struct TextFilterParams {
    int min_terms = 5;
    bool use_mentions = false;      // count caption + inline mentions (paper: caption only)
    std::filesystem::path lexicon;  // empty: default_lexicon_path() (installed by setup)
};

class TextFilter : public Filter {
  public:
    // Loads the lexicon (params.lexicon, else the default one) and builds the matcher.
    static Result<std::unique_ptr<TextFilter>> create(const TextFilterParams& params);
    // From a lexicon in memory (tests, embedding).
    TextFilter(const TextFilterParams& params, const Lexicon& lexicon);

    std::string_view name() const override { return "text"; }
    Verdict apply(const Sample& sample) const override;

    // Distinct terms of the sample's context (caption, + mentions when configured).
    std::vector<std::string> terms_of(const Sample& sample) const;
    const TermMatcher& matcher() const { return *matcher_; }
    const TextFilterParams& params() const { return params_; }

  private:
    TextFilterParams params_;
    std::unique_ptr<TermMatcher> matcher_;
};

}  // namespace mf::curate
