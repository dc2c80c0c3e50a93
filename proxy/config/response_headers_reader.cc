// ConfigLoader: reads `response_headers:` lists of listeners and routes.
#include "proxy/config/config_loader.h"
#include "proxy/pipeline/response_headers.h"

namespace edgeguard {

void ConfigLoader::read_response_headers(const YAML::Node& n, const std::string& what,
                                         std::vector<ResponseHeaderConfig>& out) {
    const std::string list = what + " response_headers";
    r_.read_list(n, list, [&](const YAML::Node& item) {
        ResponseHeaderConfig field;
        const bool ok = r_.read_map(
            item, list + " entry",
            {{"name", [&](const YAML::Node& v) { if (auto s = r_.string(v, list + " name")) field.name = *s; }, true},
             {"value", [&](const YAML::Node& v) { if (auto s = r_.string(v, list + " value")) field.value = *s; }, true},
             {"override", [&](const YAML::Node& v) {
                  if (auto b = r_.boolean(v, list + " override")) field.override_upstream = *b;
              }}});
        if (!ok || field.name.empty()) return;
        if (const std::string problem = response_header_problem(field.name, field.value); !problem.empty()) {
            r_.error(item, list + ": " + problem);
            return;
        }
        for (const ResponseHeaderConfig& earlier : out) {
            if (earlier.name.size() == field.name.size() &&
                std::equal(earlier.name.begin(), earlier.name.end(), field.name.begin(),
                           [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) ==
                                                       std::tolower(static_cast<unsigned char>(b)); })) {
                r_.error(item, list + ": '" + field.name + "' is listed twice");
                return;
            }
        }
        out.push_back(std::move(field));
    });
}

}  // namespace edgeguard
