// The privacy rules conf/privacy.yaml ships, loaded once for the fuzz targets that filter through them, and the
// abort every target uses when one of its invariants breaks (libFuzzer reports the abort with the input).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "filters/filter_api.h"

#ifndef EDGEGUARD_SOURCE_DIR
#error "EDGEGUARD_SOURCE_DIR must name the repository (tests/fuzz/CMakeLists.txt defines it)"
#endif

namespace edgeguard::fuzz {

inline void require(bool condition, const char* target, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "%s invariant violated: %s\n", target, what);
        std::abort();
    }
}

// Loaded by LLVMFuzzerInitialize; the hash key comes from the environment set here, so no key file is created.
inline std::shared_ptr<const privacy::RuleSet>& shipped_rules() {
    static std::shared_ptr<const privacy::RuleSet> loaded;
    return loaded;
}

inline void load_shipped_rules() {
    setenv("EDGEGUARD_HASH_KEY", "fuzz-hash-key-0123456789abcdef", 1);
    std::vector<privacy::RuleError> errors;
    shipped_rules() = privacy::RuleSet::load(std::string(EDGEGUARD_SOURCE_DIR) + "/conf/privacy.yaml", errors);
    if (!shipped_rules()) {
        for (const auto& e : errors) std::fprintf(stderr, "%d:%d: %s\n", e.line, e.col, e.message.c_str());
        std::abort();
    }
}

}  // namespace edgeguard::fuzz
