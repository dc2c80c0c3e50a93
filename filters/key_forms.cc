#include "filters/key_forms.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/uspoof.h>

#include <algorithm>

namespace edgeguard::privacy {
namespace {

constexpr size_t kMaxKeyBytes = 256;
constexpr size_t kMaxTokens = 16;

// ICU's NFKC normaliser and a spoof checker, built once and only read afterwards (both are documented as
// safe for concurrent use in that state).
// `unavailable` says why one of them could not be opened (ICU data without the item it reads).
struct IcuTools {
    const icu::Normalizer2* nfkc = nullptr;
    USpoofChecker* spoof = nullptr;
    std::string unavailable;
    IcuTools() {
        UErrorCode status = U_ZERO_ERROR;
        nfkc = icu::Normalizer2::getNFKCInstance(status);
        if (U_FAILURE(status)) {
            nfkc = nullptr;
            unavailable = std::string("ICU NFKC normaliser (nfkc.nrm): ") + u_errorName(status);
        }
        status = U_ZERO_ERROR;
        spoof = uspoof_open(&status);
        if (U_FAILURE(status)) {
            spoof = nullptr;
            if (!unavailable.empty()) unavailable += "; ";
            unavailable += std::string("ICU spoof checker (confusables.cfu): ") + u_errorName(status);
        }
    }
    ~IcuTools() {
        if (spoof != nullptr) uspoof_close(spoof);
    }
    IcuTools(const IcuTools&) = delete;
    IcuTools& operator=(const IcuTools&) = delete;
};

const IcuTools& icu_tools() {
    static const IcuTools tools;
    return tools;
}

bool is_mark(UChar32 cp) {
    const int8_t t = u_charType(cp);
    return t == U_NON_SPACING_MARK || t == U_COMBINING_SPACING_MARK || t == U_ENCLOSING_MARK;
}

// Splits code points into lower-cased tokens (see key_forms.h).
std::vector<std::u32string> split_tokens(const std::u32string& cps) {
    std::vector<std::u32string> tokens;
    std::u32string cur;
    auto flush = [&] {
        if (!cur.empty() && tokens.size() < kMaxTokens) tokens.push_back(cur);
        cur.clear();
    };
    for (size_t i = 0; i < cps.size(); ++i) {
        const UChar32 cp = static_cast<UChar32>(cps[i]);
        const bool word = u_isalnum(cp) || u_isalpha(cp) || (is_mark(cp) && !cur.empty());
        if (!word) {
            flush();
            continue;
        }
        if (!cur.empty() && !is_mark(cp) && u_isUUppercase(cp)) {
            const UChar32 prev = static_cast<UChar32>(cps[i - 1]);
            const bool next_lower = i + 1 < cps.size() && u_isULowercase(static_cast<UChar32>(cps[i + 1]));
            // userPassword, line1Name: a capital after a lower-case letter or a digit starts a word;
            // XMLHttp: the last capital of a run starts a word when lower-case letters follow it.
            if (u_isULowercase(prev) || u_isdigit(prev) || (u_isUUppercase(prev) && next_lower)) flush();
        }
        cur.push_back(static_cast<char32_t>(u_tolower(cp)));
    }
    flush();
    return tokens;
}

void append_utf8(std::string& out, char32_t cp) {
    icu::UnicodeString one(static_cast<UChar32>(cp));
    one.toUTF8String(out);
}

// A token with every non-ASCII character that TS #39 says is confusable with ASCII letters or digits
// replaced by that ASCII text. Returns false when nothing changed.
bool confusable_fold(const std::u32string& token, std::u32string& folded) {
    const IcuTools& tools = icu_tools();
    folded.clear();
    bool changed = false;
    for (char32_t cp : token) {
        if (cp < 0x80 || tools.spoof == nullptr) {
            folded.push_back(cp);
            continue;
        }
        UErrorCode status = U_ZERO_ERROR;
        icu::UnicodeString skeleton;
        uspoof_getSkeletonUnicodeString(tools.spoof, 0, icu::UnicodeString(static_cast<UChar32>(cp)), skeleton,
                                        &status);
        bool ascii = U_SUCCESS(status) && skeleton.length() > 0;
        for (int32_t k = 0; ascii && k < skeleton.length(); ++k) {
            const char16_t c = skeleton.charAt(k);
            ascii = c < 0x80 && u_isalnum(c);
        }
        if (!ascii) {
            folded.push_back(cp);
            continue;
        }
        for (int32_t k = 0; k < skeleton.length(); ++k)
            folded.push_back(static_cast<char32_t>(u_tolower(skeleton.charAt(k))));
        changed = true;
    }
    return changed;
}

// A compound key whose first word names an organisation describes it, not a person: `company_inn` is a
// company's public tax number, `merchant_phone` and `org_address` are a business's contact data.
bool names_an_organisation(const std::u32string& word) {
    static const std::u32string kWords[] = {U"company",  U"org",    U"organization", U"organisation", U"business",
                                            U"merchant", U"vendor", U"seller",       U"supplier",     U"shop",
                                            U"store",    U"legal",  U"corp",         U"corporate",    U"firm",
                                            U"employer", U"partner"};
    for (const auto& w : kWords)
        if (word == w) return true;
    return false;
}

void add_form(std::string form, std::string_view lower_key, std::vector<std::string>& out, size_t first) {
    if (form.empty() || form == lower_key) return;
    if (std::find(out.begin() + static_cast<std::ptrdiff_t>(first), out.end(), form) != out.end()) return;
    out.push_back(std::move(form));
}

void add_forms_of(const std::vector<std::u32string>& tokens, bool tails, std::string_view lower_key,
                  std::vector<std::string>& out, size_t first) {
    for (size_t start = 0; start < tokens.size(); ++start) {
        if (start > 0 && !tails) break;
        std::string form;
        for (size_t i = start; i < tokens.size(); ++i) {
            if (i > start) form.push_back('_');
            for (char32_t cp : tokens[i]) append_utf8(form, cp);
        }
        add_form(std::move(form), lower_key, out, first);
    }
}

}  // namespace

std::string key_forms_unavailable() { return icu_tools().unavailable; }

void append_key_forms(std::string_view key, std::vector<std::string>& out) {
    if (key.empty() || key.size() > kMaxKeyBytes || is_client_ip_key(key)) return;
    // A key a detector rule already rewrote ("[redacted:email]") is our own output: reading its words would
    // make filtering the output change it again.
    if (key.find("[redacted:") != std::string_view::npos) return;
    bool ascii = true, simple = true;
    for (char c : key) {
        const auto b = static_cast<unsigned char>(c);
        ascii = ascii && b < 0x80;
        simple = simple && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'));
    }
    if (simple) return;  // one lower-case word: its only form is itself
    std::string lower_key(key);
    for (char& c : lower_key) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;

    std::u32string cps;
    if (ascii) {
        for (char c : key) cps.push_back(static_cast<char32_t>(c));
    } else {
        icu::UnicodeString text = icu::UnicodeString::fromUTF8(icu::StringPiece(key.data(), static_cast<int32_t>(key.size())));
        const IcuTools& tools = icu_tools();
        if (tools.nfkc != nullptr) {
            UErrorCode status = U_ZERO_ERROR;
            icu::UnicodeString normalized = tools.nfkc->normalize(text, status);
            if (U_SUCCESS(status)) text = normalized;
        }
        for (int32_t i = 0; i < text.length(); i = text.moveIndex32(i, 1))
            cps.push_back(static_cast<char32_t>(text.char32At(i)));
    }
    const std::vector<std::u32string> tokens = split_tokens(cps);
    const bool tails = key[0] != '$' && !(tokens.size() > 1 && names_an_organisation(tokens[0]));
    const size_t first = out.size();
    add_forms_of(tokens, tails, lower_key, out, first);
    if (ascii) return;
    std::vector<std::u32string> folded_tokens;
    bool folded_any = false;
    std::u32string folded;
    for (const auto& t : tokens) {
        folded_any = confusable_fold(t, folded) || folded_any;
        folded_tokens.push_back(folded);
    }
    if (folded_any) add_forms_of(folded_tokens, tails, lower_key, out, first);
}

}  // namespace edgeguard::privacy
