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
// something is not quiet; reset() then lets the caller go on with the next event.
#pragma once

#include <string_view>

#include "filters/walker/walker.h"

namespace edgeguard::privacy::walk {

class QuietProbe {
  public:
    // `options` must outlive the probe. Uses this thread's walker scratch (memos shared with
    // walk_and_filter).
    QuietProbe(const Profile& profile, const CompiledRules& rules, const WalkOptions& options)
        : walker_(profile, rules, options, out_, thread_scratch().path) {
        walker_.scratch_ = &thread_scratch();
        walker_.scratch_->path.clear();
        walker_.prepare_memos();
    }

    bool begin_event(std::string_view name) { return note(walker_.probe_begin_event(name)); }
    // Leaves the event: back to an empty path.
    void end_event() { walker_.scratch_->path.clear(); }
    bool key(std::string_view key) { return note(walker_.probe_key(key)); }
    bool index() { return note(walker_.probe_index()); }
    void pop() { walker_.probe_pop(); }
    bool container() { return note(walker_.probe_container()); }
    bool string_value(std::string_view s) { return note(walker_.probe_string(s)); }
    bool integer_value(std::string_view digits) { return note(walker_.probe_integer(digits)); }

    // Whether an answer so far was "not quiet" (rather than the caller giving up for reasons of its own).
    bool said_no() const { return said_no_; }
    // Starts over after a "not quiet": the next event is asked about afresh.
    void reset() {
        out_ = WalkOutcome{};
        said_no_ = false;
        walker_.scratch_->path.clear();
    }

  private:
    bool note(bool quiet) {
        said_no_ = said_no_ || !quiet;
        return quiet;
    }
    WalkOutcome out_;
    Walker walker_;
    bool said_no_ = false;
};

}  // namespace edgeguard::privacy::walk
