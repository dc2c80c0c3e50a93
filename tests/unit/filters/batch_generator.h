// Random /batch bodies for differential tests (a fast path against the general one must give the same
// verdict, output and audit): events repeat a template of members with small mutations (a changed value, an
// inserted, deleted or swapped member, personal data, invalid tokens, escapes, nested objects, other
// spacing).
#pragma once

#include <algorithm>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace edgeguard::privacy::testing {

using Member = std::pair<std::string, std::string>;  // raw key text, raw value text

inline const std::vector<Member>& member_pool() {
    static const std::vector<Member> pool = {
        {"$os", R"("Android")"},
        {"$lib", R"("posthog-android")"},
        {"$app_version", R"("4.12.0")"},
        {"$screen_name", R"("Home")"},
        {"$screen_name", R"("Checkout")"},
        {"$screen_width", "1080"},
        {"$screen_density", "2.625"},
        {"$network_wifi", "true"},
        {"$is_emulator", "false"},
        {"gone", "null"},
        {"plan", R"("pro")"},
        {"plan", R"("free")"},
        {"price", "1299.0"},
        {"quantity", "3"},
        {"note", R"("ok")"},
        {"note", R"("ok jane.doe@example.com")"},
        {"note", R"("call +7 916 123-45-67")"},
        {"note", R"("ok\u0020jane.doe\u0040example.com")"},
        {"card", "4111111111111111"},
        {"card", "4111111111111112"},
        {"order_ref", R"("ORD-2026-100001")"},
        {"$current_url", R"("https://shop.example/p?email=a%40b.co&x=1")"},
        {"$current_url", R"("https://shop.example/p")"},
        {"$ip", R"("203.0.113.9")"},
        {"$ip", R"("10.1.1.7")"},
        {"email", R"("none")"},
        {"phone", R"("+79161234567")"},
        {"n\\u006fte", R"("jane.doe@example.com")"},
        {"k\\u0065y", R"("v")"},
        {"long", "\"" + std::string(100, 'x') + "\""},
        {"long", "\"" + std::string(100, 'x') + " jane.doe@example.com\""},
        {"$set", R"({"email":"olga@example.ru","plan":"pro"})"},
        {"$set", R"({"plan":"pro","$os":"Android"})"},
        {"items", R"(["a",1,{"phone":"+79161234567"},{"sku":"A-1"}])"},
        {"nested", R"({"note":"ok","deep":{"note":"ok","card":4111111111111111}})"},
        {"token", R"("phx_abcdefghijklmnopqrstuvwxyz0123456789ABCD")"},
        {"version", R"("10.7.31.9")"},
        {"empty", R"("")"},
        {"user", R"("Иванов Иван Иванович")"},
        {"inn", R"("500100732259")"},
        // Keys whose first 16 bytes are the same (one index entry), one of them a key rule's
        {"$device_manufacturer", R"("Google")"},
        {"$device_manufacturer_phone", R"("+79161234567")"},
        {"$device_manufacturer\\u005fphone", R"("ok")"},
        {"$feature/new-checkout", R"("test")"},
        {"$feature/new-checkout-email", R"("jane.doe@example.com")"},
        // Numbers that extend, shorten or look like a remembered one, under one key
        {"price", "12990"},
        {"price", "129"},
        {"price", "-1299.0"},
        {"price", "7916123456.0"},
        {"quantity", "3.0"},
        {"$network_wifi", "false"},
        {"$network_wifi", "null"},
        // Values whose bytes alone may prove them clean (UUIDs, timestamps, short numbers), beside
        // look-alikes that must still be scanned: one byte off, a hit after the shape, an escape, a URL key
        {"$session_id", R"("01983d9b-8639-78fa-ac26-b9e7bf716521")"},
        {"$session_id", R"("01983D9B-8639-78FA-AC26-B9E7BF716521")"},
        {"$session_id", R"("01983d9b-8639-78fa-ac26-b9e7bf71652g")"},
        {"$session_id", R"("01983d9b-8639-78fa-ac26-b9e7bf716521 jane.doe@example.com")"},
        {"$session_id", R"("\u00301983d9b-8639-78fa-ac26-b9e7bf716521")"},
        {"$current_url", R"("01983d9b-8639-78fa-ac26-b9e7bf716521")"},
        {"timestamp", R"("2026-11-27T10:00:01.123Z")"},
        {"timestamp", R"("2026-11-27T10:00:01+03:00")"},
        {"timestamp", R"("2026-11-27T10:00:01Z +79161234567")"},
        {"timestamp", R"("2026-11-27T10:00:01.1234567891Z")"},
        {"timestamp", R"("2026-11-27T10:00:01.123Z\u0020")"},
        {"epoch", "1732700401123"},
        {"tel", "79161234567"},
        {"n", "79161234567"},
        {"n", "-7916123456"},
        {"n", "7.9161234567E10"},
        {"n", "79161e6"},
        {"n", "123456789"},
        {"n", "-12345678"},
        {"n", "1E3"},
    };
    return pool;
}

// Values that are not JSON (or not a value the walker accepts): the body must be refused with or without
// traces, also when the same member was clean in the event before.
inline const std::vector<std::string>& bad_values() {
    static const std::vector<std::string> bad = {"12x",      "tru",  "01",    "1.",  "-",    "1e",   "nul",
                                                 R"("a\x")", "2.5e", "falsy", "-01", "nulL", "1.0E+"};
    return bad;
}

class BatchGenerator {
  public:
    // `shuffle`: every event's members in an order of their own (no member order repeats the event before).
    // `fresh_values`: every event also carries short values drawn anew (order references, build numbers,
    // random runs of digits, letters and separators that now and then read as personal data), which no
    // memo can know, under plain keys and key-rule keys.
    explicit BatchGenerator(uint64_t seed, bool shuffle = false, bool fresh_values = false)
        : rnd_(seed), shuffle_(shuffle), fresh_values_(fresh_values) {}

    std::string next() {
        if (templ_.empty() || pick(4) == 0) new_template();
        const size_t events = 1 + pick(5);
        std::string b = R"({"api_key":"phc_test","batch":[)";
        for (size_t i = 0; i < events; ++i) {
            if (i) b += ",";
            b += event();
        }
        return b + "]}";
    }

  private:
    size_t pick(size_t n) { return static_cast<size_t>(rnd_() % n); }

    void new_template() {
        const auto& pool = member_pool();
        templ_.clear();
        const size_t n = 3 + pick(12);
        for (size_t i = 0; i < n; ++i) templ_.push_back(pool[pick(pool.size())]);
        colon_ = pick(3) == 0 ? ": " : ":";
        comma_ = pick(3) == 0 ? ", " : ",";
    }

    std::string event() {
        static const char* kNames[] = {"$screen", "$identify", "app_open", "purchase"};
        static const char* kIds[] = {"user-1", "jane@example.com", "01906f6e-7c5b-7a3e-9b2f-3d4c5e6f7a8b"};
        std::vector<Member> members = templ_;
        const auto& pool = member_pool();
        const size_t mutations = pick(3) == 0 ? 1 + pick(2) : 0;
        for (size_t m = 0; m < mutations && !members.empty(); ++m) {
            const size_t at = pick(members.size());
            switch (pick(5)) {
                case 0:
                    members[at].second = pool[pick(pool.size())].second;
                    break;
                case 1:
                    members.insert(members.begin() + static_cast<long>(at), pool[pick(pool.size())]);
                    break;
                case 2:
                    members.erase(members.begin() + static_cast<long>(at));
                    break;
                case 3:
                    if (at + 1 < members.size()) std::swap(members[at], members[at + 1]);
                    break;
                case 4:
                    if (pick(4) == 0) members[at].second = bad_values()[pick(bad_values().size())];
                    break;
            }
        }
        if (fresh_values_) {
            static const char* kKeys[] = {"order_ref", "$app_build", "note", "ref", "phone", "tag"};
            for (size_t k = 2 + pick(3); k > 0; --k) members.emplace_back(kKeys[pick(6)], fresh_value());
        }
        if (shuffle_) std::shuffle(members.begin(), members.end(), rnd_);
        std::string e = std::string(R"({"event")") + colon_ + "\"" + kNames[pick(4)] + "\"" + comma_ +
                        R"("distinct_id")" + colon_ + "\"" + kIds[pick(3)] + "\"" + comma_ +
                        R"("properties")" + colon_ + "{";
        for (size_t i = 0; i < members.size(); ++i) {
            if (i) e += comma_;
            e += "\"" + members[i].first + "\"" + colon_ + members[i].second;
        }
        return e + "}}";
    }

    // A JSON string of up to 40 bytes drawn anew.
    std::string fresh_value() {
        static const std::string kBytes = "0123456789012345678901234567890123456789 -.+()@:/_%=?&#AZaz";
        static const char* kPieces[] = {
            "ORD-",   "+7 ",        "8 916 ",  "k@a.co",         "4111 1111 1111 1111",
            "born ",  "12.03.1985", "1.2.3.4", "Ivan Ivanovich", "tel",
            "\\u0040"};
        std::string v = "\"";
        if (pick(3) == 0) v += kPieces[pick(std::size(kPieces))];
        for (size_t n = pick(20); n > 0; --n) v += kBytes[pick(kBytes.size())];
        return v + "\"";
    }

    std::mt19937_64 rnd_;
    bool shuffle_ = false;
    bool fresh_values_ = false;
    std::vector<Member> templ_;
    std::string colon_ = ":";
    std::string comma_ = ",";
};

}  // namespace edgeguard::privacy::testing
