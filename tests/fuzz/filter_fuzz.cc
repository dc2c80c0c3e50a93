// libFuzzer target for the privacy filter end to end: decode + walk + rules + rewrite, through
// RuleSet::apply with conf/privacy.yaml's profiles, as the proxy's privacy stage calls it.
//
// Input: byte 0 picks the profile (and a report-mode copy of the rules) and the client-IP policy, byte 1 the
// request shape (path, Content-Type, Content-Encoding, query hint, GET ?data=); the rest is the body. The
// rules are loaded once; the hash key comes from EDGEGUARD_HASH_KEY set here, so no key file is created.
// Invariants (abort on violation):
//  - a verdict is one of the enum values; a rejection carries a status capture's clients understand
//    (400/413/415/422) and a code;
//  - a rewritten body is valid UTF-8 JSON, and filtering it again (as the plain JSON the proxy forwards)
//    changes nothing: filtering twice equals filtering once;
//  - a report-mode profile never rewrites and never rejects for a rule (422), only for undecodable input;
//  - the inspect-only profile (webhooks) never rewrites;
//  - object traces (filters/walker/object_trace.h), warm from earlier inputs, change nothing: the same
//    input filtered again with traces off gives the same verdict, status, body, query and audit.
#include <simdjson.h>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "filters/filter_api.h"
#include "filters/walker/walker.h"

#ifndef EDGEGUARD_SOURCE_DIR
#error "EDGEGUARD_SOURCE_DIR must name the repository (tests/fuzz/CMakeLists.txt defines it)"
#endif

// A named namespace, not an anonymous one: tests/unit/fuzz_regressions_test.cc includes every target into
// one translation unit (with EDGEGUARD_FUZZ_NO_MAIN) to replay the inputs that once failed.
namespace edgeguard::fuzz::filter {

using namespace edgeguard::privacy;

void require(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "filter_fuzz invariant violated: %s\n", what);
        std::abort();
    }
}

struct LoadedRules {
    std::shared_ptr<const RuleSet> enforce;
    std::shared_ptr<const RuleSet>
        report;  // the same file with the events profile (and all it extends) in report mode
};

std::shared_ptr<const RuleSet> load_or_die(const std::string& text, const std::string& path) {
    std::vector<RuleError> errors;
    auto rules = RuleSet::load_text(text, path, errors);
    if (!rules) {
        for (const auto& e : errors)
            std::fprintf(stderr, "%s:%d:%d: %s\n", e.file.c_str(), e.line, e.col, e.message.c_str());
        std::fprintf(stderr, "filter_fuzz: cannot load %s\n", path.c_str());
        std::abort();
    }
    return rules;
}

const LoadedRules& rules() {
    static const LoadedRules loaded = [] {
        // A fixed key: deterministic hashes, and the loader never creates secrets/edgeguard_hash_key.
        setenv("EDGEGUARD_HASH_KEY", "fuzz-hash-key-0123456789abcdef", 1);
        const std::string path = std::string(EDGEGUARD_SOURCE_DIR) + "/conf/privacy.yaml";
        std::FILE* f = std::fopen(path.c_str(), "rb");
        if (f == nullptr) {
            std::fprintf(stderr, "filter_fuzz: cannot read %s\n", path.c_str());
            std::abort();
        }
        std::string text;
        char buf[4096];
        for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
        std::fclose(f);
        LoadedRules r;
        r.enforce = load_or_die(text, path);
        const std::string from = "mode: enforce";
        const size_t at = text.find(from);
        if (at == std::string::npos) {
            std::fprintf(stderr, "filter_fuzz: %s has no `mode: enforce` to turn into report mode\n",
                         path.c_str());
            std::abort();
        }
        text.replace(at, from.size(), "mode: report");
        r.report = load_or_die(text, path);
        return r;
    }();
    return loaded;
}

struct ProfileChoice {
    std::string_view name;
    bool report;
};
constexpr ProfileChoice kProfiles[] = {{"events", false},   {"flags", false},  {"replay", false},
                                       {"webhooks", false}, {"strict", false}, {"events", true},
                                       {"replay", true}};
constexpr IpPolicy kIpPolicies[] = {IpPolicy::Forward, IpPolicy::Truncate, IpPolicy::Drop};
constexpr std::string_view kClientIps[] = {"203.0.113.77", "2001:db8:85a3::8a2e:370:7334", "8.8.4.4"};
constexpr std::string_view kPaths[] = {"/e/",     "/batch/",  "/i/v0/e/", "/s/",
                                       "/flags/", "/decide/", "/engage/", "/capture/"};
constexpr std::string_view kTypes[] = {"", "application/json", "text/plain",
                                       "application/x-www-form-urlencoded"};
constexpr std::string_view kEncodings[] = {"", "gzip"};
constexpr std::string_view kQueries[] = {"", "compression=gzip-js", "compression=lz64",
                                         "ip=1&_=1700000000000&ver=1.36.0"};

// RFC 8259 grammar (UTF-8 is checked separately). Not simdjson's DOM parser: it refuses integers beyond 64
// bits, which are valid JSON, which capture accepts and which the filter rightly forwards untouched.
// Iterative, so nesting depth costs no stack.
class JsonChecker {
  public:
    explicit JsonChecker(std::string_view s) : s_(s) {}

    bool valid() {
        for (;;) {
            if (!value()) return false;
            // After a value: close containers, or move to the next member / element.
            for (;;) {
                ws();
                if (stack_.empty()) return i_ == s_.size();
                if (i_ >= s_.size()) return false;
                const char c = s_[i_++];
                if (c == ',') {
                    if (stack_.back() == '{' && !member_name()) return false;
                    break;
                }
                if (c != (stack_.back() == '{' ? '}' : ']')) return false;
                stack_.pop_back();
            }
        }
    }

  private:
    // One value; an opened container leaves its first member or element for the caller's next round, or is
    // closed at once when empty.
    bool value() {
        for (;;) {
            ws();
            if (i_ >= s_.size()) return false;
            const char c = s_[i_];
            if (c == '{' || c == '[') {
                ++i_;
                ws();
                if (i_ < s_.size() && s_[i_] == (c == '{' ? '}' : ']')) {
                    ++i_;
                    return true;
                }
                stack_.push_back(c);
                if (c == '{' && !member_name()) return false;
                continue;  // the first member's value or the first element
            }
            if (c == '"') return string();
            if (c == 't') return literal("true");
            if (c == 'f') return literal("false");
            if (c == 'n') return literal("null");
            return number();
        }
    }
    bool member_name() {
        ws();
        if (!string()) return false;
        ws();
        if (i_ >= s_.size() || s_[i_] != ':') return false;
        ++i_;
        return true;
    }
    void ws() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
    }
    bool digit() const { return i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9'; }
    bool literal(std::string_view word) {
        if (s_.substr(i_, word.size()) != word) return false;
        i_ += word.size();
        return true;
    }
    bool string() {
        if (i_ >= s_.size() || s_[i_] != '"') return false;
        for (++i_; i_ < s_.size(); ++i_) {
            const auto c = static_cast<unsigned char>(s_[i_]);
            if (c == '"') {
                ++i_;
                return true;
            }
            if (c < 0x20) return false;
            if (c != '\\') continue;
            if (++i_ >= s_.size()) return false;
            const char e = s_[i_];
            if (e == 'u') {
                for (int k = 0; k < 4; ++k) {
                    if (++i_ >= s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[i_]))) return false;
                }
            } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
                return false;
            }
        }
        return false;
    }
    bool number() {
        if (i_ < s_.size() && s_[i_] == '-') ++i_;
        if (!digit()) return false;
        if (s_[i_] == '0') {
            ++i_;
        } else {
            while (digit()) ++i_;
        }
        if (i_ < s_.size() && s_[i_] == '.') {
            ++i_;
            if (!digit()) return false;
            while (digit()) ++i_;
        }
        if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
            ++i_;
            if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
            if (!digit()) return false;
            while (digit()) ++i_;
        }
        return true;
    }

    std::string_view s_;
    size_t i_ = 0;
    std::vector<char> stack_;  // open containers: '{' or '['
};

bool is_valid_json(std::string_view text) {
    return JsonChecker(text).valid();
}

}  // namespace edgeguard::fuzz::filter

namespace edgeguard::fuzz::filter {

void initialize() {
    (void)rules();
}

int one_input(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    const uint8_t pick = data[0];
    const uint8_t shape = data[1];
    const std::string_view bytes(reinterpret_cast<const char*>(data + 2), size - 2);

    const ProfileChoice profile = kProfiles[pick % std::size(kProfiles)];
    const RuleSet& set = profile.report ? *rules().report : *rules().enforce;

    FilterInput in;
    in.method = "POST";
    in.path = kPaths[shape % std::size(kPaths)];
    in.content_type = kTypes[(shape / 8) % std::size(kTypes)];
    in.content_encoding = kEncodings[(shape / 32) % std::size(kEncodings)];
    in.ip_policy = kIpPolicies[(pick / 8) % std::size(kIpPolicies)];
    in.client_ip = kClientIps[(pick / 24) % std::size(kClientIps)];
    in.wire_limit = 1 << 20;
    std::string query(kQueries[(shape / 64) % std::size(kQueries)]);
    if ((shape & 0xC0) == 0xC0 && (pick & 0x80) != 0) {
        in.method = "GET";
        query = "data=" + std::string(bytes);
    } else {
        in.body = bytes;
    }
    in.query = query;

    const FilterOutput out = set.apply(profile.name, in);
    using Verdict = FilterOutput::Verdict;
    {
        auto& traces = privacy::walk::thread_scratch().traces;
        traces.enabled = false;
        const FilterOutput untraced = set.apply(profile.name, in);
        traces.enabled = true;
        require(untraced.verdict == out.verdict && untraced.status == out.status &&
                    untraced.body == out.body && untraced.query == out.query && untraced.code == out.code &&
                    untraced.audit == out.audit,
                "object traces change nothing");
    }
    require(out.verdict == Verdict::Unchanged || out.verdict == Verdict::Rewritten ||
                out.verdict == Verdict::Rejected,
            "verdict is an enum value");

    if (out.verdict == Verdict::Rejected) {
        require(out.status == 400 || out.status == 413 || out.status == 415 || out.status == 422,
                "rejection status is 400/413/415/422");
        require(!out.code.empty(), "a rejection has a code");
    }
    if (profile.report) {
        require(out.verdict != Verdict::Rewritten || in.ip_policy != IpPolicy::Forward,
                "report mode forwards the input unchanged");
        require(out.verdict != Verdict::Rejected || out.status != 422,
                "report mode never rejects for a rule");
    }
    if (profile.name == "webhooks" && in.ip_policy == IpPolicy::Forward)
        require(out.verdict != Verdict::Rewritten, "an inspect-only profile never rewrites");

    if (out.verdict == Verdict::Rewritten) {
        require(simdjson::validate_utf8(out.body.data(), out.body.size()), "rewritten body is UTF-8");
        require(is_valid_json(out.body), "rewritten body is valid JSON");
        // What the proxy forwards is plain JSON with the rewritten query; filtering it again is a no-op.
        FilterInput again = in;
        again.method = "POST";
        again.content_type = "application/json";
        again.content_encoding = "";
        again.body = out.body;
        again.query = out.query_changed ? std::string_view(out.query) : in.query;
        if (in.method == "GET") again.query = out.query;
        const FilterOutput second = set.apply(profile.name, again);
        if (second.verdict != Verdict::Unchanged) {
            std::fprintf(stderr, "second pass: verdict %d status %d code %s\n",
                         static_cast<int>(second.verdict), second.status, second.code.c_str());
            for (const auto& a : second.audit)
                std::fprintf(stderr, "  audit: %s %s %s x%u\n", a.rule_id.c_str(), a.path.c_str(),
                             a.action.c_str(), a.count);
        }
        require(second.verdict == Verdict::Unchanged, "filtering twice equals filtering once");
    }
    return 0;
}

}  // namespace edgeguard::fuzz::filter

#ifndef EDGEGUARD_FUZZ_NO_MAIN
extern "C" int LLVMFuzzerInitialize(int*, char***) {
    edgeguard::fuzz::filter::initialize();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return edgeguard::fuzz::filter::one_input(data, size);
}
#endif
