// MF_CHECK: always-on assertion for programmer errors (never for user input).
// Prints file:line and a printf-style message, then aborts.
#pragma once

namespace mf::detail {
[[noreturn]] void check_failed(const char* file, int line, const char* cond, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));
}  // namespace mf::detail

#define MF_CHECK(cond, ...)                                                              \
    do {                                                                                 \
        if (!(cond)) ::mf::detail::check_failed(__FILE__, __LINE__, #cond, __VA_ARGS__); \
    } while (0)
