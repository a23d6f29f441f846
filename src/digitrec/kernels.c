/* digitrec's native training kernels, for the layers eager PyTorch runs far below the arithmetic's
 * cost on a CPU (kernels.py loads them with ctypes; optim.py uses the optimizer steps):
 *   cpr_*   a first block of conv (1 input channel, 3x3, valid) -> 2x2 max-pool -> ReLU, forward and
 *           backward (weight and bias gradients; the input is data);
 *   stem_*  a stride-2 stem of conv (1 input channel) -> batch-statistics BatchNorm -> ReLU;
 *   pool_*  2x2 max-pooling [+ ReLU] of channels-last activations;
 *   adam_step, sgd_step   one pass over a flat parameter tensor.
 *
 * Why the first: in eager PyTorch this block of conv2-fc64 writes a 24x24x32 activation, pools it
 * with int64 indices, zero-fills a gradient of the same size and scatters into it: about 40% of a
 * classic training step for 1% of its arithmetic. Here each pooled output is the max of four 9-tap
 * dot products kept in registers, and the backward pass needs only a one-byte "which of the four".
 *
 * cpr layouts: x (N, H, W) float32; w (9, Cp) float32 and b (Cp), channels zero-padded to Cp, a
 * multiple of 16; y and arg (N, Ho, Wo, C), i.e. channels-last; g (N, Ho, Wo, C) bfloat16 or float32.
 * Built with -fopenmp against the libgomp that PyTorch has already loaded, so both share one thread
 * pool.
 */
#include <stdint.h>
#include <math.h>
#include <string.h>

typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
typedef uint32_t v16u __attribute__((vector_size(64)));
typedef uint16_t v16h __attribute__((vector_size(32)));
typedef uint8_t v16b __attribute__((vector_size(16)));

static inline uint16_t to_bf16(float f) {  /* round to nearest even, as PyTorch does */
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* 16 channels of a per-channel array, from channel 16 * cb */
static inline v16f vec(const float *p, int cb) {
    v16f v;
    memcpy(&v, p + cb * 16, 64);
    return v;
}

/* the first n (<= 16) lanes of v at y + o, as float32 or rounded to nearest-even bfloat16 */
static inline void store_rounded(void *y, size_t o, v16f v, int n, int bf16) {
    if (n == 16 && bf16) {
        v16u u = (v16u)v;
        u += 0x7FFFu + ((u >> 16) & 1u);
        v16h h = __builtin_convertvector(u >> 16, v16h);
        memcpy((uint16_t *)y + o, &h, 32);
    } else if (n == 16) {
        memcpy((float *)y + o, &v, 64);
    } else {
        for (int l = 0; l < n; l++) {
            if (bf16)
                ((uint16_t *)y)[o + l] = to_bf16(v[l]);
            else
                ((float *)y)[o + l] = v[l];
        }
    }
}

static inline float to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline v16f load16(const void *p, size_t i, int bf16) {
    v16f f;
    if (bf16) {
        v16h h;
        memcpy(&h, (const uint16_t *)p + i, 32);
        v16u u = __builtin_convertvector(h, v16u) << 16;
        memcpy(&f, &u, 64);
    } else {
        memcpy(&f, (const float *)p + i, 64);
    }
    return f;
}

static inline void store16(void *p, size_t i, v16f f, int bf16) {
    if (bf16) {  /* f holds bfloat16 values: keep their top halves */
        v16h h = __builtin_convertvector((v16u)f >> 16, v16h);
        memcpy((uint16_t *)p + i, &h, 32);
    } else {
        memcpy((float *)p + i, &f, 64);
    }
}

/* the 3x3 input patch under each of the four conv outputs that one pooled output covers */
static inline void patches(const float *xn, int W, int i, int j, float px[4][9]) {
    for (int p = 0; p < 4; p++)
        for (int k = 0; k < 9; k++)
            px[p][k] = xn[(2 * i + (p >> 1) + k / 3) * W + 2 * j + (p & 1) + k % 3];
}

/* arg: which of the four conv outputs (row-major, first wins ties, as max_pool2d) was the max,
 * or 4 where the ReLU zeroed the result (no gradient flows). */
void cpr_forward(const float *x, const float *w, const float *b, int N, int H, int W, int C, int Cp,
                 void *y, int bf16, uint8_t *arg, int threads) {
    const int Ho = (H - 2) / 2, Wo = (W - 2) / 2, nb = Cp / 16;
#pragma omp parallel num_threads(threads)
    for (int cb = 0; cb < nb; cb++) {  /* 16 channels' weights stay in registers across positions */
        v16f wk[9], bias;
        for (int k = 0; k < 9; k++) memcpy(&wk[k], w + (size_t)k * Cp + cb * 16, 64);
        memcpy(&bias, b + cb * 16, 64);
        const int n16 = C - cb * 16 < 16 ? C - cb * 16 : 16;
        float px[4][9];
#pragma omp for schedule(static) nowait
        for (int n = 0; n < N; n++) {
            const float *xn = x + (size_t)n * H * W;
            for (int i = 0; i < Ho; i++)
                for (int j = 0; j < Wo; j++) {
                    patches(xn, W, i, j, px);
                    v16f best = {0};
                    v16i a = {0};
                    for (int p = 0; p < 4; p++) {
                        v16f acc = bias;
                        for (int k = 0; k < 9; k++) acc += px[p][k] * wk[k];
                        if (p == 0) {
                            best = acc;
                        } else {
                            v16i gt = acc > best;
                            best = (v16f)(((v16i)acc & gt) | ((v16i)best & ~gt));
                            a = (p & gt) | (a & ~gt);
                        }
                    }
                    v16i pos = best > 0;
                    a = (a & pos) | (4 & ~pos);
                    best = (v16f)((v16i)best & pos);  /* the ReLU */
                    size_t o = (((size_t)n * Ho + i) * Wo + j) * C + cb * 16;
                    store_rounded(y, o, best, n16, bf16);
                    if (n16 == 16) {  /* a whole vector: store it at once */
                        v16b a8 = __builtin_convertvector(a, v16b);
                        memcpy(arg + o, &a8, 16);
                    } else {
                        for (int l = 0; l < n16; l++) arg[o + l] = (uint8_t)a[l];
                    }
                }
        }
    }
}

/* g (N, Ho, Wo, C) in bfloat16 or float32; dw (C, 9) and db (C) are written, not accumulated. */
void cpr_backward(const float *x, const void *g, int g_bf16, const uint8_t *arg, int N, int H, int W, int C,
                  int Cp, float *dw, float *db, int threads) {
    const int Ho = (H - 2) / 2, Wo = (W - 2) / 2, nb = Cp / 16;
    memset(dw, 0, sizeof(float) * 9 * C);
    memset(db, 0, sizeof(float) * C);
#pragma omp parallel num_threads(threads)
    for (int cb = 0; cb < nb; cb++) {
        v16f aw[9] = {{0}}, ab = {0};
        const int n16 = C - cb * 16 < 16 ? C - cb * 16 : 16;
        float px[4][9];
#pragma omp for schedule(static) nowait
        for (int n = 0; n < N; n++) {
            const float *xn = x + (size_t)n * H * W;
            for (int i = 0; i < Ho; i++)
                for (int j = 0; j < Wo; j++) {
                    size_t o = (((size_t)n * Ho + i) * Wo + j) * C + cb * 16;
                    v16f gv = {0};
                    v16i ai = {4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4};
                    if (n16 == 16) {
                        v16b a8;
                        gv = load16(g, o, g_bf16);
                        memcpy(&a8, arg + o, 16);
                        ai = __builtin_convertvector(a8, v16i);
                    } else {
                        for (int l = 0; l < n16; l++) {
                            gv[l] = g_bf16 ? to_float(((const uint16_t *)g)[o + l]) : ((const float *)g)[o + l];
                            ai[l] = arg[o + l];
                        }
                    }
                    gv = (v16f)((v16i)gv & (ai < 4));
                    ab += gv;
                    patches(xn, W, i, j, px);
                    for (int p = 0; p < 4; p++) {
                        v16f gp = (v16f)((v16i)gv & (ai == p));
                        for (int k = 0; k < 9; k++) aw[k] += gp * px[p][k];
                    }
                }
        }
#pragma omp critical
        for (int l = 0; l < n16; l++) {
            for (int k = 0; k < 9; k++) dw[(size_t)(cb * 16 + l) * 9 + k] += aw[k][l];
            db[cb * 16 + l] += ab[l];
        }
    }
}

/* 2x2 max-pooling of a channels-last (N, H, W, C) tensor (H, W even), bfloat16 or float32, with an
 * optional ReLU; arg as above. Why: max_pool2d_with_indices writes int64 indices and its backward
 * zero-fills the whole input gradient before scattering into it; here the forward pass writes a byte
 * per output and the backward pass writes each input gradient once. 16 channels at a time: C is a
 * multiple of 16 (kernels.py sends other tensors to PyTorch). */

/* offsets of the four inputs of pooled output (n, i, j), row-major */
static inline void window(int n, int i, int j, int H, int W, int C, size_t off[4]) {
    for (int p = 0; p < 4; p++) off[p] = (((size_t)n * H + 2 * i + (p >> 1)) * W + 2 * j + (p & 1)) * C;
}

void pool_forward(const void *x, int N, int H, int W, int C, int bf16, int relu, void *y, uint8_t *arg,
                  int threads) {
    const int Ho = H / 2, Wo = W / 2;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int r = 0; r < N * Ho; r++) {
        const int n = r / Ho, i = r % Ho;
        for (int j = 0; j < Wo; j++) {
            size_t src[4];
            window(n, i, j, H, W, C, src);
            size_t o = ((size_t)r * Wo + j) * C;
            for (int c = 0; c < C; c += 16) {
                v16f best = load16(x, src[0] + c, bf16);
                v16i a = {0};
                for (int p = 1; p < 4; p++) {
                    v16f v = load16(x, src[p] + c, bf16);
                    v16i gt = v > best;
                    best = (v16f)(((v16i)v & gt) | ((v16i)best & ~gt));
                    a = (p & gt) | (a & ~gt);
                }
                if (relu) {
                    v16i pos = best > 0;
                    best = (v16f)((v16i)best & pos);
                    a = (a & pos) | (4 & ~pos);
                }
                store16(y, o + c, best, bf16);
                v16b a8 = __builtin_convertvector(a, v16b);
                memcpy(arg + o + c, &a8, 16);
            }
        }
    }
}

void pool_backward(const void *g, const uint8_t *arg, int N, int H, int W, int C, int bf16, void *gx,
                   int threads) {
    const int Ho = H / 2, Wo = W / 2;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int r = 0; r < N * Ho; r++) {
        const int n = r / Ho, i = r % Ho;
        for (int j = 0; j < Wo; j++) {
            size_t dst[4];
            window(n, i, j, H, W, C, dst);
            size_t o = ((size_t)r * Wo + j) * C;
            for (int c = 0; c < C; c += 16) {
                v16f v = load16(g, o + c, bf16);
                v16b a8;
                memcpy(&a8, arg + o + c, 16);
                v16i a = __builtin_convertvector(a8, v16i);
                for (int p = 0; p < 4; p++) store16(gx, dst[p] + c, (v16f)((v16i)v & (a == p)), bf16);
            }
        }
    }
}

/* A stem of conv (1 input channel, 3x3, stride 2, zero padding 1, no bias) -> BatchNorm (batch
 * statistics, as in training) -> ReLU, for C a multiple of 16. Why: on the fast recipe's 128x1x20x20
 * batches the three layers cost ~0.5 ms a step in eager PyTorch (mostly fixed per-op cost and
 * bfloat16 round trips) for 4 MFLOP. z (N, Ho, Wo, C) float keeps the convolution's output for the
 * backward pass; mean and rstd (C) the batch statistics; running_mean/var are updated in place with
 * PyTorch's momentum rule (unbiased variance). */
static inline void stem_patch(const float *xn, int H, int W, int i, int j, float px[9]) {
    for (int k = 0; k < 9; k++) {
        int r = 2 * i - 1 + k / 3, c = 2 * j - 1 + k % 3;
        px[k] = (r >= 0 && r < H && c >= 0 && c < W) ? xn[r * W + c] : 0.0f;
    }
}

void stem_forward(const float *x, const float *w /* (9, C) */, const float *gamma, const float *beta,
                  int N, int H, int W, int C, float eps, float momentum, float *running_mean,
                  float *running_var, float *z, float *mean, float *rstd, void *y, int bf16, int threads) {
    const int Ho = (H + 1) / 2, Wo = (W + 1) / 2, nb = C / 16;
    const size_t M = (size_t)N * Ho * Wo;
    memset(mean, 0, sizeof(float) * C);
    memset(rstd, 0, sizeof(float) * C);
#pragma omp parallel num_threads(threads)
    {
        float px[9];
        for (int cb = 0; cb < nb; cb++) {  /* the convolution, and each channel's sum */
            v16f wk[9], s = {0};
            for (int k = 0; k < 9; k++) memcpy(&wk[k], w + (size_t)k * C + cb * 16, 64);
#pragma omp for schedule(static) nowait
            for (int n = 0; n < N; n++)
                for (int i = 0; i < Ho; i++)
                    for (int j = 0; j < Wo; j++) {
                        stem_patch(x + (size_t)n * H * W, H, W, i, j, px);
                        v16f acc = {0};
                        for (int k = 0; k < 9; k++) acc += px[k] * wk[k];
                        memcpy(z + (((size_t)n * Ho + i) * Wo + j) * C + cb * 16, &acc, 64);
                        s += acc;
                    }
#pragma omp critical
            for (int l = 0; l < 16; l++) mean[cb * 16 + l] += s[l];
        }
#pragma omp barrier
#pragma omp single
        for (int c = 0; c < C; c++) mean[c] /= (float)M;
        for (int cb = 0; cb < nb; cb++) {  /* the variance about the mean (two passes: no cancellation) */
            v16f m = vec(mean, cb), s = {0};
#pragma omp for schedule(static) nowait
            for (size_t r = 0; r < M; r++) {
                v16f d;
                memcpy(&d, z + r * C + cb * 16, 64);
                d -= m;
                s += d * d;
            }
#pragma omp critical
            for (int l = 0; l < 16; l++) rstd[cb * 16 + l] += s[l];
        }
#pragma omp barrier
#pragma omp single
        for (int c = 0; c < C; c++) {
            float var = rstd[c] / (float)M;
            running_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean[c];
            running_var[c] = (1 - momentum) * running_var[c] + momentum * var * (float)M / (float)(M - 1);
            rstd[c] = 1.0f / sqrtf(var + eps);
        }
        for (int cb = 0; cb < nb; cb++) {  /* normalise, scale, shift, ReLU */
            v16f m = vec(mean, cb), rs = vec(rstd, cb), ga = vec(gamma, cb), be = vec(beta, cb);
            v16f scale = rs * ga, shift = be - m * rs * ga;
#pragma omp for schedule(static) nowait
            for (size_t r = 0; r < M; r++) {
                v16f v;
                memcpy(&v, z + r * C + cb * 16, 64);
                v = v * scale + shift;
                v = (v16f)((v16i)v & (v > 0));
                store_rounded(y, r * C + cb * 16, v, 16, bf16);
            }
        }
    }
}

/* g (N, Ho, Wo, C) bfloat16 or float32; writes dw (C, 9), dgamma and dbeta (C). */
void stem_backward(const float *x, const float *gamma, const float *beta, const float *z,
                   const float *mean, const float *rstd, const void *g, int g_bf16, int N, int H, int W, int C,
                   float *dw, float *dgamma, float *dbeta, int threads) {
    const int Ho = (H + 1) / 2, Wo = (W + 1) / 2, nb = C / 16;
    const size_t M = (size_t)N * Ho * Wo;
    memset(dw, 0, sizeof(float) * 9 * C);
    memset(dgamma, 0, sizeof(float) * C);
    memset(dbeta, 0, sizeof(float) * C);
#pragma omp parallel num_threads(threads)
    {
        float px[9];
        for (int cb = 0; cb < nb; cb++) {  /* the ReLU's mask, then BatchNorm's two sums */
            v16f m = vec(mean, cb), rs = vec(rstd, cb), ga = vec(gamma, cb), be = vec(beta, cb);
            v16f sg = {0}, sgx = {0};
#pragma omp for schedule(static) nowait
            for (size_t r = 0; r < M; r++) {
                v16f v, xh;
                memcpy(&v, z + r * C + cb * 16, 64);
                xh = (v - m) * rs;
                v16f gv = load16(g, r * C + cb * 16, g_bf16);
                gv = (v16f)((v16i)gv & (xh * ga + be > 0));
                sg += gv;
                sgx += gv * xh;
            }
#pragma omp critical
            for (int l = 0; l < 16; l++) {
                dbeta[cb * 16 + l] += sg[l];
                dgamma[cb * 16 + l] += sgx[l];
            }
        }
#pragma omp barrier
        for (int cb = 0; cb < nb; cb++) {  /* the gradient at the convolution's output, into dw */
            v16f m = vec(mean, cb), rs = vec(rstd, cb), ga = vec(gamma, cb), be = vec(beta, cb);
            v16f db = vec(dbeta, cb), dg = vec(dgamma, cb), aw[9] = {{0}};
            const float inv_m = 1.0f / (float)M;
#pragma omp for schedule(static) nowait
            for (int n = 0; n < N; n++)
                for (int i = 0; i < Ho; i++)
                    for (int j = 0; j < Wo; j++) {
                        size_t r = ((size_t)n * Ho + i) * Wo + j;
                        v16f v, xh;
                        memcpy(&v, z + r * C + cb * 16, 64);
                        xh = (v - m) * rs;
                        v16f gv = load16(g, r * C + cb * 16, g_bf16);
                        gv = (v16f)((v16i)gv & (xh * ga + be > 0));
                        v16f gz = ga * rs * (gv - (db + xh * dg) * inv_m);
                        stem_patch(x + (size_t)n * H * W, H, W, i, j, px);
                        for (int k = 0; k < 9; k++) aw[k] += gz * px[k];
                    }
#pragma omp critical
            for (int l = 0; l < 16; l++)
                for (int k = 0; k < 9; k++) dw[(size_t)(cb * 16 + l) * 9 + k] += aw[k][l];
        }
    }
}

/* Optimizer steps over one flat float32 tensor (flatparams.py), the same arithmetic as PyTorch's
 * single-tensor Adam/AdamW and SGD in one pass. Why: torch.optim spends ~0.4 ms a step on Python
 * bookkeeping and five or six elementwise passes, 8% of a classic step for 0.1M parameters.
 * Adam: decoupled != 0 is AdamW's weight decay; bc1 = 1 - beta1^t, bc2_sqrt = sqrt(1 - beta2^t). */
void adam_step(float *p, const float *g, float *m, float *v, long n, float lr, float beta1, float beta2,
               float eps, float wd, int decoupled, float bc1, float bc2_sqrt, int threads) {
    const float step_size = lr / bc1, w1 = 1.0f - beta1, w2 = 1.0f - beta2, shrink = 1.0f - lr * wd;
#pragma omp parallel for simd num_threads(threads) schedule(static)
    for (long i = 0; i < n; i++) {
        float gi = g[i], pi = p[i];
        if (decoupled)
            pi *= shrink;
        else
            gi += wd * pi;
        float mi = m[i] + w1 * (gi - m[i]); /* lerp, as torch computes it for weights below 0.5 */
        float vi = v[i] * beta2 + w2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - step_size * (mi / (sqrtf(vi) / bc2_sqrt + eps));
    }
}

/* SGD with momentum (dampening d) and optional Nesterov; `first`: the buffer starts as the gradient. */
void sgd_step(float *p, const float *g, float *buf, long n, float lr, float momentum, float dampening,
              float wd, int nesterov, int first, int threads) {
#pragma omp parallel for simd num_threads(threads) schedule(static)
    for (long i = 0; i < n; i++) {
        float d = g[i] + wd * p[i];
        if (momentum != 0.0f) {
            float b = first ? d : buf[i] * momentum + (1.0f - dampening) * d;
            buf[i] = b;
            d = nesterov ? d + momentum * b : b;
        }
        p[i] -= lr * d;
    }
}
