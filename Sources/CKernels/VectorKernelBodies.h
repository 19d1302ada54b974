// The bodies of the vector kernels (see include/CKernels.h), written once as plain loops and
// compiled three times by VectorKernels.c: for AVX-512, for AVX2 + FMA and for any x86-64 (or
// other) CPU. The compiler vectorizes each loop for the instruction set of its copy. Sums use
// `#pragma clang fp reassociate(on)` so that they vectorize too: their order then depends on
// the copy (the vector width) but not on anything else, so one path gives the same bits on
// every run (docs/algorithms.md §12).
//
// Included only from VectorKernels.c, with KERNEL(name) defined to suffix the path's name.

// eˣ for x in [−87, 88] (clamped): Cephes' expf, x = n·ln 2 + r with n rounded by adding
// 1.5·2²³, 2ⁿ built from the bits of that sum (no float-to-integer conversion), a degree-7
// polynomial in r.
static inline float KERNEL(exp)(float a) {
    const float x = a < -87.0f ? -87.0f : (a > 88.0f ? 88.0f : a);
    const float shifted = x * 1.44269504088896341f + 12582912.0f;
    const float n = shifted - 12582912.0f;
    const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * (r * r) + r + 1.0f;
    uint32_t bits;
    memcpy(&bits, &shifted, 4);
    bits = (bits - 0x4B400000u + 127u) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return y * scale;
}

// erf(x) to within 4·10⁻⁷: Eigen's and XLA's rational approximation on x clamped to [−4, 4].
static inline float KERNEL(erf)(float a) {
    const float x = a < -4.0f ? -4.0f : (a > 4.0f ? 4.0f : a);
    const float x2 = x * x;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 - 2.10102402082508e-06f;
    p = p * x2 - 5.69250639462346e-05f;
    p = p * x2 - 7.34990630326855e-04f;
    p = p * x2 - 2.95459980854025e-03f;
    p = p * x2 - 1.60960333262415e-02f;
    float q = -1.45660718464996e-05f;
    q = q * x2 - 2.13374055278905e-04f;
    q = q * x2 - 1.68282697438203e-03f;
    q = q * x2 - 7.37332916720468e-03f;
    q = q * x2 - 1.42647390514189e-02f;
    return x * p / q;
}

#define INV_SQRT2 0.70710678118654752f
#define INV_SQRT_2PI 0.39894228040143268f

static void KERNEL(gelu_forward)(const float *restrict x, float *restrict y, long n) {
    for (long i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + KERNEL(erf)(x[i] * INV_SQRT2));
}

static void KERNEL(gelu_backward)(const float *restrict x, const float *restrict dy, float *restrict dx, long n) {
    for (long i = 0; i < n; i++) {
        const float cdf = 0.5f * (1.0f + KERNEL(erf)(x[i] * INV_SQRT2));
        dx[i] = dy[i] * (cdf + x[i] * INV_SQRT_2PI * KERNEL(exp)(-0.5f * x[i] * x[i]));
    }
}

static float KERNEL(sum)(const float *restrict p, long n) {
#pragma clang fp reassociate(on)
    float s = 0;
    for (long i = 0; i < n; i++) s += p[i];
    return s;
}

static float KERNEL(max)(const float *restrict p, long n) {
    float m = p[0];
    for (long i = 1; i < n; i++) m = fmaxf(m, p[i]);  // fmaxf, unlike a comparison, vectorizes
    return m;
}

static void KERNEL(softmax_rows)(float *restrict p, long rows, long cols) {
    for (long r = 0; r < rows; r++, p += cols) {
        const float m = KERNEL(max)(p, cols);
        float z = 0;
        {
#pragma clang fp reassociate(on)
            for (long j = 0; j < cols; j++) {
                p[j] = KERNEL(exp)(p[j] - m);
                z += p[j];
            }
        }
        const float inv = 1.0f / z;
        for (long j = 0; j < cols; j++) p[j] *= inv;
    }
}

static void KERNEL(softmax_backward_rows)(const float *restrict p, float *restrict g, long rows, long cols) {
    for (long r = 0; r < rows; r++, p += cols, g += cols) {
        float c = 0;
        {
#pragma clang fp reassociate(on)
            for (long j = 0; j < cols; j++) c += p[j] * g[j];
        }
        for (long j = 0; j < cols; j++) g[j] = p[j] * (g[j] - c);
    }
}

static void KERNEL(layer_norm_forward)(const float *restrict x, const float *restrict gamma,
                                       const float *restrict beta, float *restrict y,
                                       float *restrict stats, long rows, long d, float eps) {
    for (long r = 0; r < rows; r++, x += d, y += d) {
        const float mu = KERNEL(sum)(x, d) / (float)d;
        float ss = 0;
        {
#pragma clang fp reassociate(on)
            for (long j = 0; j < d; j++) ss += (x[j] - mu) * (x[j] - mu);
        }
        const float inv = 1.0f / sqrtf(ss / (float)d + eps);
        stats[2 * r] = mu;
        stats[2 * r + 1] = inv;
        for (long j = 0; j < d; j++) y[j] = (x[j] - mu) * inv * gamma[j] + beta[j];
    }
}

static void KERNEL(layer_norm_backward)(const float *restrict x, const float *restrict dy,
                                        const float *restrict gamma, const float *restrict stats,
                                        float *restrict dx, float *restrict dgamma,
                                        float *restrict dbeta, long rows, long d) {
    for (long r = 0; r < rows; r++, x += d, dy += d) {
        const float mu = stats[2 * r], inv = stats[2 * r + 1];
        if (dgamma)
            for (long j = 0; j < d; j++) dgamma[j] += dy[j] * (x[j] - mu) * inv;
        if (dbeta)
            for (long j = 0; j < d; j++) dbeta[j] += dy[j];
        if (!dx) continue;
        // ∂x̂ = ∂y·γ; ∂x = σ⁻¹·(∂x̂ − mean(∂x̂) − x̂·mean(∂x̂·x̂))
        float sum = 0, dot = 0;
        {
#pragma clang fp reassociate(on)
            for (long j = 0; j < d; j++) {
                const float g = dy[j] * gamma[j];
                sum += g;
                dot += g * (x[j] - mu);
            }
        }
        const float meanG = sum / (float)d, meanGXhat = dot * inv / (float)d;
        float *restrict out = dx + r * d;
        for (long j = 0; j < d; j++)
            out[j] = inv * (dy[j] * gamma[j] - meanG - (x[j] - mu) * inv * meanGXhat);
    }
}

static void KERNEL(add)(const float *restrict a, const float *restrict b, float *restrict out, long n) {
    for (long i = 0; i < n; i++) out[i] = a[i] + b[i];
}

static void KERNEL(add_rows)(const float *restrict g, long rows, long cols, float *restrict sums) {
    for (long r = 0; r < rows; r++, g += cols)
        for (long j = 0; j < cols; j++) sums[j] += g[j];
}

// ---- Attention of one example: small products, one head at a time -------------------------
//
// The products of attention are T×T×(d/h) with T = 65 tokens and d/h = 64: too small for
// sgemm to reach its speed (a call cost ~4× its arithmetic). They run here as a register-tiled
// product: a tile of 6 rows × 16 columns of C lives in six 16-float vectors while k runs, each
// step broadcasting one value of A per row and loading 16 values of B. B is first copied into a
// zero-padded block whose rows hold a multiple of 16 values; A is read in place with any row
// and column stride, so transposed operands cost nothing.

// C[i][j] = alpha · Σ_k A[i·ars + k·acs] · B[k][j] for i < rows ≤ 6, j < cols ≤ 16, B with
// row stride ldb (a padded block), C with row stride ldc.
static inline void KERNEL(tile)(int rows, int cols, long K, float alpha, const float *a, long ars,
                                long acs, const float *b, long ldb, float *c, long ldc) {
    const float *a0 = a, *a1 = a + (rows > 1) * ars, *a2 = a + 2 * (rows > 2) * ars;
    const float *a3 = a + 3 * (rows > 3) * ars, *a4 = a + 4 * (rows > 4) * ars, *a5 = a + 5 * (rows > 5) * ars;
    samtrain_v16 c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, c4 = {0}, c5 = {0};
    for (long k = 0; k < K; k++) {
        samtrain_v16 bk;
        memcpy(&bk, b + k * ldb, sizeof bk);
        const long o = k * acs;
        c0 += a0[o] * bk; c1 += a1[o] * bk; c2 += a2[o] * bk;
        c3 += a3[o] * bk; c4 += a4[o] * bk; c5 += a5[o] * bk;
    }
    const samtrain_v16 out[6] = {c0 * alpha, c1 * alpha, c2 * alpha, c3 * alpha, c4 * alpha, c5 * alpha};
    if (cols == 16)
        for (int r = 0; r < rows; r++) memcpy(c + r * ldc, &out[r], sizeof out[r]);
    else
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < cols; j++) c[r * ldc + j] = out[r][j];
}

// C (M×N, row stride ldc) = alpha · A·B for A as in `tile`, B a padded K × ⌈N⌉₁₆ block.
static void KERNEL(small_product)(long M, long N, long K, float alpha, const float *a, long ars,
                                  long acs, const float *b, float *c, long ldc) {
    const long ldb = (N + 15) / 16 * 16;
    for (long i = 0; i < M; i += 6)
        for (long j = 0; j < N; j += 16)
            KERNEL(tile)(M - i < 6 ? (int)(M - i) : 6, N - j < 16 ? (int)(N - j) : 16, K, alpha,
                         a + i * ars, ars, acs, b + j, ldb, c + i * ldc + j, ldc);
}

// dst[r][j] = src[r·ld + j] (R × C), rows padded with zeros to ⌈C⌉₁₆.
static void KERNEL(pack_rows)(const float *src, long R, long C, long ld, float *dst) {
    const long w = (C + 15) / 16 * 16;
    for (long r = 0; r < R; r++) {
        memcpy(dst + r * w, src + r * ld, (size_t)C * sizeof(float));
        for (long j = C; j < w; j++) dst[r * w + j] = 0;
    }
}

// dst[j][r] = src[r·ld + j]: the transpose of an R × C block, rows padded to ⌈R⌉₁₆.
static void KERNEL(pack_transposed)(const float *src, long R, long C, long ld, float *dst) {
    const long w = (R + 15) / 16 * 16;
    for (long j = 0; j < C; j++) {
        for (long r = 0; r < R; r++) dst[j * w + r] = src[r * ld + j];
        for (long r = R; r < w; r++) dst[j * w + r] = 0;
    }
}

static void KERNEL(attention_forward)(const float *qkv, long T, long d, long heads, float *p,
                                      float *o, float *scratch) {
    const long hd = d / heads, tp = (T + 15) / 16 * 16;
    const float scale = 1.0f / sqrtf((float)hd);
    float *kt = scratch, *vp = scratch + hd * tp;
    for (long h = 0; h < heads; h++, p += T * T) {
        const float *q = qkv + h * hd, *k = q + d, *v = q + 2 * d;
        KERNEL(pack_transposed)(k, T, hd, 3 * d, kt);
        KERNEL(small_product)(T, T, hd, scale, q, 3 * d, 1, kt, p, T);     // S = QKᵀ/√(d/h)
        KERNEL(softmax_rows)(p, T, T);                                     // P
        KERNEL(pack_rows)(v, T, hd, 3 * d, vp);
        KERNEL(small_product)(T, hd, T, 1.0f, p, T, 1, vp, o + h * hd, d); // O = P·V
    }
}

static void KERNEL(attention_backward)(const float *qkv, const float *p, const float *dO, long T,
                                       long d, long heads, float *dqkv, float *scratch) {
    const long hd = d / heads, tp = (T + 15) / 16 * 16;
    const float scale = 1.0f / sqrtf((float)hd);
    float *vt = scratch, *ds = scratch + hd * tp, *bp = ds + T * tp;
    for (long h = 0; h < heads; h++, p += T * T) {
        const float *q = qkv + h * hd, *k = q + d, *v = q + 2 * d, *g = dO + h * hd;
        float *dq = dqkv + h * hd, *dk = dq + d, *dv = dq + 2 * d;
        KERNEL(pack_transposed)(v, T, hd, 3 * d, vt);
        KERNEL(small_product)(T, T, hd, 1.0f, g, d, 1, vt, ds, T);         // ∂P = ∂O·Vᵀ
        KERNEL(softmax_backward_rows)(p, ds, T, T);                        // ∂S
        KERNEL(pack_rows)(g, T, hd, d, bp);
        KERNEL(small_product)(T, hd, T, 1.0f, p, 1, T, bp, dv, 3 * d);     // ∂V = Pᵀ·∂O
        KERNEL(pack_rows)(k, T, hd, 3 * d, bp);
        KERNEL(small_product)(T, hd, T, scale, ds, T, 1, bp, dq, 3 * d);   // ∂Q = ∂S·K/√(d/h)
        KERNEL(pack_rows)(q, T, hd, 3 * d, bp);
        KERNEL(small_product)(T, hd, T, scale, ds, 1, T, bp, dk, 3 * d);   // ∂K = ∂Sᵀ·Q/√(d/h)
    }
}

static const SamtrainVectorKernels KERNEL(table) = {
    .gelu_forward = KERNEL(gelu_forward),
    .gelu_backward = KERNEL(gelu_backward),
    .softmax_rows = KERNEL(softmax_rows),
    .softmax_backward_rows = KERNEL(softmax_backward_rows),
    .layer_norm_forward = KERNEL(layer_norm_forward),
    .layer_norm_backward = KERNEL(layer_norm_backward),
    .add = KERNEL(add),
    .add_rows = KERNEL(add_rows),
    .attention_forward = KERNEL(attention_forward),
    .attention_backward = KERNEL(attention_backward),
};
