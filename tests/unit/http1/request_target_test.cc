#include "proxy/http1/request_target.h"

#include <gtest/gtest.h>

#include <string>

namespace edgeguard {
namespace {

TEST(RequestTarget, AcceptsEveryCharacterTheGrammarAllows) {
    EXPECT_TRUE(is_valid_target_bytes("/"));
    EXPECT_TRUE(is_valid_target_bytes("/a-b._~/c;d=1,e!$&'()*+:@?x=/y?z:@"));
    EXPECT_TRUE(is_valid_target_bytes("/p?a=%20&b=%2f%2F"));
    EXPECT_TRUE(is_valid_target_bytes("http://a.test:8080/p?q"));
}

TEST(RequestTarget, RefusesBytesOutsideTheGrammar) {
    for (const char* bad : {"/a\\b", "/a\"b", "/a<b", "/a>b", "/a^b", "/a`b", "/a{b", "/a|b", "/a}b", "/a b",
                            "/a#b", "/a\x7f", "/a\x01"}) {
        EXPECT_FALSE(is_valid_target_bytes(bad)) << bad;
    }
    for (int c = 0x80; c <= 0xff; ++c) {
        const std::string target = std::string("/p?q=") + static_cast<char>(c);
        EXPECT_FALSE(is_valid_target_bytes(target)) << c;
    }
}

TEST(RequestTarget, RefusesIncompletePercentEncodings) {
    EXPECT_FALSE(is_valid_target_bytes("/a%"));
    EXPECT_FALSE(is_valid_target_bytes("/a%2"));
    EXPECT_FALSE(is_valid_target_bytes("/a?b=%zz"));
    EXPECT_FALSE(is_valid_target_bytes("/a?b=%g0"));
}

TEST(Authority, AcceptsHostAndOptionalPort) {
    for (const char* ok : {"", "a.test", "a.test:80", "A-b_c~d.test:65535", "a.test:", "10.1.1.5:8000", "[::1]",
                           "[::1]:8080", "[2001:db8::7]", "[::ffff:10.1.1.1]:80", "xn--e1afmkfd.test",
                           "a%2Db.test", "[v1.fe80::a+en1]", "%41:80"}) {
        EXPECT_TRUE(is_valid_authority(ok)) << ok;
    }
}

TEST(Authority, RefusesWhatIsNotHostColonPort) {
    for (const char* bad : {"a.test:80:81", "a.test:http", "a.test:65536", "a.test:123456", "[::1", "[::1]x",
                            "[::1]:80:81", "[a.test]", "[]", "[::1%eth0]", "user@a.test", ":80", "a test",
                            "a.test,b.test", "a/b", "a%zz", "a%2", "caf\xc3\xa9.test", "[v1]", "[v.x]", "a%4:80",
                            ":", "a.test:8 0"}) {
        EXPECT_FALSE(is_valid_authority(bad)) << bad;
    }
}

}  // namespace
}  // namespace edgeguard
