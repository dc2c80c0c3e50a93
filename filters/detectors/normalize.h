// Normalization before matching: evasions (zero-width characters inside an email, fullwidth digits in a
// phone, NBSP between digit groups, "%40" for '@') are undone into a matching view of the text, and every
// byte of that view remembers which original bytes it came from, so a match maps back to the raw value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace edgeguard::privacy {

struct NormalizeOptions {
    // Unicode folding: decimal digits of any script (NFKC) -> ASCII, fullwidth ASCII forms -> ASCII,
    // format characters (zero-width U+200B..U+200F, U+2060.., U+FEFF) and soft hyphen U+00AD removed,
    // NBSP / narrow NBSP / thin and other Unicode spaces -> ' ', Unicode dashes and minus -> '-'.
    bool unicode = true;
    // "%XX" -> the byte it encodes, before the Unicode step (so "%E2%80%8B" is removed too), repeated up to
    // three rounds while escapes remain ("%2540" -> "%40" -> "@"). For URL-ish values: query strings, paths,
    // $current_url.
    bool percent_decode = false;
};

// The matching view of one string. Reusable: normalize_for_matching() overwrites it and keeps capacity,
// so a per-thread instance costs no allocation after warm-up.
class NormalizedText {
  public:
    std::string_view view() const { return text_; }
    // Original byte span that normalized bytes [begin, end) came from. begin < end <= view().size().
    size_t original_begin(size_t begin) const { return begin_of_[begin]; }
    size_t original_end(size_t end) const { return end_of_[end - 1]; }

  private:
    friend bool normalize_for_matching(std::string_view, const NormalizeOptions&, NormalizedText&);
    std::string text_;
    std::vector<uint32_t> begin_of_;  // per normalized byte: original offset where its source starts
    std::vector<uint32_t> end_of_;    // per normalized byte: original offset where its source ends
    std::string decoded_;             // scratch for the percent-decoding step
    std::vector<uint32_t> decoded_begin_;
    std::vector<uint32_t> decoded_end_;
    std::string redecoded_;  // the next round, when an escape decoded to another escape ("%2540")
    std::vector<uint32_t> redecoded_begin_;
    std::vector<uint32_t> redecoded_end_;
};

// True when normalize_for_matching would change `text`: a code point that folds, or a "%XX" escape with
// percent_decode.
bool may_need_normalization(std::string_view text, const NormalizeOptions& options);

// Fills `out` with the matching view of `text`. Returns false (leaving `out` unspecified) when the view
// would equal `text`, so callers match the original directly: pure ASCII costs no copy. Invalid UTF-8
// bytes are kept as they are. Texts of 4 GiB or more are not normalized (returns false).
bool normalize_for_matching(std::string_view text, const NormalizeOptions& options, NormalizedText& out);

// Heuristic for "URL-ish" values that deserve percent-decoding: a scheme ("://"), a path starting with
// '/', or a query string ("?k=v" / "k=v&").
bool looks_like_url(std::string_view text);

}  // namespace edgeguard::privacy
