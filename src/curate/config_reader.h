// Strict reading of JSON config objects: every field has a type and a default; a wrong type or an
// unknown key (a typo) is an error that names the full path ("filter.text.min_terms: expected an
// integer"). Keys starting with "//" are comments.
#pragma once

#include <nlohmann/json.hpp>

#include <set>
#include <string>
#include <vector>

#include "core/status.h"

namespace mf::curate {

class ConfigReader {
  public:
    // `path` is the dotted location of `obj` in the file, used in messages ("filter.text").
    ConfigReader(const nlohmann::json& obj, std::string path);

    Status get(const char* key, bool* out);
    Status get(const char* key, int* out, int min = INT32_MIN, int max = INT32_MAX);
    Status get(const char* key, uint64_t* out);
    Status get(const char* key, double* out, double min = -1e300, double max = 1e300);
    Status get(const char* key, float* out, double min = -1e300, double max = 1e300);
    Status get(const char* key, std::string* out);
    Status get(const char* key, std::vector<std::string>* out);
    // A sub-object (absent → empty object). Marks the key as known.
    Result<nlohmann::json> object(const char* key);
    // An array of objects (absent → empty).
    Result<std::vector<nlohmann::json>> objects(const char* key);
    bool has(const char* key) const;
    // Fails on any key that no get()/object() asked for.
    Status finish() const;
    const std::string& path() const { return path_; }
    std::string child_path(const char* key) const;

  private:
    Status type_error(const char* key, const char* expected) const;
    const nlohmann::json& obj_;
    std::string path_;
    std::set<std::string> known_;
    Status status_;
};

// Parses a JSON file (comments are not JSON: use "//" keys). Errors name the file and line.
Result<nlohmann::json> load_json_file(const std::string& path);

}  // namespace mf::curate
