// Checksum and structure validators shared by built-in detectors and custom regex rules.
// Each takes the candidate text as written (separators allowed where the format has them) and answers
// whether it is a well-formed identifier of that family.
#pragma once

#include <string_view>

namespace edgeguard::privacy {

// Luhn over the digits of `text`; non-digits other than ' ' and '-' make it fail.
bool luhn_valid(std::string_view text);
// Payment card: 12..19 digits, Luhn, and the issuer (IIN) range admits this length.
bool card_number_valid(std::string_view text);
// ISO 13616 IBAN: known country, that country's length, mod-97 == 1. Case-insensitive, spaces allowed.
bool iban_valid(std::string_view text);
// ISO 7064 mod 97-10 over an alphanumeric string (letters A=10..Z=35) == 1, spaces ignored.
bool mod97_valid(std::string_view text);
// Russian INN of an individual (12 digits, both check digits).
bool inn12_valid(std::string_view text);
// Russian INN of a legal entity (10 digits, one check digit).
bool inn10_valid(std::string_view text);
// Russian INN of either length ("inn" validator for custom rules).
bool inn_valid(std::string_view text);
// SNILS: 11 digits (separators '-' and ' ' allowed), control number mod 101; numbers up to 001-001-998 have
// no checksum and are rejected.
bool snils_valid(std::string_view text);
// Bitcoin Base58Check address (P2PKH '1…' / P2SH '3…'): alphabet, length and double-SHA256 checksum.
bool base58check_address_valid(std::string_view text);
// Bech32 / Bech32m segwit address with the "bc1" prefix: charset and checksum.
bool bech32_address_valid(std::string_view text);

}  // namespace edgeguard::privacy
