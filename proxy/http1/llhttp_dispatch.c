/* llhttp__internal_execute, the generated parser's entry point, resolved once when the binary loads: the
 * copy built with SSE4.2 (llhttp_sse42.c) where the CPU has it, the plain one (llhttp.c) otherwise. Both are
 * the same generated state machine; only how header bytes are skipped differs. */
#include <llhttp.h>

int llhttp__internal_execute_generic(llhttp__internal_t* s, const char* p, const char* endp);
int llhttp__internal_execute_sse42(llhttp__internal_t* s, const char* p, const char* endp);

typedef int (*llhttp_execute_fn)(llhttp__internal_t* s, const char* p, const char* endp);

static llhttp_execute_fn choose_llhttp_execute(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") ? llhttp__internal_execute_sse42
                                            : llhttp__internal_execute_generic;
}

int llhttp__internal_execute(llhttp__internal_t* s, const char* p, const char* endp)
    __attribute__((ifunc("choose_llhttp_execute")));
