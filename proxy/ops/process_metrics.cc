#include "proxy/ops/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

#include "proxy/ops/metrics.h"

namespace edgeguard {

namespace {

void append_gauge(std::string& out, std::string_view name, std::string_view help, std::string_view type,
                  double value) {
    append_metric_family(out, name, help, type);
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::fixed);
    out += name;
    out += ' ';
    out.append(buf, r.ptr);
    out += '\n';
}

// Fields of /proc/self/stat after the command name (which may hold spaces and parentheses): field 3 first.
bool read_stat_fields(std::string& rest) {
    std::ifstream in("/proc/self/stat");
    std::string line;
    if (!std::getline(in, line)) return false;
    const size_t close = line.rfind(')');
    if (close == std::string::npos || close + 2 > line.size()) return false;
    rest = line.substr(close + 2);
    return true;
}

int count_open_fds() {
    DIR* dir = opendir("/proc/self/fd");
    if (dir == nullptr) return -1;
    int n = 0;
    while (dirent* e = readdir(dir)) {
        if (e->d_name[0] != '.') ++n;
    }
    closedir(dir);
    return n - 1;  // the directory stream's own descriptor
}

}  // namespace

double process_start_time_seconds() {
    const double now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    std::string rest;
    if (!read_stat_fields(rest)) return now;
    std::istringstream fields(rest);
    std::string field;
    unsigned long long start_ticks = 0;
    for (int i = 3; i <= 22 && fields >> field; ++i) {
        if (i == 22) start_ticks = std::strtoull(field.c_str(), nullptr, 10);
    }
    std::ifstream stat("/proc/stat");
    std::string key;
    unsigned long long boot_time = 0;
    while (stat >> key) {
        if (key == "btime") {
            stat >> boot_time;
            break;
        }
        stat.ignore(1 << 16, '\n');
    }
    const long ticks_per_second = sysconf(_SC_CLK_TCK);
    if (boot_time == 0 || start_ticks == 0 || ticks_per_second <= 0) return now;
    return static_cast<double>(boot_time) + static_cast<double>(start_ticks) / static_cast<double>(ticks_per_second);
}

void append_process_metrics(std::string& out, double start_time_seconds) {
    rusage usage{};
    if (getrusage(RUSAGE_SELF, &usage) == 0) {
        const double cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                           static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
        append_gauge(out, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                     "counter", cpu);
    }
    std::ifstream statm("/proc/self/statm");
    unsigned long long size_pages = 0, resident_pages = 0;
    if (statm >> size_pages >> resident_pages) {
        const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
        append_gauge(out, "process_resident_memory_bytes", "Resident memory size in bytes.", "gauge",
                     static_cast<double>(resident_pages) * page);
        append_gauge(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge",
                     static_cast<double>(size_pages) * page);
    }
    const int open_fds = count_open_fds();
    if (open_fds >= 0)
        append_gauge(out, "process_open_fds", "Number of open file descriptors.", "gauge", open_fds);
    rlimit fd_limit{};
    if (getrlimit(RLIMIT_NOFILE, &fd_limit) == 0)
        append_gauge(out, "process_max_fds", "Maximum number of open file descriptors.", "gauge",
                     static_cast<double>(fd_limit.rlim_cur));
    append_gauge(out, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                 "gauge", start_time_seconds);
}

}  // namespace edgeguard
