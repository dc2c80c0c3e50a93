// The error value every decoder returns: an HTTP status, a stable code and a message that never echoes
// request data.
#pragma once

#include <string>
#include <variant>

namespace edgeguard::privacy {

struct DecodeError {
    int status = 400;
    std::string code;
    std::string message;
};

inline DecodeError undecodable(std::string message) {
    return DecodeError{400, "request_decoding_error", std::move(message)};
}
inline DecodeError too_large(std::string message) {
    return DecodeError{413, "payload_too_large", std::move(message)};
}

// A decoder's result: the value or why there is none.
template <class T>
using DecodeResult = std::variant<T, DecodeError>;

}  // namespace edgeguard::privacy
