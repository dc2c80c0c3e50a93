// edgeguard: an edge reverse proxy that enforces privacy rules in front of a self-hosted PostHog.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "filters/filter_cli.h"
#include "filters/hmac_key.h"
#include "proxy/config/config.h"
#include "proxy/core/server.h"
#include "proxy/ops/check.h"
#include "proxy/ops/version.h"

namespace {

constexpr const char* kUsage =
    "usage: edgeguard <command> [options]\n"
    "  serve  --config FILE    run the proxy\n"
    "  check  --config FILE    validate a config and the privacy rules it names; changes nothing\n"
    "  filter --rules FILE --profile NAME [--explain] < body\n"
    "                          show what the privacy filter forwards for a body\n"
    "  keygen --out FILE       write a new hash key file (32 random bytes, mode 0600); never overwrites\n"
    "  version                 print the version, the commit and the library versions\n"
    "\n"
    "--config FILE and --config=FILE are the same; without either, serve and check read the file named by\n"
    "the EDGEGUARD_CONFIG environment variable.\n";

int usage(FILE* out) {
    std::fputs(kUsage, out);
    return out == stdout ? 0 : 2;
}

bool wants_help(int argc, char** argv) {
    for (int i = 2; i < argc; ++i) {
        if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) return true;
    }
    return false;
}

// The value of `--NAME VALUE` or `--NAME=VALUE` in argv[2..]; empty when absent.
std::string option_arg(int argc, char** argv, const char* name) {
    const size_t len = std::strlen(name);
    for (int i = 2; i < argc; ++i) {
        if (std::strncmp(argv[i], "--", 2) != 0 || std::strncmp(argv[i] + 2, name, len) != 0) continue;
        const char* rest = argv[i] + 2 + len;
        if (*rest == '\0' && i + 1 < argc) return argv[i + 1];
        if (*rest == '=') return rest + 1;
    }
    return {};
}

// --config FILE, --config=FILE, else $EDGEGUARD_CONFIG; empty when none is given.
std::string config_arg(int argc, char** argv) {
    std::string path = option_arg(argc, argv, "config");
    if (path.empty()) {
        const char* env = std::getenv("EDGEGUARD_CONFIG");
        if (env != nullptr) path = env;
    }
    return path;
}

int serve(int argc, char** argv) {
    std::string path = config_arg(argc, argv);
    if (path.empty()) {
        std::fprintf(stderr, "edgeguard serve: --config FILE (or EDGEGUARD_CONFIG) is required\n");
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

int check(int argc, char** argv) {
    std::string path = config_arg(argc, argv);
    if (path.empty()) {
        std::fprintf(stderr, "edgeguard check: --config FILE (or EDGEGUARD_CONFIG) is required\n");
        return 2;
    }
    return edgeguard::run_check(path);
}

int keygen(int argc, char** argv) {
    const std::string out = option_arg(argc, argv, "out");
    if (out.empty()) {
        std::fprintf(stderr, "edgeguard keygen: --out FILE is required\n");
        return 2;
    }
    std::string error;
    if (!edgeguard::privacy::HmacKey::create_file(out, &error)) {
        std::fprintf(stderr, "edgeguard keygen: %s\n", error.c_str());
        return 1;
    }
    std::printf("edgeguard keygen: wrote a new hash key to %s (mode 0600); back it up\n", out.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage(stderr);
    const std::string command = argv[1];
    if (command == "help" || command == "--help" || command == "-h") return usage(stdout);
    const bool known = command == "serve" || command == "check" || command == "filter" || command == "keygen" ||
                       command == "version" || command == "--version";
    if (!known) {
        std::fprintf(stderr, "edgeguard: unknown command '%s'\n", command.c_str());
        return usage(stderr);
    }
    if (command != "filter" && wants_help(argc, argv)) return usage(stdout);
    if (command == "serve") return serve(argc, argv);
    if (command == "check") return check(argc, argv);
    if (command == "keygen") return keygen(argc, argv);
    if (command == "filter") return edgeguard::privacy::run_filter_cli(argc - 1, argv + 1);
    std::fputs(edgeguard::version_report().c_str(), stdout);
    return 0;
}
