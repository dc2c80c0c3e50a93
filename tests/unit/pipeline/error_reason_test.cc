#include "proxy/pipeline/error_reason.h"

#include <gtest/gtest.h>

#include <string>

namespace edgeguard {
namespace {

std::string reason(int status, std::string_view message) {
    std::string out;
    append_error_reason(out, status, message);
    return out;
}

TEST(ErrorReason, LocalAnswersNameTheCheckThatRefused) {
    EXPECT_EQ(reason(403, "forbidden"), "allowlist");
    EXPECT_EQ(reason(404, "no route"), "no_route");
    EXPECT_EQ(reason(413, "request body too large"), "body_too_large");
    EXPECT_EQ(reason(429, "rate limited"), "rate_limited");
    EXPECT_EQ(reason(503, "no upstream available"), "no_upstream");
}

TEST(ErrorReason, ClientErrorsKeepWhatWasWrong) {
    EXPECT_EQ(reason(400, "duplicate Content-Length"), "bad_request: duplicate Content-Length");
    EXPECT_EQ(reason(408, "request header deadline passed"), "client_timeout: request header deadline passed");
    EXPECT_EQ(reason(501, "unsupported Transfer-Encoding"), "not_implemented: unsupported Transfer-Encoding");
}

TEST(ErrorReason, UpstreamFailuresAreToldApartByCause) {
    EXPECT_EQ(reason(502, "upstream connection refused"), "upstream_refused");
    EXPECT_EQ(reason(502, "upstream connect timeout"), "upstream_timeout");
    EXPECT_EQ(reason(502, "upstream connection reset"), "upstream_reset");
    EXPECT_EQ(reason(502, "upstream closed the connection"), "upstream_reset");
    EXPECT_EQ(reason(502, "upstream closed mid-response"), "upstream_reset");
    EXPECT_EQ(reason(502, "invalid upstream response"), "upstream_invalid_response");
    EXPECT_EQ(reason(504, "upstream response timeout"), "upstream_timeout");
    EXPECT_EQ(reason(504, "upstream body idle timeout"), "upstream_timeout");
}

TEST(ErrorReason, AnUnexpectedStatusStillSaysSomething) {
    EXPECT_EQ(reason(418, "teapot"), "error: teapot");
}

}  // namespace
}  // namespace edgeguard
