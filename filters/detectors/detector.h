// A value detector finds personal data inside one string and reports byte spans of the ORIGINAL text.
// Detectors validate (checksums, ranges, structure) so clean look-alikes do not hit.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace edgeguard::privacy {

struct DetectorMatch {
    size_t begin = 0;  // byte offsets into the original (un-normalized) text
    size_t end = 0;
    std::string_view detector;  // detector id, e.g. "email"
};

// What a detector may know about where the string sits; context-sensitive detectors use it
// (a version-like key suppresses IPv4 hits, passport needs context words).
class TextIndex;
struct DetectorContext {
    std::string_view key;  // the nearest object key, may be empty
    // DetectorSet's one-pass index of the text being scanned (text_index.h), or null. Detectors read
    // candidates from it when it indexes exactly their text (index_for) and find the same matches either way.
    const TextIndex* index = nullptr;
};

class Detector {
  public:
    virtual ~Detector() = default;
    virtual std::string_view id() const = 0;
    // Appends matches found in `text` to `out`. Must be thread-safe (called from many workers at once).
    virtual void find(std::string_view text, const DetectorContext& ctx,
                      std::vector<DetectorMatch>& out) const = 0;
};

}  // namespace edgeguard::privacy
