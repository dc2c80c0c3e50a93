#include "filters/detectors/registry.h"

#include <algorithm>
#include <cstddef>
#include <string>

#include "filters/detectors/builtin_detectors.h"
#include "filters/detectors/normalize.h"
#include "filters/detectors/text_features.h"
#include "filters/detectors/text_index.h"

namespace edgeguard::privacy {
namespace {

struct BuiltinEntry {
    std::string_view id;
    std::unique_ptr<GatedDetector> (*make)();
};

// Order matters: on an identical span the detector listed first wins (a number that is both a valid RU
// phone and a valid SNILS is reported as a phone, see privacy-cases "ru_phone_snils_collision").
constexpr BuiltinEntry kBuiltins[] = {
    {"secret", make_secret_detector},
    {"jwt", make_jwt_detector},
    {"email", make_email_detector},
    {"phone", make_phone_detector},
    {"card", make_card_detector},
    {"iban", make_iban_detector},
    {"inn", make_inn_detector},
    {"snils", make_snils_detector},
    {"ru_passport", make_ru_passport_detector},
    {"ip", make_ip_detector},
    {"crypto", make_crypto_detector},
    {"name", make_name_detector},
    {"address", make_address_detector},
    {"dob", make_dob_detector},
    {"url_secret", make_url_secret_detector},
};

}  // namespace

std::unique_ptr<Detector> make_builtin_detector(std::string_view id, std::string* error) {
    for (const BuiltinEntry& e : kBuiltins) {
        if (e.id == id) return e.make();
    }
    if (error) *error = "unknown detector '" + std::string(id) + "'";
    return nullptr;
}

std::vector<std::string_view> builtin_detector_ids() {
    std::vector<std::string_view> ids;
    for (const BuiltinEntry& e : kBuiltins) ids.push_back(e.id);
    return ids;
}

struct DetectorSet::Impl {
    std::vector<std::unique_ptr<Detector>> detectors;
    std::vector<DetectorGate> gates;  // parallel to detectors; custom detectors always run
    // Every gate alternative contains at least one of these bits: a text whose mask has none of them opens
    // no gate, and scan() returns after one test (the common case for short clean values).
    uint64_t any_gate_bits = 0;
    bool always_scan = false;

    // For a text of at most TextIndex::kShortTextBytes: true when no detector's gate opens on it, from the
    // bound of its gate mask (a text that normalization could change is never closed here).
    bool closed_for_short(std::string_view text, const DetectorContext& ctx) const {
        if (always_scan) return false;
        const uint64_t bound = TextIndex::short_text_gate_bound(text, ctx);
        if ((bound & (kHasNonAscii | kHasPercent)) != 0) return false;
        if ((bound & any_gate_bits) == 0) return true;
        for (const DetectorGate& gate : gates)
            if (gate.open(bound)) return false;
        return true;
    }
    // Runs the open detectors over `text` (at most kWindowBytes) and appends their matches, unresolved, as
    // offsets into `text`.
    void scan_window(std::string_view text, const DetectorContext& ctx, NormalizedText& normalized,
                     TextIndex& index, std::vector<DetectorMatch>& raw) const;
    // The resolved matches of one window, including those its own redactions would unglue, appended to
    // `out` when they start in [keep_begin, keep_end) of the window, as offsets + base.
    void scan_settled(std::string_view window, size_t base, size_t keep_begin, size_t keep_end,
                      const DetectorContext& ctx, std::vector<DetectorMatch>& out) const;
    // Sorts `raw` and appends it to `out` with overlaps resolved: the longest span wins, on equal spans the
    // detector listed first.
    void resolve(std::vector<DetectorMatch>& raw, std::vector<DetectorMatch>& out) const;
};

namespace {

// Per-thread scratch so scan() allocates nothing once warm.
struct ScanScratch {
    NormalizedText normalized;
    TextIndex index;
    std::vector<DetectorMatch> raw;
    std::vector<DetectorMatch> window;  // the resolved matches of one window
    std::vector<DetectorMatch> kept;    // of every window, before the final resolution
    std::string unglued;  // a window with its matches replaced by placeholder-like bytes (scan_settled)
    // After a huge value, give the window-sized buffers back instead of pinning them per thread.
    void release_large_buffers() {
        normalized = NormalizedText();
        index = TextIndex();
        std::string().swap(unglued);
        std::vector<DetectorMatch>().swap(kept);
    }
};
ScanScratch& scan_scratch() {
    thread_local ScanScratch scratch;
    return scratch;
}

// The bit of a gate alternative least likely to be set in clean analytics values; 0 for an empty gate.
// kGateKey comes last: nearly every value the walker scans has a key, so it lets every value through.
uint64_t rarest_bit(uint64_t alternative) {
    static constexpr uint64_t kRarestFirst[] = {
        kGateNumberRun12, kGateNumberRun11, kGateAlnumRun26,      kGateNumberRun8, kHasAt,
        kGateColons2,     kGateDots3,       kHasQueryMark,        kHasEquals,      kGateLength27,
        kGateDigits10,    kHasNonAscii,     kGateDigits7,         kGateDateSeparators2, kHasSpace,
        kGateDigits5,     kGateNumberRun4,  kGateDots2,           kGateLength15,   kGateKey,
    };
    for (uint64_t bit : kRarestFirst)
        if (alternative & bit) return bit;
    return alternative & (~alternative + 1);  // lowest set bit
}

size_t detector_rank(const std::vector<std::unique_ptr<Detector>>& detectors, std::string_view id) {
    for (size_t i = 0; i < detectors.size(); ++i) {
        if (detectors[i]->id().data() == id.data() || detectors[i]->id() == id) return i;
    }
    return detectors.size();
}

}  // namespace

DetectorSet::DetectorSet(std::vector<std::unique_ptr<Detector>> detectors) : impl_(std::make_unique<Impl>()) {
    for (auto& d : detectors) {
        if (!d) continue;
        const auto* gated = dynamic_cast<const GatedDetector*>(d.get());
        impl_->gates.push_back(gated ? gated->gate() : DetectorGate{});
        impl_->detectors.push_back(std::move(d));
    }
    for (const DetectorGate& g : impl_->gates) {
        for (uint64_t alternative : g.all_of) {
            if (alternative == kGateNever) continue;
            uint64_t rare = rarest_bit(alternative);
            if (rare == 0) impl_->always_scan = true;
            impl_->any_gate_bits |= rare;
        }
    }
}
DetectorSet::~DetectorSet() = default;
DetectorSet::DetectorSet(DetectorSet&&) noexcept = default;
DetectorSet& DetectorSet::operator=(DetectorSet&&) noexcept = default;

DetectorSet DetectorSet::builtin() {
    std::vector<std::unique_ptr<Detector>> all;
    for (const BuiltinEntry& e : kBuiltins) all.push_back(e.make());
    return DetectorSet(std::move(all));
}

size_t DetectorSet::size() const {
    return impl_->detectors.size();
}
const Detector& DetectorSet::at(size_t i) const {
    return *impl_->detectors[i];
}

namespace {

// Long texts are scanned in overlapping windows so normalization scratch stays bounded (about 9 bytes per
// window byte) whatever the value size. A match is kept by the window where it lies away from the
// edges; tokens up to kWindowOverlap / 2 bytes long are found exactly once.
constexpr size_t kWindowBytes = size_t{1} << 20;
constexpr size_t kWindowOverlap = 8192;

size_t utf8_boundary_at_or_before(std::string_view text, size_t pos) {
    while (pos > 0 && pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) --pos;
    return pos;
}

}  // namespace

void DetectorSet::Impl::scan_window(std::string_view text, const DetectorContext& ctx, NormalizedText& normalized,
                                    TextIndex& index, std::vector<DetectorMatch>& raw) const {
    // Most texts are short values no gate opens on: they need no index.
    if (text.size() <= TextIndex::kShortTextBytes && closed_for_short(text, ctx)) return;
    index.build(text);

    // Normalize only when the text could hide something from ASCII matching.
    std::string_view view = text;
    bool is_normalized = false;
    if (index.features().has(kHasNonAscii | kHasPercent)) {
        NormalizeOptions options;
        options.percent_decode = index.features().has(kHasPercent);
        if (normalize_for_matching(text, options, normalized)) {
            view = normalized.view();
            is_normalized = true;
            index.build(view);
        }
    }

    const uint64_t mask = gate_mask(index.features(), ctx);
    if (!always_scan && (mask & any_gate_bits) == 0) return;
    DetectorContext indexed = ctx;
    indexed.index = &index;
    const size_t first_new = raw.size();
    for (size_t i = 0; i < detectors.size(); ++i) {
        if (gates[i].open(mask)) detectors[i]->find(view, indexed, raw);
    }
    if (!is_normalized) return;
    for (size_t i = first_new; i < raw.size(); ++i) {
        DetectorMatch& m = raw[i];
        const size_t begin = normalized.original_begin(m.begin);
        const size_t end = normalized.original_end(m.end);
        m.begin = begin;
        m.end = end;
    }
}

void DetectorSet::Impl::resolve(std::vector<DetectorMatch>& raw, std::vector<DetectorMatch>& out) const {
    std::sort(raw.begin(), raw.end(), [&](const DetectorMatch& a, const DetectorMatch& b) {
        if (a.begin != b.begin) return a.begin < b.begin;
        if (a.end != b.end) return a.end > b.end;
        return detector_rank(detectors, a.detector) < detector_rank(detectors, b.detector);
    });
    const size_t first_new = out.size();
    for (const DetectorMatch& m : raw) {
        if (out.size() > first_new) {
            DetectorMatch& last = out.back();
            if (m.begin < last.end) {
                if (m.end - m.begin > last.end - last.begin) last = m;
                continue;
            }
        }
        out.push_back(m);
    }
}

namespace {

// Rounds of "replace what was found, look again" (see scan_settled); each round can only add matches next
// to earlier ones, and real chains end after one or two.
constexpr int kMaxUngluingRounds = 3;

}  // namespace

void DetectorSet::Impl::scan_settled(std::string_view window, size_t base, size_t keep_begin, size_t keep_end,
                                     const DetectorContext& ctx, std::vector<DetectorMatch>& out) const {
    ScanScratch& scratch = scan_scratch();
    std::vector<DetectorMatch>& raw = scratch.raw;
    std::vector<DetectorMatch>& found = scratch.window;
    raw.clear();
    found.clear();
    scan_window(window, ctx, scratch.normalized, scratch.index, raw);
    if (raw.empty()) return;
    resolve(raw, found);

    // Filtering twice must equal filtering once. A detector skips a token glued to its neighbour
    // ("9161234567,k@a.co", "k@a.co.11223344595", "?code=4111 1111 1111 1111(x"), and once an action
    // replaces that neighbour with a placeholder the token stands alone, so the next pass would find it.
    // So look again with every match replaced by bytes that bound like a placeholder ('[' ... ']', no word
    // bytes), same length so offsets hold, until nothing new appears: what the next pass would find is
    // found now. A mask keeps its last characters, so this may find a little more than a second pass would,
    // never less.
    for (int round = 0; round < kMaxUngluingRounds; ++round) {
        std::string& unglued = scratch.unglued;
        unglued.assign(window.data(), window.size());
        for (const DetectorMatch& m : found) {
            unglued[m.begin] = '[';
            std::fill(unglued.begin() + static_cast<std::ptrdiff_t>(m.begin) + 1,
                      unglued.begin() + static_cast<std::ptrdiff_t>(m.end), ']');
        }
        raw.clear();
        scan_window(unglued, ctx, scratch.normalized, scratch.index, raw);
        // A placeholder-only span found again (a query value that is now "[...]") is nothing new.
        const auto found_before = [&](const DetectorMatch& m) {
            const auto at = std::lower_bound(found.begin(), found.end(), m.begin,
                                             [](const DetectorMatch& o, size_t b) { return o.begin < b; });
            return at != found.end() && at->begin == m.begin && at->end == m.end;
        };
        if (std::all_of(raw.begin(), raw.end(), found_before)) break;
        raw.insert(raw.end(), found.begin(), found.end());
        found.clear();
        resolve(raw, found);
    }
    for (DetectorMatch m : found) {
        if (m.begin < keep_begin || m.begin >= keep_end) continue;  // the neighbouring window reports it
        m.begin += base;
        m.end += base;
        out.push_back(m);
    }
}

void DetectorSet::scan(std::string_view text, const DetectorContext& ctx,
                       std::vector<DetectorMatch>& out) const {
    if (text.empty()) return;
    if (text.size() <= kWindowBytes) {
        impl_->scan_settled(text, 0, 0, text.size(), ctx, out);
        return;
    }
    // Window k keeps the matches starting in [keep_from, keep_to) (absolute offsets); consecutive windows
    // share their split point, so nothing falls between them. Spans from neighbouring windows can still
    // overlap: one final resolution over all of them.
    ScanScratch& scratch = scan_scratch();
    std::vector<DetectorMatch>& kept = scratch.kept;
    kept.clear();
    size_t start = 0, keep_from = 0;
    for (;;) {
        size_t end = std::min(text.size(), start + kWindowBytes);
        if (end < text.size()) end = utf8_boundary_at_or_before(text, end);
        const bool last = end == text.size();
        const size_t next_start = last ? end : utf8_boundary_at_or_before(text, end - kWindowOverlap);
        const size_t keep_to = last ? end : next_start + kWindowOverlap / 2;
        impl_->scan_settled(text.substr(start, end - start), start, keep_from - start, keep_to - start, ctx,
                            kept);
        if (last) break;
        keep_from = keep_to;
        start = next_start;
    }
    impl_->resolve(kept, out);
    scratch.release_large_buffers();
}

bool DetectorSet::quiet(std::string_view text, const DetectorContext& ctx) const {
    return text.size() <= TextIndex::kShortTextBytes && impl_->closed_for_short(text, ctx);
}

bool DetectorSet::any(std::string_view text, const DetectorContext& ctx) const {
    thread_local std::vector<DetectorMatch> matches;
    matches.clear();
    scan(text, ctx, matches);
    return !matches.empty();
}

}  // namespace edgeguard::privacy
