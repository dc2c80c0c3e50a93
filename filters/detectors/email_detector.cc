// Email addresses with Unicode local parts and IDN or punycode domains. The top-level label must be
// alphabetic (or an "xn--" label) and not a file extension, so "logo@2x.png" and "@scope/pkg@1.2.3" pass;
// an address followed by ':' is a git/ssh remote ("git@github.com:org/repo"), not a person's mailbox.
#include <re2/re2.h>

#include <utility>

#include "filters/detectors/builtin_detectors.h"
#include "filters/detectors/text_index.h"
#include "filters/detectors/text_scan.h"

namespace edgeguard::privacy {
namespace {

constexpr const char* kEmailPattern =
    R"([\p{L}\p{N}._%+\-']+@((?:[\p{L}\p{N}][\p{L}\p{N}\-]*\.)+)(\p{L}{2,}|xn--[a-zA-Z0-9\-]+))";

// Counted repetitions of Unicode classes make RE2 programs huge, so label rules are checked here instead:
// labels of at most 63 bytes that do not end with '-', and a top-level label of at most 63 bytes.
bool domain_labels_ok(std::string_view labels_with_dots, std::string_view tld) {
    if (tld.size() > 63 || tld.back() == '-') return false;
    size_t start = 0;
    while (start < labels_with_dots.size()) {
        size_t dot = labels_with_dots.find('.', start);
        if (dot == std::string_view::npos) break;
        size_t len = dot - start;
        if (len == 0 || len > 63 || labels_with_dots[dot - 1] == '-') return false;
        start = dot + 1;
    }
    return true;
}

bool file_extension(std::string_view tld) {
    static constexpr std::string_view kExtensions[] = {
        "png",  "jpg", "jpeg", "gif", "svg", "webp", "avif",   "bmp", "ico",  "tif",  "tiff",
        "heic", "js",  "mjs",  "cjs", "ts",  "css",  "scss",   "map", "json", "html", "htm",
        "xml",  "txt", "md",   "pdf", "mp3", "mp4",  "webm",   "mov", "wav",  "woff", "woff2",
        "ttf",  "otf", "eot",  "zip", "gz",  "tar",  "lottie", "riv", "wasm"};
    for (std::string_view ext : kExtensions) {
        if (tld.size() == ext.size() && find_ascii_ci(tld, ext) == 0) return true;
    }
    return false;
}

class EmailDetector final : public GatedDetector {
  public:
    EmailDetector() : re_(kEmailPattern, options()) {}
    std::string_view id() const override { return "email"; }
    DetectorGate gate() const override { return DetectorGate::when(kHasAt | kHasDot); }
    void find(std::string_view text, const DetectorContext& ctx, std::vector<DetectorMatch>& out) const override {
        re2::StringPiece input(text.data(), text.size());
        re2::StringPiece groups[3];
        // With the text's index, the DFA runs only around each '@' (next_match); without, over the text.
        const bool around_ats = index_for(text, ctx) != nullptr;
        const auto next_match = [&](size_t from) {
            if (!around_ats) return re_.Match(input, from, text.size(), RE2::UNANCHORED, groups, 3);
            for (size_t at = text.find('@', from); at != std::string_view::npos; at = text.find('@', at + 1)) {
                const auto [begin, end] = match_bounds(text, from, at);
                if (re_.Match(input, begin, end, RE2::UNANCHORED, groups, 3)) return true;
            }
            return false;
        };
        size_t pos = 0;
        // Addresses rejected only for being glued to the next bytes, chained end to start: if an accepted
        // address starts right where the chain ends, its redaction would unglue them and a second pass
        // would redact them, so they go with it ("k@a.co8@e.om" is one span, not "k@a.co" + "8@e.om").
        size_t glued_chain_begin = 0;
        size_t glued_chain_end = std::string_view::npos;
        while (pos < text.size() && next_match(pos)) {
            size_t match_begin = static_cast<size_t>(groups[0].data() - text.data());
            size_t begin = match_begin;
            size_t end = begin + groups[0].size();
            std::string_view tld(groups[2].data(), groups[2].size());
            bool remote = end < text.size() && text[end] == ':';
            bool glued = end < text.size() && (is_word_byte(text[end]) || text[end] == '@');
            // Leading dots or quotes belong to the surrounding text, not the address.
            while (begin < end && (text[begin] == '.' || text[begin] == '\'')) ++begin;
            std::string_view labels(groups[1].data(), groups[1].size());
            bool address_like =
                !file_extension(tld) && domain_labels_ok(labels, tld) && !remote && text[begin] != '@';
            bool continues_chain = match_begin == glued_chain_end;
            if (address_like && !glued) {
                out.push_back({continues_chain ? glued_chain_begin : begin, end, id()});
                glued_chain_end = std::string_view::npos;
            } else if (address_like && glued) {
                if (!continues_chain) glued_chain_begin = begin;
                glued_chain_end = end;
            } else {
                glued_chain_end = std::string_view::npos;
            }
            pos = end;
        }
    }

  private:
    // Every match holds exactly one '@' (neither part's classes admit it), and no ASCII byte outside its
    // parts' classes: the local part's [A-Za-z0-9._%+\-'] before the '@', the domain's [A-Za-z0-9.\-] after
    // it (non-ASCII bytes may be Unicode letters and are kept). So the matches whose '@' is `at` lie in the
    // bounds returned, which hold no other '@', and the leftmost match from `from` is the first '@''s
    // match there: searching those bounds finds what a search of the whole text from `from` finds.
    static std::pair<size_t, size_t> match_bounds(std::string_view text, size_t from, size_t at) {
        const auto local = [](unsigned char c) {
            return c >= 0x80 || is_ascii_alnum(static_cast<char>(c)) || c == '.' || c == '_' || c == '%' ||
                   c == '+' || c == '-' || c == '\'';
        };
        const auto domain = [](unsigned char c) {
            return c >= 0x80 || is_ascii_alnum(static_cast<char>(c)) || c == '.' || c == '-';
        };
        size_t begin = at;
        while (begin > from && local(static_cast<unsigned char>(text[begin - 1]))) --begin;
        size_t end = at + 1;
        while (end < text.size() && domain(static_cast<unsigned char>(text[end]))) ++end;
        return {begin, end};
    }

    static RE2::Options options() {
        RE2::Options o;
        o.set_log_errors(false);
        return o;
    }
    RE2 re_;
};

}  // namespace

std::unique_ptr<GatedDetector> make_email_detector() {
    return std::make_unique<EmailDetector>();
}

}  // namespace edgeguard::privacy
