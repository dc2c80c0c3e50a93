#include "proxy/ops/access_log.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "proxy/ops/metrics.h"

namespace edgeguard {

namespace {

constexpr char kHex[] = "0123456789abcdef";

// Length of the valid UTF-8 sequence at s[i], or 0 when the bytes there are not one (overlong forms,
// surrogates and code points above U+10FFFF included).
size_t utf8_sequence_length(std::string_view s, size_t i) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    auto cont = [&](size_t k) {
        return i + k < s.size() && (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    };
    if (b0 < 0x80) return 1;
    if (b0 >= 0xC2 && b0 <= 0xDF) return cont(1) ? 2 : 0;
    if (b0 >= 0xE0 && b0 <= 0xEF) {
        if (!cont(1) || !cont(2)) return 0;
        const auto b1 = static_cast<unsigned char>(s[i + 1]);
        if (b0 == 0xE0 && b1 < 0xA0) return 0;  // overlong
        if (b0 == 0xED && b1 > 0x9F) return 0;  // UTF-16 surrogate
        return 3;
    }
    if (b0 >= 0xF0 && b0 <= 0xF4) {
        if (!cont(1) || !cont(2) || !cont(3)) return 0;
        const auto b1 = static_cast<unsigned char>(s[i + 1]);
        if (b0 == 0xF0 && b1 < 0x90) return 0;  // overlong
        if (b0 == 0xF4 && b1 > 0x8F) return 0;  // above U+10FFFF
        return 4;
    }
    return 0;
}

void append_uint(std::string& out, uint64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

// "<units>.<fraction>" from an integer count of 1/10^digits units, without floating point.
void append_fixed(std::string& out, uint64_t value, uint64_t scale, int digits) {
    append_uint(out, value / scale);
    out += '.';
    char frac[8];
    uint64_t f = value % scale;
    for (int i = digits - 1; i >= 0; --i) {
        frac[i] = static_cast<char>('0' + f % 10);
        f /= 10;
    }
    out.append(frac, static_cast<size_t>(digits));
}

// Query parameters whose values are personal data or credentials (PostHog's `data=` payload, tokens).
bool is_sensitive_query_key(std::string_view key) {
    static constexpr std::string_view kSensitive[] = {
        "data",        "token",    "api_key",   "apikey",        "access_token", "key",
        "secret",      "password", "auth",      "authorization", "email",        "ip",
        "distinct_id", "code",     "signature", "sig",           "session",      "jwt"};
    for (auto k : kSensitive) {
        if (k.size() != key.size()) continue;
        bool same = true;
        for (size_t i = 0; i < k.size() && same; ++i)
            same = (key[i] | 0x20) == k[i] || key[i] == k[i];  // ASCII case-insensitive ('_' unaffected)
        if (same) return true;
    }
    return false;
}

// The query with the values of sensitive parameters replaced, as the text to escape.
void append_redacted_query(std::string& scratch, std::string_view query) {
    size_t start = 0;
    while (start <= query.size()) {
        size_t amp = query.find('&', start);
        if (amp == std::string_view::npos) amp = query.size();
        std::string_view pair = query.substr(start, amp - start);
        size_t eq = pair.find('=');
        std::string_view key = pair.substr(0, eq);
        if (start > 0) scratch += '&';
        if (eq != std::string_view::npos && is_sensitive_query_key(key)) {
            scratch += key;
            scratch += "=REDACTED";
        } else {
            scratch += pair;
        }
        start = amp + 1;
    }
}

void write_all(int fd, iovec* iov, int iovcnt, std::atomic<uint64_t>& errors) {
    while (iovcnt > 0) {
        ssize_t n = ::writev(fd, iov, iovcnt);
        if (n < 0) {
            if (errno == EINTR) continue;
            errors.fetch_add(1, std::memory_order_relaxed);  // discard: a dead log must not wedge the rings
            return;
        }
        auto left = static_cast<size_t>(n);
        while (iovcnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            ++iov;
            --iovcnt;
        }
        if (iovcnt > 0) {
            iov->iov_base = static_cast<char*>(iov->iov_base) + left;
            iov->iov_len -= left;
        }
    }
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
    out += '"';
    size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
            out += static_cast<char>(c);
            ++i;
            continue;
        }
        switch (c) {
            case '"':
                out += "\\\"";
                ++i;
                continue;
            case '\\':
                out += "\\\\";
                ++i;
                continue;
            case '\n':
                out += "\\n";
                ++i;
                continue;
            case '\r':
                out += "\\r";
                ++i;
                continue;
            case '\t':
                out += "\\t";
                ++i;
                continue;
            default:
                break;
        }
        if (c < 0x20 || c == 0x7F) {  // other controls (and DEL, which terminals act on)
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 0xF];
            ++i;
            continue;
        }
        const size_t len = utf8_sequence_length(s, i);
        if (len == 0) {
            out += "\\ufffd";
            ++i;
        } else {
            out.append(s.data() + i, len);
            i += len;
        }
    }
    out += '"';
}

std::string_view loggable_client_ip(const IpAddress& ip, ClientIpPolicy policy, char* buf, size_t buf_size) {
    if (policy == ClientIpPolicy::Drop) return {};
    auto bytes = ip.bytes;
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const bool v4 = std::memcmp(bytes.data(), kMapped, sizeof kMapped) == 0;
    if (policy == ClientIpPolicy::Truncate) {
        if (v4)
            bytes[15] = 0;  // /24
        else
            std::memset(bytes.data() + 6, 0, 10);  // /48
    }
    const char* ok = v4 ? inet_ntop(AF_INET, bytes.data() + 12, buf, static_cast<socklen_t>(buf_size))
                        : inet_ntop(AF_INET6, bytes.data(), buf, static_cast<socklen_t>(buf_size));
    return ok ? std::string_view(buf) : std::string_view();
}

void append_access_log_line(std::string& out, const AccessLogEntry& e) {
    out += "{\"ts\":";
    append_fixed(out, static_cast<uint64_t>(e.start_unix_micros < 0 ? 0 : e.start_unix_micros), 1'000'000, 6);

    char ipbuf[INET6_ADDRSTRLEN + 1];
    std::string_view ip = loggable_client_ip(e.client, e.client_ip_policy, ipbuf, sizeof ipbuf);
    out += ",\"client_ip\":";
    if (ip.empty())
        out += "null";
    else
        append_json_string(out, ip);

    out += ",\"method\":";
    append_json_string(out, e.method);
    out += ",\"proto\":";
    append_json_string(out, e.protocol);
    out += ",\"host\":";
    append_json_string(out, e.host);

    // Fragments never reach a server legitimately; cut them with the query.
    const size_t query_at = e.target.find_first_of("?#");
    out += ",\"path\":";
    append_json_string(out, e.target.substr(0, query_at));
    if (e.include_query && query_at != std::string_view::npos && e.target[query_at] == '?') {
        std::string_view query = e.target.substr(query_at + 1);
        query = query.substr(0, query.find('#'));
        std::string redacted;  // opt-in diagnostics only; the default path allocates nothing here
        redacted.reserve(query.size());
        append_redacted_query(redacted, query);
        out += ",\"query\":";
        append_json_string(out, redacted);
    }

    out += ",\"status\":";
    append_uint(out, static_cast<uint64_t>(e.status < 0 ? 0 : e.status));
    out += ",\"bytes_in\":";
    append_uint(out, e.bytes_in);
    out += ",\"bytes_out\":";
    append_uint(out, e.bytes_out);
    out += ",\"duration_ms\":";
    append_fixed(out, e.duration_micros, 1000, 3);

    out += ",\"upstream\":";
    if (e.upstream.empty())
        out += "null";
    else
        append_json_string(out, e.upstream);
    out += ",\"upstream_server\":";
    if (e.upstream_server.empty())
        out += "null";
    else
        append_json_string(out, e.upstream_server);
    out += ",\"upstream_ms\":";
    if (e.upstream_micros < 0)
        out += "null";
    else
        append_fixed(out, static_cast<uint64_t>(e.upstream_micros), 1000, 3);

    out += ",\"route\":";
    if (e.route.empty())
        out += "null";
    else
        append_json_string(out, e.route);
    out += ",\"verdict\":";
    if (e.verdict.empty())
        out += "null";
    else
        append_json_string(out, e.verdict);
    out += ",\"rule_ids\":[";
    for (size_t i = 0; i < e.rule_ids.size(); ++i) {
        if (i) out += ',';
        append_json_string(out, e.rule_ids[i]);
    }
    out += "]";
    if (!e.error.empty()) {
        out += ",\"error\":";
        append_json_string(out, e.error);
    }
    out += "}\n";
}

// -----------------------------------------------------------------------------------------------------------------
// SpscByteRing

SpscByteRing::SpscByteRing(size_t capacity) {
    size_t cap = 1;
    while (cap < capacity) cap <<= 1;
    mask_ = cap - 1;
    buf_.reset(new char[cap]);
}

bool SpscByteRing::try_push(std::string_view bytes) {
    const uint64_t head = head_.load(std::memory_order_relaxed);
    const uint64_t tail = tail_.load(std::memory_order_acquire);
    if (bytes.size() > capacity() - (head - tail)) return false;
    const size_t at = head & mask_;
    const size_t first = std::min(bytes.size(), capacity() - at);
    std::memcpy(buf_.get() + at, bytes.data(), first);
    std::memcpy(buf_.get(), bytes.data() + first, bytes.size() - first);
    head_.store(head + bytes.size(), std::memory_order_release);
    return true;
}

size_t SpscByteRing::peek(iovec regions[2]) const {
    const uint64_t head = head_.load(std::memory_order_acquire);
    const uint64_t tail = tail_.load(std::memory_order_relaxed);
    const size_t len = head - tail;
    const size_t at = tail & mask_;
    const size_t first = std::min(len, capacity() - at);
    regions[0] = {buf_.get() + at, first};
    regions[1] = {buf_.get(), len - first};
    return len;
}

void SpscByteRing::consume(size_t n) {
    tail_.store(tail_.load(std::memory_order_relaxed) + n, std::memory_order_release);
}

// -----------------------------------------------------------------------------------------------------------------
// AccessLog

namespace {

// Returns the fd for `output` (-1 for "off"); sets `owns` when we opened it.
bool open_output(const std::string& output, int& fd, bool& owns, std::string& error) {
    if (output == "off" || output.empty()) {
        fd = -1;
        owns = false;
        return true;
    }
    if (output == "stdout") {
        fd = STDOUT_FILENO;
        owns = false;
        return true;
    }
    if (output == "stderr") {
        fd = STDERR_FILENO;
        owns = false;
        return true;
    }
    fd = ::open(output.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        error = "access log: cannot open " + output + ": " + std::strerror(errno);
        return false;
    }
    owns = true;
    return true;
}

}  // namespace

std::unique_ptr<AccessLog> AccessLog::open(const std::string& output, const Options& options,
                                           std::string& error) {
    int fd;
    bool owns;
    if (!open_output(output, fd, owns, error)) return nullptr;
    return std::unique_ptr<AccessLog>(new AccessLog(fd, owns, options));
}

std::unique_ptr<AccessLog> AccessLog::open(const AccessLogConfig& config, const Options& options,
                                           std::string& error) {
    return open(config.enabled ? config.output : std::string("off"), options, error);
}

AccessLog::AccessLog(int fd, bool owns_fd, const Options& options)
    : enabled_(fd >= 0), flush_interval_(options.flush_interval), fd_(fd), owns_fd_(owns_fd) {
    const size_t n = options.producers ? options.producers : 1;
    for (size_t i = 0; i < n; ++i) producers_.push_back(std::make_unique<Producer>(options.ring_bytes));
    drain_iov_.resize(n * 2);
    drain_lengths_.resize(n);
    writer_ = std::thread([this] { run(); });
}

AccessLog::~AccessLog() {
    {
        std::lock_guard lock(wake_mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    writer_.join();
    std::lock_guard lock(drain_mutex_);
    drain_locked();
    if (owns_fd_ && fd_ >= 0) ::close(fd_);
}

void AccessLog::log(size_t producer, const AccessLogEntry& entry) {
    if (!enabled_.load(std::memory_order_relaxed) || producer >= producers_.size()) return;
    Producer& p = *producers_[producer];
    p.scratch.clear();
    append_access_log_line(p.scratch, entry);
    if (!p.ring.try_push(p.scratch)) p.dropped.fetch_add(1, std::memory_order_relaxed);
}

void AccessLog::log_line(size_t producer, std::string_view line) {
    if (!enabled_.load(std::memory_order_relaxed) || producer >= producers_.size()) return;
    Producer& p = *producers_[producer];
    if (!p.ring.try_push(line)) p.dropped.fetch_add(1, std::memory_order_relaxed);
}

void AccessLog::run() {
    std::unique_lock wake_lock(wake_mutex_);
    while (!stopping_) {
        // With the output off nothing is queued: sleep until reopen() or shutdown instead of waking the
        // process every flush interval for nothing.
        if (enabled_.load(std::memory_order_relaxed)) {
            wake_.wait_for(wake_lock, flush_interval_);
        } else {
            wake_.wait(wake_lock);
        }
        wake_lock.unlock();
        {
            std::lock_guard lock(drain_mutex_);
            drain_locked();
        }
        wake_lock.lock();
    }
}

void AccessLog::drain_locked() {
    // One writev for every ring's pending bytes. Each ring holds whole lines only (the producer publishes a
    // line at once) and write_all finishes a batch before the next, so lines never interleave.
    int count = 0;
    for (size_t i = 0; i < producers_.size(); ++i) {
        iovec regions[2];
        drain_lengths_[i] = producers_[i]->ring.peek(regions);
        for (const auto& r : regions)
            if (r.iov_len) drain_iov_[static_cast<size_t>(count++)] = r;
    }
    if (count == 0) return;
    if (fd_ >= 0) write_all(fd_, drain_iov_.data(), count, write_errors_);
    for (size_t i = 0; i < producers_.size(); ++i) producers_[i]->ring.consume(drain_lengths_[i]);
}

void AccessLog::flush() {
    std::lock_guard lock(drain_mutex_);
    drain_locked();
}

bool AccessLog::reopen(const std::string& output, std::string& error) {
    int fd;
    bool owns;
    if (!open_output(output, fd, owns, error)) return false;
    std::lock_guard lock(drain_mutex_);
    drain_locked();  // what was logged under the old output goes there
    if (owns_fd_ && fd_ >= 0) ::close(fd_);
    fd_ = fd;
    owns_fd_ = owns;
    enabled_.store(fd >= 0, std::memory_order_relaxed);
    {
        std::lock_guard wake_lock(wake_mutex_);  // a writer asleep while the log was off resumes its interval
    }
    wake_.notify_one();
    return true;
}

uint64_t AccessLog::dropped() const {
    uint64_t n = 0;
    for (const auto& p : producers_) n += p->dropped.load(std::memory_order_relaxed);
    return n;
}

uint64_t AccessLog::write_errors() const {
    return write_errors_.load(std::memory_order_relaxed);
}

void AccessLog::export_metrics(Metrics& metrics) const {
    metrics.add_external(
        "edgeguard_access_log_dropped_lines_total",
        "Access-log lines dropped because a worker's queue was full (the output was too slow).", "counter",
        [this] { return static_cast<double>(dropped()); });
    metrics.add_external("edgeguard_access_log_write_errors_total",
                         "Failed writes of access-log lines to their output (the lines are lost).", "counter",
                         [this] { return static_cast<double>(write_errors()); });
}

}  // namespace edgeguard
