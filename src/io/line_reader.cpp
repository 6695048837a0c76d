#include "io/line_reader.h"

#include <cerrno>
#include <cstring>
#include <system_error>

namespace mf::io {

namespace {
constexpr size_t kBlock = 4 << 20;
}

LineReader::~LineReader() {
    if (f_) std::fclose(f_);
}

Status LineReader::open(const std::filesystem::path& path) {
    path_ = path;
    f_ = std::fopen(path.c_str(), "rb");
    if (!f_) {
        if (errno == ENOENT) return status_ = Status::not_found(path.string() + ": no such file");
        return status_ = Status::io_error(path.string() + ": cannot open: " + std::strerror(errno));
    }
    std::error_code ec;
    file_size_ = std::filesystem::file_size(path, ec);
    if (ec) file_size_ = 0;
    buf_.resize(kBlock);
    return {};
}

bool LineReader::fill() {
    // Move the unconsumed tail to the front, grow when a single line exceeds the buffer.
    size_t tail = end_ - pos_;
    if (pos_ > 0 && tail > 0) std::memmove(buf_.data(), buf_.data() + pos_, tail);
    pos_ = 0;
    end_ = tail;
    if (end_ == buf_.size()) buf_.resize(buf_.size() * 2);
    size_t n = std::fread(buf_.data() + end_, 1, buf_.size() - end_, f_);
    if (n == 0) {
        if (std::ferror(f_)) status_ = Status::io_error(path_.string() + ": read error");
        eof_ = true;
        return false;
    }
    end_ += n;
    return true;
}

bool LineReader::next(std::string_view* line) {
    if (!f_) return false;
    for (;;) {
        const char* start = buf_.data() + pos_;
        const void* nl = std::memchr(start, '\n', end_ - pos_);
        if (nl != nullptr) {
            size_t len = static_cast<const char*>(nl) - start;
            pos_ += len + 1;
            bytes_ += len + 1;
            if (len > 0 && start[len - 1] == '\r') --len;
            *line = std::string_view(start, len);
            ++line_no_;
            return true;
        }
        if (eof_ || !fill()) {
            if (pos_ < end_) {  // last line without newline
                size_t len = end_ - pos_;
                const char* s = buf_.data() + pos_;
                bytes_ += len;
                pos_ = end_;
                if (len > 0 && s[len - 1] == '\r') --len;
                *line = std::string_view(s, len);
                ++line_no_;
                return true;
            }
            return false;
        }
    }
}

}  // namespace mf::io
