// The quiet pass straight over the protobuf wire format (otlp_formats.h, protobuf_quiet_pass): every value
// the inspection document would hold is handed to walk::QuietProbe at the path the document gives it,
// read in place from the body — no messages, no copies, no document.
//
// What each field is comes from the message descriptors libprotobuf compiled from proto/ (one plan per
// message, built once); what the document makes of it (a record, a text member, attributes...) from
// Plans::Plans below, which names the same fields inspection_doc.h lists and otlp_protobuf.cc reads.
// Fields in between (the resource and scope wrappers, a metric's data) are walked for what they hold.
//
// The pass answers true only for a body libprotobuf parses: it checks what the parser checks (wire types,
// lengths, varints, UTF-8 of string fields, nesting) and gives up on every encoding it does not need to
// read exactly (groups, a known field with another wire type, a repeated key or value in a KeyValue, two
// values in an AnyValue, oversized tags and lengths); giving up is not a verdict, the caller then parses
// the body with libprotobuf. A field that repeats outside KeyValue and AnyValue (which the parser merges or
// lets the last one win) is probed every time it occurs: a superset of what the parsed message holds.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <logs.pb.h>
#include <metrics.pb.h>
#include <simdjson.h>
#include <trace.pb.h>

#include <charconv>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "filters/otlp/otlp_formats.h"
#include "filters/walker/quiet_probe.h"

namespace edgeguard::privacy::otlp {

namespace {

namespace pb = google::protobuf;
using pb::io::CodedInputStream;

// libprotobuf's own nesting limit is 100 messages; deeper bodies are left to it.
constexpr int kMaxMessageDepth = 64;

enum class WireKind : uint8_t { Unknown, Varint, Fixed64, Fixed32, Length, Message };

// What the inspection document makes of a field.
enum class Role : uint8_t {
    None,         // read for what it holds (a wrapper, or a field the document leaves out)
    Record,       // a message that becomes an event of the document (`name` is the event name)
    Text,         // a string member `name` of the current object (left out when empty)
    Any,          // an AnyValue member `name`
    Attributes,   // a KeyValue of the object member `name`
    ObjectArray,  // a message that is one object of the array member `name`
};

// The messages read by dedicated code rather than field by field.
enum class Special : uint8_t { None, KeyValue, AnyValue, ArrayValue, KeyValueList };

struct MessagePlan;

struct FieldPlan {
    WireKind kind = WireKind::Unknown;
    bool packable = false;  // repeated scalar: a packed run (wire type 2) is accepted too
    bool utf8 = false;      // a proto3 string: libprotobuf refuses it unless it is valid UTF-8
    Role role = Role::None;
    bool counted = false;  // a record the document may leave out (QuietRecords): log records, spans, metrics
    uint16_t id = 0;       // index of the field's RepeatTrace
    std::string_view name;
    const MessagePlan* message = nullptr;
};

struct MessagePlan {
    std::vector<FieldPlan> fields;  // by field number
    Special special = Special::None;
    const FieldPlan* field(uint32_t number) const {
        return number < fields.size() && fields[number].kind != WireKind::Unknown ? &fields[number] : nullptr;
    }
};

class Plans {
  public:
    Plans() {
        logs = plan(opentelemetry::proto::logs::v1::ExportLogsServiceRequest::descriptor());
        traces = plan(opentelemetry::proto::trace::v1::ExportTraceServiceRequest::descriptor());
        metrics = plan(opentelemetry::proto::metrics::v1::ExportMetricsServiceRequest::descriptor());
        special("opentelemetry.proto.common.v1.KeyValue", Special::KeyValue);
        special("opentelemetry.proto.common.v1.AnyValue", Special::AnyValue);
        special("opentelemetry.proto.common.v1.ArrayValue", Special::ArrayValue);
        special("opentelemetry.proto.common.v1.KeyValueList", Special::KeyValueList);
        // The records, members and attributes of inspection_doc.h.
        for (const char* resource :
             {"logs.v1.ResourceLogs", "trace.v1.ResourceSpans", "metrics.v1.ResourceMetrics"})
            role(resource, "resource", Role::Record, "$otel_resource");
        for (const char* scope : {"logs.v1.ScopeLogs", "trace.v1.ScopeSpans", "metrics.v1.ScopeMetrics"})
            role(scope, "scope", Role::Record, "$otel_scope");
        role("resource.v1.Resource", "attributes", Role::Attributes, "attributes");
        role("common.v1.InstrumentationScope", "name", Role::Text, "name");
        role("common.v1.InstrumentationScope", "attributes", Role::Attributes, "attributes");
        role("logs.v1.ScopeLogs", "log_records", Role::Record, "$otel_log");
        role("logs.v1.LogRecord", "body", Role::Any, "body");
        role("logs.v1.LogRecord", "event_name", Role::Text, "event_name");
        role("logs.v1.LogRecord", "attributes", Role::Attributes, "attributes");
        role("trace.v1.ScopeSpans", "spans", Role::Record, "$otel_span");
        role("trace.v1.Span", "name", Role::Text, "name");
        role("trace.v1.Span", "attributes", Role::Attributes, "attributes");
        role("trace.v1.Status", "message", Role::Text, "status_message");  // Span.status is read through
        role("trace.v1.Span", "events", Role::ObjectArray, "events");
        role("trace.v1.Span.Event", "name", Role::Text, "name");
        role("trace.v1.Span.Event", "attributes", Role::Attributes, "attributes");
        role("trace.v1.Span", "links", Role::ObjectArray, "links");
        role("trace.v1.Span.Link", "attributes", Role::Attributes, "attributes");
        role("metrics.v1.ScopeMetrics", "metrics", Role::Record, "$otel_metric");
        for (const char* text : {"name", "description", "unit"})
            role("metrics.v1.Metric", text, Role::Text, text);
        role("metrics.v1.Metric", "metadata", Role::Attributes, "metadata");
        for (const char* data : {"Gauge", "Sum", "Histogram", "ExponentialHistogram", "Summary"})
            role(std::string("metrics.v1.") + data, "data_points", Role::ObjectArray, "data_points");
        for (const char* point : {"NumberDataPoint", "HistogramDataPoint", "ExponentialHistogramDataPoint"}) {
            role(std::string("metrics.v1.") + point, "attributes", Role::Attributes, "attributes");
            role(std::string("metrics.v1.") + point, "exemplars", Role::ObjectArray, "exemplars");
        }
        role("metrics.v1.SummaryDataPoint", "attributes", Role::Attributes, "attributes");
        role("metrics.v1.Exemplar", "filtered_attributes", Role::Attributes, "attributes");
        for (const char* records : {"logs.v1.ScopeLogs.log_records", "trace.v1.ScopeSpans.spans",
                                    "metrics.v1.ScopeMetrics.metrics"})
            counted(records);
    }

    const MessagePlan* logs = nullptr;
    const MessagePlan* traces = nullptr;
    const MessagePlan* metrics = nullptr;
    uint16_t field_count = 0;

  private:
    MessagePlan* plan(const pb::Descriptor* d) {
        auto found = by_name_.find(d->full_name());
        if (found != by_name_.end()) return &found->second;
        MessagePlan& p = by_name_[d->full_name()];
        int highest = 0;
        for (int i = 0; i < d->field_count(); ++i) highest = std::max(highest, d->field(i)->number());
        p.fields.resize(static_cast<size_t>(highest) + 1);
        for (int i = 0; i < d->field_count(); ++i) {
            const pb::FieldDescriptor* f = d->field(i);
            FieldPlan& fp = p.fields[static_cast<size_t>(f->number())];
            fp.id = field_count++;
            fp.packable = f->is_packable();
            switch (f->type()) {
                case pb::FieldDescriptor::TYPE_DOUBLE:
                case pb::FieldDescriptor::TYPE_FIXED64:
                case pb::FieldDescriptor::TYPE_SFIXED64:
                    fp.kind = WireKind::Fixed64;
                    break;
                case pb::FieldDescriptor::TYPE_FLOAT:
                case pb::FieldDescriptor::TYPE_FIXED32:
                case pb::FieldDescriptor::TYPE_SFIXED32:
                    fp.kind = WireKind::Fixed32;
                    break;
                case pb::FieldDescriptor::TYPE_STRING:
                    fp.kind = WireKind::Length;
                    fp.utf8 = d->file()->syntax() == pb::FileDescriptor::SYNTAX_PROTO3;
                    break;
                case pb::FieldDescriptor::TYPE_BYTES:
                    fp.kind = WireKind::Length;
                    break;
                case pb::FieldDescriptor::TYPE_MESSAGE:
                    fp.kind = WireKind::Message;
                    fp.message = plan(f->message_type());
                    break;
                case pb::FieldDescriptor::TYPE_GROUP:
                    fp.kind = WireKind::Unknown;
                    break;  // none in OTLP
                default:
                    fp.kind = WireKind::Varint;
                    break;
            }
        }
        return &p;
    }

    MessagePlan& message(const std::string& name) {
        auto found = by_name_.find("opentelemetry.proto." + name);
        if (found == by_name_.end()) throw std::logic_error("OTLP quiet pass: no message " + name);
        return found->second;
    }
    void special(const std::string& full_name, Special s) { by_name_.at(full_name).special = s; }
    void counted(const std::string& message_and_field) {
        const size_t dot = message_and_field.rfind('.');
        const std::string message_name = message_and_field.substr(0, dot);
        const pb::Descriptor* d = pb::DescriptorPool::generated_pool()->FindMessageTypeByName(
            "opentelemetry.proto." + message_name);
        const pb::FieldDescriptor* f =
            d == nullptr ? nullptr : d->FindFieldByName(message_and_field.substr(dot + 1));
        if (f == nullptr) throw std::logic_error("OTLP quiet pass: no field " + message_and_field);
        message(message_name).fields[static_cast<size_t>(f->number())].counted = true;
    }
    void role(const std::string& message_name, const std::string& field, Role r, std::string_view name) {
        MessagePlan& p = message(message_name);
        const pb::Descriptor* d = pb::DescriptorPool::generated_pool()->FindMessageTypeByName(
            "opentelemetry.proto." + message_name);
        const pb::FieldDescriptor* f = d == nullptr ? nullptr : d->FindFieldByName(field);
        if (f == nullptr) throw std::logic_error("OTLP quiet pass: no field " + message_name + "." + field);
        FieldPlan& fp = p.fields[static_cast<size_t>(f->number())];
        fp.role = r;
        fp.name = name;
    }

    std::map<std::string, MessagePlan> by_name_;  // std::map: the plans point at each other
};

const Plans& plans() {
    static const Plans p;
    return p;
}

// One message's fields, read in place. Every failure means "give up", never "invalid".
class FieldReader {
  public:
    explicit FieldReader(std::string_view msg)
        : msg_(msg), in_(reinterpret_cast<const uint8_t*>(msg.data()), static_cast<int>(msg.size())) {}

    // The next field: false at the end of the message or when the bytes are not read exactly (`failed`).
    bool next(uint32_t& number, uint32_t& wire_type) {
        const int at = in_.CurrentPosition();
        if (static_cast<size_t>(at) == msg_.size()) return false;
        const uint32_t tag = in_.ReadTag();
        // A zero tag, a malformed varint, or a tag longer than three bytes (field numbers past 2^18).
        if (tag == 0 || in_.CurrentPosition() - at > 3) return fail();
        number = tag >> 3;
        wire_type = tag & 7;
        return number != 0 || fail();
    }
    bool failed() const { return failed_; }

    bool varint(uint64_t& v) {
        const int at = in_.CurrentPosition();
        if (!in_.ReadVarint64(&v)) return fail();
        // A tenth byte carries one bit of the value.
        return in_.CurrentPosition() - at < 10 ||
               static_cast<uint8_t>(msg_[static_cast<size_t>(at + 9)]) <= 1 || fail();
    }
    bool fixed64() {
        uint64_t v;
        return in_.ReadLittleEndian64(&v) || fail();
    }
    bool fixed32() {
        uint32_t v;
        return in_.ReadLittleEndian32(&v) || fail();
    }
    bool length_delimited(std::string_view& out) {
        const int at = in_.CurrentPosition();
        uint32_t len = 0;
        if (!in_.ReadVarint32(&len) || in_.CurrentPosition() - at > 4) return fail();
        const size_t pos = static_cast<size_t>(in_.CurrentPosition());
        if (len > msg_.size() - pos) return fail();
        out = msg_.substr(pos, len);
        return in_.Skip(static_cast<int>(len)) || fail();
    }
    // A field this pass does not read: skipped as libprotobuf keeps it, groups given up on.
    bool skip(uint32_t wire_type) {
        std::string_view ignored;
        uint64_t v;
        switch (wire_type) {
            case 0:
                return varint(v);
            case 1:
                return fixed64();
            case 2:
                return length_delimited(ignored);
            case 5:
                return fixed32();
            default:
                return fail();
        }
    }

  private:
    bool fail() {
        failed_ = true;
        return false;
    }
    std::string_view msg_;
    CodedInputStream in_;
    bool failed_ = false;
};

// What libprotobuf's check of a proto3 string accepts. ASCII (nearly every key and value) is told eight
// bytes at a time; anything else goes to simdjson's validator.
bool valid_utf8(std::string_view s) {
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
        uint64_t word;
        std::memcpy(&word, s.data() + i, 8);
        if (word & 0x8080808080808080ull) return simdjson::validate_utf8(s.data(), s.size());
    }
    for (; i < s.size(); ++i) {
        if (static_cast<unsigned char>(s[i]) >= 0x80) return simdjson::validate_utf8(s.data(), s.size());
    }
    return true;
}

bool valid_packed(std::string_view run, WireKind kind) {
    if (kind == WireKind::Fixed64) return run.size() % 8 == 0;
    if (kind == WireKind::Fixed32) return run.size() % 4 == 0;
    uint64_t v;
    // A packed run of varints: read as a message of nothing but values.
    CodedInputStream in(reinterpret_cast<const uint8_t*>(run.data()), static_cast<int>(run.size()));
    while (static_cast<size_t>(in.CurrentPosition()) < run.size()) {
        const int at = in.CurrentPosition();
        if (!in.ReadVarint64(&v)) return false;
        if (in.CurrentPosition() - at == 10 && static_cast<uint8_t>(run[static_cast<size_t>(at + 9)]) > 1)
            return false;
    }
    return true;
}

// The bytes each inspected field had at each position (the n-th attribute of a list) in the previous
// record, so a value repeated byte for byte (a service name, a user agent, an HTTP method) is not asked
// again: the walker's answer depends only on the event, the path, the key and the value, which are the
// same. Views into the body being read, valid for one pass (`generation`).
struct RepeatTrace {
    uint64_t generation = 0;  // never wraps: a stale view is never compared
    std::vector<std::string_view> items;
};

struct PassScratch {
    uint64_t generation = 0;          // never wraps: a stale view is never compared
    std::vector<RepeatTrace> traces;  // by FieldPlan::id
};

PassScratch& pass_scratch() {
    thread_local PassScratch s;
    return s;
}

class QuietPass {
  public:
    QuietPass(walk::QuietProbe& probe, size_t fields, QuietRecords& records)
        : probe_(probe), scratch_(pass_scratch()), records_(records) {
        if (scratch_.traces.size() < fields) scratch_.traces.resize(fields);
        ++scratch_.generation;
    }

    // A message read field by field, each field's role applied.
    bool message(const MessagePlan& plan, std::string_view msg, int depth) {
        if (depth > kMaxMessageDepth || plan.special != Special::None) return false;
        FieldReader r(msg);
        uint32_t number, wire_type;
        // The attributes object or the array of objects whose member the path is in: consecutive elements
        // of one repeated field (the usual encoding) share it, so the walker's key memo sees the keys in
        // the order the document would give them.
        const FieldPlan* open = nullptr;
        size_t position = 0;  // of the field in its run of consecutive elements
        while (r.next(number, wire_type)) {
            const FieldPlan* f = plan.field(number);
            if (open != nullptr && f != open) {
                probe_.pop();
                open = nullptr;
            }
            if (f == nullptr) {
                if (!r.skip(wire_type)) return false;
                continue;
            }
            if ((f->role == Role::Attributes || f->role == Role::ObjectArray) && open == nullptr) {
                if (wire_type != 2 || !probe_.key(f->name) || !probe_.container()) return false;
                open = f;
                position = 0;
            }
            if (!field(r, *f, wire_type, depth, open == f ? position++ : 0)) return false;
        }
        if (open != nullptr) probe_.pop();
        return !r.failed();
    }

  private:
    bool field(FieldReader& r, const FieldPlan& f, uint32_t wire_type, int depth, size_t position) {
        std::string_view bytes;
        uint64_t v;
        switch (f.kind) {
            case WireKind::Varint:
                if (wire_type == 0) return r.varint(v);
                return wire_type == 2 && f.packable && r.length_delimited(bytes) &&
                       valid_packed(bytes, f.kind);
            case WireKind::Fixed64:
                if (wire_type == 1) return r.fixed64();
                return wire_type == 2 && f.packable && r.length_delimited(bytes) &&
                       valid_packed(bytes, f.kind);
            case WireKind::Fixed32:
                if (wire_type == 5) return r.fixed32();
                return wire_type == 2 && f.packable && r.length_delimited(bytes) &&
                       valid_packed(bytes, f.kind);
            case WireKind::Length:
                if (wire_type != 2 || !r.length_delimited(bytes)) return false;
                if (f.role == Role::Text && repeated(f, position, bytes)) return true;
                if (f.utf8 && !valid_utf8(bytes)) return false;
                if (f.role != Role::Text) return true;
                return text_member(f.name, bytes) && remember(f, position, bytes);
            case WireKind::Message:
                if (wire_type != 2 || !r.length_delimited(bytes)) return false;
                if (f.role == Role::Any || f.role == Role::Attributes) {
                    return repeated(f, position, bytes) ||
                           (sub_message(f, bytes, depth + 1) && remember(f, position, bytes));
                }
                return sub_message(f, bytes, depth + 1);
            default:
                return false;
        }
    }

    bool sub_message(const FieldPlan& f, std::string_view bytes, int depth) {
        switch (f.role) {
            case Role::Record: {
                const bool quiet = probe_.begin_event(f.name) && message(*f.message, bytes, depth);
                probe_.end_event();
                if (f.counted) records_.loud.push_back(quiet ? 0 : 1);
                if (quiet) return true;
                // Given up on (an encoding left to libprotobuf): nothing more is known.
                if (!probe_.said_no()) return false;
                // The walker acts on something in this record: noted, and the pass goes on to the next one
                // (the rest of this record is not read; libprotobuf parses the body anyway).
                loud_ = true;
                probe_.reset();
                return true;
            }
            case Role::Any: {
                if (!probe_.key(f.name)) return false;
                const bool quiet = any_value(bytes, depth);
                probe_.pop();
                return quiet;
            }
            // message() has entered the member `name` (the attributes object, the array).
            case Role::Attributes:
                return key_value(bytes, depth);
            case Role::ObjectArray: {
                if (!probe_.index() || !probe_.container()) return false;
                const bool quiet = message(*f.message, bytes, depth);
                probe_.pop();
                return quiet;
            }
            default:
                return message(*f.message, bytes, depth);
        }
    }

    bool text_member(std::string_view name, std::string_view s) {
        if (s.empty()) return true;  // the document leaves empty fields out
        if (!probe_.key(name)) return false;
        const bool quiet = probe_.string_value(s);
        probe_.pop();
        return quiet;
    }

    // A KeyValue: its key is the member's key, so it is read before the value is walked.
    bool key_value(std::string_view msg, int depth) {
        if (depth > kMaxMessageDepth) return false;
        FieldReader r(msg);
        uint32_t number, wire_type;
        std::string_view key, value;
        bool has_key = false, has_value = false;
        while (r.next(number, wire_type)) {
            if (number == 1 || number == 2) {
                bool& seen = number == 1 ? has_key : has_value;
                if (seen || wire_type != 2 || !r.length_delimited(number == 1 ? key : value)) return false;
                seen = true;
            } else if (!r.skip(wire_type)) {
                return false;
            }
        }
        if (r.failed() || !valid_utf8(key) || !probe_.key(key)) return false;
        // No value: an empty AnyValue, written as null.
        const bool quiet = !has_value || any_value(value, depth + 1);
        probe_.pop();
        return quiet;
    }

    // An AnyValue at the current path: at most one of its values (the parser would keep the last).
    bool any_value(std::string_view msg, int depth) {
        if (depth > kMaxMessageDepth) return false;
        FieldReader r(msg);
        uint32_t number, wire_type;
        uint32_t which = 0;
        std::string_view bytes;
        uint64_t integer = 0;
        while (r.next(number, wire_type)) {
            if (number < 1 || number > 7) {
                if (!r.skip(wire_type)) return false;
                continue;
            }
            if (which != 0) return false;
            which = number;
            bool ok = false;
            switch (number) {
                case 2:
                case 3:
                    ok = wire_type == 0 && r.varint(integer);
                    break;
                case 4:
                    ok = wire_type == 1 && r.fixed64();
                    break;
                default:
                    ok = wire_type == 2 && r.length_delimited(bytes);
                    break;
            }
            if (!ok) return false;
        }
        if (r.failed()) return false;
        switch (which) {
            case 1:
                return valid_utf8(bytes) && probe_.string_value(bytes);
            case 3: {
                char digits[24];
                const auto end =
                    std::to_chars(digits, digits + sizeof digits, static_cast<int64_t>(integer)).ptr;
                return probe_.integer_value(std::string_view(digits, static_cast<size_t>(end - digits)));
            }
            case 5:
                return probe_.container() && array_value(bytes, depth + 1);
            case 6:
                return probe_.container() && key_value_list(bytes, depth + 1);
            default:
                return true;  // bool, double, bytes or nothing: null in the document
        }
    }

    bool array_value(std::string_view msg, int depth) {
        if (depth > kMaxMessageDepth) return false;
        FieldReader r(msg);
        uint32_t number, wire_type;
        std::string_view element;
        while (r.next(number, wire_type)) {
            if (number != 1) {
                if (!r.skip(wire_type)) return false;
                continue;
            }
            if (wire_type != 2 || !r.length_delimited(element) || !probe_.index()) return false;
            const bool quiet = any_value(element, depth + 1);
            probe_.pop();
            if (!quiet) return false;
        }
        return !r.failed();
    }

    bool key_value_list(std::string_view msg, int depth) {
        if (depth > kMaxMessageDepth) return false;
        FieldReader r(msg);
        uint32_t number, wire_type;
        std::string_view kv;
        while (r.next(number, wire_type)) {
            if (number != 1) {
                if (!r.skip(wire_type)) return false;
                continue;
            }
            if (wire_type != 2 || !r.length_delimited(kv) || !key_value(kv, depth + 1)) return false;
        }
        return !r.failed();
    }

    // The field had these very bytes at this position in the previous record, and they were quiet.
    bool repeated(const FieldPlan& f, size_t position, std::string_view bytes) const {
        const RepeatTrace& t = scratch_.traces[f.id];
        if (t.generation != scratch_.generation || position >= t.items.size()) return false;
        const std::string_view before = t.items[position];
        return before.size() == bytes.size() && std::memcmp(before.data(), bytes.data(), bytes.size()) == 0;
    }
    bool remember(const FieldPlan& f, size_t position, std::string_view bytes) {
        RepeatTrace& t = scratch_.traces[f.id];
        if (t.generation != scratch_.generation) {
            t.generation = scratch_.generation;
            t.items.clear();
        }
        if (position >= t.items.size()) t.items.resize(position + 1);
        t.items[position] = bytes;
        return true;
    }

  public:
    bool loud() const { return loud_; }

  private:
    walk::QuietProbe& probe_;
    PassScratch& scratch_;
    QuietRecords& records_;
    bool loud_ = false;  // a record held something the walker acts on
};

}  // namespace

bool protobuf_quiet_pass(std::string_view body, PayloadKind kind, walk::QuietProbe& probe,
                         QuietRecords& records) {
    records.complete = false;
    records.loud.clear();
    if (body.size() > static_cast<size_t>(INT32_MAX)) return false;
    const Plans& p = plans();
    const MessagePlan* root = kind == PayloadKind::OtlpLogs      ? p.logs
                              : kind == PayloadKind::OtlpTraces  ? p.traces
                              : kind == PayloadKind::OtlpMetrics ? p.metrics
                                                                 : nullptr;
    if (root == nullptr) return false;
    QuietPass pass(probe, p.field_count, records);
    records.complete = pass.message(*root, body, 0);
    return records.complete && !pass.loud();
}

}  // namespace edgeguard::privacy::otlp
