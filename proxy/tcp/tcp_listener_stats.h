// Process-wide state of each TCP listener, by name: its counters and its open-connection counts (the
// max_connections limits). Shared by every worker with relaxed atomics, kept across reloads (a listener that
// a reload keeps goes on counting), never removed, so a pointer handed out stays valid for the process.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "proxy/access/connection_limits.h"
#include "proxy/tcp/tcp_config.h"

namespace edgeguard {

// Why an accepted TCP connection was closed before any byte was relayed.
enum class TcpRefusal : uint8_t { Allowlist, ConnectionLimit, PerIpLimit, Unconfigured };
inline constexpr size_t kTcpRefusalCount = 4;
std::string_view tcp_refusal_name(TcpRefusal r);

// Connection durations span milliseconds (a health probe) to days (a gRPC stream): wider buckets than HTTP's.
inline constexpr std::array<double, 10> kTcpDurationBucketsSeconds{0.01, 0.1,  1,    10,    60,
                                                                   300,  1800, 3600, 21600, 86400};

struct TcpListenerStats {
    std::atomic<int64_t> open{0};
    std::atomic<uint64_t> accepted{0};
    std::array<std::atomic<uint64_t>, kTcpRefusalCount> refused{};
    std::atomic<uint64_t> bytes_from_client{0};
    std::atomic<uint64_t> bytes_to_client{0};
    std::atomic<uint64_t> connect_errors{0};
    std::array<std::atomic<uint64_t>, kTcpDurationBucketsSeconds.size() + 1>
        duration_buckets{};  // last = +Inf
    std::atomic<uint64_t> duration_sum_micros{0};
    // Workers whose socket for this listener is bound now; /readyz wants every worker's.
    std::atomic<uint32_t> bound_workers{0};
    ConnectionLimits limits;  // total and per client IP on this listener

    void refuse(TcpRefusal r) { refused[static_cast<size_t>(r)].fetch_add(1, std::memory_order_relaxed); }
    void observe_duration(uint64_t micros);
};

class TcpListenerRegistry {
  public:
    // The stats of listener `name`, created on first use. Takes a lock: call when a snapshot is applied, not
    // per connection.
    TcpListenerStats& get(const std::string& name);
    // Prometheus families for every listener ever configured (scrape thread).
    void render(std::string& out) const;
    // Stats of `name`, or null when it was never configured (readiness, tests).
    const TcpListenerStats* find(const std::string& name) const;
    // For /readyz: empty when every listener of `config` (may be null) is bound on all `workers`, else
    // which one is not.
    std::string unready_reason(const TcpConfig* config, size_t workers) const;

  private:
    mutable std::mutex mutex_;
    std::map<std::string, std::unique_ptr<TcpListenerStats>, std::less<>> by_name_;
};

}  // namespace edgeguard
