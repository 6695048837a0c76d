#include "reformat/validate.h"

#include <gtest/gtest.h>

namespace mf::reformat {
namespace {

const std::string kDesc =
    "Axial contrast-enhanced CT of the abdomen showing a 2 cm hypodense lesion in segment VII.";
const std::string kQ = "What does the lesion in the liver look like?";
const std::string kA =
    "It is a well-circumscribed, non-enhancing hypodense lesion in the right lobe.";

std::string obj(const std::string& d = kDesc, const std::string& q = kQ,
                const std::string& a = kA) {
    return "{\"image_description\": \"" + d + "\", \"question\": \"" + q + "\", \"answer\": \"" +
           a + "\"}";
}

struct Case {
    const char* name;
    std::string reply;
    const char* reason;  // "" = valid
};

TEST(Validate, RealisticRepliesTable) {
    const std::vector<Case> cases = {
        {"plain object", obj(), ""},
        {"json code fence", "```json\n" + obj() + "\n```", ""},
        {"bare fence", "```\n" + obj() + "\n```", ""},
        {"text around", "Sure! Here is the JSON you asked for:\n" + obj() + "\nLet me know.", ""},
        {"fence after prose with braces", "Format {x}:\n```json\n" + obj() + "\n```", ""},
        {"raw newlines in strings",
         "{\"image_description\": \"" + kDesc + "\nSecond line.\", \"question\": \"" + kQ +
             "\", \"answer\": \"" + kA + "\"}",
         ""},
        {"escaped newlines", obj(kDesc + "\\nMore detail on the lesion."), ""},
        {"trailing comma",
         "{\"image_description\": \"" + kDesc + "\", \"question\": \"" + kQ + "\", \"answer\": \"" +
             kA + "\",\n}",
         ""},
        {"paper keys",
         "{\"Image_description\": \"" + kDesc + "\", \"QA-query\": \"" + kQ +
             "\", \"QA-answer\": \"" + kA + "\"}",
         ""},
        {"nested qa",
         "{\"image_description\": \"" + kDesc + "\", \"qa\": {\"question\": \"" + kQ +
             "\", \"answer\": \"" + kA + "\"}}",
         ""},
        {"object as escaped string",
         "\"{\\\"image_description\\\": \\\"" + kDesc + "\\\", \\\"question\\\": \\\"" + kQ +
             "\\\", \\\"answer\\\": \\\"" + kA + "\\\"}\"",
         ""},
        {"escaped quotes without outer string",
         "{\\\"image_description\\\": \\\"" + kDesc + "\\\", \\\"question\\\": \\\"" + kQ +
             "\\\", \\\"answer\\\": \\\"" + kA + "\\\"}",
         ""},
        {"braces inside strings", obj(kDesc + " Label {A} marks it."), ""},
        {"no json at all", "I'm sorry, I cannot help with medical images.", "no_json"},
        {"truncated reply", "{\"image_description\": \"" + kDesc + "\", \"question\": \"Wha",
         "bad_json"},
        {"broken json", "{\"image_description\": " + kDesc + "}", "bad_json"},
        {"missing answer",
         "{\"image_description\": \"" + kDesc + "\", \"question\": \"" + kQ + "\"}",
         "missing_field"},
        {"answer not a string",
         "{\"image_description\": \"" + kDesc + "\", \"question\": \"" + kQ + "\", \"answer\": 42}",
         "missing_field"},
        {"empty question", obj(kDesc, "   "), "empty_field"},
        {"description too short", obj("CT scan."), "too_short"},
        {"description too long", obj(std::string(20000, 'x')), "too_long"},
        {"mentions caption", obj(kDesc, kQ, "As the caption says, the lesion is benign-looking."),
         "mentions_reference"},
        {"mentions reference", obj("Based on the reference information, " + kDesc),
         "mentions_reference"},
        {"mentions provided text", obj(kDesc, kQ, "The provided text describes a hepatic cyst."),
         "mentions_reference"},
        {"mentions context in question",
         obj(kDesc, "What does the provided context say about the liver?"), "mentions_reference"},
        {"ordinary medical phrases pass",
         obj(kDesc + " In the context of cirrhosis, values within the reference range and the "
                     "passage of contrast are noted."),
         ""},
        {"mentions case-insensitively", obj(kDesc, kQ, "ACCORDING TO THE TEXT it is a cyst."),
         "mentions_reference"},
    };
    for (const auto& c : cases) {
        Generated g;
        ValidationError err;
        bool ok = validate_reply(c.reply, ValidationParams{}, &g, &err);
        if (std::string(c.reason).empty()) {
            EXPECT_TRUE(ok) << c.name << ": " << err.reason << " " << err.detail;
            if (ok) {
                EXPECT_EQ(g.question, kQ) << c.name;
                EXPECT_EQ(g.answer, kA) << c.name;
                EXPECT_EQ(g.description.substr(0, 20), kDesc.substr(0, 20)) << c.name;
            }
        } else {
            EXPECT_FALSE(ok) << c.name;
            EXPECT_EQ(err.reason, c.reason) << c.name << ": " << err.detail;
            EXPECT_FALSE(err.detail.empty()) << c.name;
        }
    }
}

TEST(Validate, RawNewlineBecomesNewline) {
    Generated g;
    ValidationError err;
    std::string reply = "{\"image_description\": \"" + kDesc +
                        "\nSecond line.\", \"question\": \"" + kQ + "\", \"answer\": \"" + kA +
                        "\"}";
    ASSERT_TRUE(validate_reply(reply, {}, &g, &err)) << err.detail;
    EXPECT_EQ(g.description, kDesc + "\nSecond line.");
}

TEST(Validate, DescriptionOnlyWhenNoQaNeeded) {
    ValidationParams p;
    p.need_qa = false;
    Generated g;
    ValidationError err;
    EXPECT_TRUE(validate_reply("{\"description\": \"" + kDesc + "\"}", p, &g, &err)) << err.detail;
    EXPECT_EQ(g.description, kDesc);
}

TEST(Validate, FindsReferencePhrases) {
    EXPECT_EQ(find_reference_mention("Nothing to see."), "");
    EXPECT_EQ(find_reference_mention("the Figure Legend says"), "figure legend");
    for (auto p : reference_phrases())
        EXPECT_EQ(find_reference_mention("x " + std::string(p) + " y"), p);
}

TEST(Validate, ExtractErrorsCarryTheirCode) {
    auto r = extract_json_object("nothing");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().message().rfind("no_json:", 0), 0u);
    auto r2 = extract_json_object("{\"a\": 1,, }");
    ASSERT_FALSE(r2.ok());
    EXPECT_EQ(r2.status().message().rfind("bad_json:", 0), 0u);
}

}  // namespace
}  // namespace mf::reformat
