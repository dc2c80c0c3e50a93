// The previous object of a kind (the value of one key, e.g. every event's `properties`), kept as its raw
// text and its members, so that a member whose bytes repeat can be passed over without being looked at.
//
// Why: the events of a batch repeat their device, app and library members byte for byte, and the walker's
// per-member step (key lookup, path, value lookup, decision) cost ~4x what simdjson spends iterating the
// member. A member that was "reusable" last time — a plain key (no key rule, no IP policy, no detector hit
// in the key) with a scalar value the detectors found nothing in — had no effect on the output, and that
// is a function of the profile and the member's bytes alone. So when the document holds the same bytes
// (from the key's opening quote to one byte past the value, which pins where a number or literal ends) at
// the same member index of an object of the same kind, or in the member its key had in that object (for
// members that come in an order of their own), the member is known to need nothing: no lookup, no path
// step, no decision. The caller still steps simdjson's iterator over it (which checks the commas
// and braces around it), and the bytes were fully validated when they were walked the first time.
//
// A trace only ever answers "reusable or not" by an exact byte comparison: a stale or misaligned trace
// costs a failed comparison, never a wrong answer. It is per thread and per profile (Scratch), and bounded:
// kMaxTraceBytes of text per kind, kTraceKinds kinds.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "filters/string_memo.h"

namespace edgeguard::privacy::walk {

constexpr size_t kMaxTraceBytes = 8 * 1024;
constexpr size_t kTraceKinds = 8;
constexpr uint32_t kMaxBackoff = 16;
// Key memo slots a trace indexes its members by (the walker's key memo has this many; a slot beyond it is
// not indexed, which only costs the walk).
constexpr size_t kTracedKeySlots = 1024;

struct TraceMember {
    uint32_t begin;     // the key's opening quote, relative to the object's first member
    uint32_t end;       // just past the value
    uint32_t key_slot;  // its key's memo slot (a prediction hint for the member after it)
    bool reusable;
};

struct ObjectTrace {
    // No kind: the memo's "no slot" (an object under a long key, an array element, the event itself).
    static constexpr uint32_t kNoTag = StringMemo<bool>::kNoSlot;
    uint32_t tag = kNoTag;  // the kind: the key memo slot of the key whose value the object is
    bool in_use = false;    // an object of this kind is being walked (a nested one of the same kind walks
                            // without the trace)
    // The previous object: its first member's key quote to one byte past its last value. While the document
    // it came from is walked, `text` points into it (no copy per object); ObjectTraces::keep() copies it
    // into `own` before that document's buffer is reused.
    const char* text = nullptr;
    size_t text_size = 0;
    std::string own;
    // The previous object's members, in order: the first `member_count` of `members`. The current object's
    // are recorded into `next` as it is walked (through TraceCursor's own pointers: a push_back reloads the
    // vector's pointers after every store to memory the compiler cannot tell apart from them). Both vectors
    // only grow, so recording costs no allocation once warm.
    std::vector<TraceMember> members;
    std::vector<TraceMember> next;
    size_t member_count = 0;
    // Objects of this kind that seldom repeat the one before (members reordered, values new every time)
    // would pay for comparing and recording and get nothing: after such an object the trace sits out the
    // next `skip` objects of its kind, `backoff` doubling (to kMaxBackoff) while it keeps missing.
    uint32_t skip = 0;
    uint32_t backoff = 0;
    // Per key memo slot, the index among the previous object's reusable members of the member with that
    // key, so a member that comes elsewhere than at the cursor (members in an order of their own) is still
    // found; filled by TraceCursor::index_by_key. Only a guess: a key the previous object lacked keeps an
    // older object's entry (or one out of range), and the member an entry names answers only by the same
    // exact comparison as at the cursor.
    std::array<uint16_t, kTracedKeySlots> member_by_key;

    ObjectTrace() { member_by_key.fill(UINT16_MAX); }

    void forget() {
        text = nullptr;
        text_size = 0;
        member_count = 0;
        skip = 0;
        backoff = 0;
    }
};

// Per-thread traces, one per kind (direct-mapped by tag).
struct ObjectTraces {
    std::array<ObjectTrace, kTraceKinds> kinds;
    // Off: every member is walked (tests compare the two; the output must not differ).
    bool enabled = true;
    // Off (tests compare the two): a member is compared only with the previous object's member at the
    // cursor, not also with the one its key had there (TraceCursor::reusable_by_key).
    bool by_key = true;
    uint64_t members_passed_over = 0;  // how often a trace answered (tests check that they ran)
    uint64_t members_found_by_key = 0;  // of those, found by their key away from the cursor
    uint64_t objects_sat_out = 0;      // objects walked without their trace while it backed off

    // The trace for objects of kind `tag`, or null (no tag, or one of that slot is in use).
    ObjectTrace* acquire(uint32_t tag) {
        if (tag == ObjectTrace::kNoTag || !enabled) return nullptr;
        ObjectTrace& t = kinds[tag % kTraceKinds];
        if (t.in_use) return nullptr;
        if (t.tag != tag) {
            t.forget();
            t.tag = tag;
        }
        if (t.skip > 0) {
            --t.skip;
            ++objects_sat_out;
            return nullptr;
        }
        t.in_use = true;
        return &t;
    }

    // Copies every trace's text that still points into a document into its own storage: call before the
    // buffer of a walked document is reused or freed.
    void keep() {
        for (auto& t : kinds) {
            if (t.text == nullptr || t.text == t.own.data()) continue;
            t.own.assign(t.text, t.text_size);
            t.text = t.own.data();
        }
    }

    void clear() {
        for (auto& t : kinds) {
            t.forget();
            t.tag = ObjectTrace::kNoTag;
            t.in_use = false;
        }
    }
};

// One object's walk against its kind's trace: matches each member against the previous object's member at
// a cursor, records this object's members, and at the end makes this object the trace. The cursor moves
// one member per member, and after a walked member to just past that member's key in the previous object
// when it is near (a member inserted, removed or moved only costs the members around it). Releases the
// trace however the walk ends.
class TraceCursor {
  public:
    // The previous object's members and text are fixed while this one is walked (its kind's trace is in
    // use, so no nested object records into it): kept here, they are not reloaded through the trace after
    // every call the member loop makes.
    TraceCursor(ObjectTraces& traces, uint32_t tag) : traces_(traces), trace_(traces.acquire(tag)) {
        if (trace_ == nullptr) return;
        prev_ = trace_->members.data();
        prev_end_ = prev_ + trace_->member_count;
        prev_text_ = trace_->text;
        at_ = prev_;
        out_ = trace_->next.data();
        out_end_ = out_ + trace_->next.size();
        by_key_map_ = trace_->member_by_key.data();
        by_key_on_ = traces.by_key;
    }
    ~TraceCursor() {
        if (trace_ == nullptr) return;
        trace_->in_use = false;
        traces_.members_passed_over += passed_over_;
        traces_.members_found_by_key += found_by_key_;
    }
    TraceCursor(const TraceCursor&) = delete;
    TraceCursor& operator=(const TraceCursor&) = delete;

    explicit operator bool() const { return trace_ != nullptr; }

    // The member starting at `begin` (its key's quote) is the next one (the first one fixes where this
    // object's recorded text starts). When the previous object's member at the cursor was reusable and `text`
    // holds its bytes at `begin` through one byte past its value
    // (`text` is the document, `size` its length), returns true and sets `end` past the value and
    // `key_slot` to its key's slot. The caller then records the member (passed_over or walked).
    [[gnu::always_inline]] bool reusable_at(const char* text, size_t size, size_t begin, size_t& end,
                                            uint32_t& key_slot) {
        if (count_ == 0) start(begin);
        if (at_ >= prev_end_) return false;
        return same_as(*at_, text, size, begin, end, key_slot);
    }

    // Records the member [begin, end) that reusable_at answered for.
    [[gnu::always_inline]] void passed_over(size_t begin, size_t end, uint32_t key_slot) {
        record(begin, end, key_slot, true);
        ++at_;
        ++passed_over_;
    }

    // reusable_at for the previous object's member whose key had memo slot `key_slot_guess` (an unconfirmed
    // guess, such as the raw key index's entry: the comparison covers the key's bytes too), wherever it
    // stood in that object. On true the caller records the member with passed_over_by_key.
    [[gnu::always_inline]] bool reusable_by_key(const char* text, size_t size, size_t begin,
                                                uint32_t key_slot_guess, size_t& end, uint32_t& key_slot) {
        if (key_slot_guess >= kTracedKeySlots || !by_key_on_) return false;
        // The member at the cursor has this key: the value changed, and the cursor's comparison said so.
        if (at_ < prev_end_ && at_->key_slot == key_slot_guess) return false;
        if (!by_key_ready_) index_by_key();
        const size_t index = by_key_map_[key_slot_guess];
        if (index >= static_cast<size_t>(prev_end_ - prev_)) return false;
        if (!same_as(prev_[index], text, size, begin, end, key_slot)) return false;
        by_key_ = prev_ + index;
        return true;
    }

    // Records the member [begin, end) that reusable_by_key answered for; the cursor moves past the member
    // that answered.
    [[gnu::always_inline]] void passed_over_by_key(size_t begin, size_t end, uint32_t key_slot) {
        record(begin, end, key_slot, true);
        at_ = by_key_ + 1;
        ++passed_over_;
        ++found_by_key_;
    }

    // Records the member [begin, end) that was walked, with its key's memo slot (kNoSlot: none) and
    // whether it is reusable, and moves the cursor past the previous object's member with that key when
    // one is within kRealignWindow of the cursor.
    [[gnu::always_inline]] void walked(size_t begin, size_t end, uint32_t key_slot, bool reusable) {
        record(begin, end, key_slot, reusable);
        if (at_ < prev_end_ && at_->key_slot == key_slot) {
            ++at_;
            return;
        }
        realign(key_slot);
    }

    // The object ended after its last member, whose value ended at `end` in `text`: it becomes the trace
    // (only what fits in kMaxTraceBytes stays reusable).
    void finish(const char* text, size_t end) {
        ObjectTrace& t = *trace_;
        // Judged only against a previous object: fewer than a quarter of the members passed over is a miss.
        if (t.member_count != 0 && passed_over_ * 4 < count_) {
            t.backoff = std::min(t.backoff * 2 + 1, kMaxBackoff);
            t.skip = t.backoff;
        } else {
            t.backoff = 0;
        }
        t.member_count = static_cast<size_t>(out_ - t.next.data());
        t.members.swap(t.next);
        if (t.member_count == 0) {
            t.text = nullptr;
            t.text_size = 0;
            return;
        }
        // Every kept member ends (one byte past its value included) within the first kMaxTraceBytes.
        t.text = text + span_begin_;
        t.text_size = std::min(end + 1 - span_begin_, kMaxTraceBytes);
    }

  private:
    static constexpr size_t kRealignWindow = 4;

    // Whether the previous object's member `m` is reusable and its bytes, from the key's opening quote through
    // one byte past its value, are at `begin` in `text`; if so sets `end` past the value and `key_slot`.
    [[gnu::always_inline]] bool same_as(const TraceMember& m, const char* text, size_t size, size_t begin,
                                        size_t& end, uint32_t& key_slot) const {
        if (!m.reusable) return false;
        const size_t len = m.end - m.begin + 1;
        if (begin + len > size || !memo_detail::equal_bytes(text + begin, prev_text_ + m.begin, len))
            return false;
        end = begin + (m.end - m.begin);
        key_slot = m.key_slot;
        return true;
    }

    // The first member fixes where the recorded text starts.
    void start(size_t begin) {
        span_begin_ = begin;
        record_end_ = begin + kMaxTraceBytes - 1;
    }

    // Members past kMaxTraceBytes are not kept (their text would not be), which bounds the records too.
    [[gnu::always_inline]] void record(size_t begin, size_t end, uint32_t key_slot, bool reusable) {
        if (end <= record_end_) {
            if (out_ == out_end_) [[unlikely]]
                grow();
            *out_++ = TraceMember{static_cast<uint32_t>(begin - span_begin_),
                                  static_cast<uint32_t>(end - span_begin_), key_slot, reusable};
        }
        ++count_;
    }

    [[gnu::noinline]] void grow() {
        auto& next = trace_->next;
        const size_t used = static_cast<size_t>(out_ - next.data());
        next.resize(next.size() * 2 + 32);
        out_ = next.data() + used;
        out_end_ = next.data() + next.size();
    }

    // Fills the trace's member_by_key from the previous object's reusable members, once per object and only
    // when a member missed the cursor: an object whose members repeat in order never pays for it.
    [[gnu::noinline]] void index_by_key() {
        by_key_ready_ = true;
        for (const TraceMember* m = prev_; m < prev_end_; ++m)
            if (m->reusable && m->key_slot < kTracedKeySlots)
                by_key_map_[m->key_slot] = static_cast<uint16_t>(m - prev_);
    }

    [[gnu::noinline]] void realign(uint32_t key_slot) {
        const size_t cursor = static_cast<size_t>(at_ - prev_);
        const size_t from = cursor > kRealignWindow ? cursor - kRealignWindow : 0;
        const size_t to = std::min(static_cast<size_t>(prev_end_ - prev_), cursor + kRealignWindow + 1);
        if (key_slot != ObjectTrace::kNoTag) {
            for (size_t j = from; j < to; ++j) {
                if (prev_[j].key_slot == key_slot) {
                    at_ = prev_ + j + 1;
                    return;
                }
            }
        }
        if (at_ < prev_end_) ++at_;
    }

    ObjectTraces& traces_;
    ObjectTrace* trace_;
    const TraceMember* prev_ = nullptr;  // the previous object's members
    const TraceMember* prev_end_ = nullptr;
    const TraceMember* at_ = nullptr;  // the one to compare the next member with (prev_end_: none)
    const TraceMember* by_key_ = nullptr;  // the member reusable_by_key answered with last
    const char* prev_text_ = nullptr;
    TraceMember* out_ = nullptr;  // where the next record of this object goes, in its trace's `next`
    TraceMember* out_end_ = nullptr;
    uint16_t* by_key_map_ = nullptr;    // the trace's member_by_key
    bool by_key_on_ = false;            // ObjectTraces::by_key
    bool by_key_ready_ = false;         // member_by_key holds the previous object's members
    size_t count_ = 0;  // members of this object so far
    size_t passed_over_ = 0;
    size_t found_by_key_ = 0;
    size_t span_begin_ = 0;
    size_t record_end_ = 0;  // the largest member end whose record is kept (end + 1 within kMaxTraceBytes)
};

}  // namespace edgeguard::privacy::walk
