#include "reformat/prompts.h"

#include <fmt/core.h>

#include "core/hash.h"

namespace mf::reformat {

namespace {

constexpr std::string_view kJsonShape =
    "{\"image_description\": \"...\", \"question\": \"...\", \"answer\": \"...\"}";

uint64_t splitmix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

// A draw in [0, n) from (seed, sample id, stream): the RNG state is a hash of the three.
size_t draw(std::string_view sample_id, uint64_t seed, uint64_t stream, size_t n) {
    uint64_t h = splitmix(xxh64(sample_id, seed) ^ splitmix(stream));
    return static_cast<size_t>(h % n);
}

std::string images_phrase(size_t n) {
    if (n <= 1) return "the attached medical image";
    return fmt::format("the {} attached medical images (given in order: image 1 to image {})", n,
                       n);
}

}  // namespace

std::string_view method_name(Method m) {
    switch (m) {
        case Method::kMllmUnblinded:
            return "mllm-unblinded";
        case Method::kNativeCaption:
            return "native-caption";
        case Method::kLlmText:
            return "llm-text";
        case Method::kMllmImageOnly:
            return "mllm-image-only";
    }
    return "?";
}

Result<Method> parse_method(std::string_view name) {
    for (Method m :
         {Method::kMllmUnblinded, Method::kNativeCaption, Method::kLlmText, Method::kMllmImageOnly})
        if (name == method_name(m)) return m;
    return Status::invalid_argument(
        fmt::format("unknown method '{}': use mllm-unblinded (default), native-caption, llm-text "
                    "or mllm-image-only",
                    name));
}

std::string_view prompt_version(Method m) {
    switch (m) {
        case Method::kMllmUnblinded:
            return "unblinded-v1";
        case Method::kNativeCaption:
            return "native-caption-v1";
        case Method::kLlmText:
            return "llm-text-v1";
        case Method::kMllmImageOnly:
            return "image-only-v1";
    }
    return "?";
}

bool method_uses_model(Method m) {
    return m != Method::kNativeCaption;
}
bool method_sends_images(Method m) {
    return m == Method::kMllmUnblinded || m == Method::kMllmImageOnly;
}
bool method_has_instruction(Method m) {
    return m != Method::kNativeCaption;
}

const std::vector<Scenario>& scenarios() {
    static const std::vector<Scenario> k = {
        {"standard_qa",
         "Ask a plain, conversational question that checks whether someone really understood "
         "the image, and answer it the way an expert would: precise, detailed and full of "
         "useful observations taken from the image."},
        {"ai_assists_doctor",
         "A physician asks an AI assistant about the structures, abnormal findings and clinical "
         "relevance of what the image shows. The assistant answers with a careful, detailed "
         "analysis but leaves the final diagnosis to the physician."},
        {"ai_assists_patient",
         "A patient, curious or worried, asks an AI assistant what some region, shape or marking "
         "in their image means. The assistant explains in plain words with as little jargon as "
         "possible, and reminds the patient that their doctor makes the final interpretation."},
        {"doctor_and_family",
         "A relative of the patient asks the doctor about the cause, seriousness or treatment of "
         "what the image shows. The doctor answers patiently in everyday language, grounding the "
         "explanation in the image findings."},
        {"doctor_and_difficult_patient",
         "A sceptical patient challenges the doctor with a pointed or tricky question about the "
         "image. The doctor stays patient and uses the concrete image findings to explain and to "
         "earn the patient's trust."},
        {"doctor_to_doctor",
         "One doctor asks a colleague a professional question about the case in the image. The "
         "answer is a colleague's reply: technical, detailed and rich in findings."},
        {"evaluator_and_ai",
         "A quality-assurance reviewer tests an AI model's eye for subtle details in the image "
         "with a searching question. The AI answers with the fine, easily-missed details the "
         "image actually contains."},
        {"intern_and_specialist",
         "A junior doctor asks a specialist to explain something in the image. The specialist "
         "answers with a thorough, instructive analysis."},
        {"teacher_and_student",
         "A medical teacher asks a student to analyse the image and suggest possible diagnoses. "
         "The student's answer walks through what is seen and the reasoning that follows from "
         "it."},
        {"senior_and_intern",
         "A senior doctor quizzes an intern on what they observe in the image and how they "
         "interpret it. The intern answers, explaining the observations behind their view."},
    };
    return k;
}

const std::vector<std::string_view>& describe_questions_single() {
    static const std::vector<std::string_view> k = {
        "Describe this medical image in detail.",
        "What does this image show?",
        "Give a detailed account of the findings visible in this image.",
        "Walk me through what can be seen in this picture.",
        "Provide a thorough description of this image.",
        "What are the notable features of this image?",
        "Explain what is visible in this medical image.",
        "Summarise the content of this image in detail.",
        "Please write a comprehensive description of this figure.",
        "How would you describe this image to a colleague?",
        "Report on everything you can observe in this image.",
    };
    return k;
}

const std::vector<std::string_view>& describe_questions_plural() {
    static const std::vector<std::string_view> k = {
        "Describe these medical images in detail.",
        "What do these images show?",
        "Give a detailed account of the findings visible in these images.",
        "Walk me through what can be seen in these pictures.",
        "Provide a thorough description of these images.",
        "What are the notable features of these images?",
        "Explain what is visible in these medical images.",
        "Summarise the content of these images in detail.",
        "Please write a comprehensive description of these figures.",
        "How would you describe these images to a colleague?",
        "Report on everything you can observe in these images.",
    };
    return k;
}

size_t pick_scenario(std::string_view sample_id, uint64_t seed) {
    return draw(sample_id, seed, 1, scenarios().size());
}

std::string_view pick_describe_question(std::string_view sample_id, size_t n_images,
                                        uint64_t seed) {
    const auto& list = n_images > 1 ? describe_questions_plural() : describe_questions_single();
    return list[draw(sample_id, seed, 2, list.size())];
}

std::string context_text(const curate::Sample& s) {
    std::string out = "Caption: " + s.caption;
    if (!s.mentions.empty()) {
        out += "\nSentences that cite the figure:";
        for (const auto& m : s.mentions)
            out += "\n- " + m;
    }
    return out;
}

std::string build_prompt_text(const curate::Sample& s, Method m, size_t scenario,
                              std::string_view reask_error) {
    const Scenario& sc = scenarios()[scenario % scenarios().size()];
    const size_t n = s.images.size();
    std::string p;
    switch (m) {
        case Method::kMllmUnblinded:
            p = fmt::format(
                "You are writing training data for a medical vision-language model. Look "
                "carefully at {}.\n\n"
                "Task 1 - \"image_description\": describe the image content as an expert "
                "would: modality, view or stain, anatomy, and every visible finding with its "
                "location, size, shape, density or signal, plus any arrows or labels. Be as "
                "complete and precise as you can.\n"
                "Task 2 - \"question\" and \"answer\": write one question and its answer for "
                "this situation: {}\n\n"
                "Between <reference> and </reference> below is background text that comes with "
                "the image. Use it only to make sure what you write is correct. Everything you "
                "write must read as if it came from looking at the image alone: never mention, "
                "quote or hint at the reference, a caption, an article, a context or any "
                "provided text.\n\n"
                "Reply with a single JSON object and nothing else:\n{}\n\n"
                "<reference>\n{}\n</reference>",
                images_phrase(n), sc.instruction, kJsonShape, context_text(s));
            break;
        case Method::kLlmText:
            p = fmt::format(
                "You are writing training data for a medical vision-language model. You cannot "
                "see the image; you only have the text that accompanies it, given below. Write "
                "as though you were looking at the image yourself.\n\n"
                "Task 1 - \"image_description\": describe what the image shows (modality, "
                "anatomy, findings), in the voice of someone looking at it.\n"
                "Task 2 - \"question\" and \"answer\": write one question and its answer for "
                "this situation: {}\n\n"
                "Rules: do not use the words caption, context, text, mentioned or reference; do "
                "not claim more certainty than the text supports; give no personal medical "
                "advice, and suggest consulting a professional where advice would be needed.\n\n"
                "Reply with a single JSON object and nothing else:\n{}\n\n"
                "Image information:\n{}",
                sc.instruction, kJsonShape, context_text(s));
            break;
        case Method::kMllmImageOnly:
            p = fmt::format(
                "You are writing training data for a medical vision-language model. Look "
                "carefully at {}.\n\n"
                "Task 1 - \"image_description\": describe the image content as an expert "
                "would: modality, view or stain, anatomy, and every visible finding with its "
                "location, size, shape, density or signal, plus any arrows or labels.\n"
                "Task 2 - \"question\" and \"answer\": write one question and its answer for "
                "this situation: {}\n\n"
                "Reply with a single JSON object and nothing else:\n{}",
                images_phrase(n), sc.instruction, kJsonShape);
            break;
        case Method::kNativeCaption:
            return {};
    }
    if (!reask_error.empty()) {
        p += fmt::format(
            "\n\nYour previous reply could not be used: {}. Answer again, following every rule "
            "above, as one JSON object.",
            reask_error);
    }
    return p;
}

llm::ChatRequest build_request(const curate::Sample& s, Method m, const PromptOptions& opt,
                               const std::vector<std::string>& image_urls,
                               std::string_view reask_error) {
    llm::ChatRequest r;
    r.model = opt.model;
    r.temperature = opt.temperature;
    r.max_tokens = opt.max_tokens;
    r.json_object = opt.json_mode;
    r.user_tag = s.id;
    llm::ChatMessage msg;
    msg.role = "user";
    if (method_sends_images(m)) {
        for (const auto& url : image_urls) {
            llm::ContentPart part;
            part.kind = llm::ContentPart::Kind::kImageUrl;
            part.image_url = url;
            msg.content.push_back(std::move(part));
        }
    }
    llm::ContentPart text;
    text.kind = llm::ContentPart::Kind::kText;
    text.text = build_prompt_text(s, m, pick_scenario(s.id, opt.seed), reask_error);
    msg.content.push_back(std::move(text));
    r.messages.push_back(std::move(msg));
    return r;
}

}  // namespace mf::reformat
