// Fixed response fields: added before the blank line, a field already present kept unless override, the
// route's list replacing the listener's field of the same name, and the config checks on names and values.
#include "proxy/pipeline/response_headers.h"

#include <gtest/gtest.h>

#include <string>

namespace edgeguard {
namespace {

const std::string kHead = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Frame-Options: SAMEORIGIN\r\n"
                          "Content-Length: 2\r\n\r\n";

TEST(ResponseHeaders, AddsMissingFieldsBeforeTheBlankLine) {
    std::string head = kHead;
    const std::vector<ResponseHeaderConfig> listener = {{"X-Content-Type-Options", "nosniff", false}};
    apply_response_headers(head, &listener, nullptr);
    EXPECT_EQ(head, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Frame-Options: SAMEORIGIN\r\n"
                    "Content-Length: 2\r\nX-Content-Type-Options: nosniff\r\n\r\n");
}

TEST(ResponseHeaders, KeepsThePresentFieldUnlessOverride) {
    std::string kept = kHead;
    const std::vector<ResponseHeaderConfig> soft = {{"x-frame-options", "DENY", false}};
    apply_response_headers(kept, &soft, nullptr);
    EXPECT_EQ(kept, kHead);

    std::string replaced = kHead + "";
    replaced.insert(replaced.size() - 2, "X-Frame-Options: ALLOW-FROM x\r\n");
    const std::vector<ResponseHeaderConfig> hard = {{"X-Frame-Options", "DENY", true}};
    apply_response_headers(replaced, &hard, nullptr);
    EXPECT_EQ(replaced, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n"
                        "X-Frame-Options: DENY\r\n\r\n");
}

TEST(ResponseHeaders, NameMatchIsWholeFieldNameOnly) {
    std::string head = "HTTP/1.1 200 OK\r\nX-Frame-Options-Extra: 1\r\n\r\n";
    const std::vector<ResponseHeaderConfig> fields = {{"X-Frame-Options", "DENY", false}};
    apply_response_headers(head, &fields, nullptr);
    EXPECT_EQ(head, "HTTP/1.1 200 OK\r\nX-Frame-Options-Extra: 1\r\nX-Frame-Options: DENY\r\n\r\n");
}

TEST(ResponseHeaders, RouteFieldReplacesTheListenersOfTheSameName) {
    std::string head = "HTTP/1.1 204 No Content\r\n\r\n";
    const std::vector<ResponseHeaderConfig> listener = {{"Cache-Control", "no-store", false},
                                                        {"X-A", "1", false}};
    const std::vector<ResponseHeaderConfig> route = {{"cache-control", "public", false}};
    apply_response_headers(head, &listener, &route);
    EXPECT_EQ(head, "HTTP/1.1 204 No Content\r\ncache-control: public\r\nX-A: 1\r\n\r\n");
}

TEST(ResponseHeaders, EmptyListsLeaveTheHeadAlone) {
    std::string head = kHead;
    const std::vector<ResponseHeaderConfig> none;
    apply_response_headers(head, &none, &none);
    apply_response_headers(head, nullptr, nullptr);
    EXPECT_EQ(head, kHead);
}

TEST(ResponseHeaderProblem, NamesAndValues) {
    EXPECT_EQ(response_header_problem("Strict-Transport-Security", "max-age=63072000; includeSubDomains"), "");
    EXPECT_NE(response_header_problem("", "x"), "");
    EXPECT_NE(response_header_problem("Bad Name", "x"), "");
    EXPECT_NE(response_header_problem("X:Y", "x"), "");
    EXPECT_NE(response_header_problem("Content-Length", "1"), "");
    EXPECT_NE(response_header_problem("transfer-encoding", "chunked"), "");
    EXPECT_NE(response_header_problem("Connection", "close"), "");
    EXPECT_NE(response_header_problem("X-A", ""), "");
    EXPECT_NE(response_header_problem("X-A", " padded"), "");
    EXPECT_NE(response_header_problem("X-A", "a\r\nSet-Cookie: x"), "");
    EXPECT_NE(response_header_problem("X-A", "a\nb"), "");
    EXPECT_NE(response_header_problem("X-A", std::string("a\0b", 3)), "");
    EXPECT_NE(response_header_problem("X-A", "caf\xc3\xa9"), "");
    EXPECT_EQ(response_header_problem("X-A", "a\tb c"), "");
}

}  // namespace
}  // namespace edgeguard
