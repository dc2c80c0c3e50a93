#include "proxy/core/server.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

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
      snapshots_(make_initial_snapshot(initial)) {
    metrics_->config_loaded(initial->hash);
    metrics_->add_collector(
        [this](std::string& out) { append_tls_listener_metrics(out, snapshots_.load()->listener_tls); });
}

std::shared_ptr<Snapshot> Server::make_initial_snapshot(const std::shared_ptr<const Config>& config) {
    auto snap = std::make_shared<Snapshot>(config, metrics_->register_config(*config));
    build_rate_limits(*snap, rate_limiter_);
    std::vector<std::string> warnings;
    build_listener_tls(*snap, nullptr, startup_errors_, warnings);
    for (const std::string& w : warnings) std::fprintf(stderr, "edgeguard: warning: %s\n", w.c_str());
    return snap;
}

Server::~Server() {
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
        for (const std::string& e : startup_errors_) std::fprintf(stderr, "edgeguard: %s\n", e.c_str());
        return 1;
    }
    const size_t n = worker_count_for(*snap->config);
    std::string error;
    for (const ListenerConfig& l : snap->config->listeners) {
        if (!listen_address_is_free(l.address, error)) {
            std::fprintf(stderr, "edgeguard: %s\n", error.c_str());
            return 1;
        }
    }
    AccessLog::Options log_options;
    log_options.producers = n;
    access_log_ = AccessLog::open(snap->config->access_log, log_options, error);
    if (!access_log_) {
        std::fprintf(stderr, "edgeguard: access log: %s\n", error.c_str());
        return 1;
    }
    access_log_->export_metrics(*metrics_);
    // A reload from the admin thread reads admin_ and workers_: it waits until both are in place.
    std::unique_lock<std::mutex> setup(reload_mutex_);
    admin_ = AdminServer::start(AdminServer::options_from(snap->config->admin, [this] { return reload_with_report(); }),
                                *metrics_, error);
    if (!admin_) {
        std::fprintf(stderr, "edgeguard: admin listener: %s\n", error.c_str());
        return 1;
    }
    for (size_t i = 0; i < n; ++i) {
        auto w = std::make_unique<Worker>(i, snapshots_, metrics_.get(), access_log_.get(), &total_connections_);
        w->set_limits(&connection_limits_, redis_counters_);
        std::string error;
        if (!w->init(error)) {
            std::fprintf(stderr, "edgeguard: %s\n", error.c_str());
            workers_.clear();
            return 1;
        }
        workers_.push_back(std::move(w));
    }
    for (auto& w : workers_) w->start();
    setup.unlock();
    admin_->set_ready(true);
    std::fprintf(stderr, "edgeguard: admin on %s:%u\n", snap->config->admin.address.host.c_str(),
                 static_cast<unsigned>(admin_->port()));
    for (const ListenerConfig& l : snap->config->listeners)
        std::fprintf(stderr, "edgeguard: listening on %s (%s)\n", l.address.str().c_str(), l.name.c_str());
    std::fprintf(stderr, "edgeguard: ready (%zu workers)\n", workers_.size());
    std::fflush(stderr);

    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) continue;
        if (sig == SIGHUP) {
            reload();
            continue;
        }
        std::fprintf(stderr, "edgeguard: %s received, draining (grace %lld ms)\n",
                     sig == SIGTERM ? "SIGTERM" : "SIGINT",
                     static_cast<long long>(snapshots_.load()->config->graceful_shutdown.count()));
        break;
    }
    admin_->set_ready(false);
    stop_workers();
    access_log_->flush();
    std::fprintf(stderr, "edgeguard: stopped\n");
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

AdminServer::ReloadResult Server::reload_with_report() {
    std::lock_guard<std::mutex> lock(reload_mutex_);
    AdminServer::ReloadResult report;
    ConfigLoadResult result = load_config(config_path_);
    for (const ConfigError& w : result.warnings) std::fprintf(stderr, "edgeguard: warning: %s\n", w.str().c_str());
    if (!result.config || !result.errors.empty()) {
        for (const ConfigError& e : result.errors) {
            std::fprintf(stderr, "edgeguard: reload: %s\n", e.str().c_str());
            report.message += e.str() + "\n";
        }
        std::fprintf(stderr, "edgeguard: reload failed, keeping the running config\n");
        metrics_->config_reload_failed();
        return report;
    }
    const auto& old_listeners = snapshots_.load()->config->listeners;
    const auto& new_listeners = result.config->listeners;
    bool listeners_changed = old_listeners.size() != new_listeners.size();
    for (size_t i = 0; !listeners_changed && i < new_listeners.size(); ++i)
        listeners_changed = old_listeners[i].address.str() != new_listeners[i].address.str();
    if (listeners_changed)
        std::fprintf(stderr, "edgeguard: reload: listener addresses changed; restart to apply them\n");
    auto next = std::make_shared<Snapshot>(result.config, metrics_->register_config(*result.config));
    build_rate_limits(*next, rate_limiter_);
    std::vector<std::string> tls_errors, tls_warnings;
    const bool tls_ok = build_listener_tls(*next, snapshots_.load().get(), tls_errors, tls_warnings);
    for (const std::string& w : tls_warnings) std::fprintf(stderr, "edgeguard: warning: %s\n", w.c_str());
    if (!tls_ok) {
        for (const std::string& e : tls_errors) {
            std::fprintf(stderr, "edgeguard: reload: %s\n", e.c_str());
            report.message += e + "\n";
        }
        std::fprintf(stderr, "edgeguard: reload failed, keeping the running config\n");
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
        std::fprintf(stderr, "edgeguard: reload: access log: %s\n", reopen_error.c_str());
    metrics_->config_loaded(result.config->hash);
    std::fprintf(stderr, "edgeguard: config reloaded (%s)\n", result.config->hash.c_str());
    report.ok = true;
    report.message = result.config->hash;
    return report;
}

}  // namespace edgeguard
