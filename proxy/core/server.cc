#include "proxy/core/server.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "proxy/ops/process_log.h"
#include "proxy/tcp/tcp_config.h"
#include "proxy/tls/certificate_metrics.h"
#include "filters/learn/observed_json.h"
#include "proxy/tls/tls_metrics.h"

namespace edgeguard {

size_t worker_count_for(const Config& config) {
    if (config.workers != 0) return config.workers;
    unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : n;
}

Server::Server(std::string config_path, std::shared_ptr<const Config> initial)
    : config_path_(std::move(config_path)),
      initial_(initial),
      metrics_(std::make_unique<Metrics>(worker_count_for(*initial))),
      observations_(std::make_unique<privacy::learn::ObservationStore>(worker_count_for(*initial))),
      snapshots_(make_initial_snapshot(initial)) {
    metrics_->config_loaded(initial->hash);
    metrics_->add_collector([this](std::string& out) {
        const std::shared_ptr<const Snapshot> snap = snapshots_.load();
        if (snap->tcp_listener_tls.empty()) return append_tls_listener_metrics(out, snap->listener_tls);
        auto contexts = snap->listener_tls;  // HTTP and TCP listeners' TLS in one set of families
        contexts.insert(contexts.end(), snap->tcp_listener_tls.begin(), snap->tcp_listener_tls.end());
        append_tls_listener_metrics(out, contexts);
    });
    metrics_->add_collector(
        [this](std::string& out) { append_certificate_expiry_metrics(out, snapshots_.load()->listener_tls); });
    metrics_->add_collector([this](std::string& out) { tcp_registry_.render(out); });
}

std::shared_ptr<Snapshot> Server::make_initial_snapshot(const std::shared_ptr<const Config>& config) {
    auto snap = std::make_shared<Snapshot>(config, metrics_->register_config(*config));
    build_rate_limits(*snap, rate_limiter_);
    std::vector<std::string> warnings;
    build_listener_tls(*snap, nullptr, startup_errors_, warnings);
    for (const std::string& w : warnings) log_process(LogLevel::Warning, "edgeguard: warning: %s", w.c_str());
    return snap;
}

Server::~Server() {
    certificate_watcher_.reset();  // joins: a rebuild in flight finishes before the workers go
    stop_workers();
    // A reload from the admin thread reads admin_ under reload_mutex_: take it out under the same lock, so a
    // reload in flight finishes first and a later one finds none. It is destroyed (its thread joined) outside
    // the lock: that thread may be waiting for the lock in reload_with_report.
    std::unique_ptr<AdminServer> admin;
    {
        std::lock_guard<std::mutex> lock(reload_mutex_);
        admin = std::move(admin_);
    }
    admin.reset();
    access_log_.reset();
}

int Server::run() {
    // Signals are taken synchronously by this thread only: block them before any worker thread exists so
    // the workers inherit the mask, and never run handler code on the data path.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    signal(SIGPIPE, SIG_IGN);

    std::shared_ptr<const Snapshot> snap = snapshots_.load();
    if (!startup_errors_.empty()) {
        for (const std::string& e : startup_errors_) log_process(LogLevel::Error, "edgeguard: %s", e.c_str());
        return 1;
    }
    const size_t n = worker_count_for(*snap->config);
    std::string error;
    for (const ListenerConfig& l : snap->config->listeners) {
        if (!listen_address_is_free(l.address, error)) {
            log_process(LogLevel::Error, "edgeguard: %s", error.c_str());
            return 1;
        }
    }
    AccessLog::Options log_options;
    log_options.producers = n;
    access_log_ = AccessLog::open(snap->config->access_log, log_options, error);
    if (!access_log_) {
        log_process(LogLevel::Error, "edgeguard: access log: %s", error.c_str());
        return 1;
    }
    access_log_->export_metrics(*metrics_);
    // A reload from the admin thread reads admin_ and workers_: it waits until both are in place.
    std::unique_lock<std::mutex> setup(reload_mutex_);
    AdminServer::Options admin_options =
        AdminServer::options_from(snap->config->admin, [this] { return reload_with_report(); });
    admin_options.readiness = [this, n] {
        return tcp_registry_.unready_reason(snapshots_.load()->config->tcp.get(), n);
    };
    admin_options.observed = [this] { return privacy::learn::render_observed_json(*observations_); };
    admin_ = AdminServer::start(admin_options, *metrics_, error);
    if (!admin_) {
        log_process(LogLevel::Error, "edgeguard: admin listener: %s", error.c_str());
        return 1;
    }
    for (size_t i = 0; i < n; ++i) {
        auto w = std::make_unique<Worker>(i, snapshots_, metrics_.get(), access_log_.get(), &total_connections_);
        w->set_limits(&connection_limits_, redis_counters_);
        w->set_tcp_registry(&tcp_registry_);
        w->set_observations(&observations_->shard(i));
        std::string error;
        if (!w->init(error)) {
            log_process(LogLevel::Error, "edgeguard: %s", error.c_str());
            workers_.clear();
            return 1;
        }
        workers_.push_back(std::move(w));
    }
    for (auto& w : workers_) w->start();
    certificate_watcher_ = std::make_unique<CertificateWatcher>(
        [this] { return snapshots_.load()->config; }, [this] { reload_certificates(); });
    setup.unlock();
    admin_->set_ready(true);
    log_process(LogLevel::Info, "edgeguard: admin on %s:%u", snap->config->admin.address.host.c_str(),
                 static_cast<unsigned>(admin_->port()));
    for (const ListenerConfig& l : snap->config->listeners)
        log_process(LogLevel::Info, "edgeguard: listening on %s (%s)", l.address.str().c_str(), l.name.c_str());
    if (snap->config->tcp)
        for (const TcpListenerConfig& l : snap->config->tcp->listeners)
            log_process(LogLevel::Info, "edgeguard: listening on %s (tcp %s)", l.address.str().c_str(),
                        l.name.c_str());
    log_process(LogLevel::Info, "edgeguard: ready (%zu workers)", workers_.size());

    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) continue;
        if (sig == SIGHUP) {
            reload();
            continue;
        }
        log_process(LogLevel::Info, "edgeguard: %s received, draining (grace %lld ms)",
                     sig == SIGTERM ? "SIGTERM" : "SIGINT",
                     static_cast<long long>(snapshots_.load()->config->graceful_shutdown.count()));
        break;
    }
    admin_->set_ready(false);
    certificate_watcher_.reset();
    stop_workers();
    access_log_->flush();
    log_process(LogLevel::Info, "edgeguard: stopped");
    return 0;
}

void Server::request_stop() { ::kill(::getpid(), SIGTERM); }

void Server::stop_workers() {
    std::lock_guard<std::mutex> lock(reload_mutex_);  // a reload in flight finishes notifying the workers first
    if (workers_.empty()) return;
    const Millis grace = snapshots_.load()->config->graceful_shutdown;
    for (auto& w : workers_) w->request_stop(grace);
    for (auto& w : workers_) w->join();
    workers_.clear();
}

bool Server::reload() { return reload_with_report().ok; }

void Server::reload_certificates() {
    std::lock_guard<std::mutex> lock(reload_mutex_);
    const std::shared_ptr<const Snapshot> current = snapshots_.load();
    // The same immutable config with freshly built TLS contexts, swapped whole like a reload: connections
    // already accepted keep the SSL_CTX they started with, new handshakes get the new certificates.
    auto next = std::make_shared<Snapshot>(current->config, current->labels);
    build_rate_limits(*next, rate_limiter_);
    std::vector<std::string> errors, warnings;
    if (!build_listener_tls(*next, current.get(), errors, warnings)) {
        for (const std::string& e : errors) std::fprintf(stderr, "edgeguard: certificate files changed: %s\n", e.c_str());
        std::fprintf(stderr, "edgeguard: certificate reload refused, keeping the loaded certificates\n");
        std::fflush(stderr);
        return;
    }
    for (const std::string& w : warnings) std::fprintf(stderr, "edgeguard: warning: %s\n", w.c_str());
    snapshots_.publish(std::move(next));
    for (auto& w : workers_) w->notify_new_snapshot();
    std::fprintf(stderr, "edgeguard: certificates reloaded from changed files\n");
    std::fflush(stderr);
}

AdminServer::ReloadResult Server::reload_with_report() {
    std::lock_guard<std::mutex> lock(reload_mutex_);
    AdminServer::ReloadResult report;
    ConfigLoadResult result = load_config(config_path_);
    for (const ConfigError& w : result.warnings)
        log_process(LogLevel::Warning, "edgeguard: warning: %s", w.str().c_str());
    if (!result.config || !result.errors.empty()) {
        for (const ConfigError& e : result.errors) {
            log_process(LogLevel::Error, "edgeguard: reload: %s", e.str().c_str());
            report.message += e.str() + "\n";
        }
        log_process(LogLevel::Error, "edgeguard: reload failed, keeping the running config");
        metrics_->config_reload_failed();
        return report;
    }
    const auto& old_listeners = snapshots_.load()->config->listeners;
    const auto& new_listeners = result.config->listeners;
    bool listeners_changed = old_listeners.size() != new_listeners.size();
    for (size_t i = 0; !listeners_changed && i < new_listeners.size(); ++i)
        listeners_changed = old_listeners[i].address.str() != new_listeners[i].address.str();
    if (listeners_changed)
        log_process(LogLevel::Warning, "edgeguard: reload: listener addresses changed; restart to apply them");
    auto next = std::make_shared<Snapshot>(result.config, metrics_->register_config(*result.config));
    build_rate_limits(*next, rate_limiter_);
    std::vector<std::string> tls_errors, tls_warnings;
    const bool tls_ok = build_listener_tls(*next, snapshots_.load().get(), tls_errors, tls_warnings);
    for (const std::string& w : tls_warnings) log_process(LogLevel::Warning, "edgeguard: warning: %s", w.c_str());
    if (!tls_ok) {
        for (const std::string& e : tls_errors) {
            log_process(LogLevel::Error, "edgeguard: reload: %s", e.c_str());
            report.message += e + "\n";
        }
        log_process(LogLevel::Error, "edgeguard: reload failed, keeping the running config");
        metrics_->config_reload_failed();
        return report;
    }
    snapshots_.publish(std::move(next));
    for (auto& w : workers_) w->notify_new_snapshot();
    if (admin_) admin_->set_allow(result.config->admin.allow);
    std::string reopen_error;
    if (access_log_ && !access_log_->reopen(result.config->access_log.enabled ? result.config->access_log.output
                                                                              : std::string("off"),
                                            reopen_error))
        log_process(LogLevel::Error, "edgeguard: reload: access log: %s", reopen_error.c_str());
    metrics_->config_loaded(result.config->hash);
    log_process(LogLevel::Info, "edgeguard: config reloaded (%s)", result.config->hash.c_str());
    report.ok = true;
    report.message = result.config->hash;
    return report;
}

}  // namespace edgeguard
