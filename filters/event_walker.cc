#include "filters/event_walker.h"

#include <algorithm>

#include "filters/walker/walker.h"

namespace edgeguard::privacy {

namespace walk {

Scratch& thread_scratch() {
    thread_local Scratch scratch;
    return scratch;
}

}  // namespace walk

WalkOutcome walk_and_filter(const Profile& profile, const CompiledRules& rules, std::string_view json,
                            const WalkOptions& options) {
    WalkOutcome out;
    walk::Scratch& scratch = walk::thread_scratch();
    scratch.path.clear();
    walk::Walker walker(profile, rules, options, out, scratch.path);
    walker.scratch_ = &scratch;
    walker.prepare_memos();
    bool ok;
    if (json.size() > walk::kScratchParserLimit) {
        simdjson::ondemand::parser parser;
        std::string padded;
        ok = options.padded_input ? walker.run_in_place(parser, json, WalkShape::Request, 0)
                                  : walker.run(parser, padded, json, WalkShape::Request, 0);
    } else if (options.padded_input) {
        ok = walker.run_in_place(scratch.parser, json, WalkShape::Request, 0);
    } else {
        ok = walker.run(scratch.parser, scratch.padded, json, WalkShape::Request, 0);
    }
    if (!ok && out.status == WalkOutcome::Status::Ok) {
        out.status = WalkOutcome::Status::ParseError;
        out.error = "invalid JSON";
    }
    std::sort(out.edits.begin(), out.edits.end(),
              [](const Edit& a, const Edit& b) { return a.begin < b.begin; });
    // Disjointness: an edit inside an earlier one is dropped (the outer edit already replaced it).
    std::vector<Edit> disjoint;
    disjoint.reserve(out.edits.size());
    for (auto& e : out.edits) {
        if (!disjoint.empty() && e.begin < disjoint.back().end) continue;
        disjoint.push_back(std::move(e));
    }
    out.edits = std::move(disjoint);
    return out;
}

PaddedText& thread_decode_buffer() {
    return walk::thread_scratch().decoded;
}

void release_decode_buffer_if_large() {
    PaddedText& buffer = thread_decode_buffer();
    if (buffer.capacity() > walk::kScratchParserLimit) buffer.release();
}

std::string apply_edits(std::string_view text, const std::vector<Edit>& edits) {
    size_t total = text.size();
    for (const auto& e : edits) total = total - (e.end - e.begin) + e.text.size();
    std::string out;
    out.reserve(total);
    size_t pos = 0;
    for (const auto& e : edits) {
        out.append(text.substr(pos, e.begin - pos));
        out.append(e.text);
        pos = e.end;
    }
    out.append(text.substr(pos));
    return out;
}

}  // namespace edgeguard::privacy
