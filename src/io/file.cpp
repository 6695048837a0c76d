#include "io/file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "core/text.h"

namespace mf::io {

Result<std::string> read_file(const fs::path& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
        int err = errno;
        if (err == ENOENT) return Status::not_found(path.string() + ": no such file");
        return Status::io_error(path.string() + ": cannot open: " + std::strerror(err));
    }
    std::string out;
    char buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
        out.append(buf, n);
    bool err = std::ferror(f) != 0;
    std::fclose(f);
    if (err) return Status::io_error(path.string() + ": read error");
    return out;
}

Status write_file_atomic(const fs::path& path, std::string_view content) {
    if (path.has_parent_path()) MF_RETURN_IF_ERROR(ensure_dir(path.parent_path()));
    fs::path tmp = path;
    tmp += ".tmp." + std::to_string(::getpid());
    OutFile out;
    MF_RETURN_IF_ERROR(out.open(tmp));
    out.write(content);
    MF_RETURN_IF_ERROR(out.close());
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) return Status::io_error(path.string() + ": cannot rename into place: " + ec.message());
    return {};
}

Status ensure_dir(const fs::path& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return Status::io_error(dir.string() + ": cannot create directory: " + ec.message());
    return {};
}

Result<std::vector<fs::path>> list_files(const fs::path& root, const std::vector<std::string>& exts,
                                         bool recursive) {
    std::error_code ec;
    if (!fs::exists(root, ec))
        return Status::not_found(root.string() + ": no such file or directory");
    std::vector<fs::path> out;
    auto consider = [&](const fs::directory_entry& e) {
        if (!e.is_regular_file()) return;
        if (!exts.empty()) {
            std::string ext = text::ascii_lower(e.path().extension().string());
            if (std::find(exts.begin(), exts.end(), ext) == exts.end()) return;
        }
        out.push_back(e.path());
    };
    if (fs::is_regular_file(root, ec)) {
        out.push_back(root);
        return out;
    }
    if (recursive) {
        for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
             it.increment(ec))
            consider(*it);
    } else {
        for (auto it = fs::directory_iterator(root, ec); !ec && it != fs::end(it); it.increment(ec))
            consider(*it);
    }
    if (ec) return Status::io_error(root.string() + ": cannot list: " + ec.message());
    std::sort(out.begin(), out.end());
    return out;
}

fs::path absolute_normal(const fs::path& p) {
    std::error_code ec;
    fs::path a = fs::absolute(p, ec);
    if (ec) a = p;
    return a.lexically_normal();
}

OutFile::~OutFile() {
    if (f_) (void)close();
}

Status OutFile::open(const fs::path& path, bool append) {
    if (f_) MF_RETURN_IF_ERROR(close());
    path_ = path;
    failed_ = false;
    f_ = std::fopen(path.c_str(), append ? "ab" : "wb");
    if (!f_) {
        return Status::io_error(path.string() +
                                ": cannot open for writing: " + std::strerror(errno) +
                                " (check the output directory exists and is writable)");
    }
    buf_.reserve(1 << 20);
    return {};
}

void OutFile::write(std::string_view s) {
    buf_.append(s);
    if (buf_.size() >= (1 << 20)) {
        if (std::fwrite(buf_.data(), 1, buf_.size(), f_) != buf_.size()) failed_ = true;
        buf_.clear();
    }
}

void OutFile::write_line(std::string_view s) {
    write(s);
    buf_.push_back('\n');
}

Status OutFile::flush() {
    if (!f_) return {};
    if (!buf_.empty()) {
        if (std::fwrite(buf_.data(), 1, buf_.size(), f_) != buf_.size()) failed_ = true;
        buf_.clear();
    }
    if (std::fflush(f_) != 0) failed_ = true;
    ::fsync(::fileno(f_));
    if (failed_) return Status::io_error(path_.string() + ": write failed (disk full?)");
    return {};
}

Status OutFile::close() {
    if (!f_) return {};
    Status st = flush();
    if (std::fclose(f_) != 0 && st.ok()) st = Status::io_error(path_.string() + ": close failed");
    f_ = nullptr;
    return st;
}

}  // namespace mf::io
