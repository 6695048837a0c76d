// PLACEHOLDER: being written; replaced before it lands.
#include "cli/commands.h"
namespace mf::cli {
int run_reformat(int argc, char** argv) { return fail(Status::unsupported("reformat: not built yet")); }
}  // namespace mf::cli
