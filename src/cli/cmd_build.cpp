// PLACEHOLDER: being written; replaced before the first commit.
#include "cli/commands.h"
namespace mf::cli {
int run_build(int argc, char** argv) { return fail(Status::unsupported("build: not built yet")); }
}  // namespace mf::cli
