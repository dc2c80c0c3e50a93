// The two OTLP/HTTP encodings, each read into an InspectionDoc (inspection_doc.h) and written back with the
// walker's changes: protobuf (`application/x-protobuf`, through libprotobuf and the message definitions in
// proto/; unknown fields are kept) and JSON (`application/json`, the OTLP JSON mapping: lowerCamelCase
// names, also accepted in the original snake_case; only the changed values' bytes are replaced).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "filters/formats/payload_kind.h"
#include "filters/otlp/inspection_doc.h"

namespace edgeguard::privacy::walk {
class QuietProbe;
}

namespace edgeguard::privacy::otlp {

// One export, read. `read` fills `doc` (cleared first) and returns false with `error` set when the body is
// not a valid export of this kind; `write` applies `changes` and returns the new body.
class ExportReader {
  public:
    virtual ~ExportReader() = default;
    virtual bool read(std::string_view body, PayloadKind kind, InspectionDoc& doc, std::string& error) = 0;
    virtual bool write(const InspectionDoc& doc, const std::vector<SlotChange>& changes, std::string& out) = 0;
};

// The protobuf reader parses and builds the document in two steps, so a caller can tell a body libprotobuf
// refuses (400) from one the walker must see.
class ProtobufExportReader : public ExportReader {
  public:
    // Parses `body` into this reader's messages; false with `error` set when it is not a valid export.
    virtual bool parse(std::string_view body, PayloadKind kind, std::string& error) = 0;
    // Fills `doc` (cleared first) from the parsed export; read() is parse() then build(). With `loud`
    // (QuietRecords), the log records, spans or metrics the quiet pass found quiet are left out.
    virtual void build(InspectionDoc& doc, const std::vector<uint8_t>* loud = nullptr) = 0;
};

std::unique_ptr<ProtobufExportReader> make_protobuf_reader();
std::unique_ptr<ExportReader> make_json_reader();

// The quiet pass over a protobuf export (protobuf_quiet_pass.cc): reads `body` in place, without parsing it
// into messages or building the document, and hands every value the document would hold to `probe` at the
// path the document gives it. True only when `body` is an export libprotobuf parses and every value is
// quiet: the request is unchanged and nothing is reported. False says nothing more (a value the walker acts
// on, or an encoding the pass leaves to libprotobuf): the caller parses the body and walks its document.
//
// `records` learns which records held something: a record whose every value is quiet adds nothing to the
// walk of the document (no edit, no audit entry, no rejection), so the document can leave it out.
struct QuietRecords {
    bool complete = false;      // the whole body was read: `loud` holds every record
    std::vector<uint8_t> loud;  // per log record, span or metric, in order: 1 when the walker acts on it
};
bool protobuf_quiet_pass(std::string_view body, PayloadKind kind, walk::QuietProbe& probe, QuietRecords& records);

}  // namespace edgeguard::privacy::otlp
