#include "core/status.h"

namespace mf {

std::string_view status_code_name(StatusCode code) {
    switch (code) {
        case StatusCode::kOk:
            return "OK";
        case StatusCode::kInvalidArgument:
            return "InvalidArgument";
        case StatusCode::kNotFound:
            return "NotFound";
        case StatusCode::kIoError:
            return "IoError";
        case StatusCode::kCorruption:
            return "Corruption";
        case StatusCode::kUnsupported:
            return "Unsupported";
        case StatusCode::kFailedPrecondition:
            return "FailedPrecondition";
        case StatusCode::kResourceExhausted:
            return "ResourceExhausted";
        case StatusCode::kCancelled:
            return "Cancelled";
        case StatusCode::kUnavailable:
            return "Unavailable";
        case StatusCode::kInternal:
            return "Internal";
    }
    return "Unknown";
}

std::string Status::to_string() const {
    if (ok()) return "OK";
    std::string out(status_code_name(code_));
    out += ": ";
    out += message_;
    return out;
}

Status Status::with_context(std::string_view context) const {
    if (ok()) return *this;
    std::string m(context);
    m += ": ";
    m += message_;
    return {code_, std::move(m)};
}

}  // namespace mf
