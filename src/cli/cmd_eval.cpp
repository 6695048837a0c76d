// PLACEHOLDER: being written; replaced before it lands.
#include "cli/commands.h"
namespace mf::cli {
int run_eval(int argc, char** argv) { return fail(Status::unsupported("eval: not built yet")); }
}  // namespace mf::cli
