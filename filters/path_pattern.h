// Path patterns that address JSON values inside one event: `properties.$set.email`, `**.email`,
// `properties.items[*].phone`, `properties./^e[-_]?mail$/`, `properties."a.b"`. Compiled once at load;
// matched against the walker's path stack without allocating.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace edgeguard::privacy {

// One step of the concrete path the walker is at: an object key (unescaped) or an array element.
struct PathStep {
    std::string_view key;  // empty for array elements
    bool is_index = false;
};

class PathPattern {
public:
    // Parses `text`; on failure returns null and sets `error` (with a 0-based column in `error_col`).
    static std::shared_ptr<const PathPattern> parse(std::string_view text, std::string* error, int* error_col);

    bool matches(const PathStep* steps, size_t count) const;
    const std::string& text() const { return text_; }
    // The literal key the pattern's last step requires (lower-case), or empty when the last step is a
    // wildcard/regex. Lets callers gate on the current key before running the full match.
    std::string_view last_literal() const { return last_literal_; }

    // Whether the pattern's last segment accepts this final step; a cheap first test before matches().
    bool last_step_matches(const PathStep& step) const;
    // Whether the pattern matches `steps` given that its last segment accepts the last step, which the
    // caller found by comparing one of the key's forms (key_forms.h) with last_step_matches.
    bool matches_given_last(const PathStep* steps, size_t count) const;

    ~PathPattern();

private:
    struct Segment {
        enum class Kind { Key, AnyKey, AnyIndex, Recursive, KeyRegex } kind = Kind::Key;
        std::string key_lower;
        std::shared_ptr<re2::RE2> regex;
    };
    bool match_from(size_t si, size_t end, const PathStep* steps, size_t count) const;
    bool segment_matches(const Segment& seg, const PathStep& step) const;

    std::string text_;
    std::string last_literal_;
    std::vector<Segment> segments_;
};

// Case-insensitive (ASCII) equality of a key against an already lower-cased literal.
bool key_equals_lower(std::string_view key, std::string_view lower);

// Shell-style glob (`*` any run, `?` one byte) used for event-name and property-name allowlists.
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace edgeguard::privacy
