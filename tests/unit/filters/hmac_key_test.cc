// The hash key file auto-created beside the rules: concurrent first starts must agree on one complete key.
#include "filters/hmac_key.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace edgeguard::privacy {
namespace {

std::filesystem::path fresh_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "eg-hmac-XXXXXX").string();
    return mkdtemp(tmpl.data());
}

TEST(HmacKey, CreatesA0600KeyFileWhenMissing) {
    const auto dir = fresh_dir();
    const auto file = (dir / "secrets" / "hash.key").string();
    std::string error;
    auto key = HmacKey::load("h1", "", file, true, &error);
    ASSERT_NE(key, nullptr) << error;
    EXPECT_EQ(std::filesystem::status(file).permissions() & std::filesystem::perms::all,
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    auto again = HmacKey::load("h1", "", file, false, &error);
    ASSERT_NE(again, nullptr) << error;
    EXPECT_EQ(key->token("a@example.com"), again->token("a@example.com"));
    std::filesystem::remove_all(dir);
}

// Separate processes (as ctest -j starts them) racing to create the key: every one must load a key, and the
// same one; a reader must never see the file between its creation and its contents.
TEST(HmacKey, RacingProcessesAllLoadTheSameCompleteKey) {
    for (int round = 0; round < 20; ++round) {
        const auto dir = fresh_dir();
        const auto file = (dir / "hash.key").string();
        const auto out = dir / "tokens";
        std::vector<pid_t> children;
        for (int i = 0; i < 8; ++i) {
            const pid_t pid = fork();
            ASSERT_GE(pid, 0);
            if (pid == 0) {
                std::string error;
                auto key = HmacKey::load("h1", "", file, true, &error);
                if (key == nullptr) _exit(2);
                std::ofstream(out.string() + std::to_string(i)) << key->token("x");
                _exit(0);
            }
            children.push_back(pid);
        }
        for (pid_t pid : children) {
            int status = 0;
            ASSERT_EQ(waitpid(pid, &status, 0), pid);
            ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "round " << round;
        }
        std::string first;
        for (int i = 0; i < 8; ++i) {
            std::ifstream in(out.string() + std::to_string(i));
            std::string token;
            in >> token;
            if (i == 0) first = token;
            EXPECT_EQ(token, first) << "round " << round << " child " << i;
        }
        for (const auto& entry : std::filesystem::directory_iterator(dir))
            EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << entry.path();
        std::filesystem::remove_all(dir);
    }
}

}  // namespace
}  // namespace edgeguard::privacy
