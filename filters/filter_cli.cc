#include "filters/filter_cli.h"

#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "filters/filter_api.h"
#include "filters/value_actions.h"

namespace edgeguard::privacy {

namespace {

constexpr int kExitUnchanged = 0;
constexpr int kExitRewritten = 1;
constexpr int kExitUsage = 2;
constexpr int kExitRejected = 4;

// Help asked for goes to stdout with status 0, like other servers' --help; a usage error to stderr with 2.
int usage(const std::string& why, bool asked = false) {
    std::ostream& out = asked ? std::cout : std::cerr;
    if (!why.empty()) out << "edgeguard filter: " << why << "\n";
    out << "usage: edgeguard filter --rules FILE --profile NAME [--content-type T] [--content-encoding E]\n"
                 "                        [--query Q] [--method M] [--path P] [--client-ip IP]\n"
                 "                        [--ip-policy forward|truncate|drop] [--explain] < body\n"
                 "exit: 0 unchanged, 1 rewritten, 2 usage/rules error, 4 rejected\n";
    return asked ? 0 : kExitUsage;
}

std::string json_string(std::string_view s) {
    std::string out = "\"";
    append_json_escaped(out, s);
    out.push_back('"');
    return out;
}

}  // namespace

int run_filter_cli(int argc, char** argv) {
    std::string rules_path, profile, content_type, content_encoding, query, method = "POST", path = "/batch/",
                                                                            client_ip = "127.0.0.1";
    IpPolicy ip_policy = IpPolicy::Forward;
    bool explain = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&](std::string& into) {
            if (i + 1 >= argc) return false;
            into = argv[++i];
            return true;
        };
        bool ok = true;
        if (arg == "--rules") ok = value(rules_path);
        else if (arg == "--profile") ok = value(profile);
        else if (arg == "--content-type") ok = value(content_type);
        else if (arg == "--content-encoding") ok = value(content_encoding);
        else if (arg == "--query") ok = value(query);
        else if (arg == "--method") ok = value(method);
        else if (arg == "--path") ok = value(path);
        else if (arg == "--client-ip") ok = value(client_ip);
        else if (arg == "--explain") explain = true;
        else if (arg == "--ip-policy") {
            std::string p;
            ok = value(p);
            if (p == "forward") ip_policy = IpPolicy::Forward;
            else if (p == "truncate") ip_policy = IpPolicy::Truncate;
            else if (p == "drop") ip_policy = IpPolicy::Drop;
            else return usage("--ip-policy must be forward, truncate or drop");
        } else if (arg == "-h" || arg == "--help") {
            return usage("", true);
        } else {
            return usage("unknown argument `" + std::string(arg) + "`");
        }
        if (!ok) return usage(std::string(arg) + " needs a value");
    }
    if (rules_path.empty() || profile.empty()) return usage("--rules and --profile are required");
    if (!query.empty() && query.front() == '?') query.erase(0, 1);

    std::vector<RuleError> errors;
    auto rules = RuleSet::load(rules_path, errors);
    for (const auto& e : errors) {
        std::cerr << e.file << ":" << e.line << ":" << e.col << ": " << (e.warning ? "warning: " : "")
                  << e.message << "\n";
    }
    if (!rules) return kExitUsage;
    if (!rules->has_profile(profile)) {
        std::cerr << "edgeguard filter: no profile `" << profile << "` in " << rules_path << "\n";
        return kExitUsage;
    }

    std::string body((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    FilterInput in;
    in.method = method;
    in.path = path;
    in.query = query;
    in.content_type = content_type;
    in.content_encoding = content_encoding;
    in.body = body;
    in.client_ip = client_ip;
    in.ip_policy = ip_policy;
    in.wire_limit = std::max<uint64_t>(in.wire_limit, body.size());

    const FilterOutput out = rules->apply(profile, in);
    if (explain) {
        const char* verdict = out.verdict == FilterOutput::Verdict::Unchanged   ? "unchanged"
                              : out.verdict == FilterOutput::Verdict::Rewritten ? "rewritten"
                                                                                : "rejected";
        std::cerr << "verdict: " << verdict << (out.report_only_hits ? " (report-mode hits)" : "") << "\n";
        for (const auto& a : out.audit) {
            std::cerr << "  " << a.rule_id << "\t" << (a.path.empty() ? "-" : a.path) << "\t" << a.action << "\t"
                      << a.count << "\n";
        }
        if (out.query_changed) std::cerr << "query: " << (out.query.empty() ? "(empty)" : out.query) << "\n";
    }
    switch (out.verdict) {
        case FilterOutput::Verdict::Unchanged:
            std::fwrite(body.data(), 1, body.size(), stdout);
            return kExitUnchanged;
        case FilterOutput::Verdict::Rewritten:
            std::fwrite(out.body.data(), 1, out.body.size(), stdout);
            return kExitRewritten;
        case FilterOutput::Verdict::Rejected: {
            std::string ids = "[";
            for (const auto& id : out.rule_ids) ids += (ids.size() > 1 ? "," : "") + json_string(id);
            ids += "]";
            std::cout << "{\"status\":" << out.status << ",\"code\":" << json_string(out.code)
                      << ",\"error\":" << json_string(out.error) << ",\"rule_ids\":" << ids << "}\n";
            return kExitRejected;
        }
    }
    return kExitUsage;
}

}  // namespace edgeguard::privacy
