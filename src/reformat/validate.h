// Validation of a model's reply: robust JSON extraction, required fields, length bounds, and no
// mention of the reference text. Every failure has a stable snake_case reason code (the reject
// reason when the re-asks run out) and a detail the re-ask prompt quotes back to the model.
//
// Reason codes: no_json (no JSON object in the reply), bad_json (an object that does not parse
// even after repair), missing_field, empty_field, too_short, too_long, mentions_reference.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace mf::reformat {

// Extracts the JSON object from a model reply: strips Markdown code fences and text around the
// object, takes the first balanced {...}, and repairs the usual slips (raw newlines and tabs
// inside strings, a trailing comma before } or ], an object sent as an escaped JSON string).
// Errors: InvalidArgument whose message starts with "no_json:" or "bad_json:".
Result<nlohmann::json> extract_json_object(std::string_view reply);

struct Generated {
    std::string description;
    std::string question;
    std::string answer;
};

struct ValidationParams {
    bool need_qa = true;
    size_t min_description = 40, max_description = 12000;
    size_t min_question = 8, max_question = 2000;
    size_t min_answer = 20, max_answer = 12000;
};

struct ValidationError {
    std::string reason;  // stable code
    std::string detail;  // for the re-ask prompt and the reject
};

// Phrases that give away the reference text ("the caption", "provided text", ...), lower-case.
const std::vector<std::string_view>& reference_phrases();
// The first reference phrase found in `text` (case-insensitive, whole words, plural allowed),
// or "".
std::string_view find_reference_mention(std::string_view text);

// Validates one reply. Field names are matched loosely: image_description / description /
// Image_description, question / QA-query / query, answer / QA-answer.
// On failure fills *err and returns false.
bool validate_reply(std::string_view reply, const ValidationParams& p, Generated* out,
                    ValidationError* err);

}  // namespace mf::reformat
