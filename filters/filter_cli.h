// `edgeguard filter`: runs one request body through a rules file, the way the proxy would, so the security
// team can try rules without a running proxy.
//
//   edgeguard filter --rules FILE --profile NAME [--content-type T] [--content-encoding E] [--query Q]
//                    [--method M] [--path P] [--client-ip IP] [--ip-policy forward|truncate|drop]
//                    [--explain] < body
//
// stdout: the body that would be forwarded (the original bytes when unchanged, plain JSON when rewritten),
// or the rejection as capture-style JSON {"status":N,"code":"...","error":"...","rule_ids":[...]}.
// --explain: the audit (rule id, path template, action, count; never values) and any query change on stderr.
//
// Exit codes: 0 forwarded unchanged, 1 forwarded rewritten, 2 usage or rules-file error, 4 rejected.
#pragma once

namespace edgeguard::privacy {

// argv[0] is the subcommand name ("filter"); options follow.
int run_filter_cli(int argc, char** argv);

}  // namespace edgeguard::privacy
