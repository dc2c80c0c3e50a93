// PostHog's own person properties: what its SDKs and ingestion put in `$set` / `$set_once` and
// person_properties (device, OS, browser, app, GeoIP, initial referrer and URL, campaign parameters),
// which pass a profile's person-property allowlist without being listed. Their values are still scanned.
#pragma once

#include <vector>

#include "filters/rules_model.h"

namespace edgeguard::privacy {

// Globs in the order they are tried.
const std::vector<AllowedProperty>& posthog_person_properties();

// The default of every profile: allowlist-first with PostHog's own properties, unlisted keys dropped.
PersonProperties default_person_properties();

}  // namespace edgeguard::privacy
