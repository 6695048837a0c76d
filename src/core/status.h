// Status and Result<T>: expected failures as values (after LevelDB's status.h).
//
// A Status is a code plus a human message. OK is cheap. Messages say what went wrong and,
// where possible, what to do next ("... : run scripts/setup.sh"). Use with_context() to add the
// file, line or field on the way out, the way a loader adds "loading lexicon: ...".
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "core/check.h"

namespace mf {

enum class StatusCode {
    kOk = 0,
    kInvalidArgument,     // bad user input: flag, config field, malformed record
    kNotFound,            // file, field, model or item does not exist
    kIoError,             // the OS refused a read/write
    kCorruption,          // a file exists but its content is broken
    kUnsupported,         // a format or feature medforge does not handle
    kFailedPrecondition,  // the system is not in a state to do this (e.g. output exists)
    kResourceExhausted,   // limits: too large, too many
    kCancelled,           // stopped by the user (Ctrl-C)
    kUnavailable,         // a remote service did not answer
    kInternal,            // a bug or an unexpected library failure
};

std::string_view status_code_name(StatusCode code);

class [[nodiscard]] Status {
  public:
    Status() = default;
    Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

    static Status ok_status() { return {}; }
    static Status invalid_argument(std::string m) {
        return {StatusCode::kInvalidArgument, std::move(m)};
    }
    static Status not_found(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
    static Status io_error(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
    static Status corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
    static Status unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
    static Status failed_precondition(std::string m) {
        return {StatusCode::kFailedPrecondition, std::move(m)};
    }
    static Status resource_exhausted(std::string m) {
        return {StatusCode::kResourceExhausted, std::move(m)};
    }
    static Status cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
    static Status unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
    static Status internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

    bool ok() const { return code_ == StatusCode::kOk; }
    StatusCode code() const { return code_; }
    const std::string& message() const { return message_; }

    // "InvalidArgument: <message>", or "OK".
    std::string to_string() const;

    // Returns a copy whose message is "<context>: <message>". OK stays OK.
    Status with_context(std::string_view context) const;

  private:
    StatusCode code_ = StatusCode::kOk;
    std::string message_;
};

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
  public:
    Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
    Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
        MF_CHECK(!std::get<Status>(v_).ok(), "Result constructed from an OK Status");
    }

    bool ok() const { return std::holds_alternative<T>(v_); }
    const Status& status() const {
        static const Status kOk;
        return ok() ? kOk : std::get<Status>(v_);
    }
    T& value() & {
        MF_CHECK(ok(), "Result::value() on error: %s", std::get<Status>(v_).to_string().c_str());
        return std::get<T>(v_);
    }
    const T& value() const& {
        MF_CHECK(ok(), "Result::value() on error: %s", std::get<Status>(v_).to_string().c_str());
        return std::get<T>(v_);
    }
    T&& value() && {
        MF_CHECK(ok(), "Result::value() on error: %s", std::get<Status>(v_).to_string().c_str());
        return std::get<T>(std::move(v_));
    }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

  private:
    std::variant<T, Status> v_;
};

}  // namespace mf

#define MF_CONCAT_INNER_(a, b) a##b
#define MF_CONCAT_(a, b) MF_CONCAT_INNER_(a, b)

// Returns the Status from the enclosing function when `expr` is not OK.
#define MF_RETURN_IF_ERROR(expr)                 \
    do {                                         \
        ::mf::Status mf_status_ = (expr);        \
        if (!mf_status_.ok()) return mf_status_; \
    } while (0)

// `MF_ASSIGN_OR_RETURN(auto x, make_x());` declares x from a Result or returns its Status.
#define MF_ASSIGN_OR_RETURN(lhs, expr) \
    MF_ASSIGN_OR_RETURN_IMPL_(MF_CONCAT_(mf_result_, __LINE__), lhs, expr)
#define MF_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
    auto tmp = (expr);                            \
    if (!tmp.ok()) return tmp.status();           \
    lhs = std::move(tmp).value()
