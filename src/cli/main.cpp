// medforge: one binary, `medforge <command>`; the command table is in commands.cpp.
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/clip_probe.h"
#include "cli/commands.h"

int main(int argc, char** argv) {
    using namespace mf::cli;
    if (argc < 2 || std::strcmp(argv[1], "help") == 0 || std::strcmp(argv[1], "--help") == 0 ||
        std::strcmp(argv[1], "-h") == 0) {
        if (argc >= 3 && std::strcmp(argv[1], "help") == 0) {
            if (const Command* c = find_command(argv[2])) {
                std::string name = std::string("medforge ") + c->name;
                char help[] = "--help";
                char* sub[] = {name.data(), help, nullptr};
                return c->run(2, sub);
            }
        }
        print_help();
        return argc < 2 ? kExitUsage : kExitOk;
    }
    if (std::strcmp(argv[1], "--version") == 0) {
        std::puts("medforge 0.1.0");
        return kExitOk;
    }
    // Classifier formats that need the model engine (curate only knows the interface).
    register_clip_probe_format();
    const Command* cmd = find_command(argv[1]);
    if (cmd == nullptr) {
        std::fprintf(stderr, "medforge: unknown command '%s'; run `medforge help` for the list\n",
                     argv[1]);
        return kExitUsage;
    }
    std::string name = std::string("medforge ") + cmd->name;
    argv[1] = name.data();
    return cmd->run(argc - 1, argv + 1);
}
