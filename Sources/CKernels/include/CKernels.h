#pragma once
#include <stdint.h>

// samtrain's own convolution kernels: a convolution of any stride computed directly on the
// zero-padded input image, with no column matrix and no GEMM packing.
//
// An image is padded to PH × PW per channel. Output position j (row r = j / OW, column
// x = j % OW) reads, for kernel tap k, padded[offsets[k] + s·r·PW + s·x], where
// offsets[k] = c·PH·PW + ky·PW + kx. Every read stays inside the padded image.

#define SAMTRAIN_CONV_POSITIONS 6 // output positions per micro-tile
#define SAMTRAIN_CONV_CHANNELS 16 // output channels per micro-tile (two AVX2 vectors)

// 1 when the kernels of `path` (SAMTRAIN_KERNELS_AVX2 or _AVX512, below) exist and this CPU
// runs them, else 0: the portable path has no direct convolution.
int samtrain_direct_kernels_available(int path);

// Output channels are taken in blocks of 16; a last partial block is zero-padded in the
// packed operands and its missing channels are never stored.

// Packs a matrix A[cout][n] as [⌈cout / 16⌉][n][16]: the weights W[cout][K] for the forward
// kernel, an image's ∂Y [cout][positions] for the weight-gradient kernel.
void samtrain_direct_pack(const float *a, int cout, int n, float *packed);

// y[co][r][x] = bias[co] + Σ_k W[co][k] · padded[offsets[k] + s·r·pw + s·x] for one image,
// every output position (r, x) of an oh × ow output. `packed` comes from
// samtrain_direct_pack; bias may be NULL; `buffer` holds
// samtrain_direct_forward_buffer_count() floats of scratch.
void samtrain_direct_conv_forward(int path, const float *padded, const int32_t *offsets, int K,
                                  const float *packed, int cout, int oh, int ow, int stride,
                                  int pw, const float *bias, float *y, float *buffer);
long samtrain_direct_forward_buffer_count(void);

// dW[co][k] += Σ_(r,x) packedGradient[co][r·ow + x] · padded[offsets[k] + s·r·pw + s·x].
void samtrain_direct_conv_weight_gradient(int path, const float *padded, const int32_t *offsets, int K,
                                          const float *packedGradient, int cout, int oh,
                                          int ow, int stride, int pw, float *dw);

// AVX-512, stride 1: the convolution on the padded-width grid, vectors along the output rows
// (48 grid positions × 8 output channels per tile). `packed` from samtrain_rows_pack; `padded`
// must have samtrain_rows_tile_positions() + 16 zero floats past its last tap's reads; `grid`
// holds samtrain_rows_grid_count(cout, oh, pw) floats of scratch. y [cout][oh][ow] is overwritten.
long samtrain_rows_tile_positions(void);
long samtrain_rows_grid_count(int cout, int oh, int pw);
void samtrain_rows_pack(const float *w, int cout, int K, float *packed);
// AVX-512, a 3 × 3 stride-1 convolution's weight gradient: dW[co][9·ci + 3·ky + kx] +=
// Σ_(r,x) packedGradient[co][r·ow + x] · padded[ci·ph·pw + (r + ky)·pw + x + kx], `packedGradient`
// from samtrain_direct_pack (an image's ∂Y), `padded` one image [cin][ph][pw].
void samtrain_rows_conv_weight_gradient_3x3(const float *padded, int cin, int ph, int pw,
                                            const float *packedGradient, int cout, int oh, int ow,
                                            float *dw);
void samtrain_flip_weights(const float *w, int cout, int cin, int taps, float *f);
void samtrain_rows_conv_forward(const float *padded, const int32_t *offsets, int K, const float *packed,
                                int cout, int oh, int ow, int pw, const float *bias, float *y, float *grid);

// Flushes subnormal floats to zero on the calling thread (x86 MXCSR FTZ and DAZ; nothing
// elsewhere). A softmax's tail and the gradients behind it reach below 1.2e-38, and every
// operation on such a value takes a slow microcode assist (docs/algorithms.md §6.7).
void samtrain_flush_subnormals(void);

// The vector kernels (elementwise maps and row-wise reductions of the transformers' layers),
// in three copies compiled from one source: AVX-512, AVX2 + FMA and portable. A process picks
// one copy at start (docs/algorithms.md §12); the same copy gives the same bits on every run.
enum {
    SAMTRAIN_KERNELS_GENERIC = 0,
    SAMTRAIN_KERNELS_AVX2 = 1,
    SAMTRAIN_KERNELS_AVX512 = 2,
};

// Bit p set: this CPU and its OS run path p (cpuid, and XCR0 for the YMM / ZMM state).
int samtrain_kernel_paths_available(void);

typedef struct {
    // y = x·Φ(x), the exact GELU; ∂x = ∂y·(Φ(x) + x·φ(x)).
    void (*gelu_forward)(const float *x, float *y, long n);
    void (*gelu_backward)(const float *x, const float *dy, float *dx, long n);
    // Each row of p replaced by its softmax (the row's maximum subtracted first).
    void (*softmax_rows)(float *p, long rows, long cols);
    // With P the softmax of each row and g = ∂P on entry: g ← P ⊙ (g − rowsum(P ⊙ g)) = ∂S.
    void (*softmax_backward_rows)(const float *p, float *g, long rows, long cols);
    // LayerNorm over rows of d: y = (x − μ)·σ⁻¹·γ + β, stats[2r] = μ, stats[2r+1] = σ⁻¹.
    void (*layer_norm_forward)(const float *x, const float *gamma, const float *beta, float *y,
                               float *stats, long rows, long d, float eps);
    // ∂γ += Σ ∂y·x̂, ∂β += Σ ∂y, ∂x = σ⁻¹·(∂x̂ − mean ∂x̂ − x̂·mean(∂x̂·x̂)); any output may be NULL.
    void (*layer_norm_backward)(const float *x, const float *dy, const float *gamma,
                                const float *stats, float *dx, float *dgamma, float *dbeta,
                                long rows, long d);
    // out = a + b.
    void (*add)(const float *a, const float *b, float *out, long n);
    // sums[j] += Σ_r g[r][j] over a rows × cols matrix (a bias's gradient).
    void (*add_rows)(const float *g, long rows, long cols, float *sums);
    // Multi-head self-attention of one example, qkv [T][3d] (column s·d + h·d/heads + e: query,
    // key, value of head h): P [heads][T][T] = softmax(QKᵀ/√(d/heads)) per head, o [T][d] = P·V
    // with head h in columns h·d/heads…; scratch holds samtrain_attention_scratch_count floats.
    void (*attention_forward)(const float *qkv, long T, long d, long heads, float *p, float *o,
                              float *scratch);
    // Its backward from P and ∂o [T][d]: ∂qkv [T][3d] (overwritten).
    void (*attention_backward)(const float *qkv, const float *p, const float *dO, long T, long d,
                               long heads, float *dqkv, float *scratch);
} SamtrainVectorKernels;

// Floats of scratch the attention kernels need for T tokens and heads of `headWidth`.
long samtrain_attention_scratch_count(long tokens, long headWidth);

// The kernels of `path`, or NULL when this CPU cannot run it.
const SamtrainVectorKernels *samtrain_vector_kernels(int path);
