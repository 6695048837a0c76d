// Construction methods and their prompts (paper-spec §5–6), in medforge's own wording.
//
// Every method has a prompt version ("unblinded-v1", ...). The version is part of each ledger
// key, so changing the wording of a prompt means bumping its version: old answers are then never
// mixed with new ones, and a re-run asks again only for the new version.
//
// Determinism: the scenario of a sample's Instruction-Tuning VQA and the "describe" question of
// its Alignment VQA are drawn from a seeded RNG whose state is derived from (seed, sample id)
// only, so they do not depend on the order, sharding or resumption of a run.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "curate/sample.h"
#include "llm/client.h"

namespace mf::reformat {

enum class Method {
    kMllmUnblinded,  // images + caption + mentions (reference only) → description + scenario QA
    kNativeCaption,  // no model: the caption is the description; no instruction VQA
    kLlmText,        // blinded: text-only model, answers as if it saw the image
    kMllmImageOnly,  // images only, no context
};

std::string_view method_name(Method m);  // "mllm-unblinded", "native-caption", ...
Result<Method> parse_method(std::string_view name);
// The prompt version of a method ("unblinded-v1", "native-caption-v1", ...).
std::string_view prompt_version(Method m);
// True when the method sends a request to a model.
bool method_uses_model(Method m);
// True when the method's request carries the images.
bool method_sends_images(Method m);
// True when the method produces an Instruction-Tuning VQA (all but native-caption).
bool method_has_instruction(Method m);

// The 10 question-answer scenarios of paper-spec §5.3 (our wording).
struct Scenario {
    std::string_view key;          // stable snake_case name, written into the output lineage
    std::string_view instruction;  // what the model is asked to produce
};
const std::vector<Scenario>& scenarios();

// Generic "describe" questions for the Alignment VQA, by image count.
const std::vector<std::string_view>& describe_questions_single();
const std::vector<std::string_view>& describe_questions_plural();

// Seeded, per-sample draws (independent of each other).
size_t pick_scenario(std::string_view sample_id, uint64_t seed);
std::string_view pick_describe_question(std::string_view sample_id, size_t n_images, uint64_t seed);

// The text context of a sample as the prompts give it (caption, then mentions as a list).
std::string context_text(const curate::Sample& s);

struct PromptOptions {
    std::string model;
    double temperature = 0.7;
    int max_tokens = 2048;
    bool json_mode = false;  // response_format json_object
    uint64_t seed = 1;
};

// The user prompt text of a sample for a model method (no images). `reask_error` non-empty: the
// previous answer was invalid for this reason; the prompt says so and asks again.
std::string build_prompt_text(const curate::Sample& s, Method m, size_t scenario,
                              std::string_view reask_error = {});

// The chat request: one user message whose content is the images (as the given URLs, in order;
// only for methods that send images) followed by the prompt text.
llm::ChatRequest build_request(const curate::Sample& s, Method m, const PromptOptions& opt,
                               const std::vector<std::string>& image_urls,
                               std::string_view reask_error = {});

}  // namespace mf::reformat
