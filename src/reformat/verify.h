// The answer verifier: a deterministic, rule-based check (no model) that a generated description
// or answer does not contradict its source text (the sample's caption + inline mentions).
//
// It flags six kinds of contradiction, each with the evidence span in both texts:
//   laterality   the answer puts the opposite side on an organ or finding the source gives a side
//                ("left pleural effusion" vs "right-sided pleural effusion"); a side the source
//                never gives for that organ/finding is not checked.
//   negation     the answer asserts a finding the source negates ("no pneumothorax" → "a small
//                pneumothorax"), or negates one the source asserts, NegEx style: pre- and
//                post-negation triggers with a bounded window, pseudo-negations ("no change",
//                "no other") and hedges ("may", "possible", questions) skipped. The negated
//                mention's modifiers must all appear on the asserted one ("no enhancing lesion"
//                does not contradict "a non-enhancing lesion").
//   number_unit  a value+unit in the answer that matches none of the source's values of the same
//                quantity: lengths (mm/cm/m, normalised: "1.5 cm" == "15 mm"), volumes (ml/cc/l),
//                masses, ages ("45-year-old", "aged 45", "45 years old"; months as years),
//                percentages and Hounsfield units, compared for the same organ/finding when both
//                texts attach one; counts of a finding ("two nodules" vs "three nodules").
//                Reference values ("normal < 7 mm", "up to", "typically") are not checked.
//   modality     the answer names an imaging modality the source does not, that is not
//                compatible with any the source names (CT vs MRI vs X-ray vs ultrasound vs PET vs
//                nuclear vs endoscopy vs histology; CTA is CT, mammography and barium studies are
//                X-ray, PET/CT is both). Recommendations ("further MRI may help") are skipped.
//   sequence     the answer names an MR sequence (T1, T2, FLAIR, DWI/ADC, SWI, STIR, ...) that is
//                not compatible with any the source names (FLAIR counts as T2, ADC as DWI).
//   anatomy      the answer is about a body region the source is not: its imaged region
//                ("brain MRI" vs "MRI of the knee") differs, or every organ it names lies in a
//                region no organ of the source lies in (adjacent regions are compatible).
//
// Precision comes first: a rule fires only when both texts state the thing explicitly; anything
// hedged, negated (except for the negation rule itself), or phrased as a reference range is
// skipped. See docs/verify.md for the measured precision and recall on the hand-labelled table
// of tests/reformat/verify_test.cpp and the flag rate on real data.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mf::reformat {

enum class ContradictionKind {
    kLaterality,
    kNegation,
    kNumberUnit,
    kModality,
    kSequence,
    kAnatomy
};
inline constexpr int kContradictionKinds = 6;

// "laterality", "negation", "number_unit", "modality", "sequence", "anatomy".
std::string_view contradiction_kind_name(ContradictionKind k);

// A byte range [begin, end) of a text and the text it covers.
struct Evidence {
    size_t begin = 0, end = 0;
    std::string text;
};

struct Contradiction {
    ContradictionKind kind = ContradictionKind::kNegation;
    Evidence source;     // in the source text
    Evidence answer;     // in the answer text
    std::string detail;  // one sentence naming both sides, quoted back to the model on a re-ask
};

struct VerifyOptions {
    bool kinds[kContradictionKinds] = {true, true, true, true, true, true};
};

// The contradictions between `answer` and `source`, in the order of the answer text (at most one
// per kind and entity). Empty when none is found.
std::vector<Contradiction> verify_answer(std::string_view source, std::string_view answer,
                                         const VerifyOptions& opt = {});

// One line listing the contradictions, for a re-ask prompt or a reject detail: "the answer says
// 'left pleural effusion' but the source says 'right-sided pleural effusion' (laterality); ...".
std::string describe_contradictions(const std::vector<Contradiction>& c);

}  // namespace mf::reformat
