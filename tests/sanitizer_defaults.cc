// Runtime options compiled into the sanitizer builds (EDGEGUARD_ASAN / EDGEGUARD_TSAN) of edgeguard and the unit
// tests, so every way of running them - ctest, pytest, a shell - gets the same settings. The environment
// (ASAN_OPTIONS, ...) is read after these and overrides them; the integration tests add log_path that way.

// alloc_dealloc_mismatch=0: Debian's prebuilt libsimdjson frees with free() what its header-inlined code allocated
// with new; that pairing is outside our code and otherwise aborts every simdjson DOM parser.
extern "C" const char* __asan_default_options() { return "alloc_dealloc_mismatch=0:detect_leaks=1"; }

extern "C" const char* __ubsan_default_options() { return "print_stacktrace=1:halt_on_error=1"; }

// Suppressions cover races inside uninstrumented third-party libraries only; each line says why.
extern "C" const char* __tsan_default_options() {
    return "second_deadlock_stack=1:suppressions=" EDGEGUARD_TSAN_SUPPRESSIONS;
}
