// The vector kernels' three copies and the choice between them; see include/CKernels.h.
#include "CKernels.h"
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

// 16 floats: one AVX-512 register, two AVX2 ones, four SSE ones, as the copy compiles it.
typedef float samtrain_v16 __attribute__((vector_size(64), aligned(4)));

#define KERNEL(name) name##_generic
#include "VectorKernelBodies.h"
#undef KERNEL

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#define KERNEL(name) name##_avx2
#include "VectorKernelBodies.h"
#undef KERNEL
#pragma clang attribute pop

// "evex512" keeps 512-bit vectors on compilers that would otherwise prefer 256.
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,evex512,avx2,fma"), \
                                            min_vector_width(512))), apply_to = function)
#define KERNEL(name) name##_avx512
#include "VectorKernelBodies.h"
#undef KERNEL
#pragma clang attribute pop
#endif

int samtrain_kernel_paths_available(void) {
    int paths = 1 << SAMTRAIN_KERNELS_GENERIC;
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return paths;
    const int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1;
    if (!osxsave) return paths;
    // XCR0: which register state the OS saves on a context switch. Without it, the wider
    // registers exist but must not be used.
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    const int osYMM = (lo & 0x6) == 0x6, osZMM = (lo & 0xe6) == 0xe6;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return paths;
    const int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1;
    const int avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    if (osYMM && avx2 && fma) paths |= 1 << SAMTRAIN_KERNELS_AVX2;
    if (osZMM && avx2 && fma && avx512f && avx512dq && avx512bw && avx512vl) paths |= 1 << SAMTRAIN_KERNELS_AVX512;
#endif
    return paths;
}

const SamtrainVectorKernels *samtrain_vector_kernels(int path) {
    if (!(samtrain_kernel_paths_available() & (1 << path))) return NULL;
    switch (path) {
#if defined(__x86_64__)
    case SAMTRAIN_KERNELS_AVX512: return &table_avx512;
    case SAMTRAIN_KERNELS_AVX2: return &table_avx2;
#endif
    case SAMTRAIN_KERNELS_GENERIC: return &table_generic;
    default: return NULL;
    }
}

long samtrain_attention_scratch_count(long tokens, long headWidth) {
    const long tp = (tokens + 15) / 16 * 16, hp = (headWidth + 15) / 16 * 16;
    return headWidth * tp + tokens * tp + tokens * hp;
}
