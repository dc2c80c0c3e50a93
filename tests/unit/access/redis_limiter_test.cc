// Shared limits through a real redis-server started on 127.0.0.1 by the test: two limiters (as two edgeguard
// instances would) enforce one combined limit; a stopped or killed Redis means an immediate, counted
// fallback.
#include <arpa/inet.h>
#include <event2/event.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "proxy/access/redis_limiter.h"

namespace edgeguard {
namespace {

using namespace std::chrono_literals;

uint16_t free_loopback_port() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    close(fd);
    return ntohs(a.sin_port);
}

bool port_accepts(uint16_t port) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(fd);
    return ok;
}

class RedisServer {
  public:
    RedisServer() : port_(free_loopback_port()) {
        if (access("/usr/bin/redis-server", X_OK) != 0) return;
        pid_ = fork();
        if (pid_ == 0) {
            const std::string port = std::to_string(port_);
            execl("/usr/bin/redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1",
                  "--save", "", "--appendonly", "no", "--loglevel", "warning", static_cast<char*>(nullptr));
            _exit(127);
        }
        for (int i = 0; i < 200 && !port_accepts(port_); ++i) std::this_thread::sleep_for(25ms);
    }
    ~RedisServer() { kill_now(); }
    bool running() const { return pid_ > 0 && port_accepts(port_); }
    uint16_t port() const { return port_; }
    void stop() { kill(pid_, SIGSTOP); }
    void resume() { kill(pid_, SIGCONT); }
    void kill_now() {
        if (pid_ <= 0) return;
        kill(pid_, SIGCONT);
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }

  private:
    uint16_t port_;
    pid_t pid_ = -1;
};

struct Outcome {
    bool done = false;
    RateLimitDecision decision;
    DecisionSource source = DecisionSource::Redis;
};

void record(void* arg, const RateLimitDecision& d, DecisionSource source) {
    auto* o = static_cast<Outcome*>(arg);
    o->done = true;
    o->decision = d;
    o->source = source;
}

// Runs `base` until `pred` holds or `limit` passes.
template <class Pred>
bool run_until(event_base* base, Pred pred, std::chrono::milliseconds limit = 3000ms) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

class RedisLimiterTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!redis_.running()) GTEST_SKIP() << "redis-server not available";
        config_.redis_address = HostPort{"127.0.0.1", redis_.port()};
        config_.timeout = 50ms;
        limit_.name = "test";
        limit_.rate_per_second = 1.0 / 60;  // nothing refills during the test
        limit_.burst = 10;
        route_.name = "capture";
    }

    Outcome decide(event_base* base, RedisLimiter& limiter, RateLimitTable& local, const IpAddress& client) {
        const std::string key = redis_rate_limit_key(limit_, route_, client, "");
        SharedLimitRequest req;
        req.redis_key = key;
        req.local_key = rate_limit_key(limit_, route_, client, "");
        req.params = GcraParams::from(limit_.rate_per_second, limit_.burst);
        req.fallback = &local;
        req.now = RateLimiter::steady_now();
        Outcome o;
        limiter.decide(req, &record, &o);
        EXPECT_TRUE(run_until(base, [&] { return o.done; }));
        return o;
    }

    RedisServer redis_;
    SharedLimitsConfig config_;
    RateLimitConfig limit_;
    RouteConfig route_;
};

TEST_F(RedisLimiterTest, TwoInstancesEnforceOneCombinedLimit) {
    event_base* base_a = event_base_new();
    event_base* base_b = event_base_new();
    auto counters = std::make_shared<RedisLimiterCounters>();
    {
        RedisLimiter a(base_a, config_, counters);
        RedisLimiter b(base_b, config_, counters);
        a.start();
        b.start();
        ASSERT_TRUE(run_until(base_a, [&] { return a.connected(); }));
        ASSERT_TRUE(run_until(base_b, [&] { return b.connected(); }));
        RateLimitTable local_a(1024), local_b(1024);
        const IpAddress client = *IpAddress::parse("10.1.1.9");
        int allowed = 0;
        for (int i = 0; i < 20; ++i) {
            Outcome o =
                (i % 2 == 0) ? decide(base_a, a, local_a, client) : decide(base_b, b, local_b, client);
            EXPECT_EQ(o.source, DecisionSource::Redis);
            EXPECT_EQ(o.decision.limit, 10u);
            if (o.decision.allowed) ++allowed;
            if (i == 19) {
                EXPECT_FALSE(o.decision.allowed);
                EXPECT_GE(o.decision.retry_after_seconds, 1u);
            }
        }
        EXPECT_EQ(allowed, 10);
        EXPECT_EQ(counters->decisions.load(), 20u);
        EXPECT_EQ(counters->fallbacks(), 0u);
        // Another client has its own budget.
        EXPECT_TRUE(decide(base_a, a, local_a, *IpAddress::parse("10.1.1.10")).decision.allowed);
    }
    event_base_free(base_a);
    event_base_free(base_b);
}

TEST_F(RedisLimiterTest, SlowRedisTimesOutToTheLocalLimiter) {
    event_base* base = event_base_new();
    auto counters = std::make_shared<RedisLimiterCounters>();
    {
        RedisLimiter limiter(base, config_, counters);
        limiter.start();
        ASSERT_TRUE(run_until(base, [&] { return limiter.connected(); }));
        RateLimitTable local(1024);
        redis_.stop();  // Redis accepts nothing and answers nothing
        const auto t0 = std::chrono::steady_clock::now();
        Outcome o = decide(base, limiter, local, *IpAddress::parse("10.1.1.9"));
        EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);  // the 50 ms timeout, generously bounded
        EXPECT_EQ(o.source, DecisionSource::LocalFallback);
        EXPECT_TRUE(o.decision.allowed);
        EXPECT_EQ(counters->fallback_timeout.load(), 1u);
        redis_.resume();
        // The late reply is dropped, not delivered twice.
        run_until(base, [&] { return limiter.in_flight() == 0; });
        EXPECT_EQ(counters->decisions.load(), 0u);
    }
    event_base_free(base);
}

TEST_F(RedisLimiterTest, CancelledCallersAreNotCalledBack) {
    event_base* base = event_base_new();
    auto counters = std::make_shared<RedisLimiterCounters>();
    {
        RedisLimiter limiter(base, config_, counters);
        limiter.start();
        ASSERT_TRUE(run_until(base, [&] { return limiter.connected(); }));
        RateLimitTable local(1024);
        const IpAddress client = *IpAddress::parse("10.1.1.9");
        const std::string key = redis_rate_limit_key(limit_, route_, client, "");
        SharedLimitRequest req;
        req.redis_key = key;
        req.local_key = rate_limit_key(limit_, route_, client, "");
        req.params = GcraParams::from(limit_.rate_per_second, limit_.burst);
        req.fallback = &local;
        req.now = RateLimiter::steady_now();
        Outcome gone;
        limiter.decide(req, &record, &gone);
        limiter.cancel(&gone);
        EXPECT_TRUE(run_until(base, [&] { return limiter.in_flight() == 0; }));
        event_base_loop(base, EVLOOP_NONBLOCK);
        EXPECT_FALSE(gone.done);
        // The slot is reused cleanly by the next caller.
        EXPECT_EQ(decide(base, limiter, local, client).source, DecisionSource::Redis);
    }
    event_base_free(base);
}

TEST_F(RedisLimiterTest, KilledRedisFallsBackAndCounts) {
    event_base* base = event_base_new();
    auto counters = std::make_shared<RedisLimiterCounters>();
    {
        RedisLimiter limiter(base, config_, counters);
        limiter.start();
        ASSERT_TRUE(run_until(base, [&] { return limiter.connected(); }));
        RateLimitTable local(1024);
        EXPECT_EQ(decide(base, limiter, local, *IpAddress::parse("10.1.1.9")).source, DecisionSource::Redis);
        redis_.kill_now();
        // Whether the loss is seen on this request or before it, every answer comes at once from the
        // fallback.
        for (int i = 0; i < 5; ++i) {
            Outcome o = decide(base, limiter, local, *IpAddress::parse("10.1.1.9"));
            EXPECT_EQ(o.source, DecisionSource::LocalFallback);
        }
        EXPECT_EQ(counters->fallbacks(), 5u);
        EXPECT_TRUE(run_until(base, [&] { return !limiter.connected(); }));
    }
    event_base_free(base);
}

TEST_F(RedisLimiterTest, FailClosedRefuses) {
    config_.fail_open = false;
    config_.redis_address.port = free_loopback_port();  // nobody listens there
    event_base* base = event_base_new();
    auto counters = std::make_shared<RedisLimiterCounters>();
    {
        RedisLimiter limiter(base, config_, counters);
        limiter.start();
        RateLimitTable local(1024);
        Outcome o = decide(base, limiter, local, *IpAddress::parse("10.1.1.9"));
        EXPECT_EQ(o.source, DecisionSource::RefusedFallback);
        EXPECT_FALSE(o.decision.allowed);
        EXPECT_EQ(o.decision.retry_after_seconds, 1u);
        EXPECT_EQ(counters->fallback_down.load(), 1u);
    }
    event_base_free(base);
}

TEST(RedisKeys, AgreeAcrossInstancesAndHideHeaderValues) {
    RateLimitConfig limit;
    limit.name = "per_token";
    limit.key = RateLimitConfig::Key::Header;
    limit.header = "X-Token";
    RouteConfig route;
    route.name = "capture";
    const IpAddress client = *IpAddress::parse("2001:db8::5");
    const std::string k = redis_rate_limit_key(limit, route, client, "phc_secret");
    EXPECT_EQ(k.rfind("eg:rl:per_token:hdr:", 0), 0u);
    EXPECT_EQ(k.find("phc_secret"), std::string::npos);
    EXPECT_EQ(k, redis_rate_limit_key(limit, route, client, "phc_secret"));
    EXPECT_EQ(redis_rate_limit_key(limit, route, client, ""), "eg:rl:per_token:ip:2001:db8::5");
    limit.key = RateLimitConfig::Key::Route;
    EXPECT_EQ(redis_rate_limit_key(limit, route, client, ""), "eg:rl:per_token:route:capture");
}

}  // namespace
}  // namespace edgeguard
