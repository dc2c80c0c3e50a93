// A response head as the HTTP/1.1 side writes it ("HTTP/1.1 200 OK\r\nName: value\r\n...\r\n\r\n": the same
// re-serialisation, configured response fields and RateLimit fields for both protocols) turned into the
// field list of an HTTP/2 HEADERS frame: ":status" first, every name lower-cased (RFC 9113 §8.2.1), and
// without the connection-specific fields HTTP/2 forbids (§8.2.2: Connection, Keep-Alive, Proxy-Connection,
// Transfer-Encoding, Upgrade).
#pragma once

#include <nghttp2/nghttp2.h>

#include <string>
#include <string_view>
#include <vector>

namespace edgeguard {

// Fills `out` with pointers into `head` and `storage` (which holds the lower-cased names and the status);
// both must outlive the submit call. False when `head` is not a well-formed head.
bool http2_response_fields(std::string_view head, std::string& storage, std::vector<nghttp2_nv>& out);

}  // namespace edgeguard
