// `edgeguard learn`: reads what `learn: true` profiles observed from the admin listener (/privacy/observed)
// and writes a proposed allowlist profile, or (--diff FILE) reports what a proposal would drop.
#pragma once

namespace edgeguard {

// argv[0] is "learn". Exit codes: 0 done, 2 usage error, 3 the admin listener or the observation failed.
int run_learn_command(int argc, char** argv);

}  // namespace edgeguard
