// PLACEHOLDER: being written; replaced before the first commit.
#include "cli/commands.h"
namespace mf::cli {
int run_lexicon(int argc, char** argv) { return fail(Status::unsupported("lexicon: not built yet")); }
}  // namespace mf::cli
