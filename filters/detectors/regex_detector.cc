// Custom detectors from the rules file: an RE2 pattern plus an optional checksum validator.
#include <re2/re2.h>

#include "filters/detectors/registry.h"
#include "filters/detectors/validators.h"

namespace edgeguard::privacy {
namespace {

using Validator = bool (*)(std::string_view);

struct NamedValidator {
    std::string_view name;
    Validator check;
};

constexpr NamedValidator kValidators[] = {
    {"luhn", luhn_valid}, {"card", card_number_valid}, {"iban", iban_valid},   {"mod97", mod97_valid},
    {"inn", inn_valid},   {"inn12", inn12_valid},      {"snils", snils_valid},
};

class RegexDetector final : public Detector {
  public:
    RegexDetector(std::string id, std::unique_ptr<RE2> re, Validator validator)
        : id_(std::move(id)), re_(std::move(re)), validator_(validator) {}

    std::string_view id() const override { return id_; }

    void find(std::string_view text, const DetectorContext&, std::vector<DetectorMatch>& out) const override {
        re2::StringPiece input(text.data(), text.size());
        re2::StringPiece match;
        size_t pos = 0;
        while (pos <= text.size() && re_->Match(input, pos, text.size(), RE2::UNANCHORED, &match, 1)) {
            size_t begin = static_cast<size_t>(match.data() - text.data());
            size_t end = begin + match.size();
            if (match.empty()) {  // an empty match reports nothing; step past it
                pos = end + 1;
                continue;
            }
            if (validator_ == nullptr || validator_(std::string_view(match.data(), match.size())))
                out.push_back({begin, end, id_});
            pos = end;
        }
    }

  private:
    std::string id_;
    std::unique_ptr<RE2> re_;
    Validator validator_;
};

}  // namespace

std::vector<std::string_view> regex_validator_names() {
    std::vector<std::string_view> names;
    for (const NamedValidator& v : kValidators) names.push_back(v.name);
    return names;
}

std::unique_ptr<Detector> make_regex_detector(std::string id, std::string_view re2_pattern,
                                              std::string_view validator, std::string* error) {
    Validator check = nullptr;
    if (!validator.empty()) {
        for (const NamedValidator& v : kValidators) {
            if (v.name == validator) check = v.check;
        }
        if (check == nullptr) {
            if (error) *error = "unknown validator '" + std::string(validator) + "'";
            return nullptr;
        }
    }
    RE2::Options options;
    options.set_log_errors(false);
    options.set_encoding(RE2::Options::EncodingUTF8);
    options.set_max_mem(8 << 20);  // bounded program size: a rules file cannot make a huge DFA
    auto re = std::make_unique<RE2>(re2::StringPiece(re2_pattern.data(), re2_pattern.size()), options);
    if (!re->ok()) {
        if (error) *error = "bad RE2 pattern: " + re->error();
        return nullptr;
    }
    if (id.empty()) {
        if (error) *error = "custom detector needs an id";
        return nullptr;
    }
    return std::make_unique<RegexDetector>(std::move(id), std::move(re), check);
}

}  // namespace edgeguard::privacy
