#include "test_util.h"

#include <unistd.h>

#include <sys/wait.h>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

namespace mf::test {

TempDir::TempDir() {
    const char* tmp = std::getenv("TMPDIR");
    fs::path base = tmp ? tmp : "/tmp";
    std::random_device rd;
    for (int i = 0; i < 100; ++i) {
        fs::path p =
            base / ("medforge-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
        if (fs::create_directory(p)) {
            path_ = p;
            return;
        }
    }
    std::abort();
}

TempDir::~TempDir() {
    if (std::getenv("MF_KEEP_TEST_DIRS")) return;
    std::error_code ec;
    fs::remove_all(path_, ec);
}

fs::path source_dir() {
    return MF_SOURCE_DIR;
}
fs::path shared_data() {
    return fs::path(MF_SHARED_DATA_DIR).lexically_normal();
}
fs::path fixtures() {
    return source_dir() / "tests" / "data";
}
fs::path medforge_binary() {
    return MF_BINARY;
}

void write_text(const fs::path& path, const std::string& content) {
    if (path.has_parent_path()) fs::create_directories(path.parent_path());
    std::ofstream f(path, std::ios::binary);
    f << content;
}

std::string read_text(const fs::path& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::vector<std::string> read_lines(const fs::path& path) {
    std::ifstream f(path, std::ios::binary);
    std::vector<std::string> out;
    std::string line;
    while (std::getline(f, line))
        out.push_back(line);
    return out;
}

CommandResult run_command(const std::string& cmdline) {
    CommandResult r;
    std::string full = "MF_NO_PROGRESS=1 " + cmdline + " 2>&1";
    FILE* p = ::popen(full.c_str(), "r");
    if (!p) return r;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0)
        r.output.append(buf.data(), n);
    int status = ::pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

CommandResult run_medforge(const std::string& args) {
    return run_command(medforge_binary().string() + " " + args);
}

}  // namespace mf::test
