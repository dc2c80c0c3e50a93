#include "filters/decode/url_form.h"

#include <algorithm>

namespace edgeguard::privacy {
namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool is_base64_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/' || c == '=';
}

// Calls fn(raw_key, raw_value) for each non-empty `&`-separated pair; a pair without `=` has an empty value.
template <class Fn>
void for_each_pair(std::string_view form, Fn&& fn) {
    size_t pos = 0;
    while (pos <= form.size()) {
        size_t amp = form.find('&', pos);
        if (amp == std::string_view::npos) amp = form.size();
        const std::string_view pair = form.substr(pos, amp - pos);
        if (!pair.empty()) {
            const size_t eq = pair.find('=');
            const std::string_view key = eq == std::string_view::npos ? pair : pair.substr(0, eq);
            const std::string_view value =
                eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
            if (!fn(key, value)) return;
        }
        pos = amp + 1;
    }
}

bool key_equals(std::string_view raw_key, std::string_view key) {
    // Fast path: most keys carry no escapes.
    if (raw_key.find_first_of("%+") == std::string_view::npos) return raw_key == key;
    return percent_decode(raw_key) == key;
}

}  // namespace

std::string percent_decode(std::string_view in, bool plus_is_space) {
    std::string out;
    out.reserve(in.size());
    size_t i = 0;
    while (i < in.size()) {
        // Copy runs without escapes in bulk: base64 payloads are mostly such runs. (A plain loop: the
        // library's find_first_of calls memchr on the set once per haystack byte.)
        size_t next = i;
        while (next < in.size() && in[next] != '%' && !(plus_is_space && in[next] == '+')) ++next;
        out.append(in.substr(i, next - i));
        i = next;
        if (i == in.size()) break;
        if (in[i] == '+') {
            out.push_back(' ');
            ++i;
            continue;
        }
        if (i + 2 < in.size() && hex_value(in[i + 1]) >= 0 && hex_value(in[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2])));
            i += 3;
            continue;
        }
        out.push_back('%');  // malformed escape: kept literally
        ++i;
    }
    return out;
}

DecodeResult<std::optional<std::string_view>> find_form_value(std::string_view form, std::string_view key) {
    std::optional<std::string_view> found;
    bool duplicate = false;
    for_each_pair(form, [&](std::string_view k, std::string_view v) {
        if (!key_equals(k, key)) return true;
        if (found) {
            duplicate = true;
            return false;
        }
        found = v;
        return true;
    });
    if (duplicate) return undecodable("duplicate form field");
    return found;
}

bool looks_like_form(std::string_view payload) {
    const std::string_view head = payload.substr(0, 128);
    static constexpr std::string_view kKeys[] = {"data=", "_=", "ip=", "compression="};
    for (const std::string_view k : kKeys) {
        for (size_t pos = head.find(k); pos != std::string_view::npos; pos = head.find(k, pos + 1)) {
            if (pos == 0 || head[pos - 1] == '&') return true;
        }
    }
    return false;
}

bool repair_base64_spaces(std::string& value) {
    if (value.find(' ') == std::string::npos) return false;
    if (!std::all_of(value.begin(), value.end(), [](char c) { return c == ' ' || is_base64_char(c); })) {
        return false;
    }
    std::replace(value.begin(), value.end(), ' ', '+');
    return true;
}

std::string query_without_keys(std::string_view query, std::initializer_list<std::string_view> keys) {
    std::string out;
    out.reserve(query.size());
    size_t pos = 0;
    while (pos <= query.size()) {
        size_t amp = query.find('&', pos);
        if (amp == std::string_view::npos) amp = query.size();
        const std::string_view pair = query.substr(pos, amp - pos);
        const std::string_view raw_key = pair.substr(0, pair.find('='));
        const bool drop = pair.empty() || std::any_of(keys.begin(), keys.end(), [&](std::string_view k) {
                              return key_equals(raw_key, k);
                          });
        if (!drop) {
            if (!out.empty()) out.push_back('&');
            out.append(pair);
        }
        pos = amp + 1;
    }
    return out;
}

}  // namespace edgeguard::privacy
