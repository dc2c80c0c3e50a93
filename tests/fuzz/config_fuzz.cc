// libFuzzer target for the two YAML loaders: the proxy config (load_config_text) and the privacy
// rules (RuleSet::load_text) on arbitrary text. Both promise to never throw: every problem is an error value
// with a message, and a result exists exactly when there are no errors. An exception escaping either loader
// terminates the process, which libFuzzer reports as a crash.
//
// Input: byte 0 chooses the loader (even: proxy config, odd: privacy rules); the rest is the YAML text.
// The config is "read" from tests/fuzz/config/edgeguard.yaml (it is never written), so `rules: privacy.yaml`
// resolves to the small rules file there (loading conf/privacy.yaml takes seconds under the sanitizers). Side
// effects are kept out: the hash key comes from EDGEGUARD_HASH_KEY set here, and texts that ask for
// `create_if_missing` key files are skipped, since the rules loader would create the named file and its
// directory anywhere the fuzzer points.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "filters/filter_api.h"
#include "proxy/config/config.h"

#ifndef EDGEGUARD_SOURCE_DIR
#error "EDGEGUARD_SOURCE_DIR must name the repository (tests/fuzz/CMakeLists.txt defines it)"
#endif

// A named namespace, not an anonymous one: tests/unit/fuzz_regressions_test.cc includes every target into
// one translation unit (with EDGEGUARD_FUZZ_NO_MAIN) to replay the inputs that once failed.
namespace edgeguard::fuzz::config {

void require(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "config_fuzz invariant violated: %s\n", what);
        std::abort();
    }
}

// True when some mapping in the document has the key `create_if_missing` (however the YAML spells it:
// quoted, escaped or plain). Deeper than yaml-cpp's own nesting guard is never reached.
bool mentions_key_creation(const YAML::Node& node, int depth) {
    if (depth > 512) return true;  // not worth the risk: skip
    if (node.IsMap()) {
        for (const auto& kv : node) {
            if (kv.first.IsScalar() && kv.first.Scalar() == "create_if_missing") return true;
            if (mentions_key_creation(kv.first, depth + 1) || mentions_key_creation(kv.second, depth + 1))
                return true;
        }
    } else if (node.IsSequence()) {
        for (const auto& item : node)
            if (mentions_key_creation(item, depth + 1)) return true;
    }
    return false;
}

// The loaders read the first document with YAML::Load; the same parse here finds the key however it is
// spelled. Without "create" or a backslash escape in the text no key can spell it, which skips the second
// parse for most inputs.
bool may_create_files(const std::string& text) {
    if (text.find("create") == std::string::npos && text.find('\\') == std::string::npos) return false;
    try {
        return mentions_key_creation(YAML::Load(text), 0);
    } catch (...) {
        return false;  // not YAML: the loaders report it as an error before reading any key
    }
}

std::string config_path() {
    return std::string(EDGEGUARD_SOURCE_DIR) + "/tests/fuzz/config/edgeguard.yaml";
}

void fuzz_config(const std::string& text) {
    const edgeguard::ConfigLoadResult r = edgeguard::load_config_text(text, config_path());
    require((r.config != nullptr) == r.errors.empty(), "a config exists exactly when there are no errors");
    for (const auto& e : r.errors) {
        require(!e.message.empty(), "every config error has a message");
        require(e.line >= 0 && e.col >= 0, "config error positions are 1-based or 0");
    }
    for (const auto& w : r.warnings) require(!w.message.empty(), "every config warning has a message");
}

void fuzz_rules(const std::string& text) {
    std::vector<edgeguard::privacy::RuleError> errors;
    const auto rules = edgeguard::privacy::RuleSet::load_text(
        text, std::string(EDGEGUARD_SOURCE_DIR) + "/tests/fuzz/config/rules.yaml", errors);
    bool any_error = false;
    for (const auto& e : errors) {
        require(!e.message.empty(), "every rules error has a message");
        require(e.line >= 0 && e.col >= 0, "rules error positions are 1-based or 0");
        any_error = any_error || !e.warning;
    }
    require((rules != nullptr) == !any_error, "rules exist exactly when there are no errors");
    if (rules) {
        // A loaded rule set answers for each of its profiles without throwing.
        edgeguard::privacy::FilterInput in;
        in.method = "POST";
        in.path = "/batch/";
        in.content_type = "application/json";
        in.body =
            R"({"batch":[{"event":"$pageview","distinct_id":"a@b.example","properties":{"$ip":"8.8.8.8","email":"a@b.example"}}]})";
        for (const std::string& name : rules->profile_names()) {
            require(rules->has_profile(name), "a listed profile exists");
            (void)rules->apply(name, in);
        }
    }
}

}  // namespace edgeguard::fuzz::config

namespace edgeguard::fuzz::config {

void initialize() {
    setenv("EDGEGUARD_HASH_KEY", "fuzz-hash-key-0123456789abcdef", 1);
}

int one_input(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
    if (may_create_files(text)) return 0;
    if ((data[0] & 1) == 0) {
        fuzz_config(text);
    } else {
        fuzz_rules(text);
    }
    return 0;
}

}  // namespace edgeguard::fuzz::config

#ifndef EDGEGUARD_FUZZ_NO_MAIN
extern "C" int LLVMFuzzerInitialize(int*, char***) {
    edgeguard::fuzz::config::initialize();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return edgeguard::fuzz::config::one_input(data, size);
}
#endif
