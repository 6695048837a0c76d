// Helpers shared by the test suites: temporary directories, paths to fixtures and to
// ../shared/data, and running the medforge binary as a user would.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace mf::test {

namespace fs = std::filesystem;

// A fresh directory under $TMPDIR removed at destruction (kept when MF_KEEP_TEST_DIRS is set).
class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const fs::path& path() const { return path_; }
    fs::path operator/(const std::string& name) const { return path_ / name; }

  private:
    fs::path path_;
};

fs::path source_dir();       // the repository root
fs::path shared_data();      // ../shared/data (real samples)
fs::path fixtures();         // tests/data
fs::path medforge_binary();  // build/bin/medforge

void write_text(const fs::path& path, const std::string& content);
std::string read_text(const fs::path& path);
std::vector<std::string> read_lines(const fs::path& path);

struct CommandResult {
    int exit_code = -1;
    std::string output;  // stdout and stderr together
};
// Runs a shell command line, capturing output. MF_NO_PROGRESS is set for it.
CommandResult run_command(const std::string& cmdline);
// Runs `medforge <args>`.
CommandResult run_medforge(const std::string& args);

}  // namespace mf::test
