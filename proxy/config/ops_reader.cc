// ConfigLoader: reads `admin:` and `access_log:`.
#include "proxy/config/config_loader.h"

namespace edgeguard {

void ConfigLoader::read_admin(const YAML::Node& n) {
    r_.read_map(
        n, "admin",
        {{"address",
          [&](const YAML::Node& v) {
              if (auto a = r_.address(v, "admin.address")) cfg_.admin.address = *a;
          }},
         {"allow", [&](const YAML::Node& v) { r_.cidr_list(v, "admin.allow", cfg_.admin.allow); }}});
}

void ConfigLoader::read_access_log(const YAML::Node& n) {
    AccessLogConfig& a = cfg_.access_log;
    r_.read_map(n, "access_log",
                {{"output",
                  [&](const YAML::Node& v) {
                      auto s = r_.string(v, "access_log.output");
                      if (!s) return;
                      if (s->empty()) {
                          r_.error(v, "access_log.output: expected stdout, off or a file path");
                      } else if (*s == "off") {
                          a.enabled = false;
                          a.output = "off";
                      } else if (*s == "stdout") {
                          a.output = "stdout";
                      } else {
                          a.output = config_files::resolve_path(dir_, *s);
                      }
                  }},
                 {"include_query", [&](const YAML::Node& v) {
                      if (auto b = r_.boolean(v, "access_log.include_query")) a.include_query = *b;
                  }}});
}

}  // namespace edgeguard
