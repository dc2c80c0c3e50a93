// One pass over a text that every detector reads from instead of making its own: the byte features the gates
// test (text_features.h), a bitmap of the digits, and the stretches of number bytes that hold enough digits
// to be a phone, card, national id or IP address. Long free text (an LLM prompt, a log body) opens most
// gates; with the index, the digit detectors jump from candidate to candidate, and prose whose numbers are
// short ("2.4 seconds", "day 7") costs the number scanners nothing.
//
// The pass classifies 64 bytes at a time (AVX2 when the CPU has it, chosen once at run time; a portable
// byte loop with the same classes otherwise). The index is built by DetectorSet for each text it scans and
// handed to the detectors through DetectorContext::index; a detector called without one (tests, custom
// callers) takes its byte-by-byte path, and tests/unit/filters/text_index_test.cc requires both paths to
// report the same matches.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "filters/detectors/byte_search.h"
#include "filters/detectors/detector.h"
#include "filters/detectors/text_features.h"

namespace edgeguard::privacy {

// A maximal run of number bytes (digits and ' ', '-', '(', ')', '.', '+': what NumberRunScanner joins
// groups with) and how many digits it holds. A run of digit groups the scanner reads never leaves one.
struct NumberStretch {
    uint32_t begin = 0;
    uint32_t end = 0;
    uint32_t digits = 0;
};

class TextIndex {
  public:
    // The fewest digits of a stretch the index lists: an IPv4 address or a passport series has four, and
    // every number the scanners report has more.
    static constexpr uint32_t kMinStretchDigits = 4;

    // Indexes `text` (at most 4 GiB), reusing this object's buffers.
    void build(std::string_view text);
    // The same index from the portable byte loop, whatever the CPU (tests compare it with build()).
    void build_portable(std::string_view text);

    // The longest text short_text_gate_bound takes: half of one block.
    static constexpr size_t kShortTextBytes = 32;
    // For a text of at most kShortTextBytes: every bit of gate_mask(build(text).features(), ctx) and maybe
    // more (a number run's digits are bounded by all the digits, an alphanumeric run by the length), from one
    // half-block pass without the bitmap or the stretches. A gate closed under it is closed under the exact
    // mask, since a gate opens only on bits being set. `portable`: the byte loop, whatever the CPU.
    static uint64_t short_text_gate_bound(std::string_view text, const DetectorContext& ctx,
                                          bool portable = false);

    std::string_view text() const { return text_; }
    const TextFeatures& features() const { return features_; }

    // The first i >= from with text()[i] an ASCII digit, or text().size().
    size_t next_digit(size_t from) const {
        size_t block = from >> 6;
        if (block >= digit_bits_.size()) return text_.size();
        uint64_t bits = digit_bits_[block] & (~uint64_t{0} << (from & 63));
        while (bits == 0) {
            if (++block == digit_bits_.size()) return text_.size();
            bits = digit_bits_[block];
        }
        return (block << 6) + static_cast<size_t>(__builtin_ctzll(bits));
    }
    // Every stretch with at least kMinStretchDigits digits, in text order.
    const std::vector<NumberStretch>& number_stretches() const { return stretches_; }

  private:
    void build_with(std::string_view text, bool avx2);  // avx2: use the AVX2 block classifier

    std::string_view text_;
    TextFeatures features_;
    std::vector<uint64_t> digit_bits_;  // bit i of word k: text_[64 k + i] is a digit
    std::vector<NumberStretch> stretches_;
};

// The index DetectorSet built for exactly `text`, or null (no index, or one of another text): detectors ask
// this before taking a candidate path.
inline const TextIndex* index_for(std::string_view text, const DetectorContext& ctx) {
    const TextIndex* index = ctx.index;
    return index != nullptr && index->text().data() == text.data() && index->text().size() == text.size()
               ? index
               : nullptr;
}

// The first digit at or after `from`: from the bitmap when there is an index, else by the 16-byte search.
inline size_t next_digit(std::string_view text, const TextIndex* index, size_t from) {
    return index != nullptr ? index->next_digit(from) : find_ascii_digit(text, from);
}

}  // namespace edgeguard::privacy
