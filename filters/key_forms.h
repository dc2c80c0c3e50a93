// The forms of an object key that key rules compare against besides the key itself, so a rule written for
// `password` or `first[-_]?name` meets `userPassword`, `user_password`, `first name`, `ＰＡＳＳＷＯＲＤ` and `nаme`
// (a Cyrillic `а`):
//   1. Unicode NFKC (fullwidth and compatibility forms become their plain letters);
//   2. split into tokens at anything that is not a letter or digit (`_`, `-`, `.`, spaces, `$`) and at
//      camelCase boundaries (`userPassword`, `XMLHttpRequest` -> xml|http|request), lower-cased;
//   3. the same tokens with every non-ASCII character that Unicode TS #39 calls confusable with ASCII
//      replaced by its ASCII skeleton (ICU uspoof), so a Latin word spelt with Cyrillic or Greek look-alikes
//      reads as the Latin word. ASCII letters are never replaced (the skeleton of `m` is `rn`).
// Each token list gives its tokens joined with `_` and, unless the key starts with `$` (PostHog's own keys,
// such as `$os_name`, are matched whole), every tail of it: in a compound key the last words name what the
// value is (`billing_phone`, `customerFirstName`), the first ones qualify it (`phone_model`,
// `email_verified` are not a phone or an email). A key whose first word names an organisation (`company_inn`,
// `merchant_phone`, `org_address`) describes a business and is matched only whole.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace edgeguard::privacy {

// The client-IP keys ($ip, ip, ip_address) follow the route's IP policy and the `ip` detector, not rules
// written for their words (`ip_address` is not a street address): they have no forms.
inline bool is_client_ip_key(std::string_view key) {
    return key == "$ip" || key == "ip" || key == "ip_address";
}

// Appends to `out` the forms of `key` that differ from the key lower-cased (ASCII), without duplicates.
// A key that is one lower-case ASCII word adds nothing. Keys over 256 bytes are not split (no rule names
// such a key), nor are the client-IP keys. Thread-safe.
void append_key_forms(std::string_view key, std::vector<std::string>& out);

// Empty when every form can be computed; otherwise why not (the ICU data lacks an item the normaliser or
// the spoof checker reads), and append_key_forms would miss the NFKC or look-alike forms.
std::string key_forms_unavailable();

}  // namespace edgeguard::privacy
