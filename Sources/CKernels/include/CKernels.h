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

// 1 when this CPU runs the AVX2 + FMA kernels (checked once, at run time), else 0.
int samtrain_direct_kernels_available(void);

// Output channels are taken in blocks of 16; a last partial block is zero-padded in the
// packed operands and its missing channels are never stored.

// Packs a matrix A[cout][n] as [⌈cout / 16⌉][n][16]: the weights W[cout][K] for the forward
// kernel, an image's ∂Y [cout][positions] for the weight-gradient kernel.
void samtrain_direct_pack(const float *a, int cout, int n, float *packed);

// Packs the kernel of ∂x as a convolution of ∂y, W transposed and flipped, as the forward
// kernel's weights: [⌈cin / 16⌉][cout · taps][16], entry [cb][co·taps + t][c] =
// W[co][cb + c][taps − 1 − t] for W [cout][cin][taps].
void samtrain_direct_pack_flipped_weights(const float *w, int cout, int cin, int taps, float *packed);

// y[co][r][x] = bias[co] + Σ_k W[co][k] · padded[offsets[k] + s·r·pw + s·x] for one image,
// every output position (r, x) of an oh × ow output. `packed` comes from
// samtrain_direct_pack; bias may be NULL; `buffer` holds
// samtrain_direct_forward_buffer_count() floats of scratch.
void samtrain_direct_conv_forward(const float *padded, const int32_t *offsets, int K,
                                  const float *packed, int cout, int oh, int ow, int stride,
                                  int pw, const float *bias, float *y, float *buffer);
long samtrain_direct_forward_buffer_count(void);

// dW[co][k] += Σ_(r,x) packedGradient[co][r·ow + x] · padded[offsets[k] + s·r·pw + s·x].
void samtrain_direct_conv_weight_gradient(const float *padded, const int32_t *offsets, int K,
                                          const float *packedGradient, int cout, int oh,
                                          int ow, int stride, int pw, float *dw);

// Flushes subnormal floats to zero on the calling thread (x86 MXCSR FTZ and DAZ; nothing
// elsewhere). A softmax's tail and the gradients behind it reach below 1.2e-38, and every
// operation on such a value takes a slow microcode assist (docs/algorithms.md §6.7).
void samtrain_flush_subnormals(void);
