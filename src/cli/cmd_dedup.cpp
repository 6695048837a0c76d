// PLACEHOLDER: being written; replaced before the first commit.
#include "cli/commands.h"
namespace mf::cli {
int run_dedup(int argc, char** argv) { return fail(Status::unsupported("dedup: not built yet")); }
}  // namespace mf::cli
