#include "curate/image_classifier.h"

#include <fmt/core.h>

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "curate/stats_classifier.h"
#include "io/file.h"

namespace mf::curate {

namespace {
std::mutex& registry_mu() {
    static std::mutex mu;
    return mu;
}
std::map<std::string, ClassifierLoader>& registry() {
    static std::map<std::string, ClassifierLoader> r;
    return r;
}
}  // namespace

void register_classifier_format(const std::string& format, ClassifierLoader loader) {
    std::lock_guard<std::mutex> lock(registry_mu());
    registry()[format] = std::move(loader);
}

Result<std::unique_ptr<ImageClassifier>> load_image_classifier(const std::filesystem::path& path) {
    MF_ASSIGN_OR_RETURN(std::string text, io::read_file(path));
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return Status::invalid_argument(
            fmt::format("{}: not a classifier file (not a JSON object)", path.string()));
    std::string format = j.value("format", std::string());
    if (format == "medforge-image-classifier") {
        MF_ASSIGN_OR_RETURN(StatsClassifier c, StatsClassifier::load(path));
        return std::unique_ptr<ImageClassifier>(new StatsClassifier(std::move(c)));
    }
    ClassifierLoader loader;
    std::string known = "medforge-image-classifier";
    {
        std::lock_guard<std::mutex> lock(registry_mu());
        auto it = registry().find(format);
        if (it != registry().end()) loader = it->second;
        for (const auto& [k, _] : registry())
            known += ", " + k;
    }
    if (!loader)
        return Status::unsupported(
            fmt::format("{}: classifier format '{}' is not known to this program (known: {})",
                        path.string(), format, known));
    return loader(path);
}

}  // namespace mf::curate
