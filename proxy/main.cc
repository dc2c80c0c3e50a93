// edgeguard: an edge reverse proxy that enforces privacy rules in front of a self-hosted PostHog.
#include <cstdio>
#include <cstring>
#include <string>

#include "proxy/config/config.h"
#include "proxy/core/server.h"
#if __has_include("proxy/ops/check.h")
#include "proxy/ops/check.h"
#define EDGEGUARD_HAVE_CHECK 1
#endif
#if __has_include("filters/filter_cli.h")
#include "filters/filter_cli.h"
#define EDGEGUARD_HAVE_FILTER_CLI 1
#endif

namespace {

int usage(FILE* out) {
    std::fprintf(out,
                 "usage: edgeguard <command> [options]\n"
                 "  serve --config FILE    run the proxy\n"
                 "  check --config FILE    validate a config (and the privacy rules it names)\n"
                 "  filter --rules FILE --profile NAME [...] < body\n"
                 "                         show what the privacy filter forwards for a body\n"
                 "  version                print the version\n");
    return out == stdout ? 0 : 2;
}

// Finds `--config FILE` (or `--config=FILE`) in argv[2..]; empty when absent.
std::string config_arg(int argc, char** argv) {
    for (int i = 2; i < argc; ++i) {
        if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc) return argv[i + 1];
        if (std::strncmp(argv[i], "--config=", 9) == 0) return argv[i] + 9;
    }
    return {};
}

int serve(int argc, char** argv) {
    std::string path = config_arg(argc, argv);
    if (path.empty()) {
        std::fprintf(stderr, "edgeguard serve: --config FILE is required\n");
        return 2;
    }
    edgeguard::ConfigLoadResult loaded = edgeguard::load_config(path);
    for (const auto& w : loaded.warnings) std::fprintf(stderr, "edgeguard: warning: %s\n", w.str().c_str());
    if (!loaded.config || !loaded.errors.empty()) {
        for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.str().c_str());
        std::fprintf(stderr, "edgeguard: config has errors, not starting\n");
        return 1;
    }
    edgeguard::Server server(path, loaded.config);
    return server.run();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage(stderr);
    const std::string command = argv[1];
    if (command == "serve") return serve(argc, argv);
    if (command == "check") {
        std::string path = config_arg(argc, argv);
        if (path.empty()) {
            std::fprintf(stderr, "edgeguard check: --config FILE is required\n");
            return 2;
        }
#ifdef EDGEGUARD_HAVE_CHECK
        return edgeguard::run_check(path);
#else
        std::fprintf(stderr, "edgeguard check: not available in this build\n");
        return 2;
#endif
    }
    if (command == "filter") {
#ifdef EDGEGUARD_HAVE_FILTER_CLI
        return edgeguard::privacy::run_filter_cli(argc - 1, argv + 1);
#else
        std::fprintf(stderr, "edgeguard filter: not available in this build\n");
        return 2;
#endif
    }
    if (command == "version" || command == "--version") {
        std::printf("edgeguard %s\n", EDGEGUARD_VERSION);
        return 0;
    }
    if (command == "help" || command == "--help" || command == "-h") return usage(stdout);
    std::fprintf(stderr, "edgeguard: unknown command '%s'\n", command.c_str());
    return usage(stderr);
}
