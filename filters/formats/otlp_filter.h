// OTLP/HTTP exports (/i/v1/logs, /i/v1/traces, /i/v1/metrics, /i/v0/ai/otel): protobuf
// (`application/x-protobuf`) or JSON (`application/json`), optionally gzip (Content-Encoding). Every log
// body, span name, span event and link, metric name, and every string attribute of resources, scopes and
// records is walked with the profile (filters/otlp/inspection_doc.h says how records become events).
// A protobuf export whose every value the walker leaves alone is answered without building the document
// (OtlpInspection below). Nothing changed: the original bytes. Something changed: the export re-encoded in its own encoding
// (protobuf re-serialized with unknown fields kept; JSON with only the changed values' bytes replaced),
// uncompressed.
#pragma once

#include "filters/filter_api.h"
#include "filters/formats/payload_kind.h"
#include "filters/rules_model.h"

namespace edgeguard::privacy {

// How a protobuf export is inspected. QuietFirst (what the proxy uses): the quiet pass reads the body in
// place and asks the walker about each value (otlp/otlp_formats.h, protobuf_quiet_pass); only a request
// with a value the walker would act on, or that the pass leaves to libprotobuf, is parsed, read into the
// inspection document and walked. DocumentOnly: every export is parsed and read into the document, the
// reference the quiet pass is tested against (same verdicts, bodies and audit).
enum class OtlpInspection { QuietFirst, DocumentOnly };

FilterOutput filter_otlp(const Profile& profile, const CompiledRules& rules, const FilterInput& in, PayloadKind kind,
                         OtlpInspection inspection = OtlpInspection::QuietFirst);

}  // namespace edgeguard::privacy
