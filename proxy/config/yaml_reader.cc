#include "proxy/config/yaml_reader.h"

#include <algorithm>
#include <set>

#include "proxy/config/config_values.h"

namespace edgeguard {

namespace {

size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            const size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diag = up;
        }
    }
    return row[b.size()];
}

// Built by appending: GCC 12 at -O3 reports a false -Wrestrict overlap in operator+(const char*, string&&).
std::string quoted(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 2);
    out.append(1, '\'').append(s).append(1, '\'');
    return out;
}

}  // namespace

ConfigError YamlReader::at(const YAML::Node& node, std::string message) const {
    ConfigError e;
    e.file = file_;
    YAML::Mark mark = node.Mark();
    if (node.IsNull()) {
        for (const auto& [value, key_mark] : null_value_keys_) {
            if (value.is(node)) mark = key_mark;
        }
    }
    // yaml-cpp marks are 0-based and -1 for nodes it synthesized; editors count from 1.
    if (mark.line >= 0) {
        e.line = mark.line + 1;
        e.col = mark.column + 1;
    }
    e.message = std::move(message);
    return e;
}

void YamlReader::error(const YAML::Node& node, std::string message) {
    errors_.push_back(at(node, std::move(message)));
}

void YamlReader::warning(const YAML::Node& node, std::string message) {
    warnings_.push_back(at(node, std::move(message)));
}

void YamlReader::error_at(int line, int col, std::string message) {
    errors_.push_back(ConfigError{file_, line, col, std::move(message)});
}

bool YamlReader::read_map(const YAML::Node& node, std::string_view what, const std::vector<Field>& fields) {
    if (!node.IsMap()) {
        error(node, std::string(what) + " must be a mapping of keys to values");
        return false;
    }
    std::set<std::string, std::less<>> seen;
    for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
            error(kv.first, std::string(what) + ": keys must be plain names");
            continue;
        }
        const std::string& key = kv.first.Scalar();
        if (!seen.insert(key).second) {
            error(kv.first, "duplicate key " + quoted(key) + " in " + std::string(what));
            continue;
        }
        auto field = std::find_if(fields.begin(), fields.end(), [&](const Field& f) { return f.key == key; });
        if (field == fields.end()) {
            std::string msg = "unknown key " + quoted(key) + " in " + std::string(what);
            std::string_view best;
            size_t best_distance = 3;  // suggest only near misses
            for (const Field& f : fields) {
                const size_t d = edit_distance(key, f.key);
                if (d < best_distance) {
                    best_distance = d;
                    best = f.key;
                }
            }
            if (!best.empty()) {
                msg += " (did you mean " + quoted(best) + "?)";
            } else {
                msg += " (expected one of:";
                for (const Field& f : fields) msg.append(1, ' ').append(f.key);
                msg += ")";
            }
            error(kv.first, std::move(msg));
            continue;
        }
        if (kv.second.IsNull()) null_value_keys_.emplace_back(kv.second, kv.first.Mark());
        field->read(kv.second);
    }
    for (const Field& f : fields) {
        if (f.required && seen.find(f.key) == seen.end()) {
            error(node, std::string(what) + " needs key " + quoted(f.key));
        }
    }
    return true;
}

bool YamlReader::read_list(const YAML::Node& node, std::string_view what,
                           const std::function<void(const YAML::Node&)>& item) {
    if (node.IsNull()) return true;
    if (!node.IsSequence()) {
        error(node, std::string(what) + " must be a list");
        return false;
    }
    for (const auto& element : node) item(element);
    return true;
}

bool YamlReader::read_named_map(const YAML::Node& node, std::string_view what,
                                const std::function<void(const YAML::Node&, const YAML::Node&)>& entry) {
    if (node.IsNull()) return true;
    if (!node.IsMap()) {
        error(node, std::string(what) + " must be a mapping of names to definitions");
        return false;
    }
    std::set<std::string, std::less<>> seen;
    for (const auto& kv : node) {
        if (!kv.first.IsScalar() || kv.first.Scalar().empty()) {
            error(kv.first, std::string(what) + ": names must be non-empty plain strings");
            continue;
        }
        if (!seen.insert(kv.first.Scalar()).second) {
            error(kv.first, "duplicate name " + quoted(kv.first.Scalar()) + " in " + std::string(what));
            continue;
        }
        if (kv.second.IsNull()) null_value_keys_.emplace_back(kv.second, kv.first.Mark());
        entry(kv.first, kv.second);
    }
    return true;
}

std::optional<std::string> YamlReader::scalar(const YAML::Node& node, std::string_view what,
                                              std::string_view expected) {
    if (!node.IsScalar()) {
        error(node, std::string(what) + ": expected " + std::string(expected));
        return std::nullopt;
    }
    return node.Scalar();
}

std::optional<std::string> YamlReader::string(const YAML::Node& node, std::string_view what) {
    return scalar(node, what, "a string");
}

std::optional<bool> YamlReader::boolean(const YAML::Node& node, std::string_view what) {
    auto text = scalar(node, what, "true or false");
    if (!text) return std::nullopt;
    if (*text == "true") return true;
    if (*text == "false") return false;
    error(node, std::string(what) + ": expected true or false, got " + quoted(*text));
    return std::nullopt;
}

std::optional<uint64_t> YamlReader::unsigned_int(const YAML::Node& node, std::string_view what, uint64_t min,
                                                 uint64_t max) {
    const std::string range = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
    auto text = scalar(node, what, range);
    if (!text) return std::nullopt;
    uint64_t v = 0;
    bool ok = !text->empty() && text->size() <= 19;
    for (char c : *text) {
        if (c < '0' || c > '9') {
            ok = false;
            break;
        }
        v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    if (!ok || v < min || v > max) {
        error(node, std::string(what) + ": expected " + range + ", got " + quoted(*text));
        return std::nullopt;
    }
    return v;
}

std::optional<Millis> YamlReader::duration(const YAML::Node& node, std::string_view what) {
    auto text = scalar(node, what, "a duration such as 500ms, 10s, 30m or 1h");
    if (!text) return std::nullopt;
    auto d = parse_duration(*text);
    if (!d)
        error(node, std::string(what) + ": expected a duration such as 500ms, 10s, 30m or 1h, got " +
                        quoted(*text));
    return d;
}

std::optional<uint64_t> YamlReader::size(const YAML::Node& node, std::string_view what) {
    auto text = scalar(node, what, "a size such as 512KB, 64KiB or 20MB");
    if (!text) return std::nullopt;
    auto s = parse_size(*text);
    if (!s)
        error(node,
              std::string(what) + ": expected a size such as 512KB, 64KiB or 20MB, got " + quoted(*text));
    return s;
}

std::optional<double> YamlReader::rate(const YAML::Node& node, std::string_view what) {
    auto text = scalar(node, what, "a rate such as 100/s, 600/m or 3600/h");
    if (!text) return std::nullopt;
    auto r = parse_rate(*text);
    if (!r)
        error(node, std::string(what) + ": expected a positive rate such as 100/s, 600/m or 3600/h, got " +
                        quoted(*text));
    return r;
}

std::optional<HostPort> YamlReader::address(const YAML::Node& node, std::string_view what) {
    auto text = scalar(node, what, "an address host:port or [v6]:port");
    if (!text) return std::nullopt;
    auto a = parse_host_port(*text);
    if (!a) {
        error(node, std::string(what) + ": expected host:port or [v6]:port with port 1-65535, got " +
                        quoted(*text));
    }
    return a;
}

std::optional<Cidr> YamlReader::cidr(const YAML::Node& node, std::string_view what) {
    auto text = scalar(node, what, "an address or CIDR such as 10.1.1.0/24 or ::1");
    if (!text) return std::nullopt;
    auto c = Cidr::parse(*text);
    if (!c) {
        error(node, std::string(what) + ": expected an address or CIDR such as 10.1.1.0/24 or ::1, got " +
                        quoted(*text));
        return c;
    }
    auto host = IpAddress::parse(text->substr(0, text->find('/')));
    if (host && host->bytes != c->network.bytes) {
        warning(node, std::string(what) + ": " + quoted(*text) + " has host bits set; it means " + c->str());
    }
    return c;
}

void YamlReader::cidr_list(const YAML::Node& node, std::string_view what, CidrSet& out) {
    if (node.IsScalar()) {
        if (auto c = cidr(node, what)) out.add(*c);
        return;
    }
    read_list(node, what, [&](const YAML::Node& item) {
        if (auto c = cidr(item, what)) out.add(*c);
    });
}

}  // namespace edgeguard
