// The admin listener: Prometheus /metrics, liveness /healthz, readiness /readyz and an optional loopback-only
// POST /reload. It runs on its own thread and event_base with libevent's evhttp (it is not the data path), so
// a slow scrape never delays a worker. Allowlisted like every other listener.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "proxy/access/cidr.h"
#include "proxy/config/config.h"

struct event_base;
struct evhttp;
struct evhttp_request;
struct event;

namespace edgeguard {

class Metrics;

class AdminServer {
public:
    struct ReloadResult {
        bool ok = false;
        std::string message;  // on failure: every error, one per line; on success: e.g. the new config hash
    };
    // Runs on the admin thread and may block it while the new snapshot builds (the data path is unaffected).
    using ReloadHandler = std::function<ReloadResult()>;

    struct Options {
        HostPort address{"127.0.0.1", 9180};  // port 0 picks a free port (tests)
        CidrSet allow;                        // empty = everyone who can reach the bound address
        ReloadHandler reload;                 // empty = no /reload endpoint
        // Asked by /readyz while ready: empty = ready, else why not (then 503 with that message). Runs on
        // the admin thread; empty function = readiness is the ready flag alone.
        std::function<std::string()> readiness;
        // GET /privacy/observed: what `learn: true` profiles observed (JSON); empty = no such endpoint.
        std::function<std::string()> observed;
    };

    // Binds synchronously (so a busy port is reported at startup), then serves on a new thread.
    // Returns null and sets `error` when the address cannot be bound.
    static std::unique_ptr<AdminServer> start(const Options& options, Metrics& metrics, std::string& error);
    static Options options_from(const AdminConfig& config, ReloadHandler reload);
    ~AdminServer();  // stops the thread; in-flight admin requests are cut
    AdminServer(const AdminServer&) = delete;
    AdminServer& operator=(const AdminServer&) = delete;

    // /readyz answers 200 only while ready: the server sets it once config is loaded, workers run and
    // listeners are bound, and clears it when draining starts. Thread-safe.
    void set_ready(bool ready) { ready_.store(ready, std::memory_order_release); }
    bool ready() const { return ready_.load(std::memory_order_acquire); }
    // A reload may change Config::admin.allow; the bound address itself never changes without a restart.
    void set_allow(const CidrSet& allow);
    uint16_t port() const { return port_; }

private:
    AdminServer(Metrics& metrics, ReloadHandler reload, CidrSet allow, std::function<std::string()> readiness);
    std::function<std::string()> observed_;
    static void on_request(evhttp_request* req, void* self);
    static void on_stop(int fd, short what, void* self);
    void handle(evhttp_request* req);

    Metrics& metrics_;
    ReloadHandler reload_;
    std::function<std::string()> readiness_;
    std::mutex allow_mutex_;
    CidrSet allow_;
    std::atomic<bool> ready_{false};
    uint16_t port_ = 0;

    event_base* base_ = nullptr;
    evhttp* http_ = nullptr;
    event* stop_event_ = nullptr;
    int stop_pipe_[2] = {-1, -1};
    std::thread thread_;
};

}  // namespace edgeguard
