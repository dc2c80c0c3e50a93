#include "filters/otlp/inspection_doc.h"

#include <simdjson.h>

#include <algorithm>

#include "filters/value_actions.h"

namespace edgeguard::privacy::otlp {

namespace {

uint32_t u32(size_t n) { return static_cast<uint32_t>(n); }

bool only_separators(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c == ',' || c == ' ' || c == '\n' || c == '\t' || c == '\r'; });
}

}  // namespace

void InspectionDoc::clear() {
    text_.assign("[");
    slots_.clear();
    has_items_.assign(1, false);
    open_slots_.clear();
    key_pending_ = false;
}

void InspectionDoc::finish() { text_.push_back(']'); }

void InspectionDoc::separator() {
    if (has_items_.back()) text_.push_back(',');
    has_items_.back() = true;
}

void InspectionDoc::begin_record(std::string_view event_name) {
    separator();
    text_.append("{\"event\":\"");
    append_json_escaped(text_, event_name);
    text_.append("\",\"properties\":{");
    has_items_.push_back(false);
}

void InspectionDoc::end_record() {
    text_.append("}}");
    has_items_.pop_back();
}

void InspectionDoc::key(std::string_view key, bool key_is_json) {
    separator();
    pending_key_begin_ = u32(text_.size());
    if (key_is_json) {
        text_.append(key);
    } else {
        text_.push_back('"');
        append_json_escaped(text_, key);
        text_.push_back('"');
    }
    text_.push_back(':');
    key_pending_ = true;
}

void InspectionDoc::open_object() {
    if (!key_pending_) separator();
    key_pending_ = false;
    text_.push_back('{');
    has_items_.push_back(false);
}

void InspectionDoc::close_object() {
    text_.push_back('}');
    has_items_.pop_back();
}

void InspectionDoc::open_array() {
    if (!key_pending_) separator();
    key_pending_ = false;
    text_.push_back('[');
    has_items_.push_back(false);
}

void InspectionDoc::close_array() {
    text_.push_back(']');
    has_items_.pop_back();
}

uint32_t InspectionDoc::begin_slot(Slot::Kind kind, uint32_t source, bool attribute) {
    uint32_t key_begin;
    if (key_pending_) {
        key_begin = pending_key_begin_;
    } else {
        separator();
        key_begin = u32(text_.size());
    }
    key_pending_ = false;
    Slot s;
    s.kind = kind;
    s.attribute = attribute;
    s.key_begin = key_begin;
    s.value_begin = u32(text_.size());
    s.source = source;
    slots_.push_back(s);
    return u32(slots_.size() - 1);
}

void InspectionDoc::text_value(std::string_view raw, uint32_t source, bool attribute) {
    const uint32_t i = begin_slot(Slot::Kind::Text, source, attribute);
    text_.push_back('"');
    append_json_escaped(text_, raw);
    text_.push_back('"');
    slots_[i].value_end = u32(text_.size());
}

void InspectionDoc::json_string_value(std::string_view token, uint32_t source, bool attribute) {
    const uint32_t i = begin_slot(Slot::Kind::Text, source, attribute);
    text_.append(token);
    slots_[i].value_end = u32(text_.size());
}

void InspectionDoc::int_value(std::string_view digits, uint32_t source, bool attribute) {
    const uint32_t i = begin_slot(Slot::Kind::Int, source, attribute);
    text_.append(digits);
    slots_[i].value_end = u32(text_.size());
}

void InspectionDoc::opaque_value(uint32_t source, bool attribute) {
    const uint32_t i = begin_slot(Slot::Kind::Opaque, source, attribute);
    text_.append("null");
    slots_[i].value_end = u32(text_.size());
}

void InspectionDoc::open_slot_object(uint32_t source, bool attribute) {
    open_slots_.push_back(begin_slot(Slot::Kind::Object, source, attribute));
    text_.push_back('{');
    has_items_.push_back(false);
}

void InspectionDoc::open_slot_array(uint32_t source, bool attribute) {
    open_slots_.push_back(begin_slot(Slot::Kind::Array, source, attribute));
    text_.push_back('[');
    has_items_.push_back(false);
}

void InspectionDoc::close_slot() {
    const uint32_t i = open_slots_.back();
    open_slots_.pop_back();
    text_.push_back(slots_[i].kind == Slot::Kind::Object ? '}' : ']');
    has_items_.pop_back();
    slots_[i].value_end = u32(text_.size());
}

bool InspectionDoc::resolve(const std::vector<Edit>& edits, std::vector<SlotChange>& changes) const {
    thread_local simdjson::dom::parser token_parser;
    const size_t n = slots_.size();
    auto by_key = [](const Slot& s, size_t pos) { return s.key_begin < pos; };
    // Value edits of one slot are consecutive (edits are sorted and disjoint, and a text value has no
    // nested slots), so they are gathered and applied when the slot changes.
    std::vector<Edit> pending;
    size_t pending_slot = n;
    auto flush = [&]() -> bool {
        if (pending_slot == n) return true;
        const Slot& s = slots_[pending_slot];
        const std::string token =
            apply_edits(std::string_view(text_).substr(s.value_begin, s.value_end - s.value_begin), pending);
        simdjson::dom::element root;
        std::string_view str;
        if (token_parser.parse(token.data(), token.size(), true).get(root) || root.get_string().get(str)) return false;
        SlotChange c;
        c.slot = u32(pending_slot);
        c.text.assign(str);
        c.became_text = s.kind != Slot::Kind::Text;
        changes.push_back(std::move(c));
        pending.clear();
        pending_slot = n;
        return true;
    };
    for (const Edit& e : edits) {
        // An edit that only removes text drops the members wholly inside it.
        size_t i = std::lower_bound(slots_.begin(), slots_.end(), e.begin, by_key) - slots_.begin();
        bool dropped_any = false;
        const bool removal = only_separators(e.text);
        while (removal && i < n && slots_[i].key_begin < e.end && slots_[i].value_end <= e.end) {
            if (!flush()) return false;
            changes.push_back(SlotChange{SlotChange::Kind::Drop, u32(i), {}, false});
            dropped_any = true;
            const uint32_t end = slots_[i].value_end;
            while (i < n && slots_[i].key_begin < end) ++i;  // its own members go with it
        }
        if (dropped_any) continue;
        // The innermost slot around the edit.
        size_t j = std::lower_bound(slots_.begin(), slots_.end(), e.begin + 1, by_key) - slots_.begin();
        bool found = false;
        while (j > 0) {
            --j;
            const Slot& s = slots_[j];
            if (s.key_begin <= e.begin && e.begin < s.value_begin && e.end <= s.value_begin) {
                // A detector hit in the key itself: the attribute goes (a key cannot be rewritten in place).
                if (!s.attribute || !flush()) return false;
                changes.push_back(SlotChange{SlotChange::Kind::Drop, u32(j), {}, false});
                found = true;
                break;
            }
            if (s.value_begin <= e.begin && e.end <= s.value_end) {
                const bool container = s.kind == Slot::Kind::Object || s.kind == Slot::Kind::Array;
                if (container && (e.begin != s.value_begin || e.end != s.value_end)) return false;
                if (pending_slot != j && !flush()) return false;
                pending_slot = j;
                pending.push_back(Edit{e.begin - s.value_begin, e.end - s.value_begin, e.text});
                found = true;
                break;
            }
        }
        if (!found) return false;
    }
    return flush();
}

}  // namespace edgeguard::privacy::otlp
