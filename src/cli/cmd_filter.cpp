// PLACEHOLDER: being written; replaced before the first commit.
#include "cli/commands.h"
namespace mf::cli {
int run_filter(int argc, char** argv) { return fail(Status::unsupported("filter: not built yet")); }
}  // namespace mf::cli
