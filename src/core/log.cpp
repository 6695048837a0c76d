#include "core/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

namespace mf::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
}

void set_level(Level l) {
    g_level.store(static_cast<int>(l));
}
Level level() {
    return static_cast<Level>(g_level.load());
}
bool enabled(Level l) {
    return static_cast<int>(l) >= g_level.load();
}

void write(Level l, std::string_view message) {
    static constexpr char kTags[] = {'D', 'I', 'W', 'E'};
    std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    localtime_r(&now, &tm);
    char stamp[16];
    std::strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
    std::string line =
        fmt::format("[medforge] {} {} {}\n", kTags[static_cast<int>(l) & 3], stamp, message);
    std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace mf::log
