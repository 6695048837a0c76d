// PLACEHOLDER: being written; replaced before the first commit.
#include "cli/commands.h"
namespace mf::cli {
int run_card(int argc, char** argv) { return fail(Status::unsupported("card: not built yet")); }
}  // namespace mf::cli
