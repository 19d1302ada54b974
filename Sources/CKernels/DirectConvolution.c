// Direct convolution kernels on the padded image; see include/CKernels.h.
//
// Both kernels hold a 6 × 16 tile of results in twelve AVX2 registers. Per step of their
// inner loop they load 16 values of one operand (two vectors, contiguous thanks to the
// packing) and broadcast 6 values of the other straight from the padded image, then do 12
// FMAs: the FMA units, not the loads, set the pace, as in a GEMM micro-kernel, but nothing
// is copied into a column matrix or packed from it first. The six broadcasts come from six
// independent pointers, one per output position, so any stride works and no output position
// is wasted on the padding columns.
#include "CKernels.h"
#include <immintrin.h>
#include <string.h>

#define MR SAMTRAIN_CONV_POSITIONS
#define NR SAMTRAIN_CONV_CHANNELS

// One step of a micro-kernel: broadcast p0…p5 (one value per tile row) and add their
// products with the 16 values v0, v1 into the twelve accumulators c00…c51.
#define TILE_STEP(v0, v1, p0, p1, p2, p3, p4, p5)                                              \
    do {                                                                                       \
        __m256 b;                                                                              \
        b = _mm256_broadcast_ss(p0); c00 = _mm256_fmadd_ps(b, v0, c00); c01 = _mm256_fmadd_ps(b, v1, c01); \
        b = _mm256_broadcast_ss(p1); c10 = _mm256_fmadd_ps(b, v0, c10); c11 = _mm256_fmadd_ps(b, v1, c11); \
        b = _mm256_broadcast_ss(p2); c20 = _mm256_fmadd_ps(b, v0, c20); c21 = _mm256_fmadd_ps(b, v1, c21); \
        b = _mm256_broadcast_ss(p3); c30 = _mm256_fmadd_ps(b, v0, c30); c31 = _mm256_fmadd_ps(b, v1, c31); \
        b = _mm256_broadcast_ss(p4); c40 = _mm256_fmadd_ps(b, v0, c40); c41 = _mm256_fmadd_ps(b, v1, c41); \
        b = _mm256_broadcast_ss(p5); c50 = _mm256_fmadd_ps(b, v0, c50); c51 = _mm256_fmadd_ps(b, v1, c51); \
    } while (0)


// o[c] = column c of the 8 × 8 matrix whose rows are r[0..7].
__attribute__((target("avx2,fma"), always_inline))
static inline void transpose8(const __m256 r[8], __m256 o[8]) {
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    o[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    o[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    o[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    o[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    o[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    o[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    o[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    o[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

__attribute__((target("avx2,fma")))
void samtrain_direct_pack(const float *dy, int cout, int positions, float *packed) {
    for (int cb = 0; cb < cout; cb += NR) {
        float *block = packed + (long)cb * positions;
        const int valid = cout - cb < NR ? cout - cb : NR;
        int j = 0;
        if (valid == NR) {
            // Eight positions of eight channels at a time: one transpose per half block.
            for (; j + 8 <= positions; j += 8)
                for (int half = 0; half < 2; half++) {
                    __m256 r[8], o[8];
                    for (int c = 0; c < 8; c++)
                        r[c] = _mm256_loadu_ps(dy + (long)(cb + 8 * half + c) * positions + j);
                    transpose8(r, o);
                    for (int i = 0; i < 8; i++) _mm256_storeu_ps(block + (long)(j + i) * NR + 8 * half, o[i]);
                }
        }
        for (; j < positions; j++)
            for (int c = 0; c < NR; c++)
                block[(long)j * NR + c] = c < valid ? dy[(long)(cb + c) * positions + j] : 0.0f;
    }
}

// Output positions per chunk of the forward kernel, a multiple of MR: their results are
// gathered channel-major in a small buffer and then copied out contiguously per channel.
// Storing micro-tiles straight into NCHW would write 16 planes at once, and planes 4 KB
// apart (32 × 32 maps) fall into one L1 set.
#define CHUNK 120
// A buffer row holds a chunk plus the two floats past the last tile that its 8-wide stores
// write (and two more, so that rows are not a multiple of 4 KB apart).
#define CHUNK_STRIDE (CHUNK + 4)

long samtrain_direct_forward_buffer_count(void) { return (long)NR * CHUNK_STRIDE; }

// The image pointers of a tile's `count` output positions, from (r, x), which advances; a
// last partial tile repeats its last position, whose results are never copied out.
static inline void tile_positions(const float *padded, int stride, int pw, int ow, int remaining, int count,
                                  int *r, int *x, const float **a) {
    for (int i = 0; i < count; i++) {
        a[i] = padded + (long)stride * ((long)*r * pw + *x);
        if (i + 1 < remaining && ++*x == ow) { *x = 0; ++*r; }
    }
}

// A chunk's results, channel-major in the buffer, out to NCHW with the bias added.
static inline void copy_out(const float *buffer, const float *bias, int cb, int valid, int positions, int j0,
                            int chunk, float *y) {
    for (int c = 0; c < valid; c++) {
        const float beta = bias ? bias[cb + c] : 0.0f;
        float *out = y + (long)(cb + c) * positions + j0;
        const float *src = buffer + c * CHUNK_STRIDE;
        for (int i = 0; i < chunk; i++) out[i] = src[i] + beta;
    }
}

__attribute__((target("avx2,fma")))
static void conv_forward_avx2(const float *padded, const int32_t *offsets, int K,
                              const float *packed, int cout, int oh, int ow, int stride,
                              int pw, const float *bias, float *y, float *buffer) {
    const int positions = oh * ow;
    for (int cb = 0; cb < cout; cb += NR) {
        const float *wb = packed + (long)cb * K;
        const int valid = cout - cb < NR ? cout - cb : NR;
        // (r, x) of the next tile's first position.
        int r = 0, x = 0;
        for (int j0 = 0; j0 < positions; j0 += CHUNK) {
            const int chunk = positions - j0 < CHUNK ? positions - j0 : CHUNK;
            for (int t = 0; t < chunk; t += MR) {
                const float *base[MR];
                tile_positions(padded, stride, pw, ow, positions - j0 - t, MR, &r, &x, base);
                const float *a0 = base[0], *a1 = base[1], *a2 = base[2], *a3 = base[3],
                            *a4 = base[4], *a5 = base[5];
                __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
                       c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
                const float *w = wb;
                for (int k = 0; k < K; k++, w += NR) {
                    const long o = offsets[k];
                    const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
                    TILE_STEP(w0, w1, a0 + o, a1 + o, a2 + o, a3 + o, a4 + o, a5 + o);
                }
                // Rows = positions, columns = channels; transposed, each channel's six
                // results (and two zeros that the next tile overwrites) are one store.
                const __m256 z = _mm256_setzero_ps();
                __m256 lo[8] = {c00, c10, c20, c30, c40, c50, z, z}, hi[8] = {c01, c11, c21, c31, c41, c51, z, z};
                __m256 o[8];
                transpose8(lo, o);
                for (int c = 0; c < 8; c++) _mm256_storeu_ps(buffer + c * CHUNK_STRIDE + t, o[c]);
                transpose8(hi, o);
                for (int c = 0; c < 8; c++) _mm256_storeu_ps(buffer + (8 + c) * CHUNK_STRIDE + t, o[c]);
            }
            copy_out(buffer, bias, cb, valid, positions, j0, chunk, y);
        }
    }
}

__attribute__((target("avx2,fma")))
static void conv_weight_gradient_avx2(const float *padded, const int32_t *offsets, int K,
                                      const float *packedGradient, int cout, int oh,
                                      int ow, int stride, int pw, float *dw) {
    const int positions = oh * ow;
    float tile[MR][NR] __attribute__((aligned(32)));
    for (int cb = 0; cb < cout; cb += NR) {
        const float *gb = packedGradient + (long)cb * positions;
        for (int k0 = 0; k0 < K; k0 += MR) {
            // A last group of fewer than 6 taps repeats its last tap; the copies are dropped.
            const float *a[MR];
            for (int i = 0; i < MR; i++) a[i] = padded + offsets[k0 + i < K ? k0 + i : K - 1];
            __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
                   c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
            const float *g = gb;
            for (int r = 0; r < oh; r++) {
                const long row = (long)r * stride * pw;
                const float *a0 = a[0] + row, *a1 = a[1] + row, *a2 = a[2] + row, *a3 = a[3] + row,
                            *a4 = a[4] + row, *a5 = a[5] + row;
                for (long xs = 0, end = (long)ow * stride; xs < end; xs += stride, g += NR) {
                    const __m256 g0 = _mm256_loadu_ps(g), g1 = _mm256_loadu_ps(g + 8);
                    TILE_STEP(g0, g1, a0 + xs, a1 + xs, a2 + xs, a3 + xs, a4 + xs, a5 + xs);
                }
            }
            _mm256_store_ps(tile[0], c00); _mm256_store_ps(tile[0] + 8, c01);
            _mm256_store_ps(tile[1], c10); _mm256_store_ps(tile[1] + 8, c11);
            _mm256_store_ps(tile[2], c20); _mm256_store_ps(tile[2] + 8, c21);
            _mm256_store_ps(tile[3], c30); _mm256_store_ps(tile[3] + 8, c31);
            _mm256_store_ps(tile[4], c40); _mm256_store_ps(tile[4] + 8, c41);
            _mm256_store_ps(tile[5], c50); _mm256_store_ps(tile[5] + 8, c51);
            const int valid = cout - cb < NR ? cout - cb : NR;
            for (int i = 0; i < MR && k0 + i < K; i++)
                for (int c = 0; c < valid; c++) dw[(long)(cb + c) * K + k0 + i] += tile[i][c];
        }
    }
}

// ---- AVX-512 -----------------------------------------------------------------------------
//
// The same packing (blocks of 16 channels), one 16-channel block per ZMM register. A tile is
// 8 output positions (forward) or 8 taps (weight gradient) × 16 channels: eight accumulators,
// as many as the FMA units' latency × throughput needs, and nine loads (one block, eight
// broadcasts) per eight FMAs. Eight image pointers leave the loop's other registers free.
#define MR512 8

#define AVX512 "avx512f,avx512vl,avx512bw,avx512dq,evex512,avx2,fma"

__attribute__((target(AVX512)))
static void conv_forward_avx512(const float *padded, const int32_t *offsets, int K,
                                const float *packed, int cout, int oh, int ow, int stride,
                                int pw, const float *bias, float *y, float *buffer) {
    const int positions = oh * ow;
    for (int cb = 0; cb < cout; cb += NR) {
        const float *wb = packed + (long)cb * K;
        const int valid = cout - cb < NR ? cout - cb : NR;
        int r = 0, x = 0;
        for (int j0 = 0; j0 < positions; j0 += CHUNK) {
            const int chunk = positions - j0 < CHUNK ? positions - j0 : CHUNK;
            for (int t = 0; t < chunk; t += MR512) {
                const float *a[MR512];
                tile_positions(padded, stride, pw, ow, positions - j0 - t, MR512, &r, &x, a);
                __m512 c[MR512];
                for (int i = 0; i < MR512; i++) c[i] = _mm512_setzero_ps();
                const float *w = wb;
                for (int k = 0; k < K; k++, w += NR) {
                    const long o = offsets[k];
                    const __m512 wk = _mm512_loadu_ps(w);
                    for (int i = 0; i < MR512; i++) c[i] = _mm512_fmadd_ps(_mm512_set1_ps(a[i][o]), wk, c[i]);
                }
                // Channel-major into the buffer (position t + i of channel ch): the tile's rows
                // are positions, its halves 8 channels each; transposed, each channel's eight
                // results are one store.
                __m256 lo[8], hi[8], o[8];
                for (int i = 0; i < MR512; i++) {
                    lo[i] = _mm512_castps512_ps256(c[i]);
                    hi[i] = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(c[i]), 1));
                }
                transpose8(lo, o);
                for (int ch = 0; ch < 8; ch++) _mm256_storeu_ps(buffer + ch * CHUNK_STRIDE + t, o[ch]);
                transpose8(hi, o);
                for (int ch = 0; ch < 8; ch++) _mm256_storeu_ps(buffer + (8 + ch) * CHUNK_STRIDE + t, o[ch]);
            }
            copy_out(buffer, bias, cb, valid, positions, j0, chunk, y);
        }
    }
}

__attribute__((target(AVX512)))
static void conv_weight_gradient_avx512(const float *padded, const int32_t *offsets, int K,
                                        const float *packedGradient, int cout, int oh,
                                        int ow, int stride, int pw, float *dw) {
    float tile[MR512][NR] __attribute__((aligned(64)));
    for (int cb = 0; cb < cout; cb += NR) {
        const float *gb = packedGradient + (long)cb * oh * ow;
        const int valid = cout - cb < NR ? cout - cb : NR;
        for (int k0 = 0; k0 < K; k0 += MR512) {
            // A last group of fewer than 8 taps repeats its last tap; the copies are dropped.
            const float *a[MR512];
            for (int i = 0; i < MR512; i++) a[i] = padded + offsets[k0 + i < K ? k0 + i : K - 1];
            __m512 c[MR512];
            for (int i = 0; i < MR512; i++) c[i] = _mm512_setzero_ps();
            const float *g = gb;
            for (int r = 0; r < oh; r++) {
                const long row = (long)r * stride * pw;
                for (long xs = row, end = row + (long)ow * stride; xs < end; xs += stride, g += NR) {
                    const __m512 gk = _mm512_loadu_ps(g);
                    for (int i = 0; i < MR512; i++) c[i] = _mm512_fmadd_ps(_mm512_set1_ps(a[i][xs]), gk, c[i]);
                }
            }
            for (int i = 0; i < MR512; i++) _mm512_store_ps(tile[i], c[i]);
            for (int i = 0; i < MR512 && k0 + i < K; i++)
                for (int ch = 0; ch < valid; ch++) dw[(long)(cb + ch) * K + k0 + i] += tile[i][ch];
        }
    }
}

// ---- AVX-512, stride 1: vectors along the output rows -------------------------------------
//
// A stride-1 convolution computed on the padded-width grid (PaddedGrid): grid position
// j = r·PW + x reads padded[offsets[k] + j] for tap k, so 16 consecutive positions are one
// unaligned load. A tile is 48 positions (three ZMM) × 8 output channels: 24 accumulators; per
// tap 3 loads of the image and 8 broadcasts of packed weights feed 24 FMAs, so the FMA units,
// not the loads, set the pace. Grid columns x ≥ OW are junk: computed, never copied out. The
// channel blocks run inside a tile, so that the tile's part of the image stays in L1.
#define ROW_CHANNELS 8
#define ROW_VECTORS 3
#define ROW_POSITIONS (16 * ROW_VECTORS)

long samtrain_rows_tile_positions(void) { return ROW_POSITIONS; }

// Packs W [cout][K] as [⌈cout / 8⌉][K][8], a last partial block zero-padded.
void samtrain_rows_pack(const float *w, int cout, int K, float *packed) {
    for (int cb = 0; cb < cout; cb += ROW_CHANNELS)
        for (int k = 0; k < K; k++, packed += ROW_CHANNELS)
            for (int c = 0; c < ROW_CHANNELS; c++)
                packed[c] = cb + c < cout ? w[(long)(cb + c) * K + k] : 0.0f;
}

// The kernel of ∂x as a convolution of ∂y: F [cin][cout · taps], F[ci][co·taps + t] =
// W[co][ci][taps − 1 − t] for W [cout][cin][taps].
void samtrain_flip_weights(const float *w, int cout, int cin, int taps, float *f) {
    for (int ci = 0; ci < cin; ci++)
        for (int co = 0; co < cout; co++)
            for (int t = 0; t < taps; t++)
                f[((long)ci * cout + co) * taps + t] = w[((long)co * cin + ci) * taps + (taps - 1 - t)];
}

long samtrain_rows_grid_count(int cout, int oh, int pw) {
    const long positions = (long)oh * pw;
    return (long)((cout + ROW_CHANNELS - 1) / ROW_CHANNELS) * ROW_CHANNELS *
           ((positions + ROW_POSITIONS - 1) / ROW_POSITIONS) * ROW_POSITIONS;
}

__attribute__((target(AVX512)))
void samtrain_rows_conv_forward(const float *padded, const int32_t *offsets, int K, const float *packed,
                                int cout, int oh, int ow, int pw, const float *bias, float *y, float *grid) {
    const long positions = (long)oh * pw;
    const long tiles = (positions + ROW_POSITIONS - 1) / ROW_POSITIONS;
    const long gridStride = tiles * ROW_POSITIONS;
    for (long t = 0; t < tiles; t++) {
        const float *base = padded + t * ROW_POSITIONS;
        for (int cb = 0; cb < cout; cb += ROW_CHANNELS) {
            __m512 c[ROW_CHANNELS][ROW_VECTORS];
            for (int i = 0; i < ROW_CHANNELS; i++)
                for (int v = 0; v < ROW_VECTORS; v++) c[i][v] = _mm512_setzero_ps();
            const float *w = packed + (long)cb * K;
            for (int k = 0; k < K; k++, w += ROW_CHANNELS) {
                const float *a = base + offsets[k];
                const __m512 a0 = _mm512_loadu_ps(a), a1 = _mm512_loadu_ps(a + 16), a2 = _mm512_loadu_ps(a + 32);
                for (int i = 0; i < ROW_CHANNELS; i++) {
                    const __m512 b = _mm512_set1_ps(w[i]);
                    c[i][0] = _mm512_fmadd_ps(a0, b, c[i][0]);
                    c[i][1] = _mm512_fmadd_ps(a1, b, c[i][1]);
                    c[i][2] = _mm512_fmadd_ps(a2, b, c[i][2]);
                }
            }
            for (int i = 0; i < ROW_CHANNELS; i++) {
                float *g = grid + (long)(cb + i) * gridStride + t * ROW_POSITIONS;
                for (int v = 0; v < ROW_VECTORS; v++) _mm512_storeu_ps(g + 16 * v, c[i][v]);
            }
        }
    }
    // The valid grid columns out to NCHW, with the bias.
    for (int co = 0; co < cout; co++) {
        const float beta = bias ? bias[co] : 0.0f;
        const float *g = grid + (long)co * gridStride;
        float *out = y + (long)co * oh * ow;
        for (int r = 0; r < oh; r++)
            for (int x = 0; x < ow; x++) out[(long)r * ow + x] = g[(long)r * pw + x] + beta;
    }
}

// ---- AVX-512, 3 × 3, stride 1: the weight gradient reusing broadcasts along a row ---------
//
// One input channel's nine taps × 16 output channels: nine accumulators. Along an output row,
// tap (ky, kx) at position x reads the same image value as tap (ky, kx + 1) at x − 1, so four
// positions per step load their four ∂y vectors and, per kernel row, the six image values
// x … x + 5 once each: 22 loads feed 36 FMAs (the tiles above: 9 loads per 8 FMAs).
#define WG_STEP 4

__attribute__((target(AVX512), always_inline))
static inline void wg3_row(const float *p, __m512 g0, __m512 g1, __m512 g2, __m512 g3,
                           __m512 *a0, __m512 *a1, __m512 *a2) {
    const __m512 b0 = _mm512_set1_ps(p[0]), b1 = _mm512_set1_ps(p[1]), b2 = _mm512_set1_ps(p[2]),
                 b3 = _mm512_set1_ps(p[3]), b4 = _mm512_set1_ps(p[4]), b5 = _mm512_set1_ps(p[5]);
    *a0 = _mm512_fmadd_ps(b0, g0, *a0); *a1 = _mm512_fmadd_ps(b1, g0, *a1); *a2 = _mm512_fmadd_ps(b2, g0, *a2);
    *a0 = _mm512_fmadd_ps(b1, g1, *a0); *a1 = _mm512_fmadd_ps(b2, g1, *a1); *a2 = _mm512_fmadd_ps(b3, g1, *a2);
    *a0 = _mm512_fmadd_ps(b2, g2, *a0); *a1 = _mm512_fmadd_ps(b3, g2, *a1); *a2 = _mm512_fmadd_ps(b4, g2, *a2);
    *a0 = _mm512_fmadd_ps(b3, g3, *a0); *a1 = _mm512_fmadd_ps(b4, g3, *a1); *a2 = _mm512_fmadd_ps(b5, g3, *a2);
}

__attribute__((target(AVX512)))
void samtrain_rows_conv_weight_gradient_3x3(const float *padded, int cin, int ph, int pw,
                                            const float *packedGradient, int cout, int oh, int ow,
                                            float *dw) {
    const long plane = (long)oh * ow, K = (long)cin * 9;
    float tile[9][NR] __attribute__((aligned(64)));
    for (int cb = 0; cb < cout; cb += NR) {
        const float *gb = packedGradient + (long)cb * plane;
        const int valid = cout - cb < NR ? cout - cb : NR;
        for (int ci = 0; ci < cin; ci++) {
            const float *image = padded + (long)ci * ph * pw;
            __m512 c[9];
            for (int t = 0; t < 9; t++) c[t] = _mm512_setzero_ps();
            for (int r = 0; r < oh; r++) {
                const float *p0 = image + (long)r * pw, *p1 = p0 + pw, *p2 = p1 + pw;
                const float *g = gb + (long)r * ow * NR;
                int x = 0;
                for (; x + WG_STEP <= ow; x += WG_STEP, g += WG_STEP * NR) {
                    const __m512 g0 = _mm512_loadu_ps(g), g1 = _mm512_loadu_ps(g + NR),
                                 g2 = _mm512_loadu_ps(g + 2 * NR), g3 = _mm512_loadu_ps(g + 3 * NR);
                    wg3_row(p0 + x, g0, g1, g2, g3, &c[0], &c[1], &c[2]);
                    wg3_row(p1 + x, g0, g1, g2, g3, &c[3], &c[4], &c[5]);
                    wg3_row(p2 + x, g0, g1, g2, g3, &c[6], &c[7], &c[8]);
                }
                for (; x < ow; x++, g += NR) {
                    const __m512 g0 = _mm512_loadu_ps(g);
                    const float *rows[3] = {p0 + x, p1 + x, p2 + x};
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++)
                            c[3 * ky + kx] = _mm512_fmadd_ps(_mm512_set1_ps(rows[ky][kx]), g0, c[3 * ky + kx]);
                }
            }
            for (int t = 0; t < 9; t++) _mm512_store_ps(tile[t], c[t]);
            for (int ch = 0; ch < valid; ch++) {
                float *d = dw + (long)(cb + ch) * K + (long)ci * 9;
                for (int t = 0; t < 9; t++) d[t] += tile[t][ch];
            }
        }
    }
}

// ---- The path ------------------------------------------------------------------------------

int samtrain_direct_kernels_available(int path) {
    return (path == SAMTRAIN_KERNELS_AVX2 || path == SAMTRAIN_KERNELS_AVX512) &&
           (samtrain_kernel_paths_available() & (1 << path));
}

void samtrain_direct_conv_forward(int path, const float *padded, const int32_t *offsets, int K,
                                  const float *packed, int cout, int oh, int ow, int stride,
                                  int pw, const float *bias, float *y, float *buffer) {
    if (path == SAMTRAIN_KERNELS_AVX512)
        conv_forward_avx512(padded, offsets, K, packed, cout, oh, ow, stride, pw, bias, y, buffer);
    else
        conv_forward_avx2(padded, offsets, K, packed, cout, oh, ow, stride, pw, bias, y, buffer);
}

void samtrain_direct_conv_weight_gradient(int path, const float *padded, const int32_t *offsets, int K,
                                          const float *packedGradient, int cout, int oh,
                                          int ow, int stride, int pw, float *dw) {
    if (path == SAMTRAIN_KERNELS_AVX512)
        conv_weight_gradient_avx512(padded, offsets, K, packedGradient, cout, oh, ow, stride, pw, dw);
    else
        conv_weight_gradient_avx2(padded, offsets, K, packedGradient, cout, oh, ow, stride, pw, dw);
}
