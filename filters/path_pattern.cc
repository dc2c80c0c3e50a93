#include "filters/path_pattern.h"

#include <re2/re2.h>

namespace edgeguard::privacy {

namespace {

char lower_ascii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string to_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = lower_ascii(c);
    return out;
}

}  // namespace

bool key_equals_lower(std::string_view key, std::string_view lower) {
    if (key.size() != lower.size()) return false;
    for (size_t i = 0; i < key.size(); ++i) {
        if (lower_ascii(key[i]) != lower[i]) return false;
    }
    return true;
}

bool glob_match(std::string_view pattern, std::string_view text) {
    size_t p = 0, t = 0, star_p = std::string_view::npos, star_t = 0;
    while (t < text.size()) {
        if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
            ++p;
            ++t;
        } else if (p < pattern.size() && pattern[p] == '*') {
            star_p = p++;
            star_t = t;
        } else if (star_p != std::string_view::npos) {
            p = star_p + 1;
            t = ++star_t;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') ++p;
    return p == pattern.size();
}

PathPattern::~PathPattern() = default;

std::shared_ptr<const PathPattern> PathPattern::parse(std::string_view text, std::string* error, int* error_col) {
    auto pattern = std::shared_ptr<PathPattern>(new PathPattern());
    pattern->text_ = std::string(text);
    auto fail = [&](size_t col, std::string message) -> std::shared_ptr<const PathPattern> {
        *error = "path `" + std::string(text) + "`: " + message;
        *error_col = static_cast<int>(col);
        return nullptr;
    };
    if (text.empty()) return fail(0, "empty path");
    size_t i = 0;
    bool expect_segment = true;
    while (i < text.size()) {
        const char c = text[i];
        if (c == '[') {
            if (text.substr(i, 3) != "[*]") return fail(i, "only `[*]` is supported as an array step");
            if (i == 0) return fail(i, "a path cannot start with `[*]`");
            pattern->segments_.push_back(Segment{Segment::Kind::AnyIndex, {}, nullptr});
            i += 3;
            expect_segment = false;
            continue;
        }
        if (c == '.') {
            if (expect_segment) return fail(i, "empty segment");
            expect_segment = true;
            ++i;
            continue;
        }
        if (!expect_segment) return fail(i, "expected `.` or `[*]`");
        expect_segment = false;
        if (c == '"') {
            const size_t end = text.find('"', i + 1);
            if (end == std::string_view::npos) return fail(i, "unterminated quoted segment");
            if (end == i + 1) return fail(i, "empty quoted segment");
            pattern->segments_.push_back(
                Segment{Segment::Kind::Key, to_lower(text.substr(i + 1, end - i - 1)), nullptr});
            i = end + 1;
            continue;
        }
        if (c == '/') {
            const size_t end = text.find('/', i + 1);
            if (end == std::string_view::npos) return fail(i, "unterminated key regex `/.../`");
            RE2::Options options;
            options.set_case_sensitive(false);
            options.set_log_errors(false);
            auto regex = std::make_shared<re2::RE2>(text.substr(i + 1, end - i - 1), options);
            if (!regex->ok()) return fail(i, "bad key regex: " + regex->error());
            pattern->segments_.push_back(Segment{Segment::Kind::KeyRegex, {}, std::move(regex)});
            i = end + 1;
            continue;
        }
        size_t end = i;
        while (end < text.size() && text[end] != '.' && text[end] != '[') ++end;
        const std::string_view word = text.substr(i, end - i);
        if (word == "**") {
            pattern->segments_.push_back(Segment{Segment::Kind::Recursive, {}, nullptr});
        } else if (word == "*") {
            pattern->segments_.push_back(Segment{Segment::Kind::AnyKey, {}, nullptr});
        } else {
            if (word.find('*') != std::string_view::npos) {
                return fail(i, "`*` must be a whole segment (use a /regex/ segment for partial keys)");
            }
            pattern->segments_.push_back(Segment{Segment::Kind::Key, to_lower(word), nullptr});
        }
        i = end;
    }
    if (expect_segment) return fail(text.size(), "path ends with `.`");
    if (pattern->segments_.back().kind == Segment::Kind::Recursive) {
        return fail(text.size(), "a path cannot end with `**`");
    }
    if (pattern->segments_.back().kind == Segment::Kind::Key) pattern->last_literal_ = pattern->segments_.back().key_lower;
    return pattern;
}

bool PathPattern::segment_matches(const Segment& seg, const PathStep& step) const {
    switch (seg.kind) {
        case Segment::Kind::Key:
            return !step.is_index && key_equals_lower(step.key, seg.key_lower);
        case Segment::Kind::AnyKey:
            return !step.is_index;
        case Segment::Kind::AnyIndex:
            return step.is_index;
        case Segment::Kind::KeyRegex:
            return !step.is_index && RE2::PartialMatch(step.key, *seg.regex);
        case Segment::Kind::Recursive:
            return true;
    }
    return false;
}

bool PathPattern::match_from(size_t si, size_t end, const PathStep* steps, size_t count) const {
    while (si < end) {
        const Segment& seg = segments_[si];
        if (seg.kind == Segment::Kind::Recursive) {
            // `**` eats zero or more steps (keys and array elements alike).
            for (size_t skip = 0; skip <= count; ++skip) {
                if (match_from(si + 1, end, steps + skip, count - skip)) return true;
            }
            return false;
        }
        if (count == 0 || !segment_matches(seg, *steps)) return false;
        ++si;
        ++steps;
        --count;
    }
    return count == 0;
}

bool PathPattern::last_step_matches(const PathStep& step) const { return segment_matches(segments_.back(), step); }

bool PathPattern::matches(const PathStep* steps, size_t count) const {
    return match_from(0, segments_.size(), steps, count);
}

bool PathPattern::matches_given_last(const PathStep* steps, size_t count) const {
    return count > 0 && match_from(0, segments_.size() - 1, steps, count - 1);
}

}  // namespace edgeguard::privacy
