// JSON-lines access log written off the hot path. Each worker formats its line into its own scratch buffer
// and pushes the bytes into its own single-producer/single-consumer ring; one writer thread drains every ring
// with a single writev() per wake-up. A full ring drops the line and counts it: logging never blocks a
// worker. Headers are never logged (so Authorization and cookies cannot leak), the query string is dropped by
// default, and every string is JSON-escaped with invalid UTF-8 replaced by U+FFFD, so each entry is one valid
// JSON line.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "proxy/access/cidr.h"
#include "proxy/config/config.h"

namespace edgeguard {

class Metrics;

// One finished exchange. Views only need to live for the duration of AccessLog::log().
struct AccessLogEntry {
    int64_t start_unix_micros = 0;  // when the request head arrived (wall clock)
    IpAddress client;               // the resolved client address (after trusted-proxy resolution)
    ClientIpPolicy client_ip_policy = ClientIpPolicy::Forward;  // the route's policy, applied to the log too
    std::string_view method;
    std::string_view protocol = "HTTP/1.1";  // the client's: "HTTP/1.1" or "HTTP/2"
    std::string_view host;
    std::string_view target;  // request target as received; the query is cut unless include_query
    int status = 0;
    uint64_t bytes_in = 0;         // request bytes read from the client (head + body)
    uint64_t bytes_out = 0;        // response bytes written to the client
    uint64_t duration_micros = 0;  // head received -> response complete
    std::string_view upstream;     // upstream name; empty when edgeguard answered itself
    std::string_view upstream_server;  // "host:port" of the server the request went to; empty = none
    int64_t upstream_micros = -1;  // request sent -> response head received; -1 when no upstream answered
    std::string_view route;        // route name; empty when none matched
    std::string_view
        verdict;  // privacy verdict ("unchanged", "rewritten", "rejected", "report"); empty = none
    std::span<const std::string> rule_ids;  // rules that acted (or would have, in report mode)
    std::string_view error;      // edgeguard's machine code for a refusal ("rate_limited", ...); empty = none
    bool include_query = false;  // the snapshot's access_log.include_query
};

// Appends `s` as a JSON string literal (quotes included). Invalid UTF-8 bytes become \ufffd.
void append_json_string(std::string& out, std::string_view s);
// Appends one complete line (with the trailing '\n') for `e`.
void append_access_log_line(std::string& out, const AccessLogEntry& e);
// The client address as the policy allows it to be logged: Forward = full, Truncate = /24 (IPv4) or /48
// (IPv6), Drop = empty. Writes into `buf` (at least 46 bytes) and returns a view of it.
std::string_view loggable_client_ip(const IpAddress& ip, ClientIpPolicy policy, char* buf, size_t buf_size);

// A fixed-capacity byte ring with exactly one producer thread and one consumer thread.
class SpscByteRing {
  public:
    explicit SpscByteRing(size_t capacity);  // rounded up to a power of two
    // Producer: all of `bytes` or nothing.
    bool try_push(std::string_view bytes);
    // Consumer: the readable bytes as up to two regions; returns their total length.
    size_t peek(iovec regions[2]) const;
    void consume(size_t n);
    size_t capacity() const { return mask_ + 1; }

  private:
    size_t mask_;
    std::unique_ptr<char[]> buf_;
    alignas(64) std::atomic<uint64_t> head_{0};  // bytes ever pushed (producer writes)
    alignas(64) std::atomic<uint64_t> tail_{0};  // bytes ever consumed (consumer writes)
};

class AccessLog {
  public:
    struct Options {
        size_t producers = 1;         // one per worker thread
        size_t ring_bytes = 1 << 20;  // per producer
        std::chrono::milliseconds flush_interval{50};
    };

    // `output` is "stdout", "off" or a file path (opened O_APPEND|O_CREAT, mode 0640). Returns null and sets
    // `error` when the file cannot be opened.
    static std::unique_ptr<AccessLog> open(const std::string& output, const Options& options,
                                           std::string& error);
    static std::unique_ptr<AccessLog> open(const AccessLogConfig& config, const Options& options,
                                           std::string& error);
    ~AccessLog();  // writes everything still queued, then stops the writer thread
    AccessLog(const AccessLog&) = delete;
    AccessLog& operator=(const AccessLog&) = delete;

    // Whether lines are written anywhere now: a caller may skip building an entry that log() would drop.
    bool enabled() const { return enabled_.load(std::memory_order_relaxed); }
    // Hot path. Only the thread that owns `producer` may call this with that index. Never blocks.
    void log(size_t producer, const AccessLogEntry& entry);
    // Same for a line another subsystem formatted (TCP listeners): `line` is one JSON object and its '\n'.
    void log_line(size_t producer, std::string_view line);

    // Switches output (config reload, or SIGHUP log rotation with the same path). Off the hot path.
    bool reopen(const std::string& output, std::string& error);
    // Blocks until every line logged before the call has been handed to the kernel (tests, shutdown).
    void flush();

    uint64_t dropped() const;       // lines dropped because a ring was full
    uint64_t write_errors() const;  // write() failures (the bytes are discarded, never retried forever)
    // Registers dropped() and write_errors() as counters on `metrics`' scrape. This log must outlive every
    // scrape (the server stops its admin listener first).
    void export_metrics(Metrics& metrics) const;

  private:
    struct alignas(64) Producer {
        explicit Producer(size_t ring_bytes) : ring(ring_bytes) { scratch.reserve(4096); }
        SpscByteRing ring;
        std::string scratch;
        std::atomic<uint64_t> dropped{0};
    };

    AccessLog(int fd, bool owns_fd, const Options& options);
    void run();
    void drain_locked();  // drain_mutex_ held

    std::vector<std::unique_ptr<Producer>> producers_;
    std::atomic<bool> enabled_;
    std::chrono::milliseconds flush_interval_;

    std::mutex drain_mutex_;             // one consumer at a time; guards fd_ and the drain scratch below
    std::vector<iovec> drain_iov_;       // two regions per producer
    std::vector<size_t> drain_lengths_;  // bytes taken from each producer's ring
    int fd_;
    bool owns_fd_;
    std::atomic<uint64_t> write_errors_{0};

    std::mutex wake_mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::thread writer_;
};

}  // namespace edgeguard
