// The merged view of every worker's observations as JSON (the admin endpoint /privacy/observed, read by
// `edgeguard learn`). Values appear only as k-anonymous enum candidates.
#pragma once

#include <string>

#include "filters/learn/observation_store.h"

namespace edgeguard::privacy::learn {

std::string render_observed_json(const ObservationStore& store);

}  // namespace edgeguard::privacy::learn
