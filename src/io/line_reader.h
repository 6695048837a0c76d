// Streams a text file line by line in large blocks (bounded memory), with 1-based line numbers.
// Lines are returned without the trailing '\n' (and without '\r' of CRLF files). A final line
// without '\n' is returned too. Views stay valid until the next call to next().
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/status.h"

namespace mf::io {

class LineReader {
  public:
    LineReader() = default;
    ~LineReader();
    LineReader(const LineReader&) = delete;
    LineReader& operator=(const LineReader&) = delete;

    Status open(const std::filesystem::path& path);
    // Returns false at end of file or on a read error (then status() is not OK).
    bool next(std::string_view* line);
    uint64_t line_no() const { return line_no_; }
    // Bytes consumed so far (including newlines).
    uint64_t bytes_read() const { return bytes_; }
    uint64_t file_size() const { return file_size_; }
    const Status& status() const { return status_; }
    const std::filesystem::path& path() const { return path_; }

  private:
    bool fill();

    std::FILE* f_ = nullptr;
    std::filesystem::path path_;
    std::string buf_;
    size_t pos_ = 0;
    size_t end_ = 0;
    bool eof_ = false;
    uint64_t line_no_ = 0;
    uint64_t bytes_ = 0;
    uint64_t file_size_ = 0;
    Status status_;
};

}  // namespace mf::io
