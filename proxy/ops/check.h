// `edgeguard check --config FILE`: validate everything `serve` would load, without binding a socket.
#pragma once

#include <iosfwd>
#include <string>

namespace edgeguard {

// Prints each error and warning as "file:line:col: message" to `err`; on success prints one summary line to
// `out`. Returns the process exit code: 0 when the config loads, 1 when it has errors.
int run_check(const std::string& config_path, std::ostream& out, std::ostream& err);
// Same, on std::cout / std::cerr.
int run_check(const std::string& config_path);

}  // namespace edgeguard
