// The answer verifier (reformat/verify.h): a hand-labelled table of constructed source/answer
// pairs (each labelled with the contradictions a careful reader finds, including many true
// negatives: paraphrases, synonyms, the same value in other units, hedges, recommendations),
// precision and recall per kind computed over it and checked against floors; evidence spans;
// and the verifier on real LLaVA-Med text (its own answers against its captions).
#include "reformat/verify.h"

#include <fmt/core.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <set>

#include "test_util.h"

namespace mf::reformat {
namespace {

struct Case {
    const char* source;
    const char* answer;
    std::set<std::string> kinds;  // expected contradiction kinds; empty = consistent
};

// BEGIN CASES
const std::vector<Case>& cases() {
    static const std::vector<Case> k = {
        // ---- laterality ----
        {"Chest X-ray shows a right-sided pleural effusion.",
         "The radiograph demonstrates a left pleural effusion.",
         {"laterality"}},
        {"Axial CT shows a 3 cm mass in the left kidney.",
         "There is a mass arising from the right kidney.",
         {"laterality"}},
        {"MRI reveals a lesion in the right temporal lobe.",
         "A hyperintense lesion is seen in the left temporal lobe.",
         {"laterality"}},
        {"Mammogram of the left breast shows a spiculated mass.",
         "A spiculated mass is present in the right breast on this mammogram.",
         {"laterality"}},
        {"Right lower lobe consolidation consistent with pneumonia.",
         "Consolidation is visible in the left lower lobe.",
         {"laterality"}},
        {"Fracture of the left femoral neck.",
         "The X-ray shows a fracture of the right femoral neck.",
         {"laterality"}},
        {"Ultrasound of the right ovary demonstrates a simple cyst.",
         "This sonogram shows a simple cyst of the left ovary.",
         {"laterality"}},
        {"There is a left-sided pneumothorax.", "A right pneumothorax is seen.", {"laterality"}},
        {"Left pleural effusion.", "Bilateral pleural effusions are present.", {"laterality"}},
        // laterality: consistent
        {"Right-sided pleural effusion.", "There is a pleural effusion on the right side.", {}},
        {"CT shows a mass in the left kidney.",
         "The left renal mass appears heterogeneous on CT.",
         {}},
        {"Bilateral pleural effusions.",
         "Small effusions are seen in the right and left hemithorax.",
         {}},
        {"Chest radiograph showing a right upper lobe mass.",
         "The left lung is clear, and a mass is present in the right upper lobe.",
         {}},
        {"Left ventricular hypertrophy on echocardiography.",
         "Echocardiography shows thickening of the left ventricular wall.",
         {}},
        {"A nodule in the right lung.", "A nodule is located to the right of the trachea.", {}},
        {"Bilateral hilar lymphadenopathy.",
         "Enlarged lymph nodes are seen in the left hilum and also on the right.",
         {}},
        // ---- negation ----
        {"Chest X-ray with no pneumothorax.",
         "The chest X-ray shows a small pneumothorax at the apex.",
         {"negation"}},
        {"CT of the head without evidence of intracranial hemorrhage.",
         "The head CT shows an intracranial hemorrhage in the frontal region.",
         {"negation"}},
        {"The lesion shows no enhancement after contrast administration.",
         "The lesion shows avid enhancement after contrast.",
         {"negation"}},
        {"Large left pleural effusion.", "There is no pleural effusion.", {"negation"}},
        {"Axial CT showing a calcified mass in the pancreas.",
         "A pancreatic mass without calcification is seen on CT.",
         {"negation"}},
        {"Fracture of the distal radius.", "No fracture is seen.", {"negation"}},
        {"Brain MRI: no hydrocephalus.",
         "MRI of the brain shows marked hydrocephalus.",
         {"negation"}},
        {"Abdominal CT negative for free air.",
         "Free air is present under the diaphragm on CT.",
         {"negation"}},
        {"The patient denies fever. Chest radiograph showed no consolidation.",
         "The radiograph shows dense consolidation in the lower zone.",
         {"negation"}},
        {"The bowel is dilated without evidence of perforation.",
         "The image shows bowel perforation with free air.",
         {"negation"}},
        {"Pulmonary embolism was not identified on CT angiography.",
         "CT angiography demonstrates a pulmonary embolism in the main pulmonary artery.",
         {"negation"}},
        // negation: consistent
        {"No pneumothorax. A small right pleural effusion is present.",
         "There is a small right-sided pleural effusion without pneumothorax.",
         {}},
        {"MRI shows a lesion with no enhancement.", "A non-enhancing lesion is seen on MRI.", {}},
        {"No enhancing lesion was identified.",
         "The scan shows a non-enhancing lesion in the white matter.",
         {}},
        {"There is no change in the size of the mass.", "The mass is unchanged in size.", {}},
        {"Solitary pulmonary nodule; no other nodules were seen.",
         "A single nodule is present in the lung.",
         {}},
        {"CT demonstrates a hepatic abscess.",
         "Is there any evidence of an abscess? Yes, a hepatic abscess is seen.",
         {}},
        {"Pleural effusion is present.",
         "An effusion may be due to heart failure; no pneumothorax is seen.",
         {}},
        {"Chest CT shows a mass in the right upper lobe and no lymphadenopathy.",
         "There is a right upper lobe mass but no enlarged lymph nodes.",
         {}},
        {"No acute fracture.", "There is an old healed fracture of the rib.", {}},
        {"Left lower lobe atelectasis. No pneumothorax.",
         "There is atelectasis in the left lower lobe; the lungs show no pneumothorax.",
         {}},
        {"Without contrast, the mass appears hypodense.",
         "The mass appears hypodense on the non-contrast scan.",
         {}},
        {"No evidence of metastasis.", "Metastasis cannot be excluded on this image.", {}},
        {"Possible small pneumothorax.", "There is no pneumothorax.", {}},
        {"The fracture does not extend into the joint.",
         "A fracture is seen that spares the joint surface.",
         {}},
        // ---- numbers and units ----
        {"Axial CT shows a 3 cm mass in the liver.",
         "A 5 cm hepatic mass is seen on CT.",
         {"number_unit"}},
        {"A 45-year-old man with chest pain.",
         "This chest X-ray of a 54-year-old man shows clear lungs.",
         {"number_unit"}},
        {"The cyst measures 15 mm.", "The cyst measures 2.5 cm in diameter.", {"number_unit"}},
        {"Ultrasound shows a 4 x 3 cm ovarian cyst.",
         "Sonography shows an ovarian cyst of about 7 x 6 cm.",
         {"number_unit"}},
        {"Two nodules are seen in the right lung.",
         "Three nodules are visible in the right lung.",
         {"number_unit"}},
        {"Pericardial effusion of 200 ml on echocardiography.",
         "Echocardiography shows a pericardial effusion of approximately 500 ml.",
         {"number_unit"}},
        {"Aged 62, the patient presented with jaundice.",
         "The patient, a 26-year-old woman, has jaundice.",
         {"number_unit"}},
        {"The aneurysm measures 5.5 cm.", "The aneurysm has a diameter of 3 cm.", {"number_unit"}},
        {"The lesion has an attenuation of 10 HU.",
         "The lesion measures 45 HU on unenhanced CT.",
         {"number_unit"}},
        // numbers: consistent
        {"The lesion measured 1.5 cm.", "The lesion measures 15 mm in diameter.", {}},
        {"A 2 cm mass in the left kidney.", "A 20-mm left renal mass is seen.", {}},
        {"A 45-year-old woman.", "The patient is 45 years old.", {}},
        {"A 3.2 cm mass.", "A mass of approximately 3 cm.", {}},
        {"A 6 mm nodule in the right lung.",
         "A small nodule (6 mm) in the right lung; nodules smaller than 8 mm are usually "
         "followed up.",
         {}},
        {"The common bile duct measures 12 mm.",
         "The common bile duct is dilated to 12 mm (normal < 7 mm).",
         {}},
        {"An 8-month-old infant with a skull fracture.",
         "This skull radiograph of an 8-month-old infant shows a fracture.",
         {}},
        {"Two hypodense lesions in the liver.", "There are two hypodense liver lesions.", {}},
        {"A 4 cm mass in the liver and a 1 cm nodule in the lung.",
         "The 1 cm pulmonary nodule is seen with a 4 cm hepatic mass.",
         {}},
        {"Ultrasound demonstrates a 12 mm gallstone without gallbladder wall thickening.",
         "The sonogram shows a 1.2 cm gallstone with no wall thickening.",
         {}},
        // ---- modality ----
        {"Axial contrast-enhanced CT of the abdomen.",
         "This axial MRI of the abdomen shows the liver and spleen.",
         {"modality"}},
        {"Chest radiograph demonstrating cardiomegaly.",
         "The CT scan demonstrates cardiomegaly.",
         {"modality"}},
        {"Transabdominal ultrasound showing gallstones.",
         "The MRI image shows gallstones in the gallbladder.",
         {"modality"}},
        {"H&E stained section showing granulomas.",
         "This CT image shows granulomas.",
         {"modality"}},
        {"Sagittal T2-weighted image of the lumbar spine.",
         "The sagittal CT image of the lumbar spine shows degenerative changes.",
         {"modality"}},
        {"Coronal CT of the sinuses.",
         "Coronal T1-weighted image showing the sinuses.",
         {"modality"}},
        {"Endoscopic view of a gastric ulcer.",
         "Ultrasonography shows a gastric ulcer.",
         {"modality"}},
        // modality: consistent
        {"Contrast-enhanced computed tomography of the chest.",
         "The CT scan of the chest shows "
         "no abnormality.",
         {}},
        {"CT angiography showing an aneurysm.", "The angiogram demonstrates an aneurysm.", {}},
        {"Chest X-ray showing a mass.",
         "The chest radiograph shows a mass; a CT scan would help to characterise it further.",
         {}},
        {"Barium enema showing a stricture.", "This fluoroscopic image shows a stricture.", {}},
        {"PET/CT shows FDG-avid lymph nodes.", "The PET scan shows hypermetabolic nodes.", {}},
        {"MRI of the knee.", "This is not a CT; it is an MRI of the knee.", {}},
        {"Echocardiogram showing pericardial effusion.",
         "The ultrasound image shows a pericardial effusion.",
         {}},
        {"Nuclear magnetic resonance scan of the occipital lesion.",
         "This MRI scan shows an occipital lesion.",
         {}},
        // ---- MR sequence ----
        {"Axial T2-weighted MRI showing a hyperintense lesion.",
         "Axial T1-weighted MRI showing a hyperintense lesion.",
         {"sequence"}},
        {"Sagittal T1-weighted image of the cervical spine.",
         "On this sagittal T2-weighted image of the cervical spine, the cord is normal.",
         {"sequence"}},
        {"Diffusion-weighted imaging shows restricted diffusion.",
         "The T1 weighted image shows restricted diffusion.",
         {"sequence"}},
        {"Coronal STIR image of the pelvis shows bone marrow edema.",
         "A coronal T1-weighted image of the pelvis shows marrow edema.",
         {"sequence"}},
        {"Axial SWI shows microbleeds.", "Axial FLAIR image shows microbleeds.", {"sequence"}},
        // sequence: consistent
        {"Axial FLAIR image showing hyperintensity.",
         "The axial T2-weighted FLAIR image shows a hyperintense area.",
         {}},
        {"Hyperintense signal on T1W and hypointense signal on T2W.",
         "The lesion is hyperintense on T1-weighted images.",
         {}},
        {"T2 N0 M0 tumour of the breast on MRI.",
         "T1-weighted MRI of the breast shows a tumor.",
         {}},
        {"DWI shows restricted diffusion; ADC map confirms.",
         "The apparent diffusion coefficient map shows low values.",
         {}},
        {"Fracture of the T12 vertebral body.", "MRI shows a fracture of the T12 vertebra.", {}},
        // ---- anatomy ----
        {"Chest X-ray showing bilateral lung infiltrates.",
         "This MRI of the brain shows no abnormality.",
         {"modality", "anatomy"}},
        {"CT of the abdomen showing a liver mass.", "CT of the brain showing a mass.", {"anatomy"}},
        {"Radiograph of the knee showing a tibial plateau fracture.",
         "This chest radiograph shows a fracture of a rib.",
         {"anatomy"}},
        {"Brain MRI showing a glioma in the frontal lobe.",
         "The MRI of the pelvis shows a mass.",
         {"anatomy"}},
        {"Axial CT of the chest shows a lung nodule.",
         "The CT image shows a nodule in the prostate.",
         {"anatomy"}},
        // anatomy: consistent
        {"Chest CT showing a right lower lobe nodule.",
         "Axial CT of the thorax shows a nodule in the right lower lobe of the lung.",
         {}},
        {"Abdominal CT showing a hepatic lesion.",
         "The CT of the abdomen and pelvis shows a liver lesion.",
         {}},
        {"Chest radiograph with cardiomegaly.", "The heart is enlarged on this chest X-ray.", {}},
        {"MRI of the brain showing metastases.",
         "Brain MRI shows metastases, likely from a lung primary.",
         {}},
        {"Knee MRI showing a meniscal tear.", "The MRI of the knee joint shows a tear.", {}},
        {"Axial CT of the abdomen showing a renal mass.",
         "A mass arises from the kidney; the lung bases are clear.",
         {}},
        // ---- long, LLM-style answers (background knowledge, recommendations, hedges) ----
        {"Axial contrast-enhanced CT of the abdomen shows a 4 cm hypodense lesion in the right "
         "lobe of the liver. The lesion showed peripheral nodular enhancement consistent with "
         "hemangioma.",
         "This axial contrast-enhanced computed tomography (CT) image of the abdomen demonstrates "
         "a well-defined hypodense lesion measuring approximately 4 cm in the right hepatic lobe. "
         "The lesion shows peripheral nodular enhancement, a pattern characteristic of a hepatic "
         "hemangioma. Hemangiomas are the most common benign liver tumors and are usually "
         "asymptomatic. In some cases, MRI may be used to confirm the diagnosis, and lesions "
         "larger than 5 cm may be called giant hemangiomas. The left lobe, spleen and kidneys "
         "appear unremarkable.",
         {}},
        {"Chest radiograph of a 67-year-old man showing a left upper lobe mass. CT confirmed a 5.2 "
         "cm spiculated mass without mediastinal lymphadenopathy.",
         "The frontal chest X-ray shows a large mass in the upper zone of the left lung. In a "
         "67-year-old smoker, a spiculated mass of this size (over 5 cm) is highly suspicious for "
         "primary lung cancer. The right lung appears clear, and there is no evidence of pleural "
         "effusion. Staging would typically include CT of the chest and abdomen, and possibly "
         "PET-CT or brain MRI to look for metastases.",
         {}},
        {"T2-weighted axial MRI of the brain demonstrates a hyperintense lesion in the right "
         "frontal lobe with surrounding edema and mass effect.",
         "On this axial T2-weighted magnetic resonance image of the brain, there is a hyperintense "
         "lesion within the right frontal lobe. It is surrounded by vasogenic edema, which also "
         "appears bright on T2, and causes mass effect on the adjacent structures, including "
         "effacement of the sulci. The left hemisphere appears normal. Post-contrast T1-weighted "
         "images would help determine whether the lesion enhances, which can help differentiate a "
         "tumor from other causes.",
         {}},
        {"Ultrasound image showing a 2.3 x 1.8 cm complex cyst in the left ovary.",
         "This transvaginal ultrasound shows a complex cystic lesion in the left ovary measuring "
         "about 2.3 by 1.8 centimeters. Complex ovarian cysts may represent hemorrhagic cysts, "
         "endometriomas or, less commonly, neoplasms. The right ovary is not well visualized in "
         "this image. Follow-up ultrasound in 6 to 8 weeks is often recommended.",
         {}},
        {"Histopathology of the lymph node biopsy (H&E, x40) showing non-caseating granulomas, "
         "consistent with sarcoidosis.",
         "The photomicrograph of the lymph node shows multiple well-formed non-caseating "
         "granulomas composed of epithelioid histiocytes and multinucleated giant cells. There is "
         "no caseous necrosis. These findings support a diagnosis of sarcoidosis; however, "
         "infections such as tuberculosis should be excluded with special stains and cultures. A "
         "chest CT often shows bilateral hilar lymphadenopathy in sarcoidosis.",
         {}},
        {"Knee MRI of a 25-year-old athlete: sagittal proton density image shows a complete tear "
         "of the anterior cruciate ligament.",
         "This sagittal proton-density MRI of the knee in a 25-year-old athlete reveals "
         "discontinuity of the anterior cruciate ligament fibers, consistent with a complete ACL "
         "tear. There is no fracture visible. ACL tears often occur with pivoting injuries and may "
         "be associated with meniscal tears and bone bruises, which are best seen on "
         "fat-suppressed T2-weighted images.",
         {}},
        {"Coronal CT of the abdomen showing acute appendicitis with an appendicolith.",
         "The coronal CT image shows a dilated, inflamed appendix with a calcified appendicolith "
         "at its base, consistent with acute appendicitis. There is no free air to suggest "
         "perforation. Ultrasound is often preferred in children and pregnant women to avoid "
         "radiation.",
         {}},
        {"Echocardiogram showing a large pericardial effusion measuring 2.5 cm with diastolic "
         "collapse of the right atrium.",
         "This echocardiographic image demonstrates a large circumferential pericardial effusion, "
         "approximately 25 mm in depth, with diastolic collapse of the right atrium, suggesting "
         "tamponade physiology. A normal pericardial space contains 15 to 50 ml of fluid. Urgent "
         "pericardiocentesis may be needed.",
         {}},
        {"Plain radiograph of the right hand showing a fracture of the fifth metacarpal neck.",
         "The X-ray of the right hand shows a fracture through the neck of the fifth metacarpal, "
         "commonly called a boxer's fracture. The fracture shows volar angulation. The other "
         "metacarpals and phalanges appear intact. There is no dislocation.",
         {}},
        {"Axial CT of the chest shows bilateral pulmonary emboli in the lower lobe arteries.",
         "The CT pulmonary angiogram demonstrates filling defects within the lower lobe pulmonary "
         "arteries on both sides, consistent with bilateral pulmonary embolism. There is no "
         "pleural effusion or consolidation. The right ventricle is not dilated.",
         {}},
        {"Axial contrast-enhanced CT of the abdomen shows a 4 cm hypodense lesion in the right "
         "lobe of the liver. The lesion showed peripheral nodular enhancement consistent with "
         "hemangioma.",
         "This axial contrast-enhanced CT image demonstrates a well-defined hypodense lesion "
         "measuring approximately 4 cm in the left hepatic lobe, with peripheral nodular "
         "enhancement typical of a hemangioma.",
         {"laterality"}},
        {"Chest radiograph of a 67-year-old man showing a left upper lobe mass. CT confirmed a 5.2 "
         "cm spiculated mass without mediastinal lymphadenopathy.",
         "The chest X-ray of this 67-year-old man shows a left upper lobe mass measuring about 8 "
         "cm; there is extensive mediastinal lymphadenopathy.",
         {"negation", "number_unit"}},
        {"T2-weighted axial MRI of the brain demonstrates a hyperintense lesion in the right "
         "frontal lobe with surrounding edema and mass effect.",
         "On this axial T1-weighted MR image, there is a lesion in the right frontal lobe with "
         "surrounding edema.",
         {"sequence"}},
        {"Ultrasound image showing a 2.3 x 1.8 cm complex cyst in the left ovary.",
         "This CT image shows a complex cystic lesion in the left ovary measuring about 2.3 by 1.8 "
         "centimeters.",
         {"modality"}},
        {"Echocardiogram showing a large pericardial effusion measuring 2.5 cm with diastolic "
         "collapse of the right atrium.",
         "This echocardiographic image demonstrates a small pericardial effusion approximately 8 "
         "mm in depth, with diastolic collapse of the left atrium.",
         {"laterality", "number_unit"}},
        // ---- paraphrases of whole captions (all consistent) ----
        {"Figure 2. Axial contrast-enhanced CT image demonstrating a 4.5 cm heterogeneous mass "
         "in the right adrenal gland, without calcification.",
         "This axial contrast-enhanced CT shows a large heterogeneous right adrenal mass "
         "measuring about 45 mm, with no calcifications.",
         {}},
        {"Chest X-ray. Cardiomegaly with diffuse bilateral interstitial infiltrates and a "
         "right-sided pleural effusion.",
         "The image appeares to be a chest x-ray. However, it indicates that the patient has "
         "cardiomegaly, which means an enlarged heart. Additionally, there are diffuse bilateral "
         "interstitial infiltrates and a right-sided pleural effusion present in the image.",
         {}},
        {"MRI of the lumbar spine shows a disc herniation at L4-L5 compressing the left L5 nerve "
         "root.",
         "The MRI shows a herniated disc at L4-L5 that compresses the left L5 nerve root.",
         {}},
        {"Histopathology (H&E, x400) shows granulomas.",
         "The micrograph shows granulomatous inflammation.",
         {}},
        {"Chest CT shows multiple bilateral nodules.",
         "There are numerous nodules in both lungs on CT.",
         {}},
        {"Transthoracic echocardiography in a 67-year-old woman shows a dilated left ventricle.",
         "The echocardiogram of this 67-year-old patient shows left ventricular dilatation; "
         "further evaluation with cardiac MRI could be considered.",
         {}},
    };
    return k;
}
// END CASES

// Held out: written in one go before the verifier was first run on them, and not tuned on
// (except "enhancing" added to the lexicon afterwards; docs/verify.md gives the figures from
// before that). Only aggregate floors are asserted here: the known misses stay in the table.
const std::vector<Case>& held_out_cases() {
    static const std::vector<Case> k = {
        {"Sagittal ultrasound of the left testis showing a hypoechoic mass.",
         "The ultrasound image shows a hypoechoic mass within the right testis.",
         {"laterality"}},
        {"Axial CT demonstrating a right adrenal adenoma measuring 2.1 cm.",
         "A 21 mm adenoma is visible in the right adrenal gland on this axial CT image.",
         {}},
        {"Non-contrast head CT shows no acute intracranial hemorrhage or mass effect.",
         "The non-contrast CT of the head reveals an acute intracranial hemorrhage with mass "
         "effect.",
         {"negation"}},
        {"Posteroanterior chest radiograph of a 34-year-old woman showing a normal cardiac "
         "silhouette and clear lungs.",
         "This PA chest X-ray from a 34-year-old female demonstrates clear lung fields and a "
         "normal heart size, with no pleural effusion or pneumothorax.",
         {}},
        {"Endoscopic image showing a 10-mm sessile polyp in the sigmoid colon.",
         "Colonoscopy reveals a sessile polyp of approximately 3 cm in the sigmoid colon.",
         {"number_unit"}},
        {"Coronal contrast-enhanced MRI of the pituitary showing a macroadenoma.",
         "The coronal CT image of the sella shows a pituitary macroadenoma.",
         {"modality"}},
        {"Photomicrograph of the biopsy specimen (H&E stain, original magnification x200) showing "
         "noncaseating granulomas.",
         "The histological section stained with hematoxylin and eosin shows non-caseating "
         "granulomas at 200x magnification.",
         {}},
        {"Axial T1-weighted post-gadolinium image showing a ring-enhancing lesion in the right "
         "frontal lobe.",
         "This axial T2-weighted image shows a ring-enhancing lesion in the right frontal lobe.",
         {"sequence"}},
        {"MRI of the right knee: sagittal proton density image shows a tear of the medial "
         "meniscus.",
         "The sagittal MRI of the right knee shows a medial meniscal tear.",
         {}},
        {"Frontal radiograph shows a displaced fracture of the right clavicle.",
         "The X-ray demonstrates a displaced fracture of the left clavicle.",
         {"laterality"}},
        {"CT pulmonary angiography demonstrating bilateral pulmonary emboli.",
         "The CTPA shows filling defects in both the right and left pulmonary arteries, consistent "
         "with pulmonary embolism.",
         {}},
        {"Abdominal ultrasound: the gallbladder contains multiple stones; there is no gallbladder "
         "wall thickening.",
         "Ultrasound shows gallstones with marked gallbladder wall thickening.",
         {"negation"}},
        {"Transverse ultrasound image of the thyroid showing a 1.8 cm nodule in the left lobe.",
         "There is an 18-mm nodule in the left thyroid lobe on this transverse sonogram.",
         {}},
        {"Axial CT of the brain shows a hypodense infarct in the left MCA territory.",
         "The CT image of the abdomen shows a hypodense infarct in the spleen.",
         {"anatomy"}},
        {"Lateral radiograph of the cervical spine showing anterior subluxation of C5 on C6.",
         "The lateral X-ray of the neck shows anterior displacement of the C5 vertebral body "
         "relative to C6.",
         {}},
        {"A 72-year-old man with a 6.5 cm abdominal aortic aneurysm.",
         "CT of a 72-year-old man shows an abdominal aortic aneurysm measuring 4 cm.",
         {"number_unit"}},
        {"Two-dimensional echocardiogram showing a large pericardial effusion with right "
         "ventricular collapse.",
         "The echocardiographic image shows a large pericardial effusion causing collapse of the "
         "right ventricle.",
         {}},
        {"Figure 3. (A) Axial CT and (B) coronal MRI showing the tumor in the right kidney.",
         "The axial CT and the coronal MR image show a tumor in the right kidney.",
         {}},
        {"Plain abdominal radiograph showing dilated small bowel loops.",
         "The ultrasound image shows dilated loops of small bowel.",
         {"modality"}},
        {"Chest CT shows ground-glass opacities in both lungs, without pleural effusion.",
         "Bilateral ground-glass opacities are seen in the lungs; there is no pleural effusion.",
         {}},
        {"MRI shows an acoustic neuroma in the left cerebellopontine angle.",
         "The MRI demonstrates a mass in the right cerebellopontine angle.",
         {"laterality"}},
        {"The patient is a 5-year-old boy with a supracondylar fracture of the right humerus.",
         "This radiograph of a young child shows a supracondylar fracture of the right humerus.",
         {}},
        {"Brain MRI shows restricted diffusion in the left thalamus, without enhancement.",
         "There is an enhancing lesion in the left thalamus.",
         {"negation"}},
        {"Mammography showing a 12 mm spiculated mass in the upper outer quadrant of the left "
         "breast.",
         "The mammogram reveals a spiculated 1.2 cm mass in the left upper outer quadrant.",
         {}},
        {"Three liver metastases are seen on contrast-enhanced CT.",
         "Contrast-enhanced CT shows five metastases in the liver.",
         {"number_unit"}},
        {"PET-CT shows intense FDG uptake in a right hilar lymph node.",
         "The fused PET/CT image shows a hypermetabolic right hilar lymph node.",
         {}},
        {"Endoscopy revealed a large ulcer in the gastric antrum with no active bleeding.",
         "The endoscopic image shows a large ulcer in the antrum of the stomach; no active "
         "bleeding is seen.",
         {}},
        {"Axial FLAIR MRI shows periventricular white matter hyperintensities.",
         "Axial T1-weighted MRI shows periventricular white matter hyperintensities.",
         {"sequence"}},
        {"Ultrasound of the right upper quadrant demonstrating a distended gallbladder with "
         "pericholecystic fluid.",
         "This sonographic image shows a distended gallbladder with pericholecystic fluid, "
         "findings that may suggest acute cholecystitis; a HIDA scan could be used to confirm.",
         {}},
        {"Knee radiograph shows joint space narrowing and osteophytes.",
         "The X-ray of the knee shows narrowing of the joint space with osteophyte formation, "
         "typical of osteoarthritis, which commonly affects patients over 50 years old.",
         {}},
    };
    return k;
}

std::set<std::string> kinds_of(const std::vector<Contradiction>& cs) {
    std::set<std::string> out;
    for (const auto& c : cs)
        out.insert(std::string(contradiction_kind_name(c.kind)));
    return out;
}

struct Score {
    std::map<std::string, int> tp, fp, fn;
    int consistent = 0, consistent_flagged = 0;
    int all(const std::map<std::string, int>& m) const {
        int n = 0;
        for (const auto& [k, v] : m)
            n += v;
        return n;
    }
};

const std::vector<std::string>& kind_names() {
    static const std::vector<std::string> k = {"laterality",  "negation", "sequence",
                                               "number_unit", "modality", "anatomy"};
    return k;
}

// Scores the verifier on a table; with `each_case`, every disagreement is a test failure.
Score score(const std::vector<Case>& table, const char* name, bool each_case) {
    Score s;
    for (const Case& c : table) {
        auto got = kinds_of(verify_answer(c.source, c.answer));
        if (c.kinds.empty()) {
            ++s.consistent;
            if (!got.empty()) ++s.consistent_flagged;
        }
        for (const auto& k : kind_names()) {
            bool want = c.kinds.count(k) > 0, have = got.count(k) > 0;
            if (want && have) ++s.tp[k];
            if (!want && have) ++s.fp[k];
            if (want && !have) ++s.fn[k];
            if (want != have && each_case)
                ADD_FAILURE() << (have ? "false positive " : "missed ") << k
                              << "\n  source: " << c.source << "\n  answer: " << c.answer
                              << "\n  got: "
                              << describe_contradictions(verify_answer(c.source, c.answer));
        }
    }
    std::printf("%s: %zu cases, %d consistent (%d flagged)\n", name, table.size(), s.consistent,
                s.consistent_flagged);
    std::printf("%-12s %4s %4s %4s %9s %7s\n", "kind", "tp", "fp", "fn", "precision", "recall");
    for (const auto& k : kind_names()) {
        int p = s.tp[k] + s.fp[k], r = s.tp[k] + s.fn[k];
        std::printf("%-12s %4d %4d %4d %9.3f %7.3f\n", k.c_str(), s.tp[k], s.fp[k], s.fn[k],
                    p ? double(s.tp[k]) / p : 1.0, r ? double(s.tp[k]) / r : 1.0);
    }
    int tp = s.all(s.tp), fp = s.all(s.fp), fn = s.all(s.fn);
    std::printf("%-12s %4d %4d %4d %9.3f %7.3f\n", "all", tp, fp, fn,
                double(tp) / std::max(tp + fp, 1), double(tp) / std::max(tp + fn, 1));
    return s;
}

TEST(Verify, HandLabelledTablePrecisionAndRecall) {
    const auto& table = cases();
    ASSERT_GE(table.size(), 60u);
    Score s = score(table, "verify table", true);
    for (const auto& k : kind_names()) {
        int p = s.tp[k] + s.fp[k], r = s.tp[k] + s.fn[k];
        // Every kind has labelled positives; each must be found at least 3 times in 4, with at
        // most one false alarm in 10 flags.
        EXPECT_GE(r, 3) << k;
        EXPECT_GE(double(s.tp[k]) / std::max(r, 1), 0.75) << k;
        EXPECT_GE(double(s.tp[k]) / std::max(p, 1), 0.9) << k;
    }
    // The consistent cases (over half the table) are what the re-asks cost: at most 1 in 20
    // flagged.
    EXPECT_LE(s.consistent_flagged * 20, s.consistent);
}

TEST(Verify, HeldOutTable) {
    const auto& table = held_out_cases();
    ASSERT_GE(table.size(), 30u);
    Score s = score(table, "held-out table", false);
    int tp = s.all(s.tp), fp = s.all(s.fp), fn = s.all(s.fn);
    // A flag costs a paid re-ask and can reject a good sample: precision is the priority.
    EXPECT_GE(double(tp) / std::max(tp + fp, 1), 0.9);
    EXPECT_GE(double(tp) / std::max(tp + fn, 1), 0.75);
    EXPECT_EQ(s.consistent_flagged, 0);
}

TEST(Verify, EvidenceSpansPointIntoBothTexts) {
    const std::string src = "Chest X-ray shows a right-sided pleural effusion and a 2 cm nodule.";
    const std::string ans = "The radiograph shows a left pleural effusion and a 35 mm nodule.";
    auto cs = verify_answer(src, ans);
    ASSERT_EQ(cs.size(), 2u) << describe_contradictions(cs);
    EXPECT_EQ(cs[0].kind, ContradictionKind::kLaterality);
    EXPECT_EQ(cs[0].answer.text, "left pleural effusion");
    EXPECT_EQ(ans.substr(cs[0].answer.begin, cs[0].answer.end - cs[0].answer.begin),
              cs[0].answer.text);
    EXPECT_EQ(src.substr(cs[0].source.begin, cs[0].source.end - cs[0].source.begin),
              cs[0].source.text);
    EXPECT_NE(cs[0].source.text.find("right"), std::string::npos);
    EXPECT_EQ(cs[1].kind, ContradictionKind::kNumberUnit);
    EXPECT_EQ(cs[1].answer.text, "35 mm");
    EXPECT_EQ(cs[1].source.text, "2 cm");
    EXPECT_NE(cs[1].detail.find("35 mm"), std::string::npos);
    EXPECT_NE(cs[1].detail.find("20 mm"), std::string::npos);  // normalised in the detail
    std::string d = describe_contradictions(cs);
    EXPECT_NE(d.find("(laterality)"), std::string::npos);
    EXPECT_NE(d.find("(number_unit)"), std::string::npos);
}

TEST(Verify, KindsCanBeSwitchedOffAndEmptyTextsPass) {
    VerifyOptions o;
    o.kinds[static_cast<int>(ContradictionKind::kLaterality)] = false;
    EXPECT_TRUE(verify_answer("Left pleural effusion.", "Right pleural effusion.", o).empty());
    EXPECT_EQ(verify_answer("Left pleural effusion.", "Right pleural effusion.").size(), 1u);
    EXPECT_TRUE(verify_answer("", "Right pleural effusion.").empty());
    EXPECT_TRUE(verify_answer("Left pleural effusion.", "").empty());
    // Non-ASCII text: ×, µm, en dash, ≤.
    EXPECT_TRUE(verify_answer("A 3×4 cm mass; 5 µm sections; 2–3 mm nodules.",
                              "A 30 × 40 mm mass in 0.005 mm sections with 2-3 mm nodules.")
                    .empty());
    auto c = verify_answer("A 3×4 cm mass.", "A 6 × 8 cm mass.");
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].kind, ContradictionKind::kNumberUnit);
}

// Random token soup (broken UTF-8, stray units, triggers at the ends): every call returns, and
// every evidence span lies inside its text and matches it. A lone 0xE2 0x80 once looped forever.
TEST(Verify, RandomTextTerminatesWithValidSpans) {
    const std::vector<std::string> vocab = {
        "left",         "right",    "bilateral", "no",      "not",      "without",   "absence",
        "of",           "negative", "for",       "pleural", "effusion", "mass",      "2",
        "1.5",          "3x4",      "cm",        "mm",      "\xc3\x97", "\xc2\xb5m", "\xe2\x80\x93",
        "\xe2\x89\xa4", "year",     "old",       "-",       "aged",     "CT",        "MRI",
        "T1",           "T2",       "-weighted", "x-ray",   "brain",    "liver",     "kidney",
        "lung",         ".",        ",",         ";",       "?",        "(",         ")",
        "the",          "a",        "is",        "seen",    "be",       "excluded",  "two",
        "nodules",      "%",        "HU",        "ml",      "non-",     "enhancing", "lesion",
        "on",           "side",     "and",       "or",      "\n",       "\xff",      "\xc3",
        "\xe2\x80",     "y/o",      "months",    "15",      "from",     "T12",       "N0",
        "FLAIR",        "PET/CT",   "H&E",       "may",     ""};
    uint64_t state = 12345;
    auto next = [&] {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        return static_cast<size_t>(state >> 33);
    };
    size_t flags = 0;
    for (int it = 0; it < 2000; ++it) {
        std::string a, b;
        for (size_t i = 0, n = next() % 40; i < n; ++i)
            a += vocab[next() % vocab.size()] + (next() % 3 ? " " : "");
        for (size_t i = 0, n = next() % 40; i < n; ++i)
            b += vocab[next() % vocab.size()] + (next() % 3 ? " " : "");
        for (const auto& c : verify_answer(a, b)) {
            ++flags;
            ASSERT_LE(c.source.begin, c.source.end);
            ASSERT_LE(c.source.end, a.size());
            ASSERT_LE(c.answer.end, b.size());
            EXPECT_EQ(a.substr(c.source.begin, c.source.end - c.source.begin), c.source.text);
            EXPECT_EQ(b.substr(c.answer.begin, c.answer.end - c.answer.begin), c.answer.text);
        }
    }
    EXPECT_GT(flags, 0u);  // the soup does trip the rules
    EXPECT_TRUE(verify_answer("\xe2\x80is a mass", "a \xe2\x80 mass").empty());
}

// Real text: LLaVA-Med's own instruction examples. Each gpt turn is checked against the figure's
// caption + in-text mentions; these answers were written (by GPT-4, reviewed by the LLaVA-Med
// authors) from those very captions, so they are mostly consistent: the verifier must stay
// quiet on nearly all of them.
TEST(Verify, LlavaMedAnswersAgainstTheirCaptions) {
    auto path = test::shared_data() / "llava_med" / "instruct_few_shot_examples.json";
    if (!std::filesystem::exists(path)) GTEST_SKIP() << "no " << path;
    auto j = nlohmann::json::parse(test::read_text(path));
    int turns = 0, flagged = 0;
    for (const auto& ex : j) {
        std::string src = ex.value("fig_caption", "");
        for (const auto& m : ex["in_text_mention"])
            src += "\n" + (m.is_string() ? m.get<std::string>() : m.value("sentence", ""));
        for (const auto& t : ex["conversations"]) {
            if (t.value("from", "") != "gpt") continue;
            ++turns;
            auto cs = verify_answer(src, t.value("value", ""));
            if (!cs.empty()) {
                ++flagged;
                std::printf("flagged %s: %s\n", ex.value("pair_id", "").c_str(),
                            describe_contradictions(cs).c_str());
            }
        }
    }
    std::printf("llava-med: %d answers, %d flagged\n", turns, flagged);
    EXPECT_GE(turns, 20);
    EXPECT_LE(flagged * 10, turns);
}

}  // namespace
}  // namespace mf::reformat
