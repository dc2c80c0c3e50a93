#include "proxy/observability.h"

namespace edgeguard {

namespace {

std::string access_log_output(const AccessLogConfig& c) { return c.enabled ? c.output : std::string("off"); }

}  // namespace

std::unique_ptr<Observability> Observability::start(const Config& initial, size_t workers,
                                                    AdminServer::ReloadHandler reload, std::string& error) {
    std::unique_ptr<Observability> o(new Observability());
    o->metrics_ = std::make_unique<Metrics>(workers);

    AccessLog::Options log_options;
    log_options.producers = workers;
    o->access_log_output_ = access_log_output(initial.access_log);
    o->access_log_ = AccessLog::open(o->access_log_output_, log_options, error);
    if (!o->access_log_) return nullptr;
    AccessLog* log = o->access_log_.get();
    o->metrics_->add_external("edgeguard_access_log_dropped_total",
                              "Access-log lines dropped because the writer fell behind.", "counter",
                              [log] { return static_cast<double>(log->dropped()); });
    o->metrics_->add_external("edgeguard_access_log_write_errors_total", "Failed writes of access-log lines.",
                              "counter", [log] { return static_cast<double>(log->write_errors()); });

    o->initial_ids_ = o->metrics_->register_config(initial);
    o->metrics_->config_loaded(initial.hash);

    o->admin_ = AdminServer::start(AdminServer::options_from(initial.admin, std::move(reload)), *o->metrics_, error);
    if (!o->admin_) return nullptr;
    return o;
}

MetricsLabelIds Observability::config_published(const Config& config, std::string& error) {
    std::lock_guard lock(reload_mutex_);
    MetricsLabelIds ids = metrics_->register_config(config);
    admin_->set_allow(config.admin.allow);
    const std::string output = access_log_output(config.access_log);
    // A file is reopened even when its path is unchanged: SIGHUP after logrotate moves the old file away.
    const bool is_file = output != "stdout" && output != "stderr" && output != "off";
    if (output != access_log_output_ || is_file) {
        if (access_log_->reopen(output, error)) access_log_output_ = output;
    }
    metrics_->config_loaded(config.hash);
    return ids;
}

}  // namespace edgeguard
