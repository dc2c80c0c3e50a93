// Asks the walker about values that are not JSON text (the fields of a parsed OTLP protobuf export), one at
// a time, at the path they would have in the JSON document built for them: would walking that document
// leave the value alone entirely — no edit, no audit entry, no rejection, no error? While every value of a
// request is quiet, the document need not be built: the request is unchanged. The answers are the walker's
// own steps (key memo and key rules, detectors, encoded values, URL scrubbing, the clean-value memo) run on
// the value's JSON token; where a member's decision would need the JSON value itself (the client IP
// policy, an allowlist, person properties, a replay item, a detector hit in a key) the answer is "not quiet"
// and the caller builds the document.
//
// The path mirrors the document: begin_event(name) stands for `{"event": name, "properties": {` and leaves
// the path at `properties`; key()/index() enter a member or an element, pop() leaves it; container() is
// asked before the members of an object or the elements of an array. Every call returns false as soon as
// something is not quiet; the probe is then done with.
#pragma once

#include <string_view>

#include "filters/walker/walker.h"

namespace edgeguard::privacy::walk {

class QuietProbe {
  public:
    // `options` must outlive the probe. Uses this thread's walker scratch (memos shared with walk_and_filter).
    QuietProbe(const Profile& profile, const CompiledRules& rules, const WalkOptions& options)
        : walker_(profile, rules, options, out_, thread_scratch().path) {
        walker_.scratch_ = &thread_scratch();
        walker_.scratch_->path.clear();
        walker_.prepare_memos();
    }

    bool begin_event(std::string_view name) { return walker_.probe_begin_event(name); }
    // Leaves the event: back to an empty path.
    void end_event() { walker_.scratch_->path.clear(); }
    bool key(std::string_view key) { return walker_.probe_key(key); }
    bool index() { return walker_.probe_index(); }
    void pop() { walker_.probe_pop(); }
    bool container() const { return walker_.probe_container(); }
    bool string_value(std::string_view s) { return walker_.probe_string(s); }
    bool integer_value(std::string_view digits) { return walker_.probe_integer(digits); }

  private:
    WalkOutcome out_;
    Walker walker_;
};

}  // namespace edgeguard::privacy::walk
