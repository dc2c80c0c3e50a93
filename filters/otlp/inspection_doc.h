// An OTLP export seen by the privacy walker: every record (resource, scope, log record, span, metric) becomes
// one event of a JSON list, its text-bearing fields and attributes become properties, attribute keys become
// object keys — so a profile's key rules match `properties.attributes."user.email"` or `**."enduser.id"`,
// its detectors scan log bodies, span names and every string attribute, and its event-scoped rules can name
// `$otel_log`, `$otel_span`, `$otel_span_event`... Each value written here is a Slot that remembers where it
// came from in the export (a protobuf field, a byte range of the JSON text), so the walker's edits on this
// document map back onto the export: a value edit rewrites that value, a dropped member drops that attribute.
// Non-text values (bool, double, bytes) are written as null: key rules still act on them, detectors do not.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "filters/event_walker.h"

namespace edgeguard::privacy::otlp {

struct Slot {
    enum class Kind : uint8_t { Text, Int, Opaque, Object, Array } kind = Kind::Text;
    bool attribute = false;  // a KeyValue (dropped as a whole); otherwise a plain field or an array element
    uint32_t key_begin = 0;  // == value_begin when the slot has no key
    uint32_t value_begin = 0;
    uint32_t value_end = 0;
    uint32_t source = 0;  // the format's own index of where the value lives in the export
};

// What the walk decided for one slot.
struct SlotChange {
    enum class Kind : uint8_t { Rewrite, Drop } kind = Kind::Rewrite;
    uint32_t slot = 0;
    std::string text;       // Rewrite: the new text of the value (unescaped)
    bool became_text = false;  // Rewrite of a non-text value (an integer made a placeholder or hash)
};

class InspectionDoc {
  public:
    void clear();
    void finish();  // closes the list; text() is then the document to walk
    const std::string& text() const { return text_; }
    const std::vector<Slot>& slots() const { return slots_; }

    void begin_record(std::string_view event_name);
    void end_record();

    // Members of the current object. `key` is raw text (escaped here) unless `key_is_json` (a JSON string
    // token copied from the source, quotes included).
    void key(std::string_view key, bool key_is_json = false);
    void open_object();  // after key(): a nested object without a slot of its own
    void close_object();
    void open_array();
    void close_array();

    // Values with slots. After key() (a member) or inside an array (an element).
    void text_value(std::string_view raw, uint32_t source, bool attribute);  // raw text, escaped here
    void json_string_value(std::string_view token, uint32_t source, bool attribute);  // a JSON string token
    void int_value(std::string_view digits, uint32_t source, bool attribute);
    void opaque_value(uint32_t source, bool attribute);
    // Containers with slots (kvlist and array values): open, write members/elements, close.
    void open_slot_object(uint32_t source, bool attribute);
    void open_slot_array(uint32_t source, bool attribute);
    void close_slot();

    // Maps the walker's edits (sorted, disjoint) onto slots. False when an edit fits no slot (the caller
    // refuses the body rather than forward something it could not rewrite).
    bool resolve(const std::vector<Edit>& edits, std::vector<SlotChange>& changes) const;

  private:
    void separator();
    uint32_t begin_slot(Slot::Kind kind, uint32_t source, bool attribute);

    std::string text_;
    std::vector<Slot> slots_;
    std::vector<bool> has_items_;        // per open container: whether a comma is due
    std::vector<uint32_t> open_slots_;   // containers with slots, innermost last
    bool key_pending_ = false;
    uint32_t pending_key_begin_ = 0;
};

}  // namespace edgeguard::privacy::otlp
