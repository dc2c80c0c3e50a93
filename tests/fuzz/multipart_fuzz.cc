// libFuzzer target for the multipart/form-data decoder and the LLM analytics filter built on it
// (filters/decode/multipart.h, filters/formats/ai_multipart_filter.h).
//
// Input: byte 0 picks the client-IP policy and whether the body is gzip-wrapped before filtering; the rest
// is a multipart body with the boundary "B0und". Invariants (abort on violation):
//  - decoded parts are views inside the body, in order, with unique non-empty names;
//  - re-emitting with every part kept, or with every part's body replaced by itself, gives the body back
//    byte for byte; removing every part but the first gives a body that decodes to that one part;
//  - the `ai` profile of conf/privacy.yaml answers with a known verdict; a rejection carries 400/413/415/422
//    and a code; a rewritten body keeps the Content-Type, decodes as multipart, and filtering it again
//    changes nothing.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "filters/decode/gzip.h"
#include "filters/decode/multipart.h"
#include "filters/filter_api.h"
#include "tests/fuzz/shipped_rules.h"

namespace edgeguard::fuzz::multipart {

using namespace edgeguard::privacy;

constexpr std::string_view kBoundary = "B0und";
constexpr std::string_view kContentType = "multipart/form-data; boundary=B0und";

void require(bool condition, const char* what) { fuzz::require(condition, "multipart_fuzz", what); }

const std::shared_ptr<const RuleSet>& rules() { return fuzz::shipped_rules(); }

void initialize() { fuzz::load_shipped_rules(); }

void check_decoder(std::string_view body) {
    MultipartLimits limits;
    limits.max_parts = 16;
    limits.max_part_bytes = 16 * 1024;
    limits.max_total_bytes = 32 * 1024;
    auto decoded = decode_multipart(body, kBoundary, limits);
    if (std::holds_alternative<DecodeError>(decoded)) {
        const DecodeError& e = std::get<DecodeError>(decoded);
        require((e.status == 400 || e.status == 413) && !e.code.empty(), "a decode error has a status and code");
        return;
    }
    const MultipartBody& mp = std::get<MultipartBody>(decoded);
    require(!mp.parts.empty(), "a decoded body has parts");
    size_t last = 0;
    for (size_t i = 0; i < mp.parts.size(); ++i) {
        const MultipartPart& p = mp.parts[i];
        require(p.body.data() == body.data() + p.body_offset, "a part's body is a view at its offset");
        require(p.body_offset + p.body.size() <= body.size(), "a part's body lies inside the body");
        require(p.part_offset >= last && p.body_offset > p.part_offset, "parts are in order");
        last = p.body_offset + p.body.size();
        require(!p.name.empty(), "a part has a name");
        for (size_t j = 0; j < i; ++j) require(mp.parts[j].name != p.name, "part names are unique");
    }
    std::vector<PartReplacement> keep(mp.parts.size());
    auto same = reencode_multipart(body, mp, keep);
    require(std::holds_alternative<std::string>(same) && std::get<std::string>(same) == body,
            "keeping every part re-emits the body");
    std::vector<PartReplacement> itself;
    for (const auto& p : mp.parts) itself.push_back({PartReplacement::Kind::Replace, std::string(p.body)});
    auto replaced = reencode_multipart(body, mp, itself);
    require(std::holds_alternative<std::string>(replaced) && std::get<std::string>(replaced) == body,
            "replacing every part by itself re-emits the body");
    std::vector<PartReplacement> first_only(mp.parts.size(), {PartReplacement::Kind::Remove, {}});
    first_only[0] = {};
    auto shorter = reencode_multipart(body, mp, first_only);
    require(std::holds_alternative<std::string>(shorter), "removing parts re-emits");
    auto again = decode_multipart(std::get<std::string>(shorter), kBoundary, limits);
    require(std::holds_alternative<MultipartBody>(again) && std::get<MultipartBody>(again).parts.size() == 1 &&
                std::get<MultipartBody>(again).parts[0].body == mp.parts[0].body,
            "a body with the other parts removed decodes to the first part");
}

int one_input(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    const uint8_t mode = data[0];
    const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
    check_decoder(body);

    const std::string gz = (mode & 4) ? gzip_deflate(body, 1) : std::string();
    FilterInput in;
    in.method = "POST";
    in.path = "/i/v0/ai/";
    in.content_type = kContentType;
    in.content_encoding = (mode & 4) ? "gzip" : "";
    in.body = (mode & 4) ? std::string_view(gz) : body;
    in.client_ip = "81.2.69.160";
    in.ip_policy = static_cast<IpPolicy>(mode % 3);
    in.wire_limit = 1024 * 1024;
    const FilterOutput out = rules()->apply("ai", in);
    using Verdict = FilterOutput::Verdict;
    if (out.verdict == Verdict::Rejected) {
        require(out.status == 400 || out.status == 413 || out.status == 415 || out.status == 422,
                "a rejection has a client status");
        require(!out.code.empty(), "a rejection has a code");
        return 0;
    }
    if (out.verdict != Verdict::Rewritten) return 0;
    require(out.content_type == kContentType, "a rewritten multipart body keeps its Content-Type");
    MultipartLimits generous;
    require(std::holds_alternative<MultipartBody>(decode_multipart(out.body, kBoundary, generous)),
            "a rewritten body decodes as multipart");
    FilterInput second_in = in;
    second_in.content_encoding = "";
    second_in.body = out.body;
    const FilterOutput second = rules()->apply("ai", second_in);
    require(second.verdict == Verdict::Unchanged, "filtering twice equals filtering once");
    return 0;
}

}  // namespace edgeguard::fuzz::multipart

#ifndef EDGEGUARD_FUZZ_NO_MAIN
extern "C" int LLVMFuzzerInitialize(int*, char***) {
    edgeguard::fuzz::multipart::initialize();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return edgeguard::fuzz::multipart::one_input(data, size);
}
#endif
