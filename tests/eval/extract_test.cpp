// Extractor tables: the official match_choice3 (expected values produced by the Python
// reference: the §9.4 regex with re.finditer and the intended fallback) and the robust default.
#include <gtest/gtest.h>

#include <map>

#include "eval/eval.h"

namespace mf::eval {
namespace {

const std::map<std::string, std::vector<std::string>>& option_sets() {
    static const std::map<std::string, std::vector<std::string>> s{
        {"YN", {"yes", "no"}},
        {"MC", {"Pneumonia", "Pleural effusion", "Pneumothorax", "Cardiomegaly"}},
        {"MOD", {"CT", "MRI", "X-Ray", "Ultrasound"}},
        {"LR", {"left", "right"}},
        {"HEM", {"Ischemia", "Hemorrhage", "Tumor", "Normal"}}};
    return s;
}

struct Row {
    const char* output;
    const char* set;
    const char* official;  // letter as match_choice3 returns it
    int robust;            // option index, -1 = unresolved
};

// clang-format off
const Row kRows[] = {
    {"B", "YN", "B", 1},
    {"A", "YN", "A", 0},
    {"(B)", "MC", "B", 1},
    {"B.", "MC", "B", 1},
    {"B. Pleural effusion", "MC", "B", 1},
    {"The answer is C.", "MC", "C", 2},
    {"Answer: D", "MC", "D", 3},
    {"option B", "MC", "B", 1},
    {"**B**", "MC", "B", 1},
    {"b", "MC", "b", 1},                                    // official: lower case never scores
    {"I think the answer is B.", "MC", "I", 1},             // official quirk: "I"
    {"A large pleural effusion is present.", "MC", "B", 1}, // article "A " skipped
    {"Yes", "YN", "A", 0},
    {"No.", "YN", "B", 1},
    {"yes, there is evidence of an aortic aneurysm.", "YN", "A", 0},
    {"The answer is unknown.", "YN", "B", -1},              // official: "no" inside "unknown"
    {"No, there is no evidence of pneumothorax.", "YN", "B", 1},
    {"E", "MC", "E", -1},                                   // beyond the 4 options
    {"C) Pneumothorax", "MC", "C", 2},
    {"Pneumothorax", "MC", "C", 2},
    {"The image shows cardiomegaly.", "MC", "D", 3},
    {"MRI", "MOD", "B", 1},
    {"This is an MRI scan of the brain.", "MOD", "B", 1},
    {"CT", "MOD", "A", 0},
    {"X-Ray", "MOD", "C", 2},
    {"The correct option is (D).", "MC", "D", 3},
    {"D: Cardiomegaly", "MC", "D", 3},
    {"Answer: (A) Pneumonia", "MC", "A", 0},
    {"Based on the image, the answer is A", "MC", "A", 0},
    {"a", "MC", "a", 0},
    {"It is B", "MC", "B", 1},
    {"The answer is B, pleural effusion.", "MC", "B", 1},
    {"Option C is correct.", "MC", "C", 2},
    {"Both A and B are possible, but B is more likely.", "MC", "B", 1},
    {"yes", "YN", "A", 0},
    {"no", "YN", "B", 1},
    {"Not sure.", "YN", "B", -1},                           // official: "no" inside "not"
    {"There is no pneumothorax.", "YN", "B", 1},
    {"d", "MC", "d", 3},
    {"The answer is: c", "MC", "c", 2},
    {"Answer is a", "MC", "a", -1},
    {"\xe9\x80\x89\xe9\xa1\xb9\xe6\x98\xaf" "B", "MC", "B", 1},   // 选项是B
    {"", "MC", "D", -1},                                    // difflib ties -> the last option
    {"pleural", "MC", "B", -1},                             // difflib: best ratio
    {"Pneumonia or pleural effusion", "MC", "B", 1},        // last occurrence / longest text
    {"\nB\n", "MC", "B", 1},
    {"#B", "MC", "B", 1},
    {"The lesion is in the left lobe.", "LR", "A", 0},
    {"Hemorrhage", "HEM", "B", 1},
    {"\xe7\xad\x94\xe6\xa1\x88\xe4\xb8\xba" "C\xe3\x80\x82", "MC", "C", 2},  // 答案为C。
    {"'B'", "MC", "B", 1},
    {"The findings suggest pneumonia (A).", "MC", "A", 0},
};
// clang-format on

TEST(ExtractTable, HasAtLeastFortyRows) {
    EXPECT_GE(std::size(kRows), 40u);
}

TEST(ExtractTable, OfficialMatchChoice3) {
    for (const auto& r : kRows) {
        const auto& opts = option_sets().at(r.set);
        EXPECT_EQ(match_choice3(r.output, opts), r.official) << "output: '" << r.output << "'";
        Extraction ex = extract_official(r.output, opts);
        int idx = -1;
        std::string l = r.official;
        if (l.size() == 1 && l[0] >= 'A' && l[0] - 'A' < static_cast<int>(opts.size()))
            idx = l[0] - 'A';
        EXPECT_EQ(ex.index, idx) << "output: '" << r.output << "'";
    }
}

TEST(ExtractTable, Robust) {
    for (const auto& r : kRows) {
        const auto& opts = option_sets().at(r.set);
        Extraction ex = extract_robust(r.output, opts);
        EXPECT_EQ(ex.index, r.robust) << "output: '" << r.output << "' method " << ex.method;
    }
}

TEST(Extract, RobustNeverUsesSubstringYesNo) {
    std::vector<std::string> yn{"yes", "no"};
    for (const char* s : {"unknown", "The diagnosis is not known", "eyes are normal", "nodule"}) {
        EXPECT_EQ(extract_robust(s, yn).index, -1) << s;
    }
    EXPECT_EQ(extract_robust("No nodule is seen", yn).index, 1);
    EXPECT_EQ(extract_robust("Yes - the eyes are abnormal, not normal", yn).index, 0);
}

TEST(Extract, LettersBeyondTheAlphabetRangeAreIgnoredByOfficial) {
    // O..Z are outside A–N.
    EXPECT_EQ(match_choice3("O", {}), "");
    EXPECT_EQ(match_choice3("Z.", {}), "");
    EXPECT_EQ(match_choice3("N.", {}), "N");
}

TEST(Difflib, HandComputedRatios) {
    // Python docs: SequenceMatcher(None, "tide", "diet").ratio() == 0.25, reversed 0.5.
    EXPECT_DOUBLE_EQ(difflib_ratio("tide", "diet"), 0.25);
    EXPECT_DOUBLE_EQ(difflib_ratio("diet", "tide"), 0.5);
    // "abcd" vs "bcde": one block "bcd" -> 2*3/8.
    EXPECT_DOUBLE_EQ(difflib_ratio("abcd", "bcde"), 0.75);
    EXPECT_DOUBLE_EQ(difflib_ratio("", ""), 1.0);
    EXPECT_DOUBLE_EQ(difflib_ratio("abc", ""), 0.0);
    EXPECT_DOUBLE_EQ(difflib_ratio("abc", "abc"), 1.0);
    // "pneumonia" vs "pleural": longest "p" ... blocks p, then "l"? -> Python gives 0.5.
    EXPECT_DOUBLE_EQ(difflib_ratio("pneumonia", "pleural"), 0.5);
    EXPECT_DOUBLE_EQ(difflib_ratio("qwerty", "uiop zxcv"), 0.0);
}

TEST(Difflib, MatchesPythonOnRandomStrings) {
    EXPECT_DOUBLE_EQ(difflib_ratio("ec c ", " ffea d bfab"), 0.35294117647058826);
    EXPECT_DOUBLE_EQ(difflib_ratio("acdbd", "eaebafbdcb  "), 0.35294117647058826);
    EXPECT_DOUBLE_EQ(
        difflib_ratio("dbabeedbbaabbbbccbe  bb bdcacd", "bbcacc eeaeffcacc cdfcbddfbacafc dae "),
        0.26865671641791045);
    EXPECT_DOUBLE_EQ(
        difflib_ratio("dcdeada bebabdcececdae ccadabc", "eecbccfeacfccb afbffcdbfaaeedabfec cd"),
        0.26865671641791045);
}

TEST(Difflib, AutojunkOnLongSecondSequence) {
    // b has 210 elements: x (150x), a and b (30x each) all exceed 210/100+1 = 3 -> popular.
    std::string b = std::string(150, 'x');
    for (int i = 0; i < 30; ++i)
        b += "ab";
    EXPECT_DOUBLE_EQ(difflib_ratio(b, b), 1.0);        // found by extension, not by b2j
    EXPECT_DOUBLE_EQ(difflib_ratio("y" + b, b), 0.0);  // no seed, no extension
    EXPECT_DOUBLE_EQ(difflib_ratio("ababababab", b), 0.0);
    EXPECT_DOUBLE_EQ(difflib_ratio(b, "y" + b), 0.0);
    // Below 200 elements there is no autojunk: a match is found.
    EXPECT_GT(difflib_ratio("ababababab", std::string(150, 'x') + "ab"), 0.0);
}

}  // namespace
}  // namespace mf::eval
