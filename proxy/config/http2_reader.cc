// ConfigLoader: reads `http2:`, the limits every client HTTP/2 connection is held to.
#include "proxy/config/config_loader.h"

namespace edgeguard {

void ConfigLoader::read_http2(const YAML::Node& n) {
    Http2Config& h = cfg_.http2;
    auto u32 = [&](const YAML::Node& v, const std::string& what, uint64_t min, uint64_t max, uint32_t& out) {
        if (auto x = r_.unsigned_int(v, what, min, max)) out = static_cast<uint32_t>(*x);
    };
    // A token bucket: `burst` frames at once, refilled at `rate` (such as 20/s).
    auto bucket = [&](const YAML::Node& v, const std::string& what, uint32_t& burst, double& per_second) {
        r_.read_map(v, what,
                    {{"burst", [&](const YAML::Node& b) { u32(b, what + ".burst", 1, 1'000'000, burst); }, true},
                     {"rate",
                      [&](const YAML::Node& r) {
                          if (auto x = r_.rate(r, what + ".rate")) per_second = *x;
                      },
                      true}});
    };
    auto positive_duration = [&](const YAML::Node& v, const std::string& what, Millis& out) {
        auto d = r_.duration(v, what);
        if (!d) return;
        if (d->count() == 0) {
            r_.error(v, what + ": must be above 0");
            return;
        }
        out = *d;
    };
    r_.read_map(
        n, "http2",
        {{"max_concurrent_streams",
          [&](const YAML::Node& v) { u32(v, "http2.max_concurrent_streams", 1, 10'000, h.max_concurrent_streams); }},
         {"max_header_list_size",
          [&](const YAML::Node& v) {
              auto x = r_.size(v, "http2.max_header_list_size");
              if (!x) return;
              if (*x < 1024 || *x > (1u << 20)) {
                  r_.error(v, "http2.max_header_list_size: must be between 1024 and 1048576 bytes");
                  return;
              }
              h.max_header_list_bytes = static_cast<uint32_t>(*x);
          }},
         {"max_continuations",
          [&](const YAML::Node& v) { u32(v, "http2.max_continuations", 1, 1000, h.max_continuations); }},
         {"stream_resets",
          [&](const YAML::Node& v) {
              bucket(v, "http2.stream_resets", h.stream_resets_burst, h.stream_resets_per_second);
          }},
         {"control_frames",
          [&](const YAML::Node& v) {
              bucket(v, "http2.control_frames", h.control_frames_burst, h.control_frames_per_second);
          }},
         {"zero_window_timeout",
          [&](const YAML::Node& v) { positive_duration(v, "http2.zero_window_timeout", h.zero_window_timeout); }},
         {"idle_timeout",
          [&](const YAML::Node& v) { positive_duration(v, "http2.idle_timeout", h.idle_timeout); }}});
}

}  // namespace edgeguard
