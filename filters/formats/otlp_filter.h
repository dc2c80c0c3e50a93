// OTLP/HTTP exports (/i/v1/logs, /i/v1/traces, /i/v1/metrics, /i/v0/ai/otel): protobuf
// (`application/x-protobuf`) or JSON (`application/json`), optionally gzip (Content-Encoding). Every log
// body, span name, span event and link, metric name, and every string attribute of resources, scopes and
// records is walked with the profile (filters/otlp/inspection_doc.h says how records become events).
// Nothing changed: the original bytes. Something changed: the export re-encoded in its own encoding
// (protobuf re-serialized with unknown fields kept; JSON with only the changed values' bytes replaced),
// uncompressed.
#pragma once

#include "filters/filter_api.h"
#include "filters/formats/payload_kind.h"
#include "filters/rules_model.h"

namespace edgeguard::privacy {

FilterOutput filter_otlp(const Profile& profile, const CompiledRules& rules, const FilterInput& in, PayloadKind kind);

}  // namespace edgeguard::privacy
