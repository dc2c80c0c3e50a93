#include "proxy/ops/process_log.h"

#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>

#include "proxy/ops/access_log.h"

namespace edgeguard {

namespace {

std::string_view level_name(LogLevel level) {
    switch (level) {
        case LogLevel::Info: return "info";
        case LogLevel::Warning: return "warning";
        case LogLevel::Error: return "error";
    }
    return "info";
}

}  // namespace

void append_process_log_line(std::string& out, LogLevel level, int64_t unix_micros, std::string_view message) {
    const time_t seconds = static_cast<time_t>(unix_micros / 1'000'000);
    tm utc{};
    gmtime_r(&seconds, &utc);
    char stamp[40];
    const size_t n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
    char millis[8];
    std::snprintf(millis, sizeof millis, ".%03dZ", static_cast<int>((unix_micros / 1000) % 1000));
    out += "{\"time\":\"";
    out.append(stamp, n);
    out += millis;
    out += "\",\"level\":\"";
    out += level_name(level);
    out += "\",\"msg\":";
    append_json_string(out, message);
    out += "}\n";
}

void log_process(LogLevel level, const char* format, ...) {
    char message[2048];
    va_list args;
    va_start(args, format);
    int n = std::vsnprintf(message, sizeof message, format, args);
    va_end(args);
    if (n < 0) return;
    const size_t length = static_cast<size_t>(n) < sizeof message ? static_cast<size_t>(n) : sizeof message - 1;
    timeval now;
    gettimeofday(&now, nullptr);
    std::string line;
    line.reserve(length + 96);
    append_process_log_line(line, level, static_cast<int64_t>(now.tv_sec) * 1'000'000 + now.tv_usec,
                            std::string_view(message, length));
    // One write per line: concurrent threads never interleave within a line. A short write to a full pipe
    // is finished rather than dropped.
    const char* p = line.data();
    size_t left = line.size();
    while (left > 0) {
        const ssize_t w = ::write(STDERR_FILENO, p, left);
        if (w <= 0) return;
        p += w;
        left -= static_cast<size_t>(w);
    }
}

}  // namespace edgeguard
