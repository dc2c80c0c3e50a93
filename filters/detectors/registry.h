// How the rules engine gets detectors: built-ins by id, custom RE2 patterns with an optional checksum
// validator, and DetectorSet, which runs many detectors over one string in a single gated pass.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "filters/detectors/detector.h"

namespace edgeguard::privacy {

// Null plus a reason in `error` for an unknown id.
std::unique_ptr<Detector> make_builtin_detector(std::string_view id, std::string* error);
// Every id make_builtin_detector accepts, in a stable order.
std::vector<std::string_view> builtin_detector_ids();

// A custom detector: every RE2 match of `re2_pattern` whose text passes `validator` is a hit.
// validator: "" (none), "luhn", "iban", "mod97", "inn", "snils". Null plus a reason in `error` for a bad
// pattern or an unknown validator.
std::unique_ptr<Detector> make_regex_detector(std::string id, std::string_view re2_pattern,
                                              std::string_view validator, std::string* error);
// Validator names make_regex_detector accepts.
std::vector<std::string_view> regex_validator_names();

// Runs a fixed list of detectors over one string. Immutable after construction and thread-safe.
// scan() computes cheap byte gates once ('@', digit runs, "eyJ", secret prefixes, ...) and only calls the
// detectors whose gate fired; it normalizes (zero-width, NBSP, Unicode digits) only when the text has a
// non-ASCII byte, and reports spans of the ORIGINAL text. Overlapping matches are resolved: the longest
// span wins, ties go to the detector listed first. `out` is appended to, sorted by begin.
// No heap allocation when nothing matches and `out` already has capacity. DetectorMatch::detector views
// the reporting detector's id: valid while this set lives.
class DetectorSet {
  public:
    explicit DetectorSet(std::vector<std::unique_ptr<Detector>> detectors);
    ~DetectorSet();
    DetectorSet(DetectorSet&&) noexcept;
    DetectorSet& operator=(DetectorSet&&) noexcept;

    // All built-in detectors (the default set the privacy cases are checked against).
    static DetectorSet builtin();

    void scan(std::string_view text, const DetectorContext& ctx, std::vector<DetectorMatch>& out) const;
    // Cheaper question for "reject"/"drop" actions: does anything match at all?
    bool any(std::string_view text, const DetectorContext& ctx) const;
    // True when scan() would find nothing in `text` because no detector's gate opens on it, judged from one
    // pass over a short ASCII text (at most TextIndex::kShortTextBytes, no '%': nothing to normalize). False
    // means "scan it", never "there is a match". Costs a fraction of scan() on the short fresh values
    // (order references, build numbers) that most memo misses are.
    bool quiet(std::string_view text, const DetectorContext& ctx) const;

    size_t size() const;
    const Detector& at(size_t i) const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace edgeguard::privacy
