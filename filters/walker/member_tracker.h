// Which byte ranges to delete for the dropped members of one object or array.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace edgeguard::privacy::walk {

// Turns "drop member i" into byte ranges without recording every member: a dropped member after a kept
// one takes the comma before it ([end of last kept, its end)); a run of dropped members at the start takes
// everything up to the next member's start, or up to its own end when it is the last one.
class MemberTracker {
  public:
    // Call for every member in order; returns nothing, records deletions for dropped ones.
    [[gnu::always_inline]] void member(size_t begin, size_t end, bool drop,
                                       std::vector<std::pair<size_t, size_t>>& ranges) {
        if (leading_drop_) {
            ranges.emplace_back(leading_begin_,
                                begin);  // the previous leading drop ends where this one begins
            leading_drop_ = false;
        }
        if (drop) {
            if (have_kept_) {
                ranges.emplace_back(last_kept_end_, end);
            } else {
                leading_drop_ = true;
                leading_begin_ = begin;
                leading_end_ = end;
            }
            any_drop_ = true;
        } else {
            have_kept_ = true;
            last_kept_end_ = end;
        }
    }
    void finish(std::vector<std::pair<size_t, size_t>>& ranges) {
        if (leading_drop_) ranges.emplace_back(leading_begin_, leading_end_);
    }
    bool any_drop() const { return any_drop_; }

  private:
    bool have_kept_ = false;
    bool leading_drop_ = false;
    bool any_drop_ = false;
    size_t last_kept_end_ = 0;
    size_t leading_begin_ = 0;
    size_t leading_end_ = 0;
};

}  // namespace edgeguard::privacy::walk
