// The standard process_* families every Prometheus exporter offers (the names the Go and Python clients use),
// so stock dashboards and alerts for CPU, memory and file descriptors work on edgeguard unchanged. Read from
// /proc and getrusage on the scrape thread.
#pragma once

#include <string>

namespace edgeguard {

// Unix time this process started (from /proc: boot time plus the process's start tick), or the current time
// when /proc cannot be read.
double process_start_time_seconds();

// Appends process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds and process_start_time_seconds. A value /proc does not give is left out.
void append_process_metrics(std::string& out, double start_time_seconds);

}  // namespace edgeguard
