// PLACEHOLDER: being written; replaced before the first commit.
#include "cli/commands.h"
namespace mf::cli {
int run_classifier(int argc, char** argv) { return fail(Status::unsupported("classifier: not built yet")); }
}  // namespace mf::cli
