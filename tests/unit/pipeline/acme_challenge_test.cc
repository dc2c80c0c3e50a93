// ACME HTTP-01 token parsing and the webroot file read: only base64url tokens, only regular files of the
// challenge directory, never through a symbolic link, never larger than a key authorization can be.
#include "proxy/pipeline/acme_challenge.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace edgeguard {
namespace {

TEST(AcmeChallengePath, RecognisesTheDirectoryAndItsChildren) {
    EXPECT_TRUE(is_acme_challenge_path("/.well-known/acme-challenge/abc"));
    EXPECT_TRUE(is_acme_challenge_path("/.well-known/acme-challenge/"));
    EXPECT_TRUE(is_acme_challenge_path("/.well-known/acme-challenge"));
    EXPECT_FALSE(is_acme_challenge_path("/.well-known/acme-challengex"));
    EXPECT_FALSE(is_acme_challenge_path("/.well-known/"));
    EXPECT_FALSE(is_acme_challenge_path("/e/"));
}

TEST(AcmeChallengeToken, OnlyBase64urlTokens) {
    EXPECT_EQ(acme_challenge_token("/.well-known/acme-challenge/aZ09-_"), "aZ09-_");
    EXPECT_EQ(acme_challenge_token("/.well-known/acme-challenge/"), "");
    EXPECT_EQ(acme_challenge_token("/.well-known/acme-challenge/a/b"), "");
    EXPECT_EQ(acme_challenge_token("/.well-known/acme-challenge/.."), "");
    EXPECT_EQ(acme_challenge_token("/.well-known/acme-challenge/a.b"), "");
    EXPECT_EQ(acme_challenge_token("/.well-known/acme-challenge/a%2Fb"), "");
    EXPECT_EQ(acme_challenge_token("/.well-known/acme-challenge/a=b"), "");
    EXPECT_EQ(acme_challenge_token("/.well-known/acme-challenge/" + std::string(kMaxAcmeTokenLength + 1, 'a')), "");
    EXPECT_EQ(acme_challenge_token("/.well-known/acme-challenge/" + std::string(kMaxAcmeTokenLength, 'a')).size(),
              kMaxAcmeTokenLength);
}

class AcmeWebroot : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/edgeguard-acme-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        root_ = tmpl;
        ASSERT_EQ(::mkdir((root_ + "/.well-known").c_str(), 0755), 0);
        ASSERT_EQ(::mkdir((root_ + "/.well-known/acme-challenge").c_str(), 0755), 0);
    }
    void TearDown() override { std::system(("rm -rf '" + root_ + "'").c_str()); }
    void write(const std::string& relative, const std::string& content) {
        std::ofstream(root_ + "/" + relative) << content;
    }
    std::string dir() const { return root_ + "/.well-known/acme-challenge/"; }
    std::string root_;
};

TEST_F(AcmeWebroot, ServesAKeyAuthorization) {
    write(".well-known/acme-challenge/tok", "tok.thumb");
    const AcmeChallengeFile f = read_acme_challenge(root_, "tok");
    EXPECT_EQ(f.status, 200);
    EXPECT_EQ(f.body, "tok.thumb");
    // A webroot written with a trailing slash finds the same file.
    EXPECT_EQ(read_acme_challenge(root_ + "/", "tok").body, "tok.thumb");
}

TEST_F(AcmeWebroot, AbsentIsA404) {
    const AcmeChallengeFile f = read_acme_challenge(root_, "missing");
    EXPECT_EQ(f.status, 404);
    EXPECT_TRUE(f.body.empty());
    EXPECT_FALSE(f.reason.empty());
}

TEST_F(AcmeWebroot, RefusesLinksDirectoriesFifosAndLargeFiles) {
    write("secret", "outside");
    ASSERT_EQ(::symlink((root_ + "/secret").c_str(), (dir() + "link").c_str()), 0);
    ASSERT_EQ(::mkdir((dir() + "sub").c_str(), 0755), 0);
    ASSERT_EQ(::mkfifo((dir() + "fifo").c_str(), 0644), 0);
    write(".well-known/acme-challenge/big", std::string(kMaxAcmeChallengeBytes + 1, 'x'));
    write(".well-known/acme-challenge/edge", std::string(kMaxAcmeChallengeBytes, 'y'));
    for (const char* token : {"link", "sub", "fifo", "big"}) {
        const AcmeChallengeFile f = read_acme_challenge(root_, token);
        EXPECT_EQ(f.status, 404) << token;
        EXPECT_TRUE(f.body.empty()) << token;
    }
    EXPECT_EQ(read_acme_challenge(root_, "edge").status, 200);
}

}  // namespace
}  // namespace edgeguard
