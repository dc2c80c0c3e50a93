// OTLP protobuf exports that the quiet pass (protobuf_quiet_pass.cc) did not answer: parsed with libprotobuf
// into the messages of proto/, written into the inspection document field by field, changed in place and
// serialized again.
#include <logs.pb.h>
#include <metrics.pb.h>
#include <trace.pb.h>

#include <algorithm>
#include <functional>
#include <string>

#include "filters/otlp/otlp_formats.h"

namespace edgeguard::privacy::otlp {

namespace {

namespace pb = google::protobuf;
using opentelemetry::proto::common::v1::AnyValue;
using opentelemetry::proto::common::v1::KeyValue;
using KeyValues = pb::RepeatedPtrField<KeyValue>;

// Where a slot's value lives: a plain string field, an AnyValue, and for attributes the list and index that
// drop it.
struct Target {
    std::string* text = nullptr;
    AnyValue* any = nullptr;
    KeyValues* list = nullptr;
    int index = -1;
};

class ProtobufReader final : public ProtobufExportReader {
  public:
    bool read(std::string_view body, PayloadKind kind, InspectionDoc& doc, std::string& error) override {
        if (!parse(body, kind, error)) return false;
        build(doc);
        return true;
    }

    bool parse(std::string_view body, PayloadKind kind, std::string& error) override {
        kind_ = kind;
        bool ok = false;
        switch (kind) {
            case PayloadKind::OtlpLogs: ok = logs_.ParseFromArray(body.data(), static_cast<int>(body.size())); break;
            case PayloadKind::OtlpTraces: ok = traces_.ParseFromArray(body.data(), static_cast<int>(body.size())); break;
            case PayloadKind::OtlpMetrics: ok = metrics_.ParseFromArray(body.data(), static_cast<int>(body.size())); break;
            default: break;
        }
        if (!ok) error = "invalid OTLP protobuf";
        return ok;
    }

    void build(InspectionDoc& doc, const std::vector<uint8_t>* loud = nullptr) override {
        doc.clear();
        targets_.clear();
        doc_ = &doc;
        // The quiet pass counted the records as they came; a different count here (it never is for a body
        // the parser read as written) keeps every record.
        loud_ = loud != nullptr && loud->size() == record_count() ? loud : nullptr;
        record_ = 0;
        switch (kind_) {
            case PayloadKind::OtlpLogs: read_logs(); break;
            case PayloadKind::OtlpTraces: read_traces(); break;
            default: read_metrics(); break;
        }
        doc.finish();
    }

    bool write(const InspectionDoc& doc, const std::vector<SlotChange>& changes, std::string& out) override {
        std::vector<uint32_t> drops;  // slots of attributes to delete
        for (const SlotChange& c : changes) {
            const Slot& slot = doc.slots()[c.slot];
            const Target& t = targets_[slot.source];
            if (c.kind == SlotChange::Kind::Drop) {
                if (slot.attribute && t.list != nullptr) drops.push_back(c.slot);
                else if (t.text != nullptr) t.text->clear();
                else if (t.any != nullptr) t.any->Clear();
                continue;
            }
            if (t.text != nullptr) *t.text = c.text;
            else if (t.any != nullptr) t.any->set_string_value(c.text);
        }
        // Last slot first: in one list the highest index goes first, so the indexes still to delete stay
        // valid, and an attribute nested in a dropped kvlist goes before the attribute that holds it (never
        // after it, from freed memory). An attribute dropped twice (a hit in its key and in its value) once.
        std::sort(drops.begin(), drops.end(), std::greater<>());
        drops.erase(std::unique(drops.begin(), drops.end()), drops.end());
        for (const uint32_t slot : drops) {
            const Target& t = targets_[doc.slots()[slot].source];
            t.list->DeleteSubrange(t.index, 1);
        }
        out.clear();
        switch (kind_) {
            case PayloadKind::OtlpLogs: return logs_.SerializeToString(&out);
            case PayloadKind::OtlpTraces: return traces_.SerializeToString(&out);
            default: return metrics_.SerializeToString(&out);
        }
    }

  private:
    size_t record_count() const {
        size_t n = 0;
        switch (kind_) {
            case PayloadKind::OtlpLogs:
                for (const auto& rl : logs_.resource_logs())
                    for (const auto& sl : rl.scope_logs()) n += static_cast<size_t>(sl.log_records_size());
                break;
            case PayloadKind::OtlpTraces:
                for (const auto& rs : traces_.resource_spans())
                    for (const auto& ss : rs.scope_spans()) n += static_cast<size_t>(ss.spans_size());
                break;
            default:
                for (const auto& rm : metrics_.resource_metrics())
                    for (const auto& sm : rm.scope_metrics()) n += static_cast<size_t>(sm.metrics_size());
                break;
        }
        return n;
    }

    // The next log record, span or metric is one the quiet pass found quiet: it adds nothing to the walk.
    bool quiet_record() {
        const size_t k = record_++;
        return loud_ != nullptr && (*loud_)[k] == 0;
    }

    uint32_t target(Target t) {
        targets_.push_back(t);
        return static_cast<uint32_t>(targets_.size() - 1);
    }

    void text_field(std::string_view name, std::string* s) {
        if (s->empty()) return;
        doc_->key(name);
        doc_->text_value(*s, target({s, nullptr, nullptr, -1}), false);
    }

    void any_value(AnyValue* v, Target t, bool attribute) {
        const uint32_t src = target(t);
        switch (v->value_case()) {
            case AnyValue::kStringValue: doc_->text_value(v->string_value(), src, attribute); break;
            case AnyValue::kIntValue: {
                digits_ = std::to_string(v->int_value());
                doc_->int_value(digits_, src, attribute);
                break;
            }
            case AnyValue::kKvlistValue: {
                doc_->open_slot_object(src, attribute);
                key_values(v->mutable_kvlist_value()->mutable_values());
                doc_->close_slot();
                break;
            }
            case AnyValue::kArrayValue: {
                doc_->open_slot_array(src, attribute);
                auto* values = v->mutable_array_value()->mutable_values();
                for (int i = 0; i < values->size(); ++i) any_value(values->Mutable(i), {nullptr, values->Mutable(i)}, false);
                doc_->close_slot();
                break;
            }
            default: doc_->opaque_value(src, attribute); break;
        }
    }

    void key_values(KeyValues* list) {
        for (int i = 0; i < list->size(); ++i) {
            KeyValue* kv = list->Mutable(i);
            doc_->key(kv->key());
            any_value(kv->mutable_value(), {nullptr, kv->mutable_value(), list, i}, true);
        }
    }

    void attributes(KeyValues* list, std::string_view name = "attributes") {
        if (list->empty()) return;
        doc_->key(name);
        doc_->open_object();
        key_values(list);
        doc_->close_object();
    }

    template <class ResourceX>
    void resource_and_scopes_prefix(ResourceX* rx) {
        if (!rx->has_resource() || rx->resource().attributes().empty()) return;
        doc_->begin_record("$otel_resource");
        attributes(rx->mutable_resource()->mutable_attributes());
        doc_->end_record();
    }

    template <class ScopeX>
    void scope(ScopeX* sx) {
        if (!sx->has_scope()) return;
        auto* scope = sx->mutable_scope();
        doc_->begin_record("$otel_scope");
        text_field("name", scope->mutable_name());
        attributes(scope->mutable_attributes());
        doc_->end_record();
    }

    void read_logs() {
        for (auto& rl : *logs_.mutable_resource_logs()) {
            resource_and_scopes_prefix(&rl);
            for (auto& sl : *rl.mutable_scope_logs()) {
                scope(&sl);
                for (auto& lr : *sl.mutable_log_records()) {
                    if (quiet_record()) continue;
                    doc_->begin_record("$otel_log");
                    if (lr.has_body()) {
                        doc_->key("body");
                        any_value(lr.mutable_body(), {nullptr, lr.mutable_body()}, false);
                    }
                    text_field("event_name", lr.mutable_event_name());
                    attributes(lr.mutable_attributes());
                    doc_->end_record();
                }
            }
        }
    }

    void read_traces() {
        for (auto& rs : *traces_.mutable_resource_spans()) {
            resource_and_scopes_prefix(&rs);
            for (auto& ss : *rs.mutable_scope_spans()) {
                scope(&ss);
                for (auto& span : *ss.mutable_spans()) {
                    if (quiet_record()) continue;
                    doc_->begin_record("$otel_span");
                    text_field("name", span.mutable_name());
                    attributes(span.mutable_attributes());
                    if (span.has_status()) text_field("status_message", span.mutable_status()->mutable_message());
                    if (!span.events().empty()) {
                        doc_->key("events");
                        doc_->open_array();
                        for (auto& ev : *span.mutable_events()) {
                            doc_->open_object();
                            text_field("name", ev.mutable_name());
                            attributes(ev.mutable_attributes());
                            doc_->close_object();
                        }
                        doc_->close_array();
                    }
                    if (!span.links().empty()) {
                        doc_->key("links");
                        doc_->open_array();
                        for (auto& link : *span.mutable_links()) {
                            doc_->open_object();
                            attributes(link.mutable_attributes());
                            doc_->close_object();
                        }
                        doc_->close_array();
                    }
                    doc_->end_record();
                }
            }
        }
    }

    template <class Points>
    void data_points(Points* points) {
        if (points->empty()) return;
        doc_->key("data_points");
        doc_->open_array();
        for (auto& dp : *points) {
            doc_->open_object();
            attributes(dp.mutable_attributes());
            if (!dp.exemplars().empty()) {
                doc_->key("exemplars");
                doc_->open_array();
                for (auto& ex : *dp.mutable_exemplars()) {
                    doc_->open_object();
                    attributes(ex.mutable_filtered_attributes());
                    doc_->close_object();
                }
                doc_->close_array();
            }
            doc_->close_object();
        }
        doc_->close_array();
    }

    void read_metrics() {
        using opentelemetry::proto::metrics::v1::Metric;
        for (auto& rm : *metrics_.mutable_resource_metrics()) {
            resource_and_scopes_prefix(&rm);
            for (auto& sm : *rm.mutable_scope_metrics()) {
                scope(&sm);
                for (auto& m : *sm.mutable_metrics()) {
                    if (quiet_record()) continue;
                    doc_->begin_record("$otel_metric");
                    text_field("name", m.mutable_name());
                    text_field("description", m.mutable_description());
                    text_field("unit", m.mutable_unit());
                    attributes(m.mutable_metadata(), "metadata");
                    switch (m.data_case()) {
                        case Metric::kGauge: data_points(m.mutable_gauge()->mutable_data_points()); break;
                        case Metric::kSum: data_points(m.mutable_sum()->mutable_data_points()); break;
                        case Metric::kHistogram: data_points(m.mutable_histogram()->mutable_data_points()); break;
                        case Metric::kExponentialHistogram:
                            data_points(m.mutable_exponential_histogram()->mutable_data_points());
                            break;
                        case Metric::kSummary: {
                            // Summary points carry no exemplars.
                            auto* points = m.mutable_summary()->mutable_data_points();
                            if (points->empty()) break;
                            doc_->key("data_points");
                            doc_->open_array();
                            for (auto& dp : *points) {
                                doc_->open_object();
                                attributes(dp.mutable_attributes());
                                doc_->close_object();
                            }
                            doc_->close_array();
                            break;
                        }
                        default: break;
                    }
                    doc_->end_record();
                }
            }
        }
    }

    InspectionDoc* doc_ = nullptr;
    const std::vector<uint8_t>* loud_ = nullptr;  // build()'s records to keep, by position
    size_t record_ = 0;
    PayloadKind kind_ = PayloadKind::OtlpLogs;
    std::vector<Target> targets_;
    std::string digits_;
    opentelemetry::proto::logs::v1::ExportLogsServiceRequest logs_;
    opentelemetry::proto::trace::v1::ExportTraceServiceRequest traces_;
    opentelemetry::proto::metrics::v1::ExportMetricsServiceRequest metrics_;
};

}  // namespace

std::unique_ptr<ProtobufExportReader> make_protobuf_reader() { return std::make_unique<ProtobufReader>(); }

}  // namespace edgeguard::privacy::otlp
