// PostHog LLM analytics events (/i/v0/ai): a multipart/form-data body whose first part `event` is the
// event JSON, an optional `event.properties` part holds its properties, and blob parts
// `event.properties.<name>` (application/json, text/plain or application/octet-stream) hold large
// properties such as $ai_input and $ai_output_choices (capture stores them apart and puts a placeholder
// URL in the event). Every part is walked with the profile as the property it becomes, so key rules,
// event-scoped rules and detectors see `properties.$ai_input[*].content` whichever part carried it.
// Nothing changed: the original bytes. Something changed: the same multipart body (same boundary, same
// part headers) with only the changed parts' bodies replaced, uncompressed.
#pragma once

#include "filters/filter_api.h"
#include "filters/rules_model.h"

namespace edgeguard::privacy {

FilterOutput filter_ai_multipart(const Profile& profile, const CompiledRules& rules, const FilterInput& in);

}  // namespace edgeguard::privacy
