// The command table: `medforge help` and the dispatch in main.cpp are generated from it.
// Each command lives in cmd_<name>.cpp, parses its options into the library's params structs,
// calls the library, prints a summary and maps Status to an exit code. No logic here.
#pragma once

#include <CLI/CLI.hpp>

#include <atomic>
#include <span>
#include <string>

#include "core/status.h"
#include "curate/stage.h"

namespace mf::cli {

struct Command {
    const char* name;
    const char* summary;
    int (*run)(int argc, char** argv);  // argv[0] is "medforge <name>"
};

std::span<const Command> commands();
const Command* find_command(std::string_view name);
void print_help();

// Exit codes: 0 ok, 1 the command failed (message printed), 2 usage error.
constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

// Options most commands share.
struct CommonOptions {
    int threads = 0;            // 0 = all cores
    std::string shard = "0/1";  // i/N or "slurm"
    bool quiet = false;
    bool verbose = false;
};
void add_common_options(CLI::App& app, CommonOptions& opt, bool with_shard);
// Applies --quiet / --verbose to the logger.
void apply_common_options(const CommonOptions& opt);

// Parses argv with CLI11; returns -1 to continue, else the exit code to return (help or error).
int parse_args(CLI::App& app, int argc, char** argv);

// Prints "medforge: <context>: <status>" and returns kExitFailed.
int fail(const Status& st, std::string_view context = {});

// Installs a SIGINT/SIGTERM handler that sets the returned flag (long runs stop cleanly: in-flight
// work is finished or recorded); a second signal kills as usual. Idempotent.
const std::atomic<bool>* install_cancel_handler();

// One-line summary of a stage run, and the reasons table, on stderr (log info).
void print_stage_summary(const curate::StageStats& stats, const std::string& out_dir);

}  // namespace mf::cli
