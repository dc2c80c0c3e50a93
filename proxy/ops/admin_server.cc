#include "proxy/ops/admin_server.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string_view>

#include "proxy/ops/access_log.h"
#include "proxy/ops/metrics.h"

namespace edgeguard {

namespace {

constexpr const char* kJson = "application/json";
constexpr const char* kPrometheusText = "text/plain; version=0.0.4; charset=utf-8";

void reply(evhttp_request* req, int code, const char* reason, const char* content_type,
           std::string_view body) {
    evkeyvalq* headers = evhttp_request_get_output_headers(req);
    evhttp_add_header(headers, "Content-Type", content_type);
    evhttp_add_header(headers, "Cache-Control", "no-store");
    evbuffer* buf = evbuffer_new();
    evbuffer_add(buf, body.data(), body.size());
    evhttp_send_reply(req, code, reason, buf);
    evbuffer_free(buf);
}

void reply_status_json(evhttp_request* req, int code, const char* reason, std::string_view status,
                       std::string_view message = {}) {
    std::string body = "{\"status\":";
    append_json_string(body, status);
    if (!message.empty()) {
        body += ",\"message\":";
        append_json_string(body, message);
    }
    body += "}\n";
    reply(req, code, reason, kJson, body);
}

bool is_loopback(const IpAddress& ip) {
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(ip.bytes.data(), kMapped, sizeof kMapped) == 0) return ip.bytes[12] == 127;
    for (size_t i = 0; i < 15; ++i)
        if (ip.bytes[i] != 0) return false;
    return ip.bytes[15] == 1;  // ::1
}

}  // namespace

AdminServer::Options AdminServer::options_from(const AdminConfig& config, ReloadHandler reload) {
    Options o;
    o.address = config.address;
    o.allow = config.allow;
    o.reload = std::move(reload);
    return o;
}

AdminServer::AdminServer(Metrics& metrics, ReloadHandler reload, CidrSet allow,
                         std::function<std::string()> readiness)
    : metrics_(metrics),
      reload_(std::move(reload)),
      readiness_(std::move(readiness)),
      allow_(std::move(allow)) {}

std::unique_ptr<AdminServer> AdminServer::start(const Options& options, Metrics& metrics,
                                                std::string& error) {
    std::unique_ptr<AdminServer> s(
        new AdminServer(metrics, options.reload, options.allow, options.readiness));
    s->observed_ = options.observed;
    s->base_ = event_base_new();
    if (!s->base_) {
        error = "admin: cannot create an event loop";
        return nullptr;
    }
    s->http_ = evhttp_new(s->base_);
    if (!s->http_) {
        error = "admin: cannot create the HTTP server";
        return nullptr;
    }
    // Small requests only; a scrape that stalls is cut rather than held.
    evhttp_set_max_headers_size(s->http_, 16 * 1024);
    evhttp_set_max_body_size(s->http_, 4 * 1024);
    evhttp_set_timeout(s->http_, 10);
    evhttp_set_gencb(s->http_, &AdminServer::on_request, s.get());

    evhttp_bound_socket* bound =
        evhttp_bind_socket_with_handle(s->http_, options.address.host.c_str(), options.address.port);
    if (!bound) {
        const auto& a = options.address;
        const bool v6 = a.host.find(':') != std::string::npos;
        error = "admin: cannot listen on " + (v6 ? "[" + a.host + "]" : a.host) + ":" +
                std::to_string(a.port) + ": " + std::strerror(errno);
        return nullptr;
    }
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (getsockname(evhttp_bound_socket_get_fd(bound), reinterpret_cast<sockaddr*>(&addr), &len) == 0)
        s->port_ = addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                              : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);

    // The destructor wakes the loop through this pipe; no libevent threading support is needed for that.
    if (pipe2(s->stop_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
        error = std::string("admin: pipe: ") + std::strerror(errno);
        return nullptr;
    }
    s->stop_event_ = event_new(s->base_, s->stop_pipe_[0], EV_READ, &AdminServer::on_stop, s.get());
    if (!s->stop_event_ || event_add(s->stop_event_, nullptr) != 0) {
        error = "admin: cannot watch the stop pipe";
        return nullptr;
    }
    AdminServer* raw = s.get();
    s->thread_ = std::thread([raw] { event_base_dispatch(raw->base_); });
    return s;
}

AdminServer::~AdminServer() {
    if (thread_.joinable()) {
        const char byte = 0;
        while (::write(stop_pipe_[1], &byte, 1) < 0 && errno == EINTR) {
        }
        thread_.join();
    }
    if (stop_event_) event_free(stop_event_);
    if (http_) evhttp_free(http_);
    if (base_) event_base_free(base_);
    for (int fd : stop_pipe_)
        if (fd >= 0) ::close(fd);
}

void AdminServer::on_stop(int, short, void* self) {
    event_base_loopbreak(static_cast<AdminServer*>(self)->base_);
}

void AdminServer::set_allow(const CidrSet& allow) {
    std::lock_guard lock(allow_mutex_);
    allow_ = allow;
}

void AdminServer::on_request(evhttp_request* req, void* self) {
    static_cast<AdminServer*>(self)->handle(req);
}

void AdminServer::handle(evhttp_request* req) {
    evhttp_connection* conn = evhttp_request_get_connection(req);
    std::optional<IpAddress> peer;
    if (const sockaddr* sa = evhttp_connection_get_addr(conn)) peer = IpAddress::from_sockaddr(sa);
    if (!peer) {
        reply_status_json(req, 403, "Forbidden", "forbidden", "unknown peer address");
        return;
    }
    {
        std::lock_guard lock(allow_mutex_);
        if (!allow_.empty() && !allow_.contains(*peer)) {
            reply_status_json(req, 403, "Forbidden", "forbidden");
            return;
        }
    }

    const evhttp_uri* uri = evhttp_request_get_evhttp_uri(req);
    const char* path_c = uri ? evhttp_uri_get_path(uri) : nullptr;
    const std::string_view path = path_c ? path_c : "";
    const evhttp_cmd_type method = evhttp_request_get_command(req);
    const bool get = method == EVHTTP_REQ_GET || method == EVHTTP_REQ_HEAD;

    auto method_not_allowed = [&](const char* allow) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
        reply_status_json(req, 405, "Method Not Allowed", "method_not_allowed");
    };

    if (path == "/metrics") {
        if (!get) return method_not_allowed("GET, HEAD");
        reply(req, 200, "OK", kPrometheusText, metrics_.render());
    } else if (path == "/healthz") {
        if (!get) return method_not_allowed("GET, HEAD");
        reply_status_json(req, 200, "OK", "ok");
    } else if (path == "/readyz") {
        if (!get) return method_not_allowed("GET, HEAD");
        const std::string unready = ready() && readiness_ ? readiness_() : std::string();
        if (ready() && unready.empty())
            reply_status_json(req, 200, "OK", "ready");
        else if (ready())
            reply_status_json(req, 503, "Service Unavailable", "not_ready", unready);
        else
            reply_status_json(req, 503, "Service Unavailable", "not_ready");
    } else if (path == "/privacy/observed" && observed_) {
        if (!get) return method_not_allowed("GET, HEAD");
        reply(req, 200, "OK", "application/json", observed_());
    } else if (path == "/reload" && reload_) {
        if (method != EVHTTP_REQ_POST) return method_not_allowed("POST");
        // Reload changes what the proxy enforces: only a local operator (or `edgeguard reload`) may ask.
        if (!is_loopback(*peer)) {
            reply_status_json(req, 403, "Forbidden", "forbidden", "reload is allowed from loopback only");
            return;
        }
        ReloadResult r = reload_();
        if (r.ok)
            reply_status_json(req, 200, "OK", "reloaded", r.message);
        else
            reply_status_json(req, 422, "Unprocessable Entity", "reload_failed", r.message);
    } else {
        reply_status_json(req, 404, "Not Found", "not_found");
    }
}

}  // namespace edgeguard
