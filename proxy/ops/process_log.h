// Messages about the process itself (start, reload, drain, warnings, refusals) as JSON lines on stderr:
// {"time":"2026-01-02T03:04:05.678Z","level":"info","msg":"edgeguard: ready (2 workers)"}. The access log on
// stdout is JSON too, so `docker logs`, which mixes both streams, stays one line of JSON per entry. Each line
// goes out in a single write(), so lines from different threads never interleave.
#pragma once

#include <cstdarg>
#include <cstdint>
#include <string>
#include <string_view>

namespace edgeguard {

enum class LogLevel { Info, Warning, Error };

// printf-style; `format` has no trailing newline.
void log_process(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));

// The JSON line for one message (exposed for tests).
void append_process_log_line(std::string& out, LogLevel level, int64_t unix_micros, std::string_view message);

}  // namespace edgeguard
