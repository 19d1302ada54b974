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

// Packs weights W[cout][K] as [⌈cout / 16⌉][K][16].
void samtrain_direct_pack_weights(const float *w, int cout, int K, float *packed);

// y[co][r][x] = bias[co] + Σ_k W[co][k] · padded[offsets[k] + s·r·pw + s·x] for one image,
// every output position (r, x) of an oh × ow output. `packed` comes from
// samtrain_direct_pack_weights; bias may be NULL; `buffer` holds
// samtrain_direct_forward_buffer_count() floats of scratch.
void samtrain_direct_conv_forward(const float *padded, const int32_t *offsets, int K,
                                  const float *packed, int cout, int oh, int ow, int stride,
                                  int pw, const float *bias, float *y, float *buffer);
long samtrain_direct_forward_buffer_count(void);

// Packs one image's ∂Y [cout][positions] as [⌈cout / 16⌉][positions][16].
void samtrain_direct_pack_gradient(const float *dy, int cout, int positions, float *packed);

// dW[co][k] += Σ_(r,x) packedGradient[co][r·ow + x] · padded[offsets[k] + s·r·pw + s·x].
void samtrain_direct_conv_weight_gradient(const float *padded, const int32_t *offsets, int K,
                                          const float *packedGradient, int cout, int oh,
                                          int ow, int stride, int pw, float *dw);
