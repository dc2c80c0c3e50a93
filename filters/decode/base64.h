// Strict base64 (RFC 4648): the standard alphabet with mandatory padding, as capture's `base64` crate
// STANDARD engine reads it, and the url-safe alphabet with optional padding (JWT segments).
#pragma once

#include <string>
#include <string_view>

#include "filters/decode/decode_error.h"

namespace edgeguard::privacy {

enum class Base64Alphabet { Standard, UrlSafe };

// Strict: every character in the alphabet, padding only at the end and only as much as needed
// (mandatory for Standard), non-zero leftover bits refused. Appends to `out`; false (out unchanged) on
// any violation.
bool base64_decode_into(std::string_view in, Base64Alphabet alphabet, std::string& out);
DecodeResult<std::string> base64_decode(std::string_view in,
                                        Base64Alphabet alphabet = Base64Alphabet::Standard);

// Padded for Standard, unpadded for UrlSafe.
std::string base64_encode(std::string_view bytes, Base64Alphabet alphabet = Base64Alphabet::Standard);

// Capture's heuristic for "this payload is base64" (WIRE.md §2.2 step 2): the first 128 characters are in
// [A-Za-z0-9+/=] and the total length is a multiple of 4. Cheap; says nothing about validity.
bool looks_like_strict_base64(std::string_view payload);

}  // namespace edgeguard::privacy
