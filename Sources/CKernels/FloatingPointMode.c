#include "CKernels.h"
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

void samtrain_flush_subnormals(void) {
#if defined(__x86_64__) || defined(__i386__)
    // FTZ (bit 15): subnormal results become 0. DAZ (bit 6): subnormal inputs read as 0.
    _mm_setcsr(_mm_getcsr() | 0x8040);
#endif
}
