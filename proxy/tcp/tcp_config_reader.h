// Reads the `tcp:` section of the config file into a TcpConfig, reporting mistakes at file:line:col like the
// rest of the loader. Runs after `upstreams:` and `listeners:` are read: it resolves upstream names and
// refuses an address another listener already uses.
#pragma once

#include <yaml-cpp/yaml.h>

#include "proxy/config.h"
#include "proxy/tcp/tcp_config.h"
#include "proxy/yaml_reader.h"

namespace edgeguard {

// `config` holds the sections read so far (upstreams, listeners, admin, limits).
TcpConfig read_tcp_section(YamlReader& reader, const YAML::Node& node, const Config& config);

}  // namespace edgeguard
