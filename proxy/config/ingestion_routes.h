// Which routes carry data into PostHog's ingestion services, so that none of them is left without a
// privacy profile by accident: `edgeguard check` (and every load) refuses such a route unless it names a
// profile or says `privacy: none`.
#pragma once

#include <string>

#include "proxy/config/config.h"

namespace edgeguard {

// Why `route` is an ingestion route ("path /i/v1/logs", "upstream capture"), or "" when it is not. A route is
// one when one of its paths is (or is below) a PostHog ingestion endpoint, or when its upstream has the name
// of a PostHog ingestion service in the hobby deployment.
std::string ingestion_reason(const RouteConfig& route);

}  // namespace edgeguard
