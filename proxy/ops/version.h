// What `edgeguard version` prints: the release, the commit it was built from, and the versions of the
// libraries it runs with (read from the libraries at run time where they can say, else as built).
#pragma once

#include <string>

namespace edgeguard {

std::string version_report();

}  // namespace edgeguard
