// Header rewriting toward upstreams and clients: what is dropped, what edgeguard writes itself.
#include "proxy/http1/http_headers.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <string>
#include <utility>
#include <vector>

namespace edgeguard {
namespace {

HeaderList make_headers(const std::vector<std::pair<std::string, std::string>>& fields) {
    HeaderList h;
    for (const auto& [name, value] : fields) {
        h.append_name(name.data(), name.size());
        h.append_value(value.data(), value.size());
        h.end_field();
    }
    return h;
}

bool has_line(const std::string& head, const std::string& line) {
    return head.find("\r\n" + line + "\r\n") != std::string::npos;
}

bool has_field_named(const std::string& head, const std::string& name) {
    std::string lower_head, lower_name = "\r\n" + name + ":";
    for (char c : head) lower_head.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    for (char& c : lower_name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return lower_head.find(lower_name) != std::string::npos;
}

sockaddr_in v4(const char* text) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    inet_pton(AF_INET, text, &sa.sin_addr);
    return sa;
}

sockaddr_in6 v6(const char* text) {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    inet_pton(AF_INET6, text, &sa.sin6_addr);
    return sa;
}

TEST(HeaderList, JoinsPiecesAndTrimsTrailingWhitespace) {
    HeaderList h;
    h.append_name("Con", 3);
    h.append_name("tent-Type", 9);
    h.append_value("appli", 5);
    h.append_value("cation/json \t", 13);
    h.end_field();
    h.append_name("X-Empty", 7);
    h.end_field();
    ASSERT_EQ(h.size(), 2u);
    EXPECT_EQ(h.name(0), "Content-Type");
    EXPECT_EQ(h.value(0), "application/json");
    EXPECT_EQ(h.name(1), "X-Empty");
    EXPECT_EQ(h.value(1), "");
    bool found = false;
    EXPECT_EQ(h.find("content-type", &found), "application/json");
    EXPECT_TRUE(found);
    h.find("x-missing", &found);
    EXPECT_FALSE(found);
}

TEST(HeaderList, ClearKeepsNothing) {
    HeaderList h = make_headers({{"A", "1"}, {"a", "2"}});
    EXPECT_EQ(h.count("A"), 2u);
    h.clear();
    EXPECT_EQ(h.size(), 0u);
    EXPECT_EQ(h.count("a"), 0u);
}

// The field lines of a head, appended in the pieces `cuts` splits them into, then indexed.
HeaderList from_lines(const std::string& lines, std::vector<size_t> cuts = {}) {
    HeaderList h;
    size_t at = 0;
    cuts.push_back(lines.size());
    for (size_t cut : cuts) {
        h.append_lines(lines.data() + at, cut - at);
        at = cut;
    }
    EXPECT_TRUE(h.index_lines(100));
    return h;
}

// The same fields as a parser hands them over one by one (llhttp's view: value without leading whitespace).
HeaderList field_by_field(const HeaderList& lines) {
    HeaderList h;
    for (size_t i = 0; i < lines.size(); ++i) {
        h.append_name(lines.name(i).data(), lines.name(i).size());
        h.append_value(lines.value(i).data(), lines.value(i).size());
        h.end_field();
    }
    return h;
}

TEST(HeaderList, IndexesReceivedLinesWhateverPiecesTheyCameIn) {
    const std::string lines =
        "Host: a.example\r\nX-Tight:v\r\nX-Spaced: \t v w \t\r\nX-Empty:\r\nX-Blank: \r\n"
        "Content-Length: 5\r\nX-Colon: a:b\r\n\r\n";
    for (std::vector<size_t> cuts : {std::vector<size_t>{}, {2}, {17, 30}, {1, 2, 3, 50, 51, 90}}) {
        const HeaderList h = from_lines(lines, cuts);
        ASSERT_EQ(h.size(), 7u);
        EXPECT_EQ(h.name(0), "Host");
        EXPECT_EQ(h.value(0), "a.example");
        EXPECT_EQ(h.field_class(0), HeaderList::classify("host"));
        EXPECT_EQ(h.value(1), "v");
        EXPECT_EQ(h.value(2), "v w");
        EXPECT_EQ(h.value(3), "");
        EXPECT_EQ(h.value(4), "");
        EXPECT_EQ(h.find(HeaderList::kContentLength), "5");
        EXPECT_EQ(h.name(6), "X-Colon");
        EXPECT_EQ(h.value(6), "a:b");
        // Only lines that read exactly as a rebuilt head writes them are copied as received.
        EXPECT_EQ(h.verbatim_line(0), "Host: a.example\r\n");
        EXPECT_EQ(h.verbatim_line(1), "");
        EXPECT_EQ(h.verbatim_line(2), "");
        EXPECT_EQ(h.verbatim_line(3), "");
        EXPECT_EQ(h.verbatim_line(4), "X-Blank: \r\n");
        EXPECT_EQ(h.verbatim_line(6), "X-Colon: a:b\r\n");
    }
}

TEST(HeaderList, IndexingRefusesMoreFieldsThanAllowed) {
    HeaderList h;
    const std::string lines = "A: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    h.append_lines(lines.data(), lines.size());
    EXPECT_TRUE(h.index_lines(3));
    EXPECT_FALSE(h.index_lines(2));
    HeaderList none;
    none.append_lines("\r\n", 2);
    EXPECT_TRUE(none.index_lines(0));
    EXPECT_EQ(none.size(), 0u);
}

// Heads rebuilt from received lines (runs copied whole) are byte for byte the heads rebuilt field by field.
TEST(HeaderList, HeadsRebuiltFromLinesEqualHeadsRebuiltFieldByField) {
    const std::string lines =
        "Host: a.example\r\nUser-Agent: sdk\r\nAccept: */*\r\nX-Forwarded-For: 6.6.6.6\r\n"
        "Connection: keep-alive, X-Secret\r\nX-Secret: 1\r\nContent-Type:application/json\r\n"
        "X-Trailing: x  \r\nCookie: a=b\r\nContent-Length: 12\r\nServer: origin\r\nHost: b.example\r\n\r\n";
    const HeaderList received = from_lines(lines, {40, 41});
    const HeaderList parsed = field_by_field(received);
    for (const HeaderList* h : {&received, &parsed}) {
        EXPECT_EQ(h->count(HeaderList::kHost), 2u);
        EXPECT_EQ(h->find(HeaderList::kHost), "a.example");
        EXPECT_EQ(h->count(HeaderList::kConnection), 1u);
        EXPECT_EQ(h->find(HeaderList::kContentType), "application/json");
        bool found = true;
        EXPECT_EQ(h->find(HeaderList::kExpect, &found), "");
        EXPECT_FALSE(found);
        EXPECT_EQ(h->count(HeaderList::kTransferEncoding), 0u);
    }
    for (std::string_view host_override : {std::string_view(), std::string_view("c.example:8080")}) {
        UpstreamRequestHead head;
        head.method = "POST";
        head.target = "/e/";
        head.forwarded_for = "10.1.1.7";
        head.forwarded_proto = "http";
        head.host_override = host_override;
        head.body = BodyFraming::ContentLength;
        head.content_length = 12;
        std::string from_received, from_parsed;
        append_upstream_request_head(from_received, received, head);
        append_upstream_request_head(from_parsed, parsed, head);
        EXPECT_EQ(from_received, from_parsed);
        EXPECT_TRUE(has_line(from_received, "User-Agent: sdk"));
        EXPECT_TRUE(has_line(from_received, "Content-Type: application/json"));
        EXPECT_TRUE(has_line(from_received, "X-Trailing: x"));
        EXPECT_FALSE(has_field_named(from_received, "X-Secret"));
        EXPECT_EQ(from_received.find("6.6.6.6"), std::string::npos);
    }
    DownstreamResponseHead head;
    head.status = 200;
    head.body = BodyFraming::Chunked;
    std::string from_received, from_parsed;
    append_downstream_response_head(from_received, received, head);
    append_downstream_response_head(from_parsed, parsed, head);
    EXPECT_EQ(from_received, from_parsed);
    EXPECT_FALSE(has_field_named(from_received, "Content-Length"));
    EXPECT_FALSE(has_field_named(from_received, "Connection"));
}

TEST(UpstreamRequestHead, DropsSpoofedForwardingAndHopByHopHeaders) {
    HeaderList in = make_headers({{"Host", "posthog.example"},
                                  {"X-Forwarded-For", "6.6.6.6"},
                                  {"Forwarded", "for=6.6.6.6"},
                                  {"X-Real-IP", "6.6.6.6"},
                                  {"CF-Connecting-IP", "6.6.6.6"},
                                  {"True-Client-IP", "6.6.6.6"},
                                  {"Fly-Client-IP", "6.6.6.6"},
                                  {"X-Forwarded-Proto", "https"},
                                  {"Connection", "keep-alive, X-Secret"},
                                  {"X-Secret", "remove me"},
                                  {"Keep-Alive", "timeout=5"},
                                  {"TE", "trailers"},
                                  {"Trailer", "X-T"},
                                  {"Proxy-Authorization", "Basic x"},
                                  {"Proxy-Connection", "keep-alive"},
                                  {"Upgrade", "websocket"},
                                  {"Expect", "100-continue"},
                                  {"Content-Length", "12"},
                                  {"Authorization", "Bearer t"},
                                  {"User-Agent", "sdk"}});
    UpstreamRequestHead head;
    head.method = "POST";
    head.target = "/batch/?ver=1";
    head.forwarded_for = "10.1.1.7";
    head.forwarded_proto = "http";
    head.body = BodyFraming::ContentLength;
    head.content_length = 12;
    std::string out;
    append_upstream_request_head(out, in, head);

    EXPECT_EQ(out.rfind("POST /batch/?ver=1 HTTP/1.1\r\n", 0), 0u);
    EXPECT_TRUE(has_line(out, "Host: posthog.example"));
    EXPECT_TRUE(has_line(out, "X-Forwarded-For: 10.1.1.7"));
    EXPECT_TRUE(has_line(out, "X-Forwarded-Proto: http"));
    EXPECT_TRUE(has_line(out, "X-Forwarded-Host: posthog.example"));
    EXPECT_TRUE(has_line(out, "Content-Length: 12"));
    EXPECT_TRUE(has_line(out, "Authorization: Bearer t"));
    EXPECT_TRUE(has_line(out, "User-Agent: sdk"));
    for (const char* gone : {"Forwarded", "X-Real-IP", "CF-Connecting-IP", "True-Client-IP", "Fly-Client-IP",
                             "Connection", "X-Secret", "Keep-Alive", "TE", "Trailer", "Proxy-Authorization",
                             "Proxy-Connection", "Upgrade", "Expect", "Transfer-Encoding"}) {
        EXPECT_FALSE(has_field_named(out, gone)) << gone;
    }
    EXPECT_EQ(out.find("6.6.6.6"), std::string::npos);
    EXPECT_EQ(out.find("https"), std::string::npos);
    EXPECT_EQ(out.substr(out.size() - 4), "\r\n\r\n");
    // Exactly one Content-Length, the one we wrote.
    EXPECT_EQ(out.find("Content-Length"), out.rfind("Content-Length"));
}

TEST(UpstreamRequestHead, ConnectionCannotNominateHeadersWeOwn) {
    HeaderList in = make_headers({{"Host", "h"},
                                  {"Connection", "Host, Content-Type, X-Forwarded-For, Authorization"},
                                  {"Content-Type", "text/plain"},
                                  {"Authorization", "Bearer t"}});
    UpstreamRequestHead head;
    head.method = "GET";
    head.target = "/";
    head.forwarded_for = "127.0.0.1";
    std::string out;
    append_upstream_request_head(out, in, head);
    EXPECT_TRUE(has_line(out, "Host: h"));
    EXPECT_TRUE(has_line(out, "Content-Type: text/plain"));
    EXPECT_TRUE(has_line(out, "Authorization: Bearer t"));
    EXPECT_TRUE(has_line(out, "X-Forwarded-For: 127.0.0.1"));
}

TEST(UpstreamRequestHead, ChunkedFramingAndNoForwardedForWhenDropped) {
    HeaderList in = make_headers({{"Host", "h"}, {"Transfer-Encoding", "chunked"}});
    UpstreamRequestHead head;
    head.method = "POST";
    head.target = "/e";
    head.forwarded_for = "";
    head.body = BodyFraming::Chunked;
    std::string out;
    append_upstream_request_head(out, in, head);
    EXPECT_TRUE(has_line(out, "Transfer-Encoding: chunked"));
    EXPECT_EQ(out.find("Transfer-Encoding"), out.rfind("Transfer-Encoding"));
    EXPECT_FALSE(has_field_named(out, "X-Forwarded-For"));
    EXPECT_FALSE(has_field_named(out, "Content-Length"));
}

TEST(UpstreamRequestHead, PrivacyRewriteReplacesContentTypeAndEncoding) {
    HeaderList in = make_headers({{"Host", "h"}, {"Content-Type", "text/plain"}, {"Content-Encoding", "gzip"}});
    UpstreamRequestHead head;
    head.method = "POST";
    head.target = "/batch/";
    head.body = BodyFraming::ContentLength;
    head.content_length = 2;
    head.replace_content_type_json = true;
    std::string out;
    append_upstream_request_head(out, in, head);
    EXPECT_TRUE(has_line(out, "Content-Type: application/json"));
    EXPECT_FALSE(has_field_named(out, "Content-Encoding"));
    EXPECT_EQ(out.find("text/plain"), std::string::npos);
    EXPECT_TRUE(has_line(out, "Content-Length: 2"));
}

TEST(UpstreamRequestHead, UpgradeKeptOnlyWhenUpgrading) {
    HeaderList in = make_headers({{"Host", "h"}, {"Connection", "Upgrade"}, {"Upgrade", "websocket"}});
    UpstreamRequestHead head;
    head.method = "GET";
    head.target = "/ws";
    head.upgrade = true;
    std::string out;
    append_upstream_request_head(out, in, head);
    EXPECT_TRUE(has_line(out, "Connection: upgrade"));
    EXPECT_TRUE(has_line(out, "Upgrade: websocket"));
}

TEST(DownstreamResponseHead, RemovesHopByHopAndWritesOurFraming) {
    HeaderList in = make_headers({{"Content-Type", "text/event-stream"},
                                  {"Connection", "keep-alive, X-Internal"},
                                  {"X-Internal", "1"},
                                  {"Keep-Alive", "timeout=5"},
                                  {"Transfer-Encoding", "chunked"},
                                  {"Content-Length", "99"},
                                  {"Set-Cookie", "a=b"}});
    DownstreamResponseHead head;
    head.status = 200;
    head.body = BodyFraming::Chunked;
    std::string out;
    append_downstream_response_head(out, in, head);
    EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
    EXPECT_TRUE(has_line(out, "Content-Type: text/event-stream"));
    EXPECT_TRUE(has_line(out, "Set-Cookie: a=b"));
    EXPECT_TRUE(has_line(out, "Transfer-Encoding: chunked"));
    EXPECT_FALSE(has_field_named(out, "X-Internal"));
    EXPECT_FALSE(has_field_named(out, "Keep-Alive"));
    EXPECT_FALSE(has_field_named(out, "Connection"));
    EXPECT_FALSE(has_field_named(out, "Content-Length"));
}

TEST(DownstreamResponseHead, HeadResponseKeepsContentLengthAndCloseIsAnnounced) {
    HeaderList in = make_headers({{"Content-Length", "1234"}});
    DownstreamResponseHead head;
    head.status = 200;
    head.body = BodyFraming::None;
    head.keep_original_content_length = true;
    head.close = true;
    std::string out;
    append_downstream_response_head(out, in, head);
    EXPECT_TRUE(has_line(out, "Content-Length: 1234"));
    EXPECT_TRUE(has_line(out, "Connection: close"));
}

TEST(ForwardedFor, AppliesTheClientIpPolicy) {
    sockaddr_in a = v4("203.0.113.77");
    const auto* sa = reinterpret_cast<const sockaddr*>(&a);
    EXPECT_EQ(forwarded_for_value(sa, ClientIpPolicy::Forward), "203.0.113.77");
    EXPECT_EQ(forwarded_for_value(sa, ClientIpPolicy::Truncate), "203.0.113.0");
    EXPECT_EQ(forwarded_for_value(sa, ClientIpPolicy::Drop), "");

    sockaddr_in6 b = v6("2001:db8:abcd:1234:5678::9");
    const auto* sb = reinterpret_cast<const sockaddr*>(&b);
    EXPECT_EQ(forwarded_for_value(sb, ClientIpPolicy::Forward), "2001:db8:abcd:1234:5678::9");
    EXPECT_EQ(forwarded_for_value(sb, ClientIpPolicy::Truncate), "2001:db8:abcd::");

    sockaddr_in6 mapped = v6("::ffff:10.1.1.99");
    const auto* sm = reinterpret_cast<const sockaddr*>(&mapped);
    EXPECT_EQ(forwarded_for_value(sm, ClientIpPolicy::Forward), "10.1.1.99");
    EXPECT_EQ(forwarded_for_value(sm, ClientIpPolicy::Truncate), "10.1.1.0");
}

TEST(TransferEncoding, OnlyASinglePlainChunkedIsAccepted) {
    EXPECT_TRUE(is_plain_chunked("chunked"));
    EXPECT_TRUE(is_plain_chunked(" CHUNKED "));
    EXPECT_FALSE(is_plain_chunked("gzip, chunked"));
    EXPECT_FALSE(is_plain_chunked("chunked, chunked"));
    EXPECT_FALSE(is_plain_chunked("chunked;x=y"));
    EXPECT_FALSE(is_plain_chunked("identity"));
    EXPECT_FALSE(is_plain_chunked(""));
}

TEST(HopByHop, KnownFieldsAndProxyPrefix) {
    for (const char* n : {"Connection", "keep-alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
                          "Proxy-Authorization", "proxy-connection"})
        EXPECT_TRUE(is_hop_by_hop(n)) << n;
    for (const char* n : {"Host", "Content-Type", "Authorization", "Cookie", "X-Proxy"})
        EXPECT_FALSE(is_hop_by_hop(n)) << n;
}

}  // namespace
}  // namespace edgeguard

namespace edgeguard {
namespace {

// Lookups by class (decided once per field) must answer exactly as lookups by name, whatever the case,
// including for a field whose value never ended.
TEST(HeaderList, ClassLookupsMatchNameLookups) {
    const std::pair<HeaderList::Class, const char*> single[] = {
        {HeaderList::kHost, "host"},
        {HeaderList::kContentLength, "content-length"},
        {HeaderList::kTransferEncoding, "transfer-encoding"},
        {HeaderList::kExpect, "expect"},
        {HeaderList::kUpgrade, "upgrade"},
        {HeaderList::kContentType, "content-type"},
        {HeaderList::kContentEncoding, "content-encoding"},
        {HeaderList::kConnection, "connection"},
    };
    HeaderList h = make_headers({{"HOST", "a"},
                                 {"Content-Length", "1"},
                                 {"content-length", "2"},
                                 {"X-Host", "no"},
                                 {"Hosts", "no"},
                                 {"Transfer-Encoding", "chunked"},
                                 {"Content-Type", "text/plain"},
                                 {"Connection", "x-a"}});
    h.append_name("Expect", 6);  // still open: no end_field yet
    h.append_value("100-continue", 12);
    for (const auto& [cls, name] : single) {
        bool by_class = false, by_name = false;
        EXPECT_EQ(h.find(cls, &by_class), h.find(name, &by_name)) << name;
        EXPECT_EQ(by_class, by_name) << name;
        EXPECT_EQ(h.count(cls), h.count(name)) << name;
    }
    EXPECT_EQ(h.count(HeaderList::kContentLength), 2u);
    EXPECT_EQ(h.find(HeaderList::kExpect), "100-continue");
    EXPECT_EQ(h.count(HeaderList::kUpgrade), 0u);
    h.clear();
    EXPECT_EQ(h.count(HeaderList::kHost), 0u);
}

TEST(HeaderList, ClassifiesKnownNamesInAnyCaseAndNothingElse) {
    EXPECT_EQ(HeaderList::classify("X-FORWARDED-FOR"), HeaderList::kClientForwarding | HeaderList::kProtected);
    EXPECT_EQ(HeaderList::classify("x-forwarded-anything"), HeaderList::kClientForwarding | HeaderList::kProtected);
    EXPECT_EQ(HeaderList::classify("Proxy-Authorization"), static_cast<uint32_t>(HeaderList::kHopByHop));
    EXPECT_EQ(HeaderList::classify("Transfer-Encoding"), HeaderList::kHopByHop | HeaderList::kTransferEncoding);
    EXPECT_EQ(HeaderList::classify("Authorization"), static_cast<uint32_t>(HeaderList::kProtected));
    for (const char* plain : {"", "x", "Accept", "User-Agent", "Cookie", "X-Real-IPs", "forwarded-for", "proxy"})
        EXPECT_EQ(HeaderList::classify(plain), 0u) << plain;
}

// Names are compared a word at a time with the case bit (0x20) folded only where the known name has a
// letter: a byte that equals a known name's '-' or digit once 0x20 is set ("\r" | 0x20 is '-') is no match.
TEST(HeaderList, OnlyLettersCompareWithoutCase) {
    EXPECT_EQ(HeaderList::classify("cOnTeNt-LeNgTh"), HeaderList::kContentLength | HeaderList::kProtected);
    EXPECT_EQ(HeaderList::classify("TE"), static_cast<uint32_t>(HeaderList::kHopByHop));
    EXPECT_EQ(HeaderList::classify("X-Cluster-Client-IP"),
              static_cast<uint32_t>(HeaderList::kClientForwarding));
    for (const char* other : {"Content\rLength", "Content\x0dType", "HTTP\x12-Settings", "Connectio\x0e",
                              "Proxy\rAuthorization", "X\rForwarded-For", "Hos\x14", "Ke\x19p-Alive",
                              "Upgrad\x05", "@ost", "Hos[", "Content-Lengt", "Content-Lengths"})
        EXPECT_EQ(HeaderList::classify(other), 0u) << other;
}

TEST(HeaderList, UnderscoreAliasesOfOwnedAndFramingFieldsAreAliases) {
    for (const char* alias : {"X_Forwarded_For", "x_forwarded_proto", "X-Forwarded_Host", "X_Forwarded_Port",
                              "X_Real_IP", "True_Client_IP", "CF_Connecting_IP", "Transfer_Encoding",
                              "Content_Length", "Proxy_Authorization", "Keep_Alive"})
        EXPECT_EQ(HeaderList::classify(alias), static_cast<uint32_t>(HeaderList::kAlias)) << alias;
    for (const char* plain : {"Forwarded_", "_Forwarded", "X_Custom_Header", "Content_Type"})
        EXPECT_EQ(HeaderList::classify(plain), 0u) << plain;
}

}  // namespace
}  // namespace edgeguard
