// File helpers with Status errors that name the path and say what to do.
#pragma once

#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace mf::io {

namespace fs = std::filesystem;

// Whole file into memory. NotFound / IoError name the path.
Result<std::string> read_file(const fs::path& path);
// Writes via a temporary file + rename, so readers never see a half-written file.
Status write_file_atomic(const fs::path& path, std::string_view content);
// mkdir -p with a readable error.
Status ensure_dir(const fs::path& dir);
// Regular files under `root` (recursive) whose extension (lower-case, with dot) is in `exts`
// (empty = all), sorted by path so every run sees the same order.
Result<std::vector<fs::path>> list_files(const fs::path& root, const std::vector<std::string>& exts,
                                         bool recursive = true);
// Lexically normalised absolute path (no symlink resolution; the file need not exist).
fs::path absolute_normal(const fs::path& p);

// A buffered output file; errors are sticky and reported by close().
class OutFile {
  public:
    OutFile() = default;
    ~OutFile();
    OutFile(const OutFile&) = delete;
    OutFile& operator=(const OutFile&) = delete;

    Status open(const fs::path& path, bool append = false);
    void write(std::string_view s);
    // Writes the line and a '\n'.
    void write_line(std::string_view s);
    Status flush();  // flushes and fsyncs
    Status close();
    bool is_open() const { return f_ != nullptr; }
    const fs::path& path() const { return path_; }

  private:
    std::FILE* f_ = nullptr;
    fs::path path_;
    bool failed_ = false;
    std::string buf_;
};

}  // namespace mf::io
