// Reads the `tcp:` section of the config file into a TcpConfig, reporting mistakes at file:line:col like the
// rest of the loader. Runs after `upstreams:` and `listeners:` are read: it resolves upstream names and
// refuses an address another listener already uses.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <string>

#include "proxy/config/config.h"
#include "proxy/tcp/tcp_config.h"
#include "proxy/config/yaml_reader.h"

namespace edgeguard {

// Reads a `tls:` mapping the way HTTP listeners' are read (the loader's reader, so both accept the same keys
// and check the files alike).
using TlsSectionReader = std::function<void(const YAML::Node& node, const std::string& what, TlsConfig& out)>;

// `config` holds the sections read so far (upstreams, listeners, admin, limits).
TcpConfig read_tcp_section(YamlReader& reader, const YAML::Node& node, const Config& config,
                           const TlsSectionReader& read_tls);

}  // namespace edgeguard
