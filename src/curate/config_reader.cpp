#include "curate/config_reader.h"

#include "io/file.h"

namespace mf::curate {

ConfigReader::ConfigReader(const nlohmann::json& obj, std::string path)
    : obj_(obj), path_(std::move(path)) {
    if (!obj_.is_object() && !obj_.is_null())
        status_ =
            Status::invalid_argument((path_.empty() ? "config" : path_) + ": expected an object");
}

std::string ConfigReader::child_path(const char* key) const {
    return path_.empty() ? std::string(key) : path_ + "." + key;
}

Status ConfigReader::type_error(const char* key, const char* expected) const {
    return Status::invalid_argument(child_path(key) + ": expected " + expected + ", got " +
                                    obj_.at(key).dump());
}

bool ConfigReader::has(const char* key) const {
    return obj_.is_object() && obj_.contains(key);
}

Status ConfigReader::get(const char* key, bool* out) {
    known_.insert(key);
    if (!has(key)) return status_;
    const auto& v = obj_.at(key);
    if (!v.is_boolean()) return type_error(key, "true or false");
    *out = v.get<bool>();
    return {};
}

Status ConfigReader::get(const char* key, int* out, int min, int max) {
    known_.insert(key);
    if (!has(key)) return status_;
    const auto& v = obj_.at(key);
    if (!v.is_number_integer()) return type_error(key, "an integer");
    auto x = v.get<int64_t>();
    if (x < min || x > max)
        return Status::invalid_argument(child_path(key) + ": " + std::to_string(x) +
                                        " is out of range [" + std::to_string(min) + ", " +
                                        std::to_string(max) + "]");
    *out = static_cast<int>(x);
    return {};
}

Status ConfigReader::get(const char* key, uint64_t* out) {
    known_.insert(key);
    if (!has(key)) return status_;
    const auto& v = obj_.at(key);
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
        return type_error(key, "a non-negative integer");
    *out = v.get<uint64_t>();
    return {};
}

Status ConfigReader::get(const char* key, double* out, double min, double max) {
    known_.insert(key);
    if (!has(key)) return status_;
    const auto& v = obj_.at(key);
    if (!v.is_number()) return type_error(key, "a number");
    double x = v.get<double>();
    if (x < min || x > max)
        return Status::invalid_argument(child_path(key) + ": " + v.dump() + " is out of range [" +
                                        nlohmann::json(min).dump() + ", " +
                                        nlohmann::json(max).dump() + "]");
    *out = x;
    return {};
}

Status ConfigReader::get(const char* key, float* out, double min, double max) {
    double d = *out;
    MF_RETURN_IF_ERROR(get(key, &d, min, max));
    *out = static_cast<float>(d);
    return {};
}

Status ConfigReader::get(const char* key, std::string* out) {
    known_.insert(key);
    if (!has(key)) return status_;
    const auto& v = obj_.at(key);
    if (!v.is_string()) return type_error(key, "a string");
    *out = v.get<std::string>();
    return {};
}

Status ConfigReader::get(const char* key, std::vector<std::string>* out) {
    known_.insert(key);
    if (!has(key)) return status_;
    const auto& v = obj_.at(key);
    if (v.is_string()) {
        *out = {v.get<std::string>()};
        return {};
    }
    if (!v.is_array()) return type_error(key, "a string or an array of strings");
    out->clear();
    for (const auto& e : v) {
        if (!e.is_string()) return type_error(key, "an array of strings");
        out->push_back(e.get<std::string>());
    }
    return {};
}

Result<nlohmann::json> ConfigReader::object(const char* key) {
    known_.insert(key);
    if (!status_.ok()) return status_;
    if (!has(key)) return nlohmann::json::object();
    const auto& v = obj_.at(key);
    if (!v.is_object()) return type_error(key, "an object");
    return v;
}

Result<std::vector<nlohmann::json>> ConfigReader::objects(const char* key) {
    known_.insert(key);
    if (!status_.ok()) return status_;
    std::vector<nlohmann::json> out;
    if (!has(key)) return out;
    const auto& v = obj_.at(key);
    if (!v.is_array()) return type_error(key, "an array of objects");
    for (size_t i = 0; i < v.size(); ++i) {
        if (!v[i].is_object())
            return Status::invalid_argument(child_path(key) + "[" + std::to_string(i) +
                                            "]: expected an object");
        out.push_back(v[i]);
    }
    return out;
}

Status ConfigReader::finish() const {
    if (!status_.ok()) return status_;
    if (!obj_.is_object()) return {};
    for (auto it = obj_.begin(); it != obj_.end(); ++it) {
        const std::string& k = it.key();
        if (k.rfind("//", 0) == 0) continue;
        if (!known_.count(k)) {
            std::string known;
            for (const auto& x : known_)
                known += (known.empty() ? "" : ", ") + x;
            return Status::invalid_argument(child_path(k.c_str()) +
                                            ": unknown key (known: " + known + ")");
        }
    }
    return {};
}

Result<nlohmann::json> load_json_file(const std::string& path) {
    MF_ASSIGN_OR_RETURN(std::string text, io::read_file(path));
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
        // Convert the byte offset to a line number for the message.
        size_t line = 1;
        for (size_t i = 0; i < e.byte && i < text.size(); ++i)
            line += text[i] == '\n';
        return Status::invalid_argument(path + ":" + std::to_string(line) +
                                        ": invalid JSON: " + e.what());
    }
}

}  // namespace mf::curate
