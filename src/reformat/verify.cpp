#include "reformat/verify.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace mf::reformat {

namespace {

// ---------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------

struct Tok {
    std::string w;  // lower-case word, number text, or one punctuation character
    size_t b = 0, e = 0;
    bool word = false;  // letters/digits
    bool num = false;   // a number (digits, optional decimal part)
    double val = 0;
    int decimals = 0;
    int sent = 0, clause = 0;
};

bool is_alpha(unsigned char c) {
    return std::isalpha(c) || c >= 0x80;
}
bool is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}

// Splits into words, numbers and punctuation. Hyphens and dashes join nothing and are dropped
// ("left-sided" → left sided, "x-ray" → x ray, "2–3 cm" → 2 3 cm), except "non-X" → "nonX".
// A word is split where digits are followed by letters ("5cm" → 5 cm, "t2w" → t2 w) and a
// lone x between digits is its own token ("3x4" → 3 x 4). "H&E" stays one token.
std::vector<Tok> tokenize(std::string_view s) {
    std::vector<Tok> out;
    int sent = 0, clause = 0;
    size_t i = 0;
    auto push_punct = [&](char c, size_t b, size_t e) {
        Tok t;
        t.w = std::string(1, c);
        t.b = b;
        t.e = e;
        t.sent = sent;
        t.clause = clause;
        out.push_back(std::move(t));
        if (c == '.' || c == '!' || c == '?' || c == '\n') {
            ++sent;
            ++clause;
        } else if (c == ';' || c == ':' || c == '(' || c == ')' || c == '[' || c == ']') {
            ++clause;
        }
    };
    while (i < s.size()) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        // Multiplication sign × (U+00D7) → "x"; en/em dash → separator; µ/μ → 'u'.
        if (c == 0xC3 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x97) {
            Tok t;
            t.w = "x";
            t.word = true;
            t.b = i;
            t.e = i + 2;
            t.sent = sent;
            t.clause = clause;
            out.push_back(std::move(t));
            i += 2;
            continue;
        }
        if (c == 0xE2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
            (static_cast<unsigned char>(s[i + 2]) == 0x93 ||
             static_cast<unsigned char>(s[i + 2]) == 0x94)) {
            i += 3;
            continue;
        }
        if (c == 0xE2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x89 &&
            (static_cast<unsigned char>(s[i + 2]) == 0xA4 ||
             static_cast<unsigned char>(s[i + 2]) == 0xA5)) {  // ≤ ≥
            push_punct(static_cast<unsigned char>(s[i + 2]) == 0xA4 ? '<' : '>', i, i + 3);
            i += 3;
            continue;
        }
        if (is_alpha(c) || is_digit(c) ||
            ((c == 0xC2 || c == 0xCE) && i + 1 < s.size() &&
             (static_cast<unsigned char>(s[i + 1]) == 0xB5 ||
              static_cast<unsigned char>(s[i + 1]) == 0xBC))) {
            std::string w;
            std::vector<size_t> pos;  // source offset of each char of w
            while (i < s.size()) {
                unsigned char d = static_cast<unsigned char>(s[i]);
                if ((d == 0xC2 || d == 0xCE) && i + 1 < s.size() &&
                    (static_cast<unsigned char>(s[i + 1]) == 0xB5 ||
                     static_cast<unsigned char>(s[i + 1]) == 0xBC)) {
                    w += 'u';
                    pos.push_back(i);
                    i += 2;
                    continue;
                }
                if (d == 0xC3 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x97)
                    break;
                // En/em dash, ≤, ≥ end a word (the outer loop handles them); any other
                // non-ASCII byte is part of it.
                if (d == 0xE2 && i + 2 < s.size() &&
                    ((static_cast<unsigned char>(s[i + 1]) == 0x80 &&
                      (static_cast<unsigned char>(s[i + 2]) == 0x93 ||
                       static_cast<unsigned char>(s[i + 2]) == 0x94)) ||
                     (static_cast<unsigned char>(s[i + 1]) == 0x89 &&
                      (static_cast<unsigned char>(s[i + 2]) == 0xA4 ||
                       static_cast<unsigned char>(s[i + 2]) == 0xA5))))
                    break;
                if (is_alpha(d) || is_digit(d)) {
                    w += static_cast<char>(std::tolower(d));
                    pos.push_back(i);
                    ++i;
                    continue;
                }
                // A decimal point between digits; & inside a word (H&E).
                bool next_digit =
                    i + 1 < s.size() && is_digit(static_cast<unsigned char>(s[i + 1]));
                bool next_alpha =
                    i + 1 < s.size() && is_alpha(static_cast<unsigned char>(s[i + 1]));
                if ((d == '.' && !w.empty() && is_digit(w.back()) && next_digit) ||
                    (d == '&' && !w.empty() && next_alpha)) {
                    w += static_cast<char>(d);
                    pos.push_back(i);
                    ++i;
                    continue;
                }
                break;
            }
            if (w.empty()) {  // cannot happen (the first byte is a word byte); never loop
                ++i;
                continue;
            }
            const size_t run_end = i;
            // Split the run: a number; letters (with the digits right after them: t2, l4, and a
            // lone "x" before digits stands alone: 3x4).
            size_t k = 0;
            while (k < w.size()) {
                size_t k0 = k;
                if (is_digit(w[k])) {
                    while (k < w.size() && (is_digit(w[k]) || w[k] == '.'))
                        ++k;
                } else {
                    while (k < w.size() && !is_digit(w[k]))
                        ++k;
                    bool lone_x = k - k0 == 1 && w[k0] == 'x' && k0 > 0;
                    if (!lone_x)
                        while (k < w.size() && is_digit(w[k]))
                            ++k;
                }
                Tok t;
                t.w = w.substr(k0, k - k0);
                t.word = true;
                t.b = pos[k0];
                t.e = k < w.size() ? pos[k] : run_end;
                t.sent = sent;
                t.clause = clause;
                if (is_digit(t.w[0])) {
                    t.num = true;
                    t.val = std::strtod(t.w.c_str(), nullptr);
                    size_t dot = t.w.find('.');
                    t.decimals =
                        dot == std::string::npos ? 0 : static_cast<int>(t.w.size() - dot - 1);
                }
                out.push_back(std::move(t));
            }
            // "non-X" → one token "nonX".
            if (out.size() >= 1 && out.back().w == "non" && i + 1 < s.size() && s[i] == '-' &&
                is_alpha(static_cast<unsigned char>(s[i + 1]))) {
                ++i;
                std::string rest;
                while (i < s.size() && is_alpha(static_cast<unsigned char>(s[i]))) {
                    rest += static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
                    ++i;
                }
                out.back().w += rest;
                out.back().e = i;
            }
            continue;
        }
        if (c == '-' || c == ' ' || c == '\t' || c == '\r' || c == '"' || c == '\'' || c == '*') {
            ++i;
            continue;
        }
        push_punct(static_cast<char>(c), i, i + 1);
        ++i;
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// Lexicon
// ---------------------------------------------------------------------------------------------

enum class Cat { kFinding, kAnatomy, kModality, kSequence, kIgnore };

enum Region {
    kNoRegion = 0,
    kHead,
    kNeck,
    kChest,
    kAbdomen,
    kPelvis,
    kSpine,
    kUpperLimb,
    kLowerLimb,
    kRegions
};

const char* region_name(int r) {
    static const char* k[] = {"",       "head",  "neck",       "chest",     "abdomen",
                              "pelvis", "spine", "upper limb", "lower limb"};
    return k[r];
}

bool regions_compatible(int a, int b) {
    if (a == b) return true;
    static const std::set<std::pair<int, int>> adj = {
        {kHead, kNeck},    {kNeck, kChest},      {kNeck, kSpine},     {kChest, kAbdomen},
        {kChest, kSpine},  {kChest, kUpperLimb}, {kAbdomen, kPelvis}, {kAbdomen, kSpine},
        {kPelvis, kSpine}, {kPelvis, kLowerLimb}};
    return adj.count({std::min(a, b), std::max(a, b)}) > 0;
}

struct Entry {
    Cat cat;
    std::string canon;
    int region = kNoRegion;
};

using Lexicon = std::unordered_map<std::string, Entry>;

void add(Lexicon& lx, Cat cat, std::string canon, std::initializer_list<const char*> forms,
         int region = kNoRegion) {
    for (const char* f : forms)
        lx.emplace(f, Entry{cat, canon, region});
}

const Lexicon& lexicon() {
    static const Lexicon lx = [] {
        Lexicon l;
        using C = Cat;
        // Findings (canonical name ← forms; plurals are found by singularising the last word).
        add(l, C::kFinding, "effusion", {"effusion"});
        add(l, C::kFinding, "pneumothorax", {"pneumothorax", "pneumothoraces"});
        add(l, C::kFinding, "fracture", {"fracture", "fractured"});
        add(l, C::kFinding, "mass", {"mass", "masses"});
        add(l, C::kFinding, "mass effect", {"mass effect"});
        add(l, C::kIgnore, "", {"body mass", "muscle mass", "bone mass", "mass index"});
        add(l, C::kFinding, "nodule", {"nodule", "nodular"});
        add(l, C::kFinding, "tumor", {"tumor", "tumour", "neoplasm"});
        add(l, C::kFinding, "cyst", {"cyst", "cystic"});
        add(l, C::kFinding, "lesion", {"lesion"});
        add(l, C::kFinding, "edema", {"edema", "oedema", "edematous"});
        add(l, C::kFinding, "hemorrhage",
            {"hemorrhage", "haemorrhage", "bleeding", "hematoma", "haematoma", "hemorrhagic"});
        add(l, C::kFinding, "calcification", {"calcification", "calcified", "calcific"});
        add(l, C::kFinding, "consolidation", {"consolidation"});
        add(l, C::kFinding, "atelectasis", {"atelectasis", "atelectatic"});
        add(l, C::kFinding, "cardiomegaly", {"cardiomegaly"});
        add(l, C::kFinding, "stenosis", {"stenosis", "stenoses", "stricture"});
        add(l, C::kFinding, "occlusion", {"occlusion", "occluded"});
        add(l, C::kFinding, "thrombus",
            {"thrombus", "thrombi", "thrombosis", "embolism", "emboli"});
        add(l, C::kFinding, "aneurysm", {"aneurysm"});
        add(l, C::kFinding, "dissection", {"dissection"});
        add(l, C::kFinding, "infarct", {"infarct", "infarction"});
        add(l, C::kFinding, "abscess", {"abscess", "abscesses"});
        add(l, C::kFinding, "ascites", {"ascites"});
        add(l, C::kFinding, "lymphadenopathy", {"lymphadenopathy", "adenopathy"});
        add(l, C::kFinding, "metastasis", {"metastasis", "metastases", "metastatic"});
        add(l, C::kFinding, "pneumonia", {"pneumonia"});
        add(l, C::kFinding, "emphysema", {"emphysema"});
        add(l, C::kFinding, "hernia", {"hernia", "herniation"});
        add(l, C::kFinding, "obstruction", {"obstruction"});
        add(l, C::kFinding, "dilatation", {"dilatation", "dilation", "dilated"});
        add(l, C::kFinding, "enhancement", {"enhancement", "enhancing"});
        add(l, C::kFinding, "necrosis", {"necrosis", "necrotic"});
        add(l, C::kFinding, "infiltrate", {"infiltrate", "infiltration"});
        add(l, C::kFinding, "opacity", {"opacity", "opacities", "opacification"});
        add(l, C::kFinding, "perforation", {"perforation"});
        add(l, C::kFinding, "fistula", {"fistula"});
        add(l, C::kFinding, "polyp", {"polyp"});
        add(l, C::kFinding, "ulcer", {"ulcer", "ulceration"});
        add(l, C::kFinding, "fibrosis", {"fibrosis"});
        add(l, C::kFinding, "hydronephrosis", {"hydronephrosis"});
        add(l, C::kFinding, "hydrocephalus", {"hydrocephalus"});
        add(l, C::kFinding, "pneumoperitoneum", {"pneumoperitoneum", "free air"});
        add(l, C::kFinding, "hypertrophy", {"hypertrophy", "hypertrophic"});
        add(l, C::kFinding, "thickening", {"thickening"});
        add(l, C::kFinding, "granuloma", {"granuloma"});
        add(l, C::kFinding, "dislocation", {"dislocation", "dislocated"});
        add(l, C::kFinding, "deviation", {"deviation"});
        add(l, C::kFinding, "shift", {"midline shift"});
        add(l, C::kFinding, "collapse", {"collapse"});
        add(l, C::kFinding, "invasion", {"invasion"});
        // Anatomy with its body region.
        add(l, C::kAnatomy, "brain",
            {"brain", "cerebral", "cerebrum", "cerebellum", "cerebellar", "intracranial",
             "brainstem", "thalamus", "thalamic", "basal ganglia", "pituitary"},
            kHead);
        add(l, C::kAnatomy, "skull", {"skull", "cranium", "cranial", "calvarium"}, kHead);
        add(l, C::kAnatomy, "hemisphere", {"hemisphere"}, kHead);
        add(l, C::kAnatomy, "temporal lobe", {"temporal lobe", "temporal"}, kHead);
        add(l, C::kAnatomy, "occipital lobe", {"occipital lobe", "occipital"}, kHead);
        add(l, C::kAnatomy, "frontal lobe", {"frontal lobe", "frontal sinus"}, kHead);
        add(l, C::kAnatomy, "orbit", {"orbit", "orbital"}, kHead);
        add(l, C::kAnatomy, "eye", {"eye", "ocular", "retina", "retinal", "globe"}, kHead);
        add(l, C::kAnatomy, "face",
            {"face", "facial", "mandible", "mandibular", "maxilla", "maxillary", "jaw", "tooth",
             "teeth", "dental"},
            kHead);
        add(l, C::kAnatomy, "thyroid", {"thyroid"}, kNeck);
        add(l, C::kAnatomy, "neck",
            {"neck", "larynx", "laryngeal", "pharynx", "pharyngeal", "parotid", "carotid"}, kNeck);
        add(l, C::kAnatomy, "lung",
            {"lung", "pulmonary", "bronchus", "bronchi", "bronchial", "hilum", "hilar", "alveolar"},
            kChest);
        add(l, C::kAnatomy, "pleura", {"pleura", "pleural"}, kChest);
        add(l, C::kAnatomy, "hemithorax", {"hemithorax"}, kChest);
        add(l, C::kAnatomy, "chest",
            {"chest", "thorax", "thoracic", "mediastinum", "mediastinal", "rib"}, kChest);
        add(l, C::kAnatomy, "heart",
            {"heart", "cardiac", "myocardium", "myocardial", "pericardium", "pericardial"}, kChest);
        add(l, C::kAnatomy, "breast", {"breast", "mammary"}, kChest);
        add(l, C::kAnatomy, "liver", {"liver", "hepatic"}, kAbdomen);
        add(l, C::kAnatomy, "spleen", {"spleen", "splenic"}, kAbdomen);
        add(l, C::kAnatomy, "pancreas", {"pancreas", "pancreatic"}, kAbdomen);
        add(l, C::kAnatomy, "kidney", {"kidney", "renal"}, kAbdomen);
        add(l, C::kAnatomy, "adrenal", {"adrenal"}, kAbdomen);
        add(l, C::kAnatomy, "stomach", {"stomach", "gastric"}, kAbdomen);
        add(l, C::kAnatomy, "gallbladder", {"gallbladder", "biliary", "bile duct"}, kAbdomen);
        add(l, C::kAnatomy, "bowel",
            {"bowel", "intestine", "intestinal", "duodenum", "duodenal", "jejunum", "ileum",
             "ileal", "appendix"},
            kAbdomen);
        add(l, C::kAnatomy, "colon", {"colon", "colonic", "sigmoid", "cecum", "caecum"}, kAbdomen);
        add(l, C::kAnatomy, "abdomen",
            {"abdomen", "abdominal", "peritoneum", "peritoneal", "mesentery", "mesenteric",
             "retroperitoneum"},
            kAbdomen);
        add(l, C::kAnatomy, "pelvis", {"pelvis", "pelvic"}, kPelvis);
        add(l, C::kAnatomy, "bladder", {"urinary bladder", "bladder"}, kPelvis);
        add(l, C::kAnatomy, "uterus", {"uterus", "uterine", "endometrium", "endometrial"}, kPelvis);
        add(l, C::kAnatomy, "ovary", {"ovary", "ovarian", "adnexa", "adnexal"}, kPelvis);
        add(l, C::kAnatomy, "prostate", {"prostate", "prostatic"}, kPelvis);
        add(l, C::kAnatomy, "rectum", {"rectum", "rectal"}, kPelvis);
        add(l, C::kAnatomy, "testis",
            {"testis", "testes", "testicle", "testicular", "scrotum", "scrotal"}, kPelvis);
        add(l, C::kAnatomy, "spine",
            {"spine", "spinal", "vertebra", "vertebrae", "vertebral", "lumbar", "sacrum", "sacral",
             "cervical spine", "thoracic spine", "lumbar spine", "spinal cord"},
            kSpine);
        add(l, C::kAnatomy, "shoulder", {"shoulder", "humerus", "humeral", "scapula", "clavicle"},
            kUpperLimb);
        add(l, C::kAnatomy, "arm",
            {"elbow", "forearm", "ulna", "wrist", "hand", "finger", "thumb", "arm"}, kUpperLimb);
        add(l, C::kAnatomy, "hip", {"hip", "acetabulum", "acetabular", "femoral neck"}, kLowerLimb);
        add(l, C::kAnatomy, "leg",
            {"femur", "femoral", "knee", "tibia", "tibial", "fibula", "ankle", "foot", "toe", "leg",
             "thigh", "calf", "patella"},
            kLowerLimb);
        add(l, C::kAnatomy, "lobe", {"lobe", "lobar"});
        add(l, C::kAnatomy, "atrium", {"atrium", "atria", "atrial"}, kChest);
        add(l, C::kAnatomy, "ventricle", {"ventricle", "ventricular"});  // heart or brain
        // Modalities (canonical = family).
        add(l, C::kModality, "CT",
            {"ct", "cta", "cect", "ncct", "hrct", "mdct", "cbct", "computed tomography",
             "computed tomographic", "computerized tomography", "computerised tomography",
             "cat scan"});
        add(l, C::kModality, "MRI",
            {"mri", "mr imaging", "mr image", "mr angiography", "mra", "mrcp", "fmri",
             "magnetic resonance", "nmr"});
        add(l, C::kModality, "X-ray",
            {"x ray",
             "xray",
             "radiograph",
             "radiography",
             "radiographic",
             "cxr",
             "plain film",
             "chest film",
             "roentgenogram",
             "mammogram",
             "mammography",
             "mammographic",
             "fluoroscopy",
             "fluoroscopic",
             "barium",
             "urogram",
             "dsa",
             "hysterosalpingography",
             "orthopantomogram",
             "panoramic radiograph"});
        add(l, C::kModality, "angiography", {"angiography", "angiogram", "angiographic"});
        add(l, C::kModality, "ultrasound",
            {"ultrasound", "ultrasonography", "ultrasonographic", "sonography", "sonographic",
             "sonogram", "doppler", "echocardiography", "echocardiogram", "echocardiographic",
             "transthoracic echocardiography", "eus"});
        add(l, C::kModality, "PET", {"pet", "positron emission tomography", "fdg"});
        add(l, C::kModality, "nuclear",
            {"scintigraphy", "scintigram", "spect", "bone scan", "nuclear medicine"});
        add(l, C::kModality, "endoscopy",
            {"endoscopy", "endoscopic", "colonoscopy", "colonoscopic", "gastroscopy",
             "bronchoscopy", "bronchoscopic", "sigmoidoscopy", "laparoscopy", "laparoscopic",
             "cystoscopy", "arthroscopy", "arthroscopic", "egd", "esophagogastroduodenoscopy"});
        add(l, C::kModality, "histology",
            {"histology", "histological", "histologic", "histopathology", "histopathological",
             "micrograph", "photomicrograph", "microscopy", "microscopic", "h&e", "hematoxylin",
             "haematoxylin", "immunohistochemistry", "immunohistochemical", "cytology"});
        add(l, C::kModality, "OCT", {"optical coherence tomography", "oct"});
        // MR sequences (canonical; FLAIR/STIR are compatible with T2, ADC with DWI).
        add(l, C::kSequence, "T1", {"t1", "t1 weighted", "t1 w", "t1 wi"});
        add(l, C::kSequence, "T2", {"t2", "t2 weighted", "t2 w", "t2 wi"});
        add(l, C::kSequence, "FLAIR", {"flair"});
        add(l, C::kSequence, "STIR", {"stir"});
        add(l, C::kSequence, "DWI", {"dwi", "diffusion weighted", "diffusion weighted imaging"});
        add(l, C::kSequence, "ADC", {"adc", "apparent diffusion coefficient"});
        add(l, C::kSequence, "SWI", {"swi", "susceptibility weighted", "gradient echo", "gre"});
        add(l, C::kSequence, "PD", {"proton density"});
        return l;
    }();
    return lx;
}

bool modalities_compatible(const std::string& a, const std::string& b) {
    if (a == b) return true;
    auto pair_is = [&](const char* x, const char* y) {
        return (a == x && b == y) || (a == y && b == x);
    };
    return pair_is("angiography", "CT") || pair_is("angiography", "MRI") ||
           pair_is("angiography", "X-ray") || pair_is("PET", "nuclear");
}

bool sequences_compatible(const std::string& a, const std::string& b) {
    auto group = [](const std::string& s) -> int {
        if (s == "T2" || s == "FLAIR" || s == "STIR") return 2;
        if (s == "DWI" || s == "ADC") return 3;
        if (s == "T1") return 1;
        if (s == "SWI") return 4;
        return 5;
    };
    return group(a) == group(b);
}

// ---------------------------------------------------------------------------------------------
// Analysis of one text
// ---------------------------------------------------------------------------------------------

struct Mention {
    Cat cat;
    std::string canon;
    int region = kNoRegion;
    size_t t0 = 0, t1 = 0;  // token range [t0, t1)
    bool negated = false, hedged = false;
    std::set<std::string> qual;  // modifiers before a finding
};

enum class Side { kLeft, kRight, kBilateral };
const char* side_name(Side s) {
    return s == Side::kLeft ? "left" : s == Side::kRight ? "right" : "bilateral";
}

struct SideAttach {
    std::string entity;
    Side side;
    size_t side_tok;  // the side word
    size_t t0, t1;    // tokens of the phrase (side word .. entity)
};

enum class QClass { kLength, kVolume, kMass, kAge, kPercent, kHu, kCount };
const char* qclass_name(QClass q) {
    switch (q) {
        case QClass::kLength:
            return "size";
        case QClass::kVolume:
            return "volume";
        case QClass::kMass:
            return "mass";
        case QClass::kAge:
            return "age";
        case QClass::kPercent:
            return "percentage";
        case QClass::kHu:
            return "attenuation";
        case QClass::kCount:
            return "count";
    }
    return "";
}

struct Quantity {
    QClass cls;
    double value = 0;      // normalised: mm, ml, g, years, %, HU, count
    double precision = 0;  // half a unit of the last written digit, normalised
    std::string entity;    // canonical finding/anatomy it is attached to, or ""
    size_t t0 = 0, t1 = 0;
};

struct Analysis {
    std::string_view text;
    std::vector<Tok> toks;
    std::vector<Mention> mentions;
    std::vector<int> mention_at;  // token → index of the mention covering it, or -1
    std::vector<char> negated, hedged;
    std::vector<char> rec_sentence;  // sentence id → recommendation/comparison context
    std::vector<SideAttach> sides;
    std::vector<Quantity> quantities;
};

bool is_word(const Analysis& a, size_t i, std::string_view w) {
    return i < a.toks.size() && a.toks[i].w == w;
}

std::string singular(const std::string& w) {
    if (w.size() > 4 && w.ends_with("ies")) return w.substr(0, w.size() - 3) + "y";
    if (w.size() > 4 && (w.ends_with("ses") || w.ends_with("xes") || w.ends_with("ches")))
        return w.substr(0, w.size() - 2);
    if (w.size() > 3 && w.back() == 's' && !w.ends_with("ss") && !w.ends_with("us") &&
        !w.ends_with("is"))
        return w.substr(0, w.size() - 1);
    return w;
}

void find_mentions(Analysis& a) {
    const Lexicon& lx = lexicon();
    a.mention_at.assign(a.toks.size(), -1);
    for (size_t i = 0; i < a.toks.size();) {
        if (!a.toks[i].word) {
            ++i;
            continue;
        }
        bool found = false;
        for (size_t len = 4; len >= 1 && !found; --len) {
            if (i + len > a.toks.size()) continue;
            std::string key;
            bool ok = true;
            for (size_t k = 0; k < len; ++k) {
                const Tok& t = a.toks[i + k];
                if (!t.word || (k > 0 && t.sent != a.toks[i].sent)) {
                    ok = false;
                    break;
                }
                if (k) key += ' ';
                key += t.w;
            }
            if (!ok) continue;
            auto it = lx.find(key);
            if (it == lx.end()) {
                std::string last = a.toks[i + len - 1].w;
                std::string sing = singular(last);
                if (sing != last) {
                    std::string key2 = key.substr(0, key.size() - last.size()) + sing;
                    it = lx.find(key2);
                }
            }
            if (it == lx.end()) continue;
            found = true;
            if (it->second.cat != Cat::kIgnore) {
                Mention m;
                m.cat = it->second.cat;
                m.canon = it->second.canon;
                m.region = it->second.region;
                m.t0 = i;
                m.t1 = i + len;
                for (size_t k = i; k < i + len; ++k)
                    a.mention_at[k] = static_cast<int>(a.mentions.size());
                a.mentions.push_back(std::move(m));
            }
            i += len;
        }
        if (!found) ++i;
    }
}

// Words that end a negation or hedge scope (NegEx termination terms).
bool is_terminator(const std::string& w) {
    static const std::unordered_set<std::string> k = {
        "but",    "however", "although", "though", "which",   "who",   "whereas", "while",
        "except", "apart",   "aside",    "yet",    "because", "since", "whom",    "otherwise"};
    return k.count(w) > 0;
}
bool starts_new_np(const std::string& w) {
    static const std::unordered_set<std::string> k = {
        "a",    "an", "the", "there", "this", "these", "it",  "its", "is",  "are", "was",
        "were", "he", "she", "they",  "that", "which", "she", "we",  "his", "her"};
    return k.count(w) > 0;
}

// Marks tokens in a forward scope from `from` (up to `n` word tokens) with `mark`.
void mark_forward(Analysis& a, size_t from, int n, std::vector<char>& mark) {
    int words = 0;
    for (size_t j = from; j < a.toks.size() && words < n; ++j) {
        const Tok& t = a.toks[j];
        if (t.clause != a.toks[from > 0 ? from - 1 : 0].clause && j > from) break;
        if (!t.word) {
            if (t.w == "," && j + 1 < a.toks.size() && starts_new_np(a.toks[j + 1].w)) break;
            if (t.w == "," || t.w == "/") continue;
            break;
        }
        if (is_terminator(t.w)) break;
        if (t.w == "and" && j + 1 < a.toks.size() &&
            (starts_new_np(a.toks[j + 1].w) || a.toks[j + 1].num))
            break;
        mark[j] = 1;
        // A whole multi-word mention counts as one word.
        if (a.mention_at[j] >= 0) {
            size_t end = a.mentions[a.mention_at[j]].t1;
            for (size_t k = j; k < end; ++k)
                mark[k] = 1;
            j = end - 1;
        }
        ++words;
    }
}

void mark_backward(Analysis& a, size_t from, int n, std::vector<char>& mark) {
    // from = first token of the post trigger; scope is the tokens before it.
    int words = 0;
    for (size_t j = from; j-- > 0 && words < n;) {
        const Tok& t = a.toks[j];
        if (t.clause != a.toks[from].clause) break;
        if (!t.word) {
            if (t.w == "," || t.w == "/") continue;
            break;
        }
        if (is_terminator(t.w)) break;
        mark[j] = 1;
        ++words;
    }
}

// Does the token sequence `words` start at i?
bool seq_at(const Analysis& a, size_t i, std::initializer_list<const char*> words) {
    size_t k = i;
    for (const char* w : words) {
        while (k < a.toks.size() && !a.toks[k].word)
            return false;
        if (k >= a.toks.size() || a.toks[k].w != w) return false;
        ++k;
    }
    return true;
}

void find_scopes(Analysis& a) {
    const size_t n = a.toks.size();
    a.negated.assign(n, 0);
    a.hedged.assign(n, 0);
    int max_sent = n ? a.toks.back().sent : 0;
    a.rec_sentence.assign(static_cast<size_t>(max_sent) + 2, 0);
    // Questions are hedged as a whole.
    std::vector<char> question(static_cast<size_t>(max_sent) + 2, 0);
    for (const Tok& t : a.toks)
        if (t.w == "?") question[t.sent] = 1;

    static const std::unordered_set<std::string> post_verbs = {
        "seen",      "identified",  "visualized",   "visualised", "detected", "present",
        "observed",  "appreciated", "demonstrated", "evident",    "visible",  "noted",
        "found",     "shown",       "apparent",     "included",   "imaged",   "assessed",
        "evaluated", "depicted",    "captured"};
    static const std::unordered_set<std::string> hedge_pre = {
        "possible",   "possibly",     "probable",  "probably",    "likely",       "unlikely",
        "suspected",  "suspicious",   "suspicion", "suggest",     "suggests",     "suggestive",
        "suggesting", "may",          "might",     "could",       "can",          "cannot",
        "would",      "should",       "if",        "whether",     "questionable", "concern",
        "concerning", "differential", "potential", "potentially", "risk",         "prevent",
        "consider",   "considered",   "evaluate",  "assess",      "exclude",      "excluding",
        "rule",       "perhaps",      "presumed",  "presumably",  "uncertain",    "versus",
        "vs",         "either",       "typical",   "typically",   "often",        "usually",
        "sometimes",  "commonly",     "common",    "include",     "includes",     "including",
        "such",       "cause",        "causes",    "signs",       "symptoms"};
    static const std::unordered_set<std::string> rec_words = {
        "further",    "additional",   "recommend",     "recommended",
        "recommends", "consider",     "may",           "might",
        "could",      "would",        "should",        "follow",
        "unlike",     "compared",     "comparison",    "rather",
        "instead",    "alternative",  "alternatively", "future",
        "perform",    "performed",    "obtain",        "obtained",
        "order",      "previous",     "prior",         "earlier",
        "if",         "such",         "helpful",       "useful",
        "confirm",    "confirmation", "correlation",   "versus",
        "vs",         "than",         "whereas",       "later",
        "subsequent", "subsequently", "initial",       "initially",
        "needed",     "necessary",    "required",      "often",
        "typically",  "usually",      "commonly",      "can",
        "other"};

    for (size_t i = 0; i < n; ++i) {
        const Tok& t = a.toks[i];
        if (!t.word) continue;
        if (rec_words.count(t.w)) a.rec_sentence[t.sent] = 1;
        // Pseudo-negations: not a negation at all.
        if ((t.w == "no" || t.w == "not" || t.w == "without") &&
            (seq_at(a, i + 1, {"change"}) || seq_at(a, i + 1, {"significant", "change"}) ||
             seq_at(a, i + 1, {"interval", "change"}) || seq_at(a, i + 1, {"only"}) ||
             seq_at(a, i + 1, {"increase"}) || seq_at(a, i + 1, {"decrease"}) ||
             seq_at(a, i + 1, {"further"}) || seq_at(a, i + 1, {"other"}) ||
             seq_at(a, i + 1, {"additional"}) || seq_at(a, i + 1, {"new"}) ||
             seq_at(a, i + 1, {"longer"}) || seq_at(a, i + 1, {"necessarily"}) ||
             seq_at(a, i + 1, {"certain"}) || seq_at(a, i + 1, {"doubt"}) ||
             seq_at(a, i + 1, {"clear"}) || seq_at(a, i + 1, {"excluded"}) ||
             seq_at(a, i + 1, {"be", "excluded"}) || seq_at(a, i + 1, {"be", "ruled", "out"}) ||
             seq_at(a, i + 1, {"ruled", "out"}) || seq_at(a, i + 1, {"all"}) ||
             seq_at(a, i + 1, {"always"}) || seq_at(a, i + 1, {"just"}) ||
             seq_at(a, i + 1, {"specific"}) || seq_at(a, i + 1, {"sure"}))) {
            // "not excluded", "cannot be ruled out": hedge what comes before.
            if (seq_at(a, i + 1, {"excluded"}) || seq_at(a, i + 1, {"be", "excluded"}) ||
                seq_at(a, i + 1, {"be", "ruled", "out"}) || seq_at(a, i + 1, {"ruled", "out"}))
                mark_backward(a, i, 6, a.hedged);
            continue;
        }
        // Pre-negation triggers.
        size_t scope_from = 0;
        bool pre = false;
        if (t.w == "no" || t.w == "without" || t.w == "never" || t.w == "nor" || t.w == "neither" ||
            t.w == "denies" || t.w == "denied" || t.w == "lacks" || t.w == "lacking" ||
            t.w == "none") {
            pre = true;
            scope_from = i + 1;
        } else if (t.w == "not" || t.w == "cannot" ||
                   (t.w == "t" && i > 0 && a.toks[i - 1].w.ends_with("n"))) {
            // "not seen", "not identified": a post trigger; otherwise a pre trigger.
            size_t j = i + 1;
            if (j < n && (a.toks[j].w == "be" || a.toks[j].w == "been")) ++j;
            static const std::unordered_set<std::string> adverbs = {
                "well",       "clearly",      "definitely",   "fully",    "readily",   "easily",
                "adequately", "convincingly", "definitively", "entirely", "completely"};
            if (j < n && adverbs.count(a.toks[j].w)) ++j;
            if (j < n && post_verbs.count(a.toks[j].w)) {
                mark_backward(a, i, 6, a.negated);
                continue;
            }
            pre = t.w != "cannot";
            scope_from = i + 1;
        } else if ((t.w == "absence" || t.w == "lack" || t.w == "free") &&
                   is_word(a, i + 1, "of")) {
            pre = true;
            scope_from = i + 2;
        } else if (t.w == "negative" && is_word(a, i + 1, "for")) {
            pre = true;
            scope_from = i + 2;
        } else if (t.w == "absent" || (t.w == "excluded" && i > 0 && !a.negated[i - 1]) ||
                   (t.w == "ruled" && is_word(a, i + 1, "out")) ||
                   (t.w == "negative" && i > 0 &&
                    (a.toks[i - 1].w == "was" || a.toks[i - 1].w == "were" ||
                     a.toks[i - 1].w == "is" || a.toks[i - 1].w == "are"))) {
            mark_backward(a, i, 6, a.negated);
            if (t.w == "absent") continue;
            continue;
        }
        if (pre) {
            mark_forward(a, scope_from, 6, a.negated);
            continue;
        }
        // Hedges.
        if (hedge_pre.count(t.w) || (t.w == "rule" && is_word(a, i + 1, "out"))) {
            mark_forward(a, i + 1, 8, a.hedged);
        }
        if ((t.w == "suspected" || t.w == "possible" || t.w == "likely" || t.w == "questionable") &&
            i > 0 &&
            (a.toks[i - 1].w == "is" || a.toks[i - 1].w == "was" || a.toks[i - 1].w == "are" ||
             a.toks[i - 1].w == "were"))
            mark_backward(a, i - 1, 6, a.hedged);
    }
    for (size_t i = 0; i < n; ++i)
        if (question[a.toks[i].sent]) a.hedged[i] = 1;
    for (auto& m : a.mentions) {
        for (size_t k = m.t0; k < m.t1; ++k) {
            if (a.negated[k]) m.negated = true;
            if (a.hedged[k]) m.hedged = true;
        }
    }
}

// Modifiers of a finding: up to 3 word tokens before it, stopping at determiners, prepositions,
// verbs and negation triggers.
void find_qualifiers(Analysis& a) {
    static const std::unordered_set<std::string> stop = {
        "a",        "an",    "the",     "any",      "this",         "that",
        "these",    "those", "its",     "their",    "of",           "in",
        "on",       "at",    "with",    "to",       "for",          "from",
        "by",       "and",   "or",      "but",      "is",           "are",
        "was",      "were",  "be",      "been",     "shows",        "show",
        "showed",   "shown", "reveals", "revealed", "demonstrates", "demonstrated",
        "seen",     "noted", "no",      "not",      "without",      "absence",
        "negative", "free",  "there",   "evidence", "has",          "have",
        "had",      "also",  "as",      "which",    "nor",          "neither",
        "lack",     "again"};
    static const std::unordered_set<std::string> neutral = {"sided",    "side",  "signs", "sign",
                                                            "definite", "frank", "focal"};
    for (auto& m : a.mentions) {
        if (m.cat != Cat::kFinding) continue;
        int words = 0;
        for (size_t j = m.t0; j-- > 0 && words < 3;) {
            const Tok& t = a.toks[j];
            if (!t.word || t.sent != a.toks[m.t0].sent) break;
            if (stop.count(t.w) || t.num) break;
            if (!neutral.count(t.w)) {
                // An anatomy adjective counts by its canonical name ("renal" = "kidney").
                int mi = a.mention_at[j];
                m.qual.insert(mi >= 0 && a.mentions[mi].cat == Cat::kAnatomy ? a.mentions[mi].canon
                                                                             : t.w);
            }
            ++words;
        }
    }
}

std::optional<Side> side_of(const std::string& w) {
    if (w == "left") return Side::kLeft;
    if (w == "right") return Side::kRight;
    if (w == "bilateral" || w == "bilaterally" || w == "both") return Side::kBilateral;
    return std::nullopt;
}

bool normal_clause(const Analysis& a, size_t tok) {
    static const std::unordered_set<std::string> k = {
        "normal",     "unremarkable", "intact",   "preserved", "clear",      "spared",
        "compared",   "than",         "relative", "versus",    "vs",         "contralateral",
        "comparison", "unaffected",   "healthy",  "symmetric", "symmetrical"};
    int c = a.toks[tok].clause;
    for (size_t j = tok; j-- > 0 && a.toks[j].clause == c;)
        if (k.count(a.toks[j].w)) return true;
    for (size_t j = tok; j < a.toks.size() && a.toks[j].clause == c; ++j)
        if (k.count(a.toks[j].w)) return true;
    return false;
}

void find_sides(Analysis& a) {
    const size_t n = a.toks.size();
    static const std::unordered_set<std::string> np_stop = {
        "and", "or",  "with", "to",    "but",  "of",   "in", "on",  "at", "from", "is",
        "was", "are", "were", "which", "than", "into", "by", "for", "as", "that"};
    for (size_t i = 0; i < n; ++i) {
        auto side = side_of(a.toks[i].w);
        if (!side) continue;
        if (a.negated[i] || a.hedged[i]) continue;
        // "to the right of X": a position relative to X, not X's side.
        if (i >= 2 && a.toks[i - 1].w == "the" && a.toks[i - 2].w == "to") continue;
        size_t j = i + 1;
        // "left and right", "right or left", "both": bilateral.
        if (j + 1 < n && (a.toks[j].w == "and" || a.toks[j].w == "or") &&
            side_of(a.toks[j + 1].w) && *side_of(a.toks[j + 1].w) != *side) {
            side = Side::kBilateral;
            j += 2;
        }
        // Pre-nominal: the entities of the phrase that follows (up to 4 words).
        std::vector<size_t> ents;
        int words = 0;
        for (size_t k = j; k < n && words < 4; ++k) {
            const Tok& t = a.toks[k];
            if (!t.word || t.sent != a.toks[i].sent) break;
            if (t.w == "of" && k > j &&
                (a.toks[k - 1].w == "side" || a.toks[k - 1].w == "half" ||
                 a.toks[k - 1].w == "aspect" || a.toks[k - 1].w == "part" ||
                 a.toks[k - 1].w == "portion")) {
                ++words;
                continue;
            }
            if (t.w == "the" && k > j && a.toks[k - 1].w == "of") continue;
            if (np_stop.count(t.w) || side_of(t.w)) break;
            int mi = a.mention_at[k];
            if (mi >= 0 &&
                (a.mentions[mi].cat == Cat::kAnatomy || a.mentions[mi].cat == Cat::kFinding)) {
                ents.push_back(static_cast<size_t>(mi));
                k = a.mentions[mi].t1 - 1;
            }
            ++words;
        }
        // Post-nominal: "effusion on the right", "mass in the left side." — the entity before.
        if (ents.empty() && i >= 2 && a.toks[i - 1].w == "the" &&
            (a.toks[i - 2].w == "on" || a.toks[i - 2].w == "at")) {
            bool ends = i + 1 >= n || !a.toks[i + 1].word || a.toks[i + 1].w == "side" ||
                        a.toks[i + 1].w == "and";
            if (ends) {
                int back = 0;
                for (size_t k = i - 2; k-- > 0 && back < 4;) {
                    if (!a.toks[k].word || a.toks[k].sent != a.toks[i].sent) break;
                    int mi = a.mention_at[k];
                    if (mi >= 0 && (a.mentions[mi].cat == Cat::kAnatomy ||
                                    a.mentions[mi].cat == Cat::kFinding)) {
                        ents.push_back(static_cast<size_t>(mi));
                        break;
                    }
                    ++back;
                }
            }
        }
        if (ents.empty()) continue;
        if (normal_clause(a, i)) continue;
        for (size_t mi : ents) {
            const Mention& m = a.mentions[mi];
            if (m.negated || m.hedged) continue;
            SideAttach s;
            s.entity = m.canon;
            s.side = *side;
            s.side_tok = i;
            s.t0 = std::min(i, m.t0);
            s.t1 = std::max(i + 1, m.t1);
            a.sides.push_back(std::move(s));
        }
    }
}

struct Unit {
    QClass cls;
    double factor;
};
std::optional<Unit> unit_of(const std::string& w) {
    static const std::unordered_map<std::string, Unit> k = {
        {"mm", {QClass::kLength, 1}},
        {"millimeter", {QClass::kLength, 1}},
        {"millimetre", {QClass::kLength, 1}},
        {"millimeters", {QClass::kLength, 1}},
        {"millimetres", {QClass::kLength, 1}},
        {"cm", {QClass::kLength, 10}},
        {"centimeter", {QClass::kLength, 10}},
        {"centimetre", {QClass::kLength, 10}},
        {"centimeters", {QClass::kLength, 10}},
        {"centimetres", {QClass::kLength, 10}},
        {"um", {QClass::kLength, 0.001}},
        {"micron", {QClass::kLength, 0.001}},
        {"microns", {QClass::kLength, 0.001}},
        {"micrometers", {QClass::kLength, 0.001}},
        {"ml", {QClass::kVolume, 1}},
        {"cc", {QClass::kVolume, 1}},
        {"milliliters", {QClass::kVolume, 1}},
        {"millilitres", {QClass::kVolume, 1}},
        {"l", {QClass::kVolume, 1000}},
        {"liters", {QClass::kVolume, 1000}},
        {"litres", {QClass::kVolume, 1000}},
        {"kg", {QClass::kMass, 1000}},
        {"g", {QClass::kMass, 1}},
        {"grams", {QClass::kMass, 1}},
        {"mg", {QClass::kMass, 0.001}},
        {"hu", {QClass::kHu, 1}},
    };
    auto it = k.find(w);
    if (it == k.end()) return std::nullopt;
    return it->second;
}

std::optional<double> number_word(const std::string& w) {
    static const std::unordered_map<std::string, double> k = {
        {"one", 1},     {"two", 2},     {"three", 3},  {"four", 4},    {"five", 5},
        {"six", 6},     {"seven", 7},   {"eight", 8},  {"nine", 9},    {"ten", 10},
        {"eleven", 11}, {"twelve", 12}, {"single", 1}, {"solitary", 1}};
    auto it = k.find(w);
    if (it == k.end()) return std::nullopt;
    return it->second;
}

bool reference_value(const Analysis& a, size_t i) {
    static const std::unordered_set<std::string> k = {
        "<",        ">",         "less",    "greater", "more",      "up",      "normal",
        "normally", "typically", "usually", "average", "range",     "than",    "exceeding",
        "over",     "under",     "exceeds", "exceed",  "threshold", "cutoff",  "above",
        "below",    "within",    "least",   "most",    "maximum",   "minimum", "upper",
        "lower",    "limit",     "every",   "per",     "each",      "often",   "generally"};
    int words = 0;
    for (size_t j = i; j-- > 0 && words < 3;) {
        if (a.toks[j].sent != a.toks[i].sent) break;
        if (k.count(a.toks[j].w)) return true;
        if (a.toks[j].word) ++words;
    }
    return false;
}

// The finding/anatomy a quantity belongs to: the entity right after it, across adjectives
// only ("a 2 cm hypodense mass"), else the entity right before it, across measuring words only
// ("the mass measured 2 cm", "a cyst of 15 mm", "the aneurysm has a diameter of 3 cm"). Prefers
// a finding over an organ. "" when neither.
std::string attach_entity(const Analysis& a, size_t t0, size_t t1) {
    static const std::unordered_set<std::string> fwd_stop = {
        "from", "of",    "in",    "on",   "at",     "with",  "to",   "and",
        "or",   "below", "above", "into", "is",     "was",   "are",  "were",
        "by",   "for",   "x",     "than", "within", "along", "near", "per"};
    static const std::unordered_set<std::string> back_ok = {
        "measuring",    "measures",      "measured",  "measure",    "measurement", "of",
        "about",        "approximately", "approx",    "roughly",    "nearly",      "around",
        "is",           "was",           "were",      "are",        "a",           "an",
        "the",          "size",          "sized",     "diameter",   "maximal",     "maximum",
        "largest",      "greatest",      "dimension", "dimensions", "length",      "width",
        "thickness",    "has",           "had",       "have",       "with",        "attenuation",
        "density",      "volume",        "up",        "to",         "estimated",   "total",
        "its",          "axial",         "long",      "short",      "axis",        "transverse",
        "craniocaudal", "mean"};
    auto entity_at = [&](size_t k) -> const Mention* {
        int mi = a.mention_at[k];
        if (mi < 0) return nullptr;
        const Mention& m = a.mentions[mi];
        if (m.cat != Cat::kFinding && m.cat != Cat::kAnatomy) return nullptr;
        return &m;
    };
    int words = 0;
    const Mention* anat = nullptr;
    for (size_t k = t1; k < a.toks.size() && words < 4; ++k) {
        const Tok& t = a.toks[k];
        if (!t.word || t.clause != a.toks[t0].clause || t.num || fwd_stop.count(t.w)) break;
        if (const Mention* m = entity_at(k)) {
            if (m->cat == Cat::kFinding) return m->canon;
            if (!anat) anat = m;
            k = m->t1 - 1;
        }
        ++words;
    }
    if (anat) return anat->canon;
    words = 0;
    for (size_t k = t0; k-- > 0 && words < 8;) {
        const Tok& t = a.toks[k];
        if (t.clause != a.toks[t0].clause) break;
        if (!t.word) {
            if (t.w == "," || t.w == "(") continue;
            break;
        }
        if (const Mention* m = entity_at(k)) return m->canon;
        if (!back_ok.count(t.w)) break;
        ++words;
    }
    return "";
}

void find_quantities(Analysis& a) {
    const size_t n = a.toks.size();
    for (size_t i = 0; i < n; ++i) {
        const Tok& t = a.toks[i];
        if (!t.num) continue;
        // A chain of numbers sharing one unit: "3 x 4 cm", "2 to 3 cm", "2–3 cm", "1.2, 2.3 cm".
        std::vector<size_t> nums = {i};
        size_t j = i + 1;
        while (j < n) {
            if (a.toks[j].num) {
                nums.push_back(j);
                ++j;
                continue;
            }
            if ((a.toks[j].w == "x" || a.toks[j].w == "by" || a.toks[j].w == "to" ||
                 a.toks[j].w == "and") &&
                j + 1 < n && a.toks[j + 1].num) {
                ++j;
                continue;
            }
            break;
        }
        const size_t after = j;
        if (after < n && a.toks[after].sent != t.sent) {
            i = after - 1;
            continue;
        }
        std::optional<Unit> unit;
        size_t end = after;
        if (after < n) {
            if (a.toks[after].w == "%") {
                unit = Unit{QClass::kPercent, 1};
                end = after + 1;
            } else if (a.toks[after].w == "percent") {
                unit = Unit{QClass::kPercent, 1};
                end = after + 1;
            } else if (auto u = unit_of(a.toks[after].w)) {
                unit = u;
                end = after + 1;
            }
        }
        // Ages: "45-year-old", "45 years old", "45 yo", "aged 45", "age of 45", "18-month-old".
        if (!unit && after < n && nums.size() == 1) {
            const std::string& w = a.toks[after].w;
            double f = 0;
            if (w == "year" || w == "years" || w == "yr" || w == "yrs") f = 1;
            if (w == "month" || w == "months") f = 1.0 / 12;
            if (w == "week" || w == "weeks") f = 7.0 / 365.25;
            if (w == "day" || w == "days") f = 1.0 / 365.25;
            if (f > 0 && is_word(a, after + 1, "old")) {
                unit = Unit{QClass::kAge, f};
                end = after + 2;
            } else if (w == "yo" ||
                       (w == "y" && is_word(a, after + 1, "/") && is_word(a, after + 2, "o"))) {
                unit = Unit{QClass::kAge, 1};
                end = w == "yo" ? after + 1 : after + 3;
            }
        }
        if (!unit && nums.size() == 1 && i > 0 &&
            (a.toks[i - 1].w == "aged" ||
             (a.toks[i - 1].w == "of" && i > 1 && a.toks[i - 2].w == "age") ||
             (a.toks[i - 1].w == "age" && !(i > 1 && a.toks[i - 2].w == "gestational")))) {
            unit = Unit{QClass::kAge, 1};
            end = i + 1;
            if (end < n && (a.toks[end].w == "years" || a.toks[end].w == "year")) ++end;
        }
        if (!unit) {
            i = after - 1;
            continue;
        }
        if (a.hedged[i] || a.negated[i] || reference_value(a, i)) {
            i = end - 1;
            continue;
        }
        // A distance, not a size: "15 cm from the anal verge", "2 cm below the carina".
        static const std::unordered_set<std::string> where = {
            "from",      "away",     "proximal", "distal",   "above",     "below",
            "beyond",    "inferior", "superior", "lateral",  "medial",    "anterior",
            "posterior", "deep",     "beneath",  "under",    "caudal",    "cranial",
            "into",      "along",    "past",     "upstream", "downstream"};
        if (unit->cls == QClass::kLength && end < n && where.count(a.toks[end].w)) {
            i = end - 1;
            continue;
        }
        std::string entity = unit->cls == QClass::kAge ? "" : attach_entity(a, i, end);
        for (size_t k : nums) {
            Quantity q;
            q.cls = unit->cls;
            q.value = a.toks[k].val * unit->factor;
            q.precision = 0.5 * std::pow(10.0, -a.toks[k].decimals) * unit->factor;
            q.entity = entity;
            q.t0 = nums.front();
            q.t1 = end;
            a.quantities.push_back(q);
        }
        i = end - 1;
    }
    // Counts: "two nodules", "3 enlarged lymph nodes" → count of the finding/anatomy.
    for (size_t i = 0; i < n; ++i) {
        const Tok& t = a.toks[i];
        std::optional<double> v;
        if (t.num && t.decimals == 0 && t.val >= 1 && t.val <= 20) v = t.val;
        if (!v) v = number_word(t.w);
        if (!v) continue;
        if (is_word(a, i + 1, "of") ||
            (i > 0 &&
             (a.toks[i - 1].w == "figure" || a.toks[i - 1].w == "fig" || a.toks[i - 1].w == "day" ||
              a.toks[i - 1].w == "grade" || a.toks[i - 1].w == "stage" ||
              a.toks[i - 1].w == "type" || a.toks[i - 1].w == "number")))
            continue;
        if (a.hedged[i] || a.negated[i] || reference_value(a, i)) continue;
        // Up to 2 modifier words, then a finding.
        for (size_t k = i + 1; k < n && k <= i + 3; ++k) {
            const Tok& u = a.toks[k];
            if (!u.word || u.num || unit_of(u.w) || u.w == "x" || u.w == "year" || u.w == "years" ||
                u.w == "month" || u.w == "months")
                break;
            int mi = a.mention_at[k];
            if (mi >= 0 && a.mentions[mi].cat == Cat::kFinding) {
                const Mention& m = a.mentions[mi];
                const std::string& last = a.toks[m.t1 - 1].w;
                bool plural = singular(last) != last || last == "metastases" || last == "thrombi" ||
                              last == "emboli" || last == "opacities";
                if ((*v == 1) != plural) {
                    Quantity q;
                    q.cls = QClass::kCount;
                    q.value = *v;
                    q.precision = 0;
                    q.entity = m.canon;
                    q.t0 = i;
                    q.t1 = m.t1;
                    a.quantities.push_back(q);
                }
                break;
            }
            if (mi >= 0 && a.mentions[mi].cat == Cat::kAnatomy) {
                k = a.mentions[mi].t1 - 1;  // "two pulmonary nodules"
                continue;
            }
            if (mi >= 0 || u.w == "and" || u.w == "or" || u.w == "with") break;
        }
    }
}

Analysis analyse(std::string_view text) {
    Analysis a;
    a.text = text;
    a.toks = tokenize(text);
    find_mentions(a);
    find_scopes(a);
    find_qualifiers(a);
    find_sides(a);
    find_quantities(a);
    return a;
}

Evidence span(const Analysis& a, size_t t0, size_t t1) {
    Evidence e;
    if (t0 >= a.toks.size() || t1 == 0) return e;
    t1 = std::min(t1, a.toks.size());
    e.begin = a.toks[t0].b;
    e.end = a.toks[t1 - 1].e;
    e.text = std::string(a.text.substr(e.begin, e.end - e.begin));
    return e;
}

// The sentence around token t (for evidence of a negation).
Evidence sentence_span(const Analysis& a, size_t t) {
    size_t b = t, e = t;
    while (b > 0 && a.toks[b - 1].sent == a.toks[t].sent)
        --b;
    while (e + 1 < a.toks.size() && a.toks[e + 1].sent == a.toks[t].sent &&
           a.toks[e + 1].w != "." && a.toks[e + 1].w != "?" && a.toks[e + 1].w != "!" &&
           a.toks[e + 1].w != "\n")
        ++e;
    return span(a, b, e + 1);
}

bool usable(const Analysis& a, const Mention& m) {
    return !m.negated && !m.hedged && !a.rec_sentence[a.toks[m.t0].sent];
}

bool contains_or_list(const Analysis& a, const Mention& m) {
    // "CT or MRI", "MRI and/or CT": alternatives, not a statement about this image.
    auto near_or = [&](size_t k) { return k < a.toks.size() && a.toks[k].w == "or"; };
    return (m.t0 > 0 && near_or(m.t0 - 1)) || near_or(m.t1) ||
           (m.t0 > 1 && a.toks[m.t0 - 1].w == "/" && near_or(m.t0 - 2));
}

// ---------------------------------------------------------------------------------------------
// The rules
// ---------------------------------------------------------------------------------------------

void check_laterality(const Analysis& src, const Analysis& ans, std::vector<Contradiction>* out) {
    std::map<std::string, std::vector<const SideAttach*>> by_entity;
    for (const auto& s : src.sides)
        by_entity[s.entity].push_back(&s);
    // One contradiction per side word of the answer, naming its widest conflicting phrase.
    std::map<size_t, std::pair<const SideAttach*, const SideAttach*>> conflicts;
    for (const auto& s : ans.sides) {
        auto it = by_entity.find(s.entity);
        if (it == by_entity.end()) continue;
        bool has_bilat = false, has_same = false;
        for (const SideAttach* x : it->second) {
            if (x->side == Side::kBilateral) has_bilat = true;
            if (x->side == s.side) has_same = true;
        }
        if (has_same || (has_bilat && s.side != Side::kBilateral)) continue;
        auto& slot = conflicts[s.side_tok];
        const SideAttach* x = it->second.front();
        for (const SideAttach* y : it->second)
            if (y->t1 - y->t0 > x->t1 - x->t0) x = y;
        if (!slot.first || s.t1 - s.t0 > slot.first->t1 - slot.first->t0) slot = {&s, x};
    }
    for (const auto& [tok, pair] : conflicts) {
        const auto [s, x] = pair;
        Contradiction c;
        c.kind = ContradictionKind::kLaterality;
        c.source = span(src, x->t0, x->t1);
        c.answer = span(ans, s->t0, s->t1);
        c.detail = fmt::format(
            "the answer puts the {} on the {} side ('{}') but the source "
            "says {} ('{}')",
            s->entity, side_name(s->side), c.answer.text, side_name(x->side), c.source.text);
        out->push_back(std::move(c));
    }
}

bool qual_subset(const std::set<std::string>& neg, const std::set<std::string>& aff) {
    return std::includes(aff.begin(), aff.end(), neg.begin(), neg.end());
}

void check_negation(const Analysis& src, const Analysis& ans, std::vector<Contradiction>* out) {
    std::set<std::string> done;
    for (const Mention& m : ans.mentions) {
        if (m.cat != Cat::kFinding || m.hedged) continue;
        if (done.count(m.canon)) continue;
        const Mention* src_aff = nullptr;
        const Mention* src_neg = nullptr;
        bool any_aff = false, any_neg = false;
        for (const Mention& s : src.mentions) {
            if (s.cat != Cat::kFinding || s.canon != m.canon || s.hedged) continue;
            if (s.negated) {
                any_neg = true;
                if (!m.negated && qual_subset(s.qual, m.qual) && !src_neg) src_neg = &s;
            } else {
                any_aff = true;
                if (m.negated && qual_subset(m.qual, s.qual) && !src_aff) src_aff = &s;
            }
        }
        Contradiction c;
        c.kind = ContradictionKind::kNegation;
        if (!m.negated && src_neg && !any_aff) {
            c.source = sentence_span(src, src_neg->t0);
            c.answer = sentence_span(ans, m.t0);
            c.detail = fmt::format(
                "the answer states {} is present ('{}') but the source "
                "negates it ('{}')",
                m.canon, c.answer.text, c.source.text);
        } else if (m.negated && src_aff && !any_neg) {
            c.source = sentence_span(src, src_aff->t0);
            c.answer = sentence_span(ans, m.t0);
            c.detail = fmt::format(
                "the answer says there is no {} ('{}') but the source "
                "reports it ('{}')",
                m.canon, c.answer.text, c.source.text);
        } else {
            continue;
        }
        done.insert(m.canon);
        out->push_back(std::move(c));
    }
}

bool same_value(const Quantity& a, const Quantity& b) {
    double tol = std::max(
        {0.05 * std::max(std::fabs(a.value), std::fabs(b.value)), a.precision, b.precision, 1e-9});
    return std::fabs(a.value - b.value) <= tol;
}

std::string format_value(const Quantity& q) {
    switch (q.cls) {
        case QClass::kLength:
            return fmt::format("{:g} mm", q.value);
        case QClass::kVolume:
            return fmt::format("{:g} ml", q.value);
        case QClass::kMass:
            return fmt::format("{:g} g", q.value);
        case QClass::kAge:
            return fmt::format("{:g} years", q.value);
        case QClass::kPercent:
            return fmt::format("{:g}%", q.value);
        case QClass::kHu:
            return fmt::format("{:g} HU", q.value);
        case QClass::kCount:
            return fmt::format("{:g}", q.value);
    }
    return "";
}

void check_numbers(const Analysis& src, const Analysis& ans, std::vector<Contradiction>* out) {
    std::set<std::pair<size_t, size_t>> reported;
    for (const Quantity& q : ans.quantities) {
        std::vector<const Quantity*> same_cls, same_ent, no_ent;
        for (const Quantity& s : src.quantities) {
            if (s.cls != q.cls) continue;
            same_cls.push_back(&s);
            if (!q.entity.empty() && s.entity == q.entity) same_ent.push_back(&s);
            if (s.entity.empty()) no_ent.push_back(&s);
        }
        if (same_cls.empty()) continue;
        std::vector<const Quantity*>* cand = nullptr;
        if (q.cls == QClass::kAge) {
            cand = &same_cls;
        } else if (q.cls == QClass::kCount) {
            if (same_ent.empty()) continue;
            cand = &same_ent;
        } else if (!q.entity.empty()) {
            if (!same_ent.empty())
                cand = &same_ent;
            else if (!no_ent.empty() && no_ent.size() == same_cls.size())
                cand = &no_ent;
            else
                continue;
        } else {
            cand = &same_cls;
        }
        bool match = false;
        for (const Quantity* s : *cand)
            if (same_value(*s, q)) match = true;
        if (match) continue;
        if (!reported.insert({q.t0, q.t1}).second) continue;
        const Quantity* s = cand->front();
        Contradiction c;
        c.kind = ContradictionKind::kNumberUnit;
        c.source = span(src, s->t0, s->t1);
        c.answer = span(ans, q.t0, q.t1);
        std::string what = q.entity.empty()
                               ? std::string(qclass_name(q.cls))
                               : fmt::format("{} of the {}", qclass_name(q.cls), q.entity);
        c.detail = fmt::format(
            "the answer gives the {} as '{}' ({}) but the source says '{}' "
            "({})",
            what, c.answer.text, format_value(q), c.source.text, format_value(*s));
        out->push_back(std::move(c));
    }
}

struct Named {
    std::string name;
    size_t t0, t1;
};

std::vector<Named> modalities(const Analysis& a, bool strict) {
    std::vector<Named> out;
    for (size_t mi = 0; mi < a.mentions.size(); ++mi) {
        const Mention& m = a.mentions[mi];
        if (m.cat == Cat::kModality) {
            if (strict && (!usable(a, m) || contains_or_list(a, m))) continue;
            if (!strict && m.negated) continue;
            out.push_back({m.canon, m.t0, m.t1});
        }
    }
    return out;
}

// MR sequences, only where the context shows it is one ("T2-weighted", "on T1", "T2 signal"),
// not a vertebra (T12) or a tumour stage (T2N0).
std::vector<Named> sequences(const Analysis& a, bool strict) {
    static const std::unordered_set<std::string> after = {"w",
                                                          "wi",
                                                          "weighted",
                                                          "image",
                                                          "images",
                                                          "imaging",
                                                          "sequence",
                                                          "sequences",
                                                          "signal",
                                                          "flair",
                                                          "mri",
                                                          "mr",
                                                          "fat",
                                                          "post",
                                                          "pre",
                                                          "hyperintense",
                                                          "hypointense",
                                                          "isointense",
                                                          "hyperintensity",
                                                          "hypointensity",
                                                          "intensity",
                                                          "fs",
                                                          "fse",
                                                          "tse",
                                                          "map",
                                                          "scan",
                                                          "scans",
                                                          "gd"};
    static const std::unordered_set<std::string> before = {
        "on",  "axial",    "sagittal", "coronal",    "hyperintense", "hypointense", "isointense",
        "and", "contrast", "enhanced", "gadolinium", "both",         "in"};
    std::vector<Named> out;
    for (const Mention& m : a.mentions) {
        if (m.cat != Cat::kSequence) continue;
        if (strict && (!usable(a, m) || contains_or_list(a, m))) continue;
        if (m.canon == "T1" || m.canon == "T2") {
            bool ok = m.t1 - m.t0 > 1;
            if (!ok && m.t1 < a.toks.size() && after.count(a.toks[m.t1].w)) ok = true;
            if (!ok && m.t0 > 0 && before.count(a.toks[m.t0 - 1].w)) ok = true;
            if (!ok) continue;
        }
        out.push_back({m.canon, m.t0, m.t1});
    }
    return out;
}

void check_modality(const Analysis& src, const Analysis& ans, std::vector<Contradiction>* out) {
    std::vector<Named> s = modalities(src, false);
    // A sequence in the source means MRI.
    for (const Named& q : sequences(src, false))
        s.push_back({"MRI", q.t0, q.t1});
    if (s.empty()) return;
    std::vector<Named> a = modalities(ans, true);
    for (const Named& q : sequences(ans, true))
        a.push_back({"MRI", q.t0, q.t1});
    // An answer that also names a modality of the source describes a multi-panel or
    // multi-study figure: its other modalities are not checked.
    for (const Named& m : a)
        for (const Named& x : s)
            if (modalities_compatible(m.name, x.name)) return;
    std::set<std::string> reported;
    for (const Named& m : a) {
        if (!reported.insert(m.name).second) continue;
        Contradiction c;
        c.kind = ContradictionKind::kModality;
        c.source = span(src, s.front().t0, s.front().t1);
        c.answer = span(ans, m.t0, m.t1);
        std::string names;
        std::set<std::string> seen;
        for (const Named& x : s)
            if (seen.insert(x.name).second) names += (names.empty() ? "" : ", ") + x.name;
        c.detail = fmt::format(
            "the answer calls the image {} ('{}') but the source names {} "
            "('{}')",
            m.name, c.answer.text, names, c.source.text);
        out->push_back(std::move(c));
    }
}

void check_sequence(const Analysis& src, const Analysis& ans, std::vector<Contradiction>* out) {
    std::vector<Named> s = sequences(src, false);
    if (s.empty()) return;
    std::set<std::string> reported;
    for (const Named& m : sequences(ans, true)) {
        bool ok = false;
        for (const Named& x : s)
            if (sequences_compatible(m.name, x.name)) ok = true;
        if (ok || !reported.insert(m.name).second) continue;
        Contradiction c;
        c.kind = ContradictionKind::kSequence;
        c.source = span(src, s.front().t0, s.front().t1);
        c.answer = span(ans, m.t0, m.t1);
        c.detail = fmt::format(
            "the answer names a {} sequence ('{}') but the source shows {} "
            "('{}')",
            m.name, c.answer.text, s.front().name, c.source.text);
        out->push_back(std::move(c));
    }
}

// The imaged region: "<modality> of the <organ>", "<organ> <modality>" ("brain MRI", "chest
// X-ray", "abdominal CT").
std::vector<Named> imaged_regions(const Analysis& a, bool strict) {
    std::vector<Named> out;
    for (size_t mi = 0; mi < a.mentions.size(); ++mi) {
        const Mention& m = a.mentions[mi];
        if (m.cat != Cat::kModality) continue;
        if (strict && !usable(a, m)) continue;
        // "<organ> <modality>"
        if (m.t0 > 0) {
            int pi = a.mention_at[m.t0 - 1];
            if (pi >= 0 && a.mentions[pi].cat == Cat::kAnatomy &&
                a.mentions[pi].region != kNoRegion)
                out.push_back({region_name(a.mentions[pi].region), a.mentions[pi].t0, m.t1});
        }
        // "<modality> (scan|image) of the (adj)? <organ>"
        size_t k = m.t1;
        while (k < a.toks.size() && (a.toks[k].w == "scan" || a.toks[k].w == "image" ||
                                     a.toks[k].w == "imaging" || a.toks[k].w == "images"))
            ++k;
        if (k < a.toks.size() && a.toks[k].w == "of") {
            for (size_t j = k + 1; j < a.toks.size() && j <= k + 3; ++j) {
                int pi = a.mention_at[j];
                if (pi >= 0 && a.mentions[pi].cat == Cat::kAnatomy &&
                    a.mentions[pi].region != kNoRegion) {
                    out.push_back({region_name(a.mentions[pi].region), m.t0, a.mentions[pi].t1});
                    break;
                }
                if (!a.toks[j].word) break;
            }
        }
    }
    return out;
}

int region_id(const std::string& name) {
    for (int r = 1; r < kRegions; ++r)
        if (name == region_name(r)) return r;
    return kNoRegion;
}

void check_anatomy(const Analysis& src, const Analysis& ans, std::vector<Contradiction>* out) {
    // Every region the source names (even in negations: it is still the subject).
    std::vector<const Mention*> s_org;
    for (const Mention& m : src.mentions)
        if (m.cat == Cat::kAnatomy && m.region != kNoRegion) s_org.push_back(&m);
    if (s_org.empty()) return;
    auto compatible_with_source = [&](int r) {
        for (const Mention* m : s_org)
            if (regions_compatible(r, m->region)) return true;
        return false;
    };
    // (a) the imaged region.
    for (const Named& a : imaged_regions(ans, true)) {
        int r = region_id(a.name);
        if (compatible_with_source(r)) continue;
        Contradiction c;
        c.kind = ContradictionKind::kAnatomy;
        c.source = span(src, s_org.front()->t0, s_org.front()->t1);
        c.answer = span(ans, a.t0, a.t1);
        c.detail = fmt::format(
            "the answer describes an image of the {} ('{}') but the source is "
            "about the {} ('{}')",
            a.name, c.answer.text, region_name(s_org.front()->region), c.source.text);
        out->push_back(std::move(c));
        return;
    }
    // (b) every organ of the answer lies outside the source's regions.
    std::vector<const Mention*> a_org;
    for (const Mention& m : ans.mentions)
        if (m.cat == Cat::kAnatomy && m.region != kNoRegion && !m.negated) a_org.push_back(&m);
    if (a_org.empty()) return;
    for (const Mention* m : a_org)
        if (compatible_with_source(m->region)) return;
    const Mention* first = nullptr;
    for (const Mention* m : a_org)
        if (usable(ans, *m)) {
            first = m;
            break;
        }
    if (!first) return;
    Contradiction c;
    c.kind = ContradictionKind::kAnatomy;
    c.source = span(src, s_org.front()->t0, s_org.front()->t1);
    c.answer = span(ans, first->t0, first->t1);
    c.detail = fmt::format(
        "the answer is about the {} ('{}') but the source is about the {} "
        "('{}')",
        region_name(first->region), c.answer.text, region_name(s_org.front()->region),
        c.source.text);
    out->push_back(std::move(c));
}

}  // namespace

std::string_view contradiction_kind_name(ContradictionKind k) {
    switch (k) {
        case ContradictionKind::kLaterality:
            return "laterality";
        case ContradictionKind::kNegation:
            return "negation";
        case ContradictionKind::kNumberUnit:
            return "number_unit";
        case ContradictionKind::kModality:
            return "modality";
        case ContradictionKind::kSequence:
            return "sequence";
        case ContradictionKind::kAnatomy:
            return "anatomy";
    }
    return "unknown";
}

std::vector<Contradiction> verify_answer(std::string_view source, std::string_view answer,
                                         const VerifyOptions& opt) {
    std::vector<Contradiction> out;
    if (source.empty() || answer.empty()) return out;
    Analysis src = analyse(source);
    Analysis ans = analyse(answer);
    auto on = [&](ContradictionKind k) { return opt.kinds[static_cast<int>(k)]; };
    if (on(ContradictionKind::kLaterality)) check_laterality(src, ans, &out);
    if (on(ContradictionKind::kNegation)) check_negation(src, ans, &out);
    if (on(ContradictionKind::kNumberUnit)) check_numbers(src, ans, &out);
    if (on(ContradictionKind::kModality)) check_modality(src, ans, &out);
    if (on(ContradictionKind::kSequence)) check_sequence(src, ans, &out);
    if (on(ContradictionKind::kAnatomy)) check_anatomy(src, ans, &out);
    std::stable_sort(out.begin(), out.end(), [](const Contradiction& a, const Contradiction& b) {
        return a.answer.begin < b.answer.begin;
    });
    return out;
}

std::string describe_contradictions(const std::vector<Contradiction>& cs) {
    std::string out;
    for (const auto& c : cs) {
        if (!out.empty()) out += "; ";
        out += fmt::format("{} ({})", c.detail, contradiction_kind_name(c.kind));
    }
    return out;
}

}  // namespace mf::reformat
