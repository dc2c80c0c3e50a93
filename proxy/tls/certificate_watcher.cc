#include "proxy/tls/certificate_watcher.h"

#include <sys/stat.h>

#include <algorithm>

namespace edgeguard {
namespace {

// With no watched listener the thread still looks again now and then: a reload may add one.
constexpr Millis kIdleRecheck{1'000};

void append_file_state(std::string& out, const std::string& path) {
    if (path.empty()) return;
    out.append(path);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        out.append(" missing\n");
        return;
    }
    out.append(" ")
        .append(std::to_string(st.st_dev))
        .append(":")
        .append(std::to_string(st.st_ino))
        .append(" ")
        .append(std::to_string(st.st_size))
        .append(" ")
        .append(std::to_string(st.st_mtim.tv_sec))
        .append(".")
        .append(std::to_string(st.st_mtim.tv_nsec))
        .append(" ")
        .append(std::to_string(st.st_ctim.tv_sec))
        .append(".")
        .append(std::to_string(st.st_ctim.tv_nsec))
        .append("\n");
}

}  // namespace

std::string watched_certificate_files_state(const Config& config) {
    std::string state;
    for (const ListenerConfig& l : config.listeners) {
        if (!l.tls || l.tls->watch_interval.count() == 0) continue;
        for (const TlsCertConfig& c : l.tls->certificates) {
            append_file_state(state, c.cert_file);
            append_file_state(state, c.key_file);
        }
        append_file_state(state, l.tls->client_ca_file);
    }
    return state;
}

Millis certificate_watch_interval(const Config& config) {
    Millis shortest{0};
    for (const ListenerConfig& l : config.listeners) {
        if (!l.tls || l.tls->watch_interval.count() == 0) continue;
        if (shortest.count() == 0 || l.tls->watch_interval < shortest) shortest = l.tls->watch_interval;
    }
    return shortest;
}

CertificateWatcher::CertificateWatcher(CurrentConfig current_config, FilesChanged files_changed)
    : current_config_(std::move(current_config)), files_changed_(std::move(files_changed)) {
    last_state_ = watched_certificate_files_state(*current_config_());
    thread_ = std::thread([this] { run(); });
}

CertificateWatcher::~CertificateWatcher() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void CertificateWatcher::run() {
    for (;;) {
        const std::shared_ptr<const Config> config = current_config_();
        const Millis interval = certificate_watch_interval(*config);
        {
            std::unique_lock<std::mutex> lock(mutex_);
            if (wake_.wait_for(lock, interval.count() == 0 ? kIdleRecheck : interval, [this] { return stopping_; }))
                return;
        }
        if (interval.count() == 0) continue;
        std::string state = watched_certificate_files_state(*current_config_());
        if (state == last_state_) continue;
        last_state_ = std::move(state);
        files_changed_();
    }
}

}  // namespace edgeguard
