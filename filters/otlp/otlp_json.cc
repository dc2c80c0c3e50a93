// OTLP JSON exports: read with simdjson On-Demand, keeping the byte range of every value written into the
// inspection document; changes become byte-range edits of the original text, so everything else (field
// order, whitespace, unknown fields, numbers) is forwarded as it came.
#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "filters/otlp/otlp_formats.h"
#include "filters/value_actions.h"

namespace edgeguard::privacy::otlp {

namespace {

namespace od = simdjson::ondemand;

// The OTLP JSON mapping names fields in lowerCamelCase; the protobuf JSON mapping also accepts the
// original snake_case names, and so does this reader.
bool is(std::string_view key, std::string_view camel, std::string_view snake = {}) {
    return key == camel || (!snake.empty() && key == snake);
}

bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

struct Target {
    uint32_t token_begin = 0;  // a text value's string token
    uint32_t token_end = 0;
    uint32_t any_begin = 0;  // the AnyValue object holding it; 0/0 for a plain string field
    uint32_t any_end = 0;
    int32_t array = -1;  // attributes: the KeyValue array and the element's index in it
    uint32_t element = 0;
};

struct Element {
    uint32_t begin = 0;
    uint32_t end = 0;
};

class JsonReader final : public ExportReader {
  public:
    bool read(std::string_view body, PayloadKind kind, InspectionDoc& doc, std::string& error) override {
        doc.clear();
        doc_ = &doc;
        targets_.clear();
        arrays_.clear();
        body_ = body;
        error_.clear();
        const size_t padded = body.size() + simdjson::SIMDJSON_PADDING;
        if (buf_.size() < padded) buf_.resize(padded);
        std::memcpy(buf_.data(), body.data(), body.size());
        std::memset(buf_.data() + body.size(), 0, simdjson::SIMDJSON_PADDING);
        base_ = buf_.data();
        if (parser_.iterate(buf_.data(), body.size(), buf_.size()).get(json_)) return fail(error, "invalid JSON");
        od::object root;
        if (json_.get_object().get(root)) return fail(error, "an OTLP export is a JSON object");
        const std::string_view top = kind == PayloadKind::OtlpLogs     ? "resourceLogs"
                                     : kind == PayloadKind::OtlpTraces ? "resourceSpans"
                                                                       : "resourceMetrics";
        const std::string_view top_snake = kind == PayloadKind::OtlpLogs     ? "resource_logs"
                                           : kind == PayloadKind::OtlpTraces ? "resource_spans"
                                                                             : "resource_metrics";
        for (auto field : root) {
            std::string_view key;
            od::value v;
            if (field.unescaped_key().get(key) || field.value().get(v)) return fail(error, "invalid JSON");
            if (!is(key, top, top_snake)) continue;
            if (!each_object(v, [&](od::object& o) { return resource_x(o, kind); })) return fail(error, nullptr);
        }
        if (!error_.empty()) return fail(error, nullptr);
        const char* rest = nullptr;
        if (!json_.current_location().get(rest)) return fail(error, "invalid JSON: trailing content");
        doc.finish();
        return true;
    }

    bool write(const InspectionDoc& doc, const std::vector<SlotChange>& changes, std::string& out) override {
        std::vector<Edit> edits;
        std::vector<std::vector<bool>> removed(arrays_.size());
        for (const SlotChange& c : changes) {
            const Slot& slot = doc.slots()[c.slot];
            const Target& t = targets_[slot.source];
            const bool in_any = t.any_end != 0;
            if (c.kind == SlotChange::Kind::Drop) {
                if (slot.attribute && t.array >= 0) {
                    auto& r = removed[static_cast<size_t>(t.array)];
                    r.resize(arrays_[static_cast<size_t>(t.array)].size());
                    r[t.element] = true;
                } else if (in_any) {
                    edits.push_back(Edit{t.any_begin, t.any_end, "{}"});
                } else {
                    edits.push_back(Edit{t.token_begin, t.token_end, "\"\""});
                }
                continue;
            }
            std::string token = "\"";
            append_json_escaped(token, c.text);
            token.push_back('"');
            if (slot.kind == Slot::Kind::Text && t.token_end != 0) {
                edits.push_back(Edit{t.token_begin, t.token_end, std::move(token)});
            } else {
                edits.push_back(Edit{t.any_begin, t.any_end, "{\"stringValue\":" + token + "}"});
            }
        }
        // Removed elements take one separator with them: the one before (when a kept element precedes) or
        // the one after (when they lead the array).
        for (size_t a = 0; a < removed.size(); ++a) {
            const auto& r = removed[a];
            if (r.empty()) continue;
            const auto& el = arrays_[a];
            bool kept_before = false;
            for (size_t i = 0; i < el.size(); ++i) {
                if (!r[i]) {
                    kept_before = true;
                    continue;
                }
                if (kept_before) edits.push_back(Edit{el[i - 1].end, el[i].end, {}});
                else if (i + 1 < el.size()) edits.push_back(Edit{el[i].begin, el[i + 1].begin, {}});
                else edits.push_back(Edit{el[i].begin, el[i].end, {}});
            }
        }
        std::sort(edits.begin(), edits.end(), [](const Edit& a, const Edit& b) { return a.begin < b.begin; });
        std::vector<Edit> disjoint;
        for (auto& e : edits) {
            if (!disjoint.empty() && e.begin < disjoint.back().end) continue;  // inside a removed element
            disjoint.push_back(std::move(e));
        }
        out = apply_edits(body_, disjoint);
        return true;
    }

  private:
    bool fail(std::string& error, const char* why) {
        error = why != nullptr ? why : (error_.empty() ? "invalid OTLP JSON" : error_);
        return false;
    }
    bool bad(const char* why) {
        if (error_.empty()) error_ = why;
        return false;
    }

    uint32_t offset(const char* p) const { return static_cast<uint32_t>(p - base_); }

    // The token of a scalar value, without the whitespace On-Demand leaves after it.
    std::string_view token(od::value& v) {
        std::string_view t = v.raw_json_token();
        while (!t.empty() && is_ws(t.back())) t.remove_suffix(1);
        return t;
    }

    // Where the value consumed last ends.
    uint32_t consumed_end() {
        const char* loc = nullptr;
        size_t pos = body_.size();
        if (!json_.current_location().get(loc)) pos = static_cast<size_t>(loc - base_);
        while (pos > 0 && is_ws(base_[pos - 1])) --pos;
        return static_cast<uint32_t>(pos);
    }

    template <class F>
    bool each_object(od::value& v, F&& f) {
        od::array arr;
        if (v.get_array().get(arr)) return bad("an OTLP list is not an array");
        for (auto element : arr) {
            od::object o;
            if (element.get_object().get(o)) return bad("an OTLP list element is not an object");
            if (!f(o)) return false;
        }
        return true;
    }

    uint32_t target(Target t) {
        targets_.push_back(t);
        return static_cast<uint32_t>(targets_.size() - 1);
    }

    // `null` is how the protobuf JSON mapping writes an absent field.
    static bool consume_null(od::value& v) {
        bool null = false;
        return !v.is_null().get(null) && null;
    }

    bool text_field(std::string_view name, od::value& v) {
        if (consume_null(v)) return true;
        std::string_view s;
        if (v.get_string().get(s)) return bad("a text field is not a string");
        const std::string_view tok = token(v);
        if (s.empty()) return true;
        const uint32_t b = offset(tok.data());
        doc_->key(name);
        doc_->json_string_value(tok, target({b, b + static_cast<uint32_t>(tok.size())}), false);
        return true;
    }

    // An AnyValue object: {"stringValue": ...} | {"intValue": ...} | {"kvlistValue": {"values": [...]}} | ...
    bool any_value(od::value& v, bool attribute, int32_t array, uint32_t element) {
        const std::string_view open = v.raw_json_token();
        if (consume_null(v)) {
            const uint32_t begin = offset(open.data());
            doc_->opaque_value(target({0, 0, begin, begin + 4, array, element}), attribute);
            return true;
        }
        od::object o;
        if (v.get_object().get(o)) return bad("an AnyValue is not an object");
        const uint32_t src = target({0, 0, offset(open.data()), 0, array, element});
        bool seen = false;
        for (auto field : o) {
            std::string_view key;
            od::value inner;
            if (field.unescaped_key().get(key) || field.value().get(inner)) return bad("invalid JSON");
            if (seen) return bad("an AnyValue holds more than one value");
            seen = true;
            if (is(key, "stringValue", "string_value")) {
                std::string_view s;
                if (inner.get_string().get(s)) return bad("stringValue is not a string");
                const std::string_view tok = token(inner);
                targets_[src].token_begin = offset(tok.data());
                targets_[src].token_end = targets_[src].token_begin + static_cast<uint32_t>(tok.size());
                doc_->json_string_value(tok, src, attribute);
            } else if (is(key, "intValue", "int_value")) {
                std::string_view tok = token(inner);
                if (!tok.empty() && tok.front() == '"') tok = tok.substr(1, tok.size() - 2);  // int64 as a string
                const bool digits = !tok.empty() && std::all_of(tok.begin() + (tok[0] == '-'), tok.end(),
                                                               [](char c) { return c >= '0' && c <= '9'; });
                if (!digits || tok.size() > 20) return bad("intValue is not an integer");
                doc_->int_value(tok, src, attribute);
            } else if (is(key, "kvlistValue", "kvlist_value") || is(key, "arrayValue", "array_value")) {
                const bool kvlist = key[0] == 'k';
                od::object list;
                if (inner.get_object().get(list)) return bad("a list value is not an object");
                if (kvlist) doc_->open_slot_object(src, attribute);
                else doc_->open_slot_array(src, attribute);
                for (auto lf : list) {
                    std::string_view lk;
                    od::value values;
                    if (lf.unescaped_key().get(lk) || lf.value().get(values)) return bad("invalid JSON");
                    if (lk != "values") continue;
                    if (kvlist ? !key_values(values) : !any_values(values)) return false;
                }
                doc_->close_slot();
            } else {
                doc_->opaque_value(src, attribute);  // bool, double, bytes: nothing for a detector
            }
        }
        if (!seen) doc_->opaque_value(src, attribute);
        targets_[src].any_end = consumed_end();
        return true;
    }

    bool any_values(od::value& v) {
        od::array arr;
        if (v.get_array().get(arr)) return bad("array values are not an array");
        for (auto element : arr) {
            od::value item;
            if (element.get(item)) return bad("invalid JSON");
            if (!any_value(item, false, -1, 0)) return false;
        }
        return true;
    }

    // A KeyValue list: each element's key becomes an object key, its value the member's value.
    bool key_values(od::value& v) {
        od::array arr;
        if (v.get_array().get(arr)) return bad("attributes are not an array");
        const int32_t id = static_cast<int32_t>(arrays_.size());
        arrays_.emplace_back();
        for (auto element : arr) {
            od::value item;
            if (element.get(item)) return bad("invalid JSON");
            const uint32_t begin = offset(item.raw_json_token().data());
            od::object kv;
            if (item.get_object().get(kv)) return bad("an attribute is not an object");
            // The key is written first whatever the member order: find it, then walk the members.
            std::string key_token = "\"\"";
            od::value key_value;
            auto found = kv.find_field_unordered("key");
            if (!found.get(key_value)) {
                std::string_view k;
                if (key_value.get_string().get(k)) return bad("an attribute key is not a string");
                key_token.assign(token(key_value));
            } else if (found.error() != simdjson::NO_SUCH_FIELD) {
                return bad("invalid JSON");
            }
            bool rewound = false;
            if (kv.reset().get(rewound)) return bad("invalid JSON");
            bool has_value = false;
            const uint32_t index = static_cast<uint32_t>(arrays_[static_cast<size_t>(id)].size());
            for (auto field : kv) {
                std::string_view fk;
                od::value fv;
                if (field.unescaped_key().get(fk) || field.value().get(fv)) return bad("invalid JSON");
                if (fk != "value") continue;
                if (has_value) return bad("an attribute has two values");
                has_value = true;
                doc_->key(key_token, true);
                if (!any_value(fv, true, id, index)) return false;
            }
            if (!has_value) {
                doc_->key(key_token, true);
                doc_->opaque_value(target({0, 0, 0, 0, id, index}), true);
            }
            arrays_[static_cast<size_t>(id)].push_back(Element{begin, consumed_end()});
        }
        return true;
    }

    bool attributes(od::value& v, std::string_view name = "attributes") {
        doc_->key(name);
        doc_->open_object();
        const bool ok = key_values(v);
        doc_->close_object();
        return ok;
    }

    // An object of named fields: `f(key, value)` handles the ones it knows.
    template <class F>
    bool fields(od::value& v, F&& f) {
        od::object o;
        if (v.get_object().get(o)) return bad("an OTLP message is not an object");
        return fields(o, f);
    }
    template <class F>
    bool fields(od::object& o, F&& f) {
        for (auto field : o) {
            std::string_view key;
            od::value fv;
            if (field.unescaped_key().get(key) || field.value().get(fv)) return bad("invalid JSON");
            if (!f(key, fv)) return false;
        }
        return true;
    }

    bool resource(od::value& v) {
        doc_->begin_record("$otel_resource");
        const bool ok = fields(v, [&](std::string_view k, od::value& fv) {
            return is(k, "attributes") ? attributes(fv) : true;
        });
        doc_->end_record();
        return ok;
    }

    bool scope(od::value& v) {
        doc_->begin_record("$otel_scope");
        const bool ok = fields(v, [&](std::string_view k, od::value& fv) {
            if (is(k, "name")) return text_field("name", fv);
            return is(k, "attributes") ? attributes(fv) : true;
        });
        doc_->end_record();
        return ok;
    }

    bool log_record(od::object& o) {
        doc_->begin_record("$otel_log");
        const bool ok = fields(o, [&](std::string_view k, od::value& fv) {
            if (is(k, "body")) {
                doc_->key("body");
                return any_value(fv, false, -1, 0);
            }
            if (is(k, "eventName", "event_name")) return text_field("event_name", fv);
            return is(k, "attributes") ? attributes(fv) : true;
        });
        doc_->end_record();
        return ok;
    }

    bool named_with_attributes(od::object& o) {
        doc_->open_object();
        const bool ok = fields(o, [&](std::string_view k, od::value& fv) {
            if (is(k, "name")) return text_field("name", fv);
            return is(k, "attributes") ? attributes(fv) : true;
        });
        doc_->close_object();
        return ok;
    }

    bool span(od::object& o) {
        doc_->begin_record("$otel_span");
        const bool ok = fields(o, [&](std::string_view k, od::value& fv) {
            if (is(k, "name")) return text_field("name", fv);
            if (is(k, "attributes")) return attributes(fv);
            if (is(k, "status")) {
                return fields(fv, [&](std::string_view sk, od::value& sv) {
                    return is(sk, "message") ? text_field("status_message", sv) : true;
                });
            }
            if (is(k, "events") || is(k, "links")) {
                doc_->key(k == "events" ? "events" : "links");
                doc_->open_array();
                const bool fine = each_object(fv, [&](od::object& e) { return named_with_attributes(e); });
                doc_->close_array();
                return fine;
            }
            return true;
        });
        doc_->end_record();
        return ok;
    }

    bool data_points(od::value& v) {
        return fields(v, [&](std::string_view k, od::value& fv) {
            if (!is(k, "dataPoints", "data_points")) return true;
            doc_->key("data_points");
            doc_->open_array();
            const bool ok = each_object(fv, [&](od::object& dp) {
                doc_->open_object();
                const bool fine = fields(dp, [&](std::string_view dk, od::value& dv) {
                    if (is(dk, "attributes")) return attributes(dv);
                    if (!is(dk, "exemplars")) return true;
                    doc_->key("exemplars");
                    doc_->open_array();
                    const bool ex_ok = each_object(dv, [&](od::object& ex) {
                        doc_->open_object();
                        const bool f = fields(ex, [&](std::string_view ek, od::value& ev) {
                            return is(ek, "filteredAttributes", "filtered_attributes") ? attributes(ev) : true;
                        });
                        doc_->close_object();
                        return f;
                    });
                    doc_->close_array();
                    return ex_ok;
                });
                doc_->close_object();
                return fine;
            });
            doc_->close_array();
            return ok;
        });
    }

    bool metric(od::object& o) {
        doc_->begin_record("$otel_metric");
        const bool ok = fields(o, [&](std::string_view k, od::value& fv) {
            if (is(k, "name") || is(k, "description") || is(k, "unit")) return text_field(k, fv);
            if (is(k, "metadata")) return attributes(fv, "metadata");
            if (is(k, "gauge") || is(k, "sum") || is(k, "histogram") || is(k, "summary") ||
                is(k, "exponentialHistogram", "exponential_histogram")) {
                return data_points(fv);
            }
            return true;
        });
        doc_->end_record();
        return ok;
    }

    bool resource_x(od::object& o, PayloadKind kind) {
        const std::string_view scopes = kind == PayloadKind::OtlpLogs     ? "scopeLogs"
                                        : kind == PayloadKind::OtlpTraces ? "scopeSpans"
                                                                          : "scopeMetrics";
        const std::string_view scopes_snake = kind == PayloadKind::OtlpLogs     ? "scope_logs"
                                              : kind == PayloadKind::OtlpTraces ? "scope_spans"
                                                                                : "scope_metrics";
        const std::string_view items = kind == PayloadKind::OtlpLogs     ? "logRecords"
                                       : kind == PayloadKind::OtlpTraces ? "spans"
                                                                         : "metrics";
        const std::string_view items_snake = kind == PayloadKind::OtlpLogs ? "log_records" : items;
        return fields(o, [&](std::string_view k, od::value& fv) {
            if (is(k, "resource")) return resource(fv);
            if (!is(k, scopes, scopes_snake)) return true;
            return each_object(fv, [&](od::object& so) {
                return fields(so, [&](std::string_view sk, od::value& sv) {
                    if (is(sk, "scope")) return scope(sv);
                    if (!is(sk, items, items_snake)) return true;
                    return each_object(sv, [&](od::object& item) {
                        return kind == PayloadKind::OtlpLogs     ? log_record(item)
                               : kind == PayloadKind::OtlpTraces ? span(item)
                                                                 : metric(item);
                    });
                });
            });
        });
    }

    InspectionDoc* doc_ = nullptr;
    od::parser parser_;
    od::document json_;
    std::string buf_;
    const char* base_ = nullptr;
    std::string_view body_;
    std::string error_;
    std::vector<Target> targets_;
    std::vector<std::vector<Element>> arrays_;
};

}  // namespace

std::unique_ptr<ExportReader> make_json_reader() { return std::make_unique<JsonReader>(); }

}  // namespace edgeguard::privacy::otlp
