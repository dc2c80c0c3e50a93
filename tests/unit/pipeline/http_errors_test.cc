// Error responses edgeguard writes itself: status line, JSON body, length and connection handling.
#include "proxy/pipeline/http_errors.h"

#include <gtest/gtest.h>

#include <string>

namespace edgeguard {
namespace {

std::string body_of(const std::string& response) { return response.substr(response.find("\r\n\r\n") + 4); }

TEST(ErrorResponse, JsonBodyWithStatusAndExactLength) {
    std::string out;
    append_error_response(out, 502, "upstream connection refused", true);
    EXPECT_EQ(out.rfind("HTTP/1.1 502 Bad Gateway\r\n", 0), 0u);
    EXPECT_NE(out.find("\r\nContent-Type: application/json\r\n"), std::string::npos);
    EXPECT_NE(out.find("\r\nConnection: close\r\n"), std::string::npos);
    const std::string body = body_of(out);
    EXPECT_EQ(body, R"({"error":"upstream connection refused","status":502})");
    EXPECT_NE(out.find("Content-Length: " + std::to_string(body.size()) + "\r\n"), std::string::npos);
}

TEST(ErrorResponse, KeepAliveOmitsConnectionClose) {
    std::string out;
    append_error_response(out, 404, "no route", false);
    EXPECT_EQ(out.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u);
    EXPECT_EQ(out.find("Connection:"), std::string::npos);
}

TEST(ErrorResponse, MessageIsJsonEscaped) {
    std::string out;
    append_error_response(out, 400, "bad \"value\"\\\n", true);
    EXPECT_EQ(body_of(out), R"({"error":"bad \"value\"\\\u000a","status":400})");
}

TEST(ErrorResponse, EveryStatusTheProxyEmitsHasItsReason) {
    const std::pair<int, const char*> expected[] = {
        {400, "Bad Request"},      {403, "Forbidden"},          {404, "Not Found"},
        {408, "Request Timeout"},  {413, "Content Too Large"},  {414, "URI Too Long"},
        {429, "Too Many Requests"}, {431, "Request Header Fields Too Large"},
        {501, "Not Implemented"},  {502, "Bad Gateway"},        {503, "Service Unavailable"},
        {504, "Gateway Timeout"}};
    for (const auto& [status, reason] : expected) EXPECT_EQ(reason_phrase(status), reason) << status;
}

TEST(PrivacyRejection, CaptureStyleBody) {
    EXPECT_EQ(privacy_rejection_body(422, "privacy_rejected", "rule email.reject matched"),
              R"({"status":422,"code":"privacy_rejected","error":"rule email.reject matched"})");
    std::string out;
    append_json_response(out, 422, privacy_rejection_body(422, "c", "e"), false);
    EXPECT_EQ(out.rfind("HTTP/1.1 422 Unprocessable Content\r\n", 0), 0u);
}

}  // namespace
}  // namespace edgeguard
