#include "filters/json_non_finite.h"

#include <cstring>

namespace edgeguard::privacy {
namespace {

bool word_byte(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '$';
}

// Length of a non-finite token at `i` (outside a string, where a value may start), or 0.
size_t non_finite_at(std::string_view s, size_t i) {
    size_t k = i;
    if (s[k] == '-' || s[k] == '+') ++k;
    size_t word = 0;
    if (s.compare(k, 3, "NaN") == 0) word = 3;
    else if (s.compare(k, 8, "Infinity") == 0) word = 8;
    if (word == 0) return 0;
    const size_t end = k + word;
    if (end < s.size() && word_byte(s[end])) return 0;
    if (i > 0 && word_byte(s[i - 1])) return 0;
    return end - i;
}

}  // namespace

bool mask_non_finite_numbers(std::string_view json, std::string& out) {
    if (std::memchr(json.data(), 'N', json.size()) == nullptr && json.find("Infinity") == std::string_view::npos)
        return false;
    bool in_string = false, found = false;
    std::string copy;
    for (size_t i = 0; i < json.size(); ++i) {
        const char c = json[i];
        if (in_string) {
            if (c == '\\') ++i;
            else if (c == '"') in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
            continue;
        }
        if (c != 'N' && c != 'I' && c != '-' && c != '+') continue;
        const size_t len = non_finite_at(json, i);
        if (len == 0) continue;
        if (!found) {
            copy.assign(json.data(), json.size());
            found = true;
        }
        // A number of the same length: an optional '-', then "0e" and zeros.
        size_t at = i;
        if (json[i] == '-') copy[at++] = '-';
        copy[at++] = '0';
        copy[at++] = 'e';
        while (at < i + len) copy[at++] = '0';
        i += len - 1;
    }
    if (found) out = std::move(copy);
    return found;
}

}  // namespace edgeguard::privacy
