// The state the certificate watcher compares: it moves when a watched file is replaced, rewritten or removed,
// ignores listeners that do not watch, and the thread calls back once per change.
#include "proxy/tls/certificate_watcher.h"

#include <gtest/gtest.h>
#include <stdio.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

namespace edgeguard {
namespace {

class WatchedFiles : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/edgeguard-watch-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        write("cert.pem", "cert one");
        write("key.pem", "key one");
        ListenerConfig l;
        l.name = "https";
        l.tls.emplace();
        l.tls->certificates.push_back({dir_ + "/cert.pem", dir_ + "/key.pem"});
        l.tls->watch_interval = Millis(20);
        config_.listeners.push_back(l);
    }
    void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
    void write(const std::string& name, const std::string& content) {
        const std::string tmp = dir_ + "/" + name + ".tmp";
        std::ofstream(tmp) << content;
        ASSERT_EQ(::rename(tmp.c_str(), (dir_ + "/" + name).c_str()), 0);
    }
    std::string dir_;
    Config config_;
};

TEST_F(WatchedFiles, StateMovesWhenAFileIsReplacedOrRemoved) {
    const std::string before = watched_certificate_files_state(config_);
    EXPECT_EQ(before, watched_certificate_files_state(config_));
    write("key.pem", "key two");
    const std::string replaced = watched_certificate_files_state(config_);
    EXPECT_NE(replaced, before);
    ASSERT_EQ(::unlink((dir_ + "/cert.pem").c_str()), 0);
    EXPECT_NE(watched_certificate_files_state(config_), replaced);
}

TEST_F(WatchedFiles, UnwatchedListenersAreIgnored) {
    config_.listeners[0].tls->watch_interval = Millis(0);
    EXPECT_EQ(watched_certificate_files_state(config_), "");
    EXPECT_EQ(certificate_watch_interval(config_).count(), 0);
    ListenerConfig plain;
    plain.name = "http";
    config_.listeners.push_back(plain);
    EXPECT_EQ(certificate_watch_interval(config_).count(), 0);
}

TEST_F(WatchedFiles, IntervalIsTheShortestWatchingListener) {
    ListenerConfig other = config_.listeners[0];
    other.name = "other";
    other.tls->watch_interval = Millis(5);
    config_.listeners.push_back(other);
    EXPECT_EQ(certificate_watch_interval(config_).count(), 5);
}

TEST_F(WatchedFiles, ThreadCallsBackOncePerChange) {
    auto config = std::make_shared<const Config>(config_);
    std::atomic<int> calls{0};
    {
        CertificateWatcher watcher([&] { return config; }, [&] { calls.fetch_add(1); });
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        EXPECT_EQ(calls.load(), 0);
        write("cert.pem", "cert two");
        for (int i = 0; i < 500 && calls.load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        EXPECT_EQ(calls.load(), 1);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        EXPECT_EQ(calls.load(), 1);
    }
}

}  // namespace
}  // namespace edgeguard
