#include "proxy/ops/process_log.h"

#include <gtest/gtest.h>

#include <string>

namespace edgeguard {
namespace {

TEST(ProcessLog, OneJsonLineWithUtcTimeLevelAndMessage) {
    std::string line;
    // 2026-01-02T03:04:05.678901Z
    append_process_log_line(line, LogLevel::Warning, 1767323045678901, "edgeguard: ready (2 workers)");
    EXPECT_EQ(line,
              "{\"time\":\"2026-01-02T03:04:05.678Z\",\"level\":\"warning\",\"msg\":\"edgeguard: ready (2 workers)\"}\n");
}

TEST(ProcessLog, MessagesAreEscapedSoTheLineStaysOneJsonObject) {
    std::string line;
    append_process_log_line(line, LogLevel::Error, 0, "reason=\"bad\"\nnext\\line");
    EXPECT_EQ(line, "{\"time\":\"1970-01-01T00:00:00.000Z\",\"level\":\"error\",\"msg\":\"reason=\\\"bad\\\"\\nnext\\\\line\"}\n");
    EXPECT_EQ(line.find('\n'), line.size() - 1);
}

}  // namespace
}  // namespace edgeguard
