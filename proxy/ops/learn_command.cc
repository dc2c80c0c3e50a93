#include "proxy/ops/learn_command.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "filters/filter_api.h"
#include "filters/learn/proposal.h"

namespace edgeguard {

namespace {

constexpr const char* kUsage =
    "usage: edgeguard learn --profile NAME [--admin HOST:PORT] [--min-share 0.001] [--rules FILE]\n"
    "                       [--name NEW_PROFILE] [--out FILE]\n"
    "       edgeguard learn --profile NAME [--admin HOST:PORT] --diff PROPOSAL.yaml [--name NEW_PROFILE]\n"
    "\n"
    "Reads what profile NAME (with `learn: true` in the rules) observed from the admin listener's\n"
    "/privacy/observed (default 127.0.0.1:9180) and writes a proposed allowlist profile (default name\n"
    "NAME-learnt). With --rules, the output is that rules file with the profile added (extending NAME), "
    "ready\n"
    "for `edgeguard check`; without it, a standalone rules file. --diff shows which observed properties the\n"
    "proposal would drop and on which share of events.\n";

struct Args {
    std::string admin = "127.0.0.1:9180";
    std::string profile, rules, name, out, diff;
    double min_share = 0.001;
};

struct Fetch {
    event_base* base = nullptr;
    int status = 0;
    std::string body;
};

void on_response(evhttp_request* req, void* arg) {
    auto* f = static_cast<Fetch*>(arg);
    if (req != nullptr) {
        f->status = evhttp_request_get_response_code(req);
        evbuffer* buf = evhttp_request_get_input_buffer(req);
        const size_t n = evbuffer_get_length(buf);
        f->body.resize(n);
        evbuffer_copyout(buf, f->body.data(), n);
    }
    event_base_loopexit(f->base, nullptr);
}

// GET http://ADDR/privacy/observed with libevent's HTTP client.
bool fetch_observed(const std::string& admin, std::string& body, std::string& error) {
    // HOST:PORT or [IPv6]:PORT.
    const size_t bracket = admin.rfind(']');
    const size_t colon = admin.rfind(':');
    std::string host;
    uint16_t port = 0;
    if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
        host = admin.substr(0, colon);
        const long p = std::strtol(admin.c_str() + colon + 1, nullptr, 10);
        if (p > 0 && p <= 65535) port = static_cast<uint16_t>(p);
    }
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host.empty() || port == 0) {
        error = "--admin must be HOST:PORT";
        return false;
    }
    Fetch f;
    f.base = event_base_new();
    evhttp_connection* conn = evhttp_connection_base_new(f.base, nullptr, host.c_str(), port);
    evhttp_connection_set_timeout(conn, 10);
    evhttp_request* req = evhttp_request_new(&on_response, &f);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Host", host.c_str());
    bool ok = evhttp_make_request(conn, req, EVHTTP_REQ_GET, "/privacy/observed") == 0;
    if (ok) event_base_dispatch(f.base);
    evhttp_connection_free(conn);
    event_base_free(f.base);
    if (!ok || f.status == 0) {
        error = "cannot reach the admin listener at " + admin;
        return false;
    }
    if (f.status != 200) {
        error = "the admin listener at " + admin + " answered " + std::to_string(f.status) +
                " to /privacy/observed";
        return false;
    }
    body = std::move(f.body);
    return true;
}

bool read_file(const std::string& path, std::string& text) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    std::ostringstream ss;
    ss << in.rdbuf();
    text = ss.str();
    return true;
}

bool parse_args(int argc, char** argv, Args& a, std::string& error) {
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        std::string value;
        const size_t eq = arg.find('=');
        if (arg.rfind("--", 0) == 0 && eq != std::string::npos) {
            value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            error = arg + " needs a value";
            return false;
        }
        if (arg == "--admin")
            a.admin = value;
        else if (arg == "--profile")
            a.profile = value;
        else if (arg == "--rules")
            a.rules = value;
        else if (arg == "--name")
            a.name = value;
        else if (arg == "--out")
            a.out = value;
        else if (arg == "--diff")
            a.diff = value;
        else if (arg == "--min-share") {
            char* end = nullptr;
            a.min_share = std::strtod(value.c_str(), &end);
            if (end == value.c_str() || *end != '\0' || a.min_share < 0 || a.min_share > 1) {
                error = "--min-share must be a number between 0 and 1";
                return false;
            }
        } else {
            error = "unknown option " + arg;
            return false;
        }
    }
    if (a.profile.empty()) {
        error = "--profile NAME is required";
        return false;
    }
    if (a.name.empty()) a.name = a.profile + "-learnt";
    return true;
}

}  // namespace

int run_learn_command(int argc, char** argv) {
    for (int i = 1; i < argc; ++i)
        if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
            std::fputs(kUsage, stdout);
            return 0;
        }
    Args args;
    std::string error;
    if (!parse_args(argc, argv, args, error)) {
        std::fprintf(stderr, "edgeguard learn: %s\n%s", error.c_str(), kUsage);
        return 2;
    }
    std::string json;
    if (!fetch_observed(args.admin, json, error)) {
        std::fprintf(stderr, "edgeguard learn: %s\n", error.c_str());
        return 3;
    }
    privacy::learn::ObservedProfile observed;
    if (!privacy::learn::read_observed(json, args.profile, observed, error)) {
        std::fprintf(stderr, "edgeguard learn: %s\n", error.c_str());
        return 3;
    }
    if (!args.diff.empty()) {
        std::string proposal, report;
        if (!read_file(args.diff, proposal)) {
            std::fprintf(stderr, "edgeguard learn: cannot read %s\n", args.diff.c_str());
            return 2;
        }
        if (!privacy::learn::diff_proposal(observed, proposal, args.name, report, error)) {
            std::fprintf(stderr, "edgeguard learn: %s: %s\n", args.diff.c_str(), error.c_str());
            return 2;
        }
        std::fputs(report.c_str(), stdout);
        return 0;
    }
    privacy::learn::ProposalOptions options;
    options.source_profile = args.profile;
    options.proposed_name = args.name;
    options.min_share = args.min_share;
    if (!args.rules.empty() && !read_file(args.rules, options.rules_text)) {
        std::fprintf(stderr, "edgeguard learn: cannot read %s\n", args.rules.c_str());
        return 2;
    }
    std::string yaml;
    if (!privacy::learn::write_proposal(observed, options, yaml, error)) {
        std::fprintf(stderr, "edgeguard learn: %s\n", error.c_str());
        return 3;
    }
    // The proposal must load as it is: a file `check` would refuse is never written.
    std::vector<privacy::RuleError> errors;
    privacy::RuleLoadOptions load;
    load.create_missing_hash_key = false;
    const std::string where = args.rules.empty() ? "proposal.yaml" : args.rules;
    if (privacy::RuleSet::load_text(yaml, where, errors, load) == nullptr) {
        for (const auto& e : errors)
            if (!e.warning)
                std::fprintf(stderr, "edgeguard learn: proposal:%d:%d: %s\n", e.line, e.col,
                             e.message.c_str());
        return 3;
    }
    if (args.out.empty()) {
        std::fputs(yaml.c_str(), stdout);
        return 0;
    }
    std::ofstream out(args.out, std::ios::binary | std::ios::trunc);
    out << yaml;
    if (!out.flush()) {
        std::fprintf(stderr, "edgeguard learn: cannot write %s\n", args.out.c_str());
        return 2;
    }
    std::fprintf(stderr, "edgeguard learn: wrote profile `%s` to %s\n", args.name.c_str(), args.out.c_str());
    return 0;
}

}  // namespace edgeguard
