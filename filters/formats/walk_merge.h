// Helpers shared by the filters that walk one request as several JSON documents (the parts of an LLM
// analytics multipart body, the records of an OTLP export): merging their outcomes into one verdict and
// building the answer.
#pragma once

#include <string>

#include "filters/event_walker.h"
#include "filters/filter_api.h"

namespace edgeguard::privacy {

FilterOutput rejected_output(int status, std::string code, std::string error);

// Adds `part`'s audit, rejections and status to `into` (a parse error or a rejection sticks).
void merge_walk(WalkOutcome& into, WalkOutcome&& part);

// The answer for a merged walk that did not fail to parse: 422 with the rule ids when a rule rejected,
// otherwise an Unchanged output carrying the audit (the caller fills a rewritten body).
FilterOutput output_for_walk(WalkOutcome&& merged);

}  // namespace edgeguard::privacy
