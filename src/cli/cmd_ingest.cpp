// PLACEHOLDER: being written; replaced before the first commit.
#include "cli/commands.h"
namespace mf::cli {
int run_ingest(int argc, char** argv) { return fail(Status::unsupported("ingest: not built yet")); }
}  // namespace mf::cli
