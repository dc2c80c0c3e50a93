// The two OTLP/HTTP encodings, each read into an InspectionDoc (inspection_doc.h) and written back with the
// walker's changes: protobuf (`application/x-protobuf`, through libprotobuf and the message definitions in
// proto/; unknown fields are kept) and JSON (`application/json`, the OTLP JSON mapping: lowerCamelCase
// names, also accepted in the original snake_case; only the changed values' bytes are replaced).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "filters/formats/payload_kind.h"
#include "filters/otlp/inspection_doc.h"

namespace edgeguard::privacy::otlp {

// One export, read. `read` fills `doc` (cleared first) and returns false with `error` set when the body is
// not a valid export of this kind; `write` applies `changes` and returns the new body.
class ExportReader {
  public:
    virtual ~ExportReader() = default;
    virtual bool read(std::string_view body, PayloadKind kind, InspectionDoc& doc, std::string& error) = 0;
    virtual bool write(const InspectionDoc& doc, const std::vector<SlotChange>& changes, std::string& out) = 0;
};

std::unique_ptr<ExportReader> make_protobuf_reader();
std::unique_ptr<ExportReader> make_json_reader();

}  // namespace edgeguard::privacy::otlp
