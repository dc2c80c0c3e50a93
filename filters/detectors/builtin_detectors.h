// Factories of the built-in detectors, one file each; registry.cc maps ids to them.
#pragma once

#include <memory>

#include "filters/detectors/text_features.h"

namespace edgeguard::privacy {

std::unique_ptr<GatedDetector> make_email_detector();
std::unique_ptr<GatedDetector> make_phone_detector();
std::unique_ptr<GatedDetector> make_card_detector();
std::unique_ptr<GatedDetector> make_iban_detector();
std::unique_ptr<GatedDetector> make_ip_detector();
std::unique_ptr<GatedDetector> make_jwt_detector();
std::unique_ptr<GatedDetector> make_secret_detector();
std::unique_ptr<GatedDetector> make_url_secret_detector();
std::unique_ptr<GatedDetector> make_inn_detector();
std::unique_ptr<GatedDetector> make_snils_detector();
std::unique_ptr<GatedDetector> make_ru_passport_detector();
std::unique_ptr<GatedDetector> make_name_detector();
std::unique_ptr<GatedDetector> make_address_detector();
std::unique_ptr<GatedDetector> make_dob_detector();
std::unique_ptr<GatedDetector> make_crypto_detector();

}  // namespace edgeguard::privacy
