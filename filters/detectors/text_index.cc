#include "filters/detectors/text_index.h"

#include <algorithm>
#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace edgeguard::privacy {
namespace {

// Byte classes as three bytes per input byte, each the AND of a table indexed by the low nibble and one
// indexed by the high nibble (so AVX2 computes them with two shuffles each). A class must be a product of a
// low-nibble set and a high-nibble set, hence letters split in three.
// Classes A: bit 0 digit, 1 'A'-'F', 2 'G'-'O', 3 'P'-'Z', 4 'a'-'f', 5 'g'-'o', 6 'p'-'z', 7 non-ASCII.
// Classes B: bit 0 ' ', 1 '-', 2 '.', 3 '+', 4 '(' ')', 5 '@', 6 ':', 7 '_'.
// Classes C: bit 0 '%', 1 '=', 2 '?', 3 '#', 4 '&', 5 '/'.
struct NibbleTables {
    std::array<uint8_t, 16> lo, hi;
};

constexpr NibbleTables make_classes_a() {
    NibbleTables t{};
    for (int l = 0; l < 16; ++l) {
        t.lo[l] = static_cast<uint8_t>((l <= 9 ? 0x01 : 0) | (l >= 1 && l <= 6 ? 0x02 | 0x10 : 0) |
                                       (l >= 7 ? 0x04 | 0x20 : 0) | (l <= 0xA ? 0x08 | 0x40 : 0) | 0x80);
    }
    t.hi[3] = 0x01;
    t.hi[4] = 0x02 | 0x04;
    t.hi[5] = 0x08;
    t.hi[6] = 0x10 | 0x20;
    t.hi[7] = 0x40;
    for (int h = 8; h < 16; ++h) t.hi[h] = 0x80;
    return t;
}
constexpr NibbleTables make_classes_b() {
    NibbleTables t{};
    t.lo[0x0] = 0x01 | 0x20;  // ' ' (hi 2), '@' (hi 4)
    t.lo[0xD] = 0x02;
    t.lo[0xE] = 0x04;
    t.lo[0xB] = 0x08;
    t.lo[0x8] = t.lo[0x9] = 0x10;
    t.lo[0xA] = 0x40;  // ':' (hi 3)
    t.lo[0xF] = 0x80;  // '_' (hi 5)
    t.hi[2] = 0x01 | 0x02 | 0x04 | 0x08 | 0x10;
    t.hi[3] = 0x40;
    t.hi[4] = 0x20;
    t.hi[5] = 0x80;
    return t;
}
constexpr NibbleTables make_classes_c() {
    NibbleTables t{};
    t.lo[0x5] = 0x01;  // '%'
    t.lo[0xD] = 0x02;  // '='
    t.lo[0xF] = 0x04 | 0x20;  // '?' (hi 3), '/' (hi 2)
    t.lo[0x3] = 0x08;  // '#'
    t.lo[0x6] = 0x10;  // '&'
    t.hi[2] = 0x01 | 0x08 | 0x10 | 0x20;
    t.hi[3] = 0x02 | 0x04;
    return t;
}
constexpr NibbleTables kClassesA = make_classes_a();
constexpr NibbleTables kClassesB = make_classes_b();
constexpr NibbleTables kClassesC = make_classes_c();

constexpr uint8_t kADigit = 0x01, kALetters = 0x7E, kANonHexLetters = 0x04 | 0x08 | 0x20 | 0x40,
                  kAUpper = 0x0E, kALower = 0x70, kANonAscii = 0x80;
constexpr uint8_t kBSpace = 0x01, kBDash = 0x02, kBDot = 0x04, kBPlus = 0x08, kBNumberSeparators = 0x1F,
                  kBAt = 0x20, kBColon = 0x40, kBUnderscore = 0x80;
constexpr uint8_t kCPercent = 0x01, kCEquals = 0x02, kCQueryMarks = 0x1C, kCSlash = 0x20;

// The feature flags (text_features.h) of each combination of classes seen: three lookups per text.
using FlagsOfClasses = std::array<uint32_t, 256>;
constexpr FlagsOfClasses make_flags_of_a() {
    FlagsOfClasses t{};
    for (int seen = 0; seen < 256; ++seen) {
        t[seen] = ((seen & kADigit) ? kHasDigit : 0) | ((seen & kANonAscii) ? kHasNonAscii : 0) |
                  ((seen & kAUpper) ? kHasUpper : 0) | ((seen & kALower) ? kHasLower : 0) |
                  ((seen & kANonHexLetters) ? kHasNonHexLetter : 0);
    }
    return t;
}
constexpr FlagsOfClasses make_flags_of_b() {
    FlagsOfClasses t{};
    for (int seen = 0; seen < 256; ++seen) {
        t[seen] = ((seen & kBAt) ? kHasAt : 0) | ((seen & kBDot) ? kHasDot : 0) | ((seen & kBColon) ? kHasColon : 0) |
                  ((seen & kBUnderscore) ? kHasUnderscore : 0) | ((seen & kBDash) ? kHasDash : 0) |
                  ((seen & kBPlus) ? kHasPlus : 0) | ((seen & kBSpace) ? kHasSpace : 0);
    }
    return t;
}
constexpr FlagsOfClasses make_flags_of_c() {
    FlagsOfClasses t{};
    for (int seen = 0; seen < 256; ++seen) {
        t[seen] = ((seen & kCPercent) ? kHasPercent : 0) | ((seen & kCEquals) ? kHasEquals : 0) |
                  ((seen & kCQueryMarks) ? kHasQueryMark : 0);
    }
    return t;
}
constexpr FlagsOfClasses kFlagsOfA = make_flags_of_a();
constexpr FlagsOfClasses kFlagsOfB = make_flags_of_b();
constexpr FlagsOfClasses kFlagsOfC = make_flags_of_c();

constexpr uint8_t classify(const NibbleTables& t, unsigned char c) {
    return t.lo[c & 15] & t.hi[c >> 4];
}

// What the per-text pass needs of one 64-byte block (bit i = byte i).
struct BlockMasks {
    uint64_t digit = 0, number = 0, alnum = 0, dot = 0, colon = 0, date_separator = 0;
};

// The classes seen anywhere in the text (an OR of every byte's classes).
struct SeenClasses {
    uint8_t a = 0, b = 0, c = 0;
};

class PortableClassifier {
  public:
    BlockMasks block(const unsigned char* p) { return bytes(p, 64); }
    BlockMasks half_block(const unsigned char* p) { return bytes(p, 32); }
    SeenClasses seen() const { return seen_; }

  private:
    BlockMasks bytes(const unsigned char* p, int count);

    SeenClasses seen_;
};

BlockMasks PortableClassifier::bytes(const unsigned char* p, int count) {
    BlockMasks m;
    for (int i = 0; i < count; ++i) {
        const uint8_t a = classify(kClassesA, p[i]), b = classify(kClassesB, p[i]), c = classify(kClassesC, p[i]);
        const uint64_t bit = uint64_t{1} << i;
        m.digit |= (a & kADigit) ? bit : 0;
        m.alnum |= (a & (kADigit | kALetters)) ? bit : 0;
        m.number |= ((a & kADigit) || (b & kBNumberSeparators)) ? bit : 0;
        m.dot |= (b & kBDot) ? bit : 0;
        m.colon |= (b & kBColon) ? bit : 0;
        m.date_separator |= ((b & (kBDash | kBDot)) || (c & kCSlash)) ? bit : 0;
        seen_.a |= a;
        seen_.b |= b;
        seen_.c |= c;
    }
    return m;
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) inline __m256i table_of(const NibbleTables& t, __m256i lo, __m256i hi) {
    const __m256i lo_table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t.lo.data())));
    const __m256i hi_table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t.hi.data())));
    return _mm256_and_si256(_mm256_shuffle_epi8(lo_table, lo), _mm256_shuffle_epi8(hi_table, hi));
}

// Bit k of every byte of `v`, as a 32-bit mask (the 16-bit shift carries no other byte's bit into bit 7).
template <int kBit>
__attribute__((target("avx2"))) inline uint32_t bit_mask(__m256i v) {
    return static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_slli_epi16(v, 7 - kBit)));
}
__attribute__((target("avx2"))) inline uint32_t any_mask(__m256i v, uint8_t bits) {
    const __m256i zero = _mm256_cmpeq_epi8(_mm256_and_si256(v, _mm256_set1_epi8(static_cast<char>(bits))),
                                           _mm256_setzero_si256());
    return ~static_cast<uint32_t>(_mm256_movemask_epi8(zero));
}

struct HalfMasks {
    uint32_t digit, number, alnum, dot, colon, date_separator;
    __m256i a, b, c;
};

__attribute__((target("avx2"))) inline HalfMasks classify_half_avx2(const unsigned char* p) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i nibble = _mm256_set1_epi8(0x0F);
    const __m256i lo = _mm256_and_si256(v, nibble);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
    HalfMasks h;
    h.a = table_of(kClassesA, lo, hi);
    h.b = table_of(kClassesB, lo, hi);
    h.c = table_of(kClassesC, lo, hi);
    h.digit = bit_mask<0>(h.a);
    h.alnum = any_mask(h.a, kADigit | kALetters);
    h.number = h.digit | any_mask(h.b, kBNumberSeparators);
    h.dot = bit_mask<2>(h.b);
    h.colon = bit_mask<6>(h.b);
    h.date_separator = any_mask(h.b, kBDash | kBDot) | bit_mask<5>(h.c);
    return h;
}

__attribute__((target("avx2"))) uint8_t or_bytes(__m256i v) {
    __m128i x = _mm_or_si128(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    x = _mm_or_si128(x, _mm_srli_si128(x, 8));
    x = _mm_or_si128(x, _mm_srli_si128(x, 4));
    x = _mm_or_si128(x, _mm_srli_si128(x, 2));
    x = _mm_or_si128(x, _mm_srli_si128(x, 1));
    return static_cast<uint8_t>(_mm_cvtsi128_si32(x));
}

class Avx2Classifier {
  public:
    __attribute__((target("avx2"))) Avx2Classifier()
        : seen_a_(_mm256_setzero_si256()), seen_b_(_mm256_setzero_si256()), seen_c_(_mm256_setzero_si256()) {}

    __attribute__((target("avx2"))) BlockMasks block(const unsigned char* p) {
        const HalfMasks low = classify_half_avx2(p), high = classify_half_avx2(p + 32);
        BlockMasks m;
        m.digit = low.digit | (uint64_t{high.digit} << 32);
        m.number = low.number | (uint64_t{high.number} << 32);
        m.alnum = low.alnum | (uint64_t{high.alnum} << 32);
        m.dot = low.dot | (uint64_t{high.dot} << 32);
        m.colon = low.colon | (uint64_t{high.colon} << 32);
        m.date_separator = low.date_separator | (uint64_t{high.date_separator} << 32);
        // Classes seen are wanted per text: lanes are folded once, in seen().
        seen_a_ = _mm256_or_si256(seen_a_, _mm256_or_si256(low.a, high.a));
        seen_b_ = _mm256_or_si256(seen_b_, _mm256_or_si256(low.b, high.b));
        seen_c_ = _mm256_or_si256(seen_c_, _mm256_or_si256(low.c, high.c));
        return m;
    }
    // The first 32 bytes of a block whose other half is zero bytes (no class).
    __attribute__((target("avx2"))) BlockMasks half_block(const unsigned char* p) {
        const HalfMasks low = classify_half_avx2(p);
        BlockMasks m;
        m.digit = low.digit;
        m.number = low.number;
        m.alnum = low.alnum;
        m.dot = low.dot;
        m.colon = low.colon;
        m.date_separator = low.date_separator;
        seen_a_ = _mm256_or_si256(seen_a_, low.a);
        seen_b_ = _mm256_or_si256(seen_b_, low.b);
        seen_c_ = _mm256_or_si256(seen_c_, low.c);
        return m;
    }
    __attribute__((target("avx2"))) SeenClasses seen() const {
        return SeenClasses{or_bytes(seen_a_), or_bytes(seen_b_), or_bytes(seen_c_)};
    }

  private:
    __m256i seen_a_, seen_b_, seen_c_;
};
#endif

uint64_t low_bits(unsigned count) {  // bits [0, count), count <= 64
    return count >= 64 ? ~uint64_t{0} : (uint64_t{1} << count) - 1;
}

// Bits i .. i+k-1 of m all set, as bit i of r_k: r_{a+b} = r_a & (r_b >> a).
struct AlnumRuns {
    uint64_t r2, r4, r8, r10, r26;
    explicit AlnumRuns(uint64_t m) {
        r2 = m & (m >> 1);
        r4 = r2 & (r2 >> 2);
        r8 = r4 & (r4 >> 4);
        r10 = r8 & (r2 >> 8);
        const uint64_t r16 = r8 & (r8 >> 8);
        r26 = r16 & (r10 >> 16);
    }
};

// The largest gate threshold (4, 10, 26) a run inside one block reaches, or 0.
uint32_t longest_run_threshold(uint64_t alnum) {
    const AlnumRuns r(alnum);
    return r.r26 != 0 ? 26 : r.r10 != 0 ? 10 : r.r4 != 0 ? 4 : 0;
}

// Set bits; a word with none (most masks of prose) costs one test. Written out because the portable build
// has no popcnt instruction and would call a library routine per block.
inline uint32_t bit_count(uint64_t m) {
    if (m == 0) return 0;
    m = m - ((m >> 1) & 0x5555555555555555ull);
    m = (m & 0x3333333333333333ull) + ((m >> 2) & 0x3333333333333333ull);
    m = (m + (m >> 4)) & 0x0F0F0F0F0F0F0F0Full;
    return static_cast<uint32_t>((m * 0x0101010101010101ull) >> 56);
}

// Folds blocks into features, the digit bitmap and the number stretches. kPopcount: the caller is compiled
// for the popcnt instruction (the AVX2 pass), which counts a mask in one instruction instead of bit_count's
// dozen.
template <bool kPopcount>
class BlockFolder {
  public:
    BlockFolder(TextFeatures& f, std::vector<uint64_t>& digit_bits, std::vector<NumberStretch>& stretches)
        : f_(f), digit_bits_(digit_bits), stretches_(stretches) {}

    [[gnu::always_inline]] void fold(const BlockMasks& m, uint32_t base) {
        f_.digits += count(m.digit);
        f_.dots += count(m.dot);
        f_.colons += count(m.colon);
        f_.date_separators += count(m.date_separator);
        digit_bits_.push_back(m.digit);
        fold_alnum(m.alnum);
        fold_numbers(m.number, m.digit, base);
    }

    [[gnu::always_inline]] void finish(uint32_t length, SeenClasses seen) {
        if (alnum_carry_ > longest_alnum_) longest_alnum_ = alnum_carry_;
        if (in_stretch_) close_stretch(length);
        const uint32_t flags = kFlagsOfA[seen.a] | kFlagsOfB[seen.b] | kFlagsOfC[seen.c];
        f_.flags = flags;
        f_.max_alnum_run = longest_alnum_;
        f_.length = length;
    }

  private:
    [[gnu::always_inline]] static uint32_t count(uint64_t m) {
        if constexpr (kPopcount) {
            return static_cast<uint32_t>(__builtin_popcountll(m));
        } else {
            return bit_count(m);
        }
    }

    [[gnu::always_inline]] void fold_alnum(uint64_t alnum) {
        if (alnum == ~uint64_t{0}) {
            alnum_carry_ += 64;
            return;
        }
        // The run that crosses into this block, complete now; runs inside the block by threshold.
        const uint32_t crossing = alnum_carry_ + static_cast<uint32_t>(__builtin_ctzll(~alnum));
        longest_alnum_ = std::max(longest_alnum_, crossing);
        if (longest_alnum_ < 26) longest_alnum_ = std::max(longest_alnum_, longest_run_threshold(alnum));
        alnum_carry_ = static_cast<uint32_t>(__builtin_clzll(~alnum));
    }

    [[gnu::always_inline]] void fold_numbers(uint64_t number, uint64_t digit, uint32_t base) {
        uint64_t digits_left = digit;
        if (in_stretch_) {
            const unsigned first_other = number == ~uint64_t{0} ? 64 : static_cast<unsigned>(__builtin_ctzll(~number));
            stretch_.digits += count(digit & low_bits(first_other));
            if (first_other == 64) return;
            close_stretch(base + first_other);
            digits_left &= ~low_bits(first_other);
        }
        // Only stretches holding a digit matter; prose has few.
        while (digits_left != 0) {
            const unsigned p = static_cast<unsigned>(__builtin_ctzll(digits_left));
            const uint64_t others_below = ~number & low_bits(p);
            const unsigned begin = others_below == 0 ? 0 : 64 - static_cast<unsigned>(__builtin_clzll(others_below));
            const uint64_t others_above = ~number & ~low_bits(p);
            const unsigned end = others_above == 0 ? 64 : static_cast<unsigned>(__builtin_ctzll(others_above));
            stretch_.begin = base + begin;
            stretch_.digits = count(digit & low_bits(end) & ~low_bits(begin));
            if (end == 64) {
                in_stretch_ = true;
                return;
            }
            close_stretch(base + end);
            digits_left &= ~low_bits(end);
        }
        // A stretch without digits so far that reaches the block's end may gain them in the next block.
        if (number >> 63) {
            const unsigned leading = number == ~uint64_t{0} ? 64 : static_cast<unsigned>(__builtin_clzll(~number));
            stretch_.begin = base + 64 - leading;
            stretch_.digits = 0;
            in_stretch_ = true;
        }
    }

    [[gnu::always_inline]] void close_stretch(uint32_t end) {
        in_stretch_ = false;
        if (stretch_.digits > f_.max_number_digits) f_.max_number_digits = stretch_.digits;
        if (stretch_.digits < TextIndex::kMinStretchDigits) return;
        stretch_.end = end;
        stretches_.push_back(stretch_);
    }

    TextFeatures& f_;
    std::vector<uint64_t>& digit_bits_;
    std::vector<NumberStretch>& stretches_;
    uint32_t alnum_carry_ = 0, longest_alnum_ = 0;
    bool in_stretch_ = false;
    NumberStretch stretch_;
};

// Copies n <= 32 bytes into `to` with fixed-size copies that read only [p, p + n): a library memcpy call
// of a variable size costs more than classifying the bytes, and most texts the walker scans are this short.
[[gnu::always_inline]] inline void copy_short(unsigned char* to, const unsigned char* p, size_t n) {
    if (n >= 16) {
        std::memcpy(to, p, 16);
        std::memcpy(to + n - 16, p + n - 16, 16);
    } else if (n >= 8) {
        std::memcpy(to, p, 8);
        std::memcpy(to + n - 8, p + n - 8, 8);
    } else if (n >= 4) {
        std::memcpy(to, p, 4);
        std::memcpy(to + n - 4, p + n - 4, 4);
    } else {
        for (size_t i = 0; i < n; ++i) to[i] = p[i];
    }
}

// The pass itself, inlined into each classifier's entry point so the AVX2 one is compiled for AVX2 whole.
template <typename Classifier, typename Folder>
[[gnu::always_inline]] inline void index_blocks(std::string_view text, Classifier& classifier, Folder& folder) {
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const size_t full = text.size() & ~size_t{63};
    for (size_t at = 0; at < full; at += 64) folder.fold(classifier.block(p + at), static_cast<uint32_t>(at));
    if (full < text.size()) {
        // The tail, padded with zero bytes (no class). Most texts the walker scans are short values, whose
        // one block fits in half of one: only that half is classified.
        const size_t rest = text.size() - full;
        if (rest <= 32) {
            unsigned char tail[32] = {};
            copy_short(tail, p + full, rest);
            folder.fold(classifier.half_block(tail), static_cast<uint32_t>(full));
        } else {
            unsigned char tail[64] = {};
            std::memcpy(tail, p + full, rest);
            folder.fold(classifier.block(tail), static_cast<uint32_t>(full));
        }
    }
    folder.finish(static_cast<uint32_t>(text.size()), classifier.seen());
}

#if defined(__x86_64__)
__attribute__((target("avx2,popcnt"))) void index_blocks_avx2(std::string_view text, BlockFolder<true>& folder) {
    Avx2Classifier classifier;
    index_blocks(text, classifier, folder);
}
#endif

void index_blocks_portable(std::string_view text, BlockFolder<false>& folder) {
    PortableClassifier classifier;
    index_blocks(text, classifier, folder);
}

// The features short_text_gate_bound reads, from one block's masks and the classes seen: the counts exact,
// the runs bounded by what holds them (a number run's digits by all digits, an alphanumeric run by the
// length).
[[gnu::always_inline]] inline TextFeatures bounded_features(const BlockMasks& m, SeenClasses seen,
                                                            size_t length) {
    TextFeatures f;
    f.flags = kFlagsOfA[seen.a] | kFlagsOfB[seen.b] | kFlagsOfC[seen.c];
    f.digits = static_cast<uint32_t>(__builtin_popcountll(m.digit));
    f.dots = static_cast<uint32_t>(__builtin_popcountll(m.dot));
    f.colons = static_cast<uint32_t>(__builtin_popcountll(m.colon));
    f.date_separators = static_cast<uint32_t>(__builtin_popcountll(m.date_separator));
    f.max_number_digits = f.digits;
    f.max_alnum_run = static_cast<uint32_t>(length);
    f.length = length;
    return f;
}

#if defined(__x86_64__)
__attribute__((target("avx2,popcnt"))) TextFeatures short_text_bound_avx2(const unsigned char* block,
                                                                          size_t length) {
    Avx2Classifier classifier;
    const BlockMasks m = classifier.half_block(block);
    return bounded_features(m, classifier.seen(), length);
}
#endif

}  // namespace

uint64_t TextIndex::short_text_gate_bound(std::string_view text, const DetectorContext& ctx, bool portable) {
    unsigned char block[kShortTextBytes] = {};
    copy_short(block, reinterpret_cast<const unsigned char*>(text.data()), text.size());
    TextFeatures f;
#if defined(__x86_64__)
    if (!portable && cpu_has_avx2()) {
        f = short_text_bound_avx2(block, text.size());
    } else
#endif
    {
        PortableClassifier classifier;
        const BlockMasks m = classifier.half_block(block);
        f = bounded_features(m, classifier.seen(), text.size());
    }
    return gate_mask(f, ctx);
}

void TextIndex::build(std::string_view text) {
#if defined(__x86_64__)
    build_with(text, cpu_has_avx2());
#else
    build_with(text, false);
#endif
}

void TextIndex::build_portable(std::string_view text) { build_with(text, false); }

void TextIndex::build_with(std::string_view text, [[maybe_unused]] bool avx2) {
    text_ = text;
    features_ = TextFeatures{};
    digit_bits_.clear();
    stretches_.clear();
#if defined(__x86_64__)
    if (avx2) {
        BlockFolder<true> folder(features_, digit_bits_, stretches_);
        index_blocks_avx2(text, folder);
        return;
    }
#endif
    BlockFolder<false> folder(features_, digit_bits_, stretches_);
    index_blocks_portable(text, folder);
}

}  // namespace edgeguard::privacy
