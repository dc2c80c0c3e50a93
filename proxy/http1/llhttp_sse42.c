/* llhttp's generated parser once more, compiled with -msse4.2 and every external name suffixed "_sse42"
 * (CMakeLists.txt), so its SSE4.2 paths for header names and values are built in; llhttp_dispatch.c
 * chooses it on CPUs that have SSE4.2. */
#include "llhttp.c"
