// Watches the certificate, key and client-CA files of the TLS listeners so a renewed pair (certbot, lego,
// cert-manager writing a mounted volume) is loaded without a signal. The watcher only notices; the owner
// rebuilds the TLS contexts into a new snapshot the way a reload does, refusing a broken pair.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "proxy/config/config.h"

namespace edgeguard {

// The identity (device, inode, size, modification and change times) of every file watched under `config`,
// as one comparable string; a missing file reads as missing. stat() follows symbolic links, so certbot's
// live/ links moving to a new archive/ file count as a change.
std::string watched_certificate_files_state(const Config& config);

// The shortest watch_interval among the TLS listeners that watch their files; zero when none does.
Millis certificate_watch_interval(const Config& config);

class CertificateWatcher {
  public:
    using CurrentConfig = std::function<std::shared_ptr<const Config>()>;
    using FilesChanged = std::function<void()>;

    // Starts the watcher thread. `files_changed` runs on it whenever the files' state differs from the one
    // last seen (once per change, whether or not the new files load).
    CertificateWatcher(CurrentConfig current_config, FilesChanged files_changed);
    ~CertificateWatcher();  // stops and joins the thread
    CertificateWatcher(const CertificateWatcher&) = delete;
    CertificateWatcher& operator=(const CertificateWatcher&) = delete;

  private:
    void run();

    CurrentConfig current_config_;
    FilesChanged files_changed_;
    std::string last_state_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;  // guarded by mutex_
    std::thread thread_;
};

}  // namespace edgeguard
