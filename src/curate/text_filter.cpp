#include "curate/text_filter.h"

#include <fmt/core.h>

#include "core/text.h"

namespace mf::curate {

Result<std::unique_ptr<TextFilter>> TextFilter::create(const TextFilterParams& params) {
    if (params.min_terms < 0)
        return Status::invalid_argument("text filter: min_terms must be >= 0");
    TextFilterParams p = params;
    if (p.lexicon.empty()) {
        p.lexicon = default_lexicon_path();
        std::error_code ec;
        if (!std::filesystem::exists(p.lexicon, ec)) {
            return Status::not_found(
                "text filter: no lexicon configured and the default one is missing (" +
                p.lexicon.string() +
                "); run scripts/setup.sh, or build one with `medforge lexicon build` and pass it "
                "with the lexicon option");
        }
    }
    auto lex = Lexicon::load(p.lexicon);
    if (!lex.ok()) return lex.status().with_context("text filter: loading lexicon");
    return std::make_unique<TextFilter>(p, *lex);
}

TextFilter::TextFilter(const TextFilterParams& params, const Lexicon& lexicon)
    : params_(params), matcher_(std::make_unique<TermMatcher>(lexicon)) {}

namespace {

bool blank(std::string_view s) {
    return text::trim(s).empty();
}

}  // namespace

Verdict TextFilter::apply(const Sample& sample) const {
    bool empty = blank(sample.caption);
    if (empty && params_.use_mentions) {
        for (const auto& m : sample.mentions)
            if (!blank(m)) empty = false;
    }
    if (empty) {
        return Verdict::drop("empty_caption", params_.use_mentions
                                                  ? "caption and mentions are empty"
                                                  : "caption is empty");
    }
    std::vector<uint32_t> found;
    matcher_->find_terms(sample.caption, found);
    if (params_.use_mentions) {
        for (const auto& m : sample.mentions)
            matcher_->find_terms(m, found);
    }
    if (found.size() >= static_cast<size_t>(params_.min_terms)) return Verdict::kept();
    std::string list;
    for (size_t i = 0; i < found.size(); ++i) {
        if (i) list += ", ";
        list += matcher_->term(found[i]);
    }
    return Verdict::drop(
        "too_few_terms",
        fmt::format("{} medical term{}{}{}, need {}{}", found.size(), found.size() == 1 ? "" : "s",
                    found.empty() ? "" : " (" + list + ")", "", params_.min_terms,
                    params_.use_mentions ? " (caption + mentions)" : ""));
}

std::vector<std::string> TextFilter::terms_of(const Sample& sample) const {
    std::vector<uint32_t> found;
    matcher_->find_terms(sample.caption, found);
    if (params_.use_mentions)
        for (const auto& m : sample.mentions)
            matcher_->find_terms(m, found);
    std::vector<std::string> out;
    for (uint32_t id : found)
        out.push_back(matcher_->term(id));
    return out;
}

}  // namespace mf::curate
