#include "core/check.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>

namespace mf::detail {

void check_failed(const char* file, int line, const char* cond, const char* fmt, ...) {
    std::fprintf(stderr, "medforge: internal check failed at %s:%d: %s: ", file, line, cond);
    va_list args;
    va_start(args, fmt);
    std::vfprintf(stderr, fmt, args);
    va_end(args);
    std::fprintf(stderr,
                 "\n(this is a bug in medforge; please report it with the command you ran)\n");
    std::fflush(stderr);
    std::abort();
}

}  // namespace mf::detail
