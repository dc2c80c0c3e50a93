// Typed, position-aware reading of a parsed YAML document. Every problem becomes a ConfigError with the
// file:line:col of the offending node, and reading goes on so one run reports every mistake, not just the
// first.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/access/cidr.h"
#include "proxy/config/config.h"

namespace edgeguard {

class YamlReader {
  public:
    explicit YamlReader(std::string file) : file_(std::move(file)) {}

    // One key a mapping may hold: `read` is called with its value. Declaring the keys is what makes
    // unknown ones errors (with a "did you mean" hint for misspellings).
    struct Field {
        std::string_view key;
        std::function<void(const YAML::Node&)> read;
        bool required = false;
    };

    // Dispatches each key of `node` to its field. Unknown, duplicate, non-scalar and missing required keys
    // are errors. Returns false when `node` is not a mapping at all.
    bool read_map(const YAML::Node& node, std::string_view what, const std::vector<Field>& fields);
    // Calls `item` for each element; a null value reads as an empty list. False when `node` is not a
    // sequence.
    bool read_list(const YAML::Node& node, std::string_view what,
                   const std::function<void(const YAML::Node&)>& item);
    // For mappings keyed by user-chosen names (upstreams, rate_limits): `entry` gets the key and value nodes.
    bool read_named_map(const YAML::Node& node, std::string_view what,
                        const std::function<void(const YAML::Node& key, const YAML::Node& value)>& entry);

    std::optional<std::string> string(const YAML::Node& node, std::string_view what);
    std::optional<bool> boolean(const YAML::Node& node, std::string_view what);
    std::optional<uint64_t> unsigned_int(const YAML::Node& node, std::string_view what, uint64_t min,
                                         uint64_t max);
    std::optional<Millis> duration(const YAML::Node& node, std::string_view what);
    std::optional<uint64_t> size(const YAML::Node& node, std::string_view what);
    std::optional<double> rate(const YAML::Node& node, std::string_view what);
    std::optional<HostPort> address(const YAML::Node& node, std::string_view what);
    std::optional<Cidr> cidr(const YAML::Node& node, std::string_view what);
    // A list of CIDRs (or a single one) appended to `out`.
    void cidr_list(const YAML::Node& node, std::string_view what, CidrSet& out);

    void error(const YAML::Node& at, std::string message);
    void warning(const YAML::Node& at, std::string message);
    void error_at(int line, int col, std::string message);

    const std::string& file() const { return file_; }
    std::vector<ConfigError>& errors() { return errors_; }
    std::vector<ConfigError>& warnings() { return warnings_; }

  private:
    std::optional<std::string> scalar(const YAML::Node& node, std::string_view what,
                                      std::string_view expected);
    ConfigError at(const YAML::Node& node, std::string message) const;

    std::string file_;
    // Null values ("listeners:" with nothing after it) carry the position of the next token; errors about
    // them point at their key instead.
    std::vector<std::pair<YAML::Node, YAML::Mark>> null_value_keys_;
    std::vector<ConfigError> errors_;
    std::vector<ConfigError> warnings_;
};

}  // namespace edgeguard
