/* digitrec's native training kernels, for the layers eager PyTorch runs far below the arithmetic's
 * cost on a CPU (kernels.py loads them with ctypes; optim.py uses the optimizer steps):
 *   cpr_*   a first block of conv (1 input channel, 3x3, valid) -> 2x2 max-pool -> ReLU, forward and
 *           backward (weight and bias gradients; the input is data);
 *   stem_*  a stride-2 stem of conv (1 input channel) -> batch-statistics BatchNorm -> ReLU;
 *   pool_*  2x2 max-pooling [+ ReLU] of channels-last activations;
 *   cpool_backward  the backward pass of a conv (16k input channels, 3x3, valid) -> 2x2 max-pool
 *           [-> ReLU] block, multiplying only the conv outputs the pooling passed a gradient to;
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
#include <stdlib.h>
#include <string.h>
#ifdef __AVX512BW__
#include <immintrin.h>
#endif

typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
typedef uint32_t v16u __attribute__((vector_size(64)));
typedef uint16_t v16h __attribute__((vector_size(32)));
typedef uint16_t v32h __attribute__((vector_size(64)));
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

/* element o of a bfloat16 or float32 array, as float */
static inline float gradient(const void *g, int g_bf16, size_t o) {
    return g_bf16 ? to_float(((const uint16_t *)g)[o]) : ((const float *)g)[o];
}

static inline v16f load16(const void *p, size_t i, int bf16) {
    v16f f;
    if (bf16) {  /* each bfloat16 becomes the top half of a float: interleave it with zeros */
        v16h h, z = {0};
        memcpy(&h, (const uint16_t *)p + i, 32);
        v32h u = __builtin_shufflevector(z, h, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23, 8, 24, 9, 25,
                                         10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
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
                            gv[l] = gradient(g, g_bf16, o + l);
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

/* The backward pass of a conv (Cin input channels, 3x3, valid) -> 2x2 max-pool [-> ReLU] block,
 * from the pooled gradient. Why: the max-pool passes a gradient to one conv output in four, and the
 * ReLU stops about half of those, yet a convolution's backward pass multiplies every position
 * (oneDNN's 1.5 ms of conv2-fc64's 3.7 ms step). Here each live (image, pooled output, channel)
 * adds its gradient times one 3x3xCin input patch to the weight gradient, and times the channel's
 * weights to the input gradient: the same sums with about an eighth of the products.
 * x (N, H, W, Cin) the conv's input; g and arg (N, Ho, Wo, C), arg as pool_forward writes it;
 * wt (C, 3, 3, Cin) float32, the weights the forward pass used. Written, not accumulated:
 * dw (C, 3, 3, Cin), db (C) unless NULL, dx (N, H, W, Cin) unless NULL. Cin a multiple of 16, <= 64;
 * C a multiple of 16.
 *
 * The live outputs are first listed (about half are live, at random, so a branch per output would be
 * mispredicted half the time; with AVX-512, 16 at a time, compressed into the list): for dw, one
 * channel's over all images, where the patch under each starts in x; for dx, one image's, grouped by
 * the patch they share, so that a group's sum stays in registers. */
typedef float v16f_u __attribute__((vector_size(64), aligned(4)));  /* a v16f at any float address */

#ifdef __AVX512BW__
static inline __m512 gradient16(const void *g, int g_bf16, size_t o) {  /* 16 contiguous gradients */
    if (g_bf16)
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)((const uint16_t *)g + o))), 16));
    return _mm512_loadu_ps((const float *)g + o);
}
#endif

/* channel c's live outputs; base[m] is where the window of pooled output m (over all images) starts in x */
static int live_of_channel(const void *g, int g_bf16, const uint8_t *arg, const int32_t *base, int c, int M,
                           int W, int Cin, int C, int32_t *off, float *gl) {
    int cnt = 0;
#ifdef __AVX512BW__
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m128i a_shift = _mm_cvtsi32_si128((c & 3) * 8);
    for (int m0 = 0; m0 < M; m0 += 16) {
        const __mmask16 in = M - m0 >= 16 ? 0xFFFF : (__mmask16)((1u << (M - m0)) - 1);
        const __m512i o = _mm512_add_epi32(_mm512_mullo_epi32(_mm512_add_epi32(_mm512_set1_epi32(m0), lane),
                                                              _mm512_set1_epi32(C)), _mm512_set1_epi32(c));
        /* aligned 4-byte words, so no gather reads past the end of arg or g */
        __m512i av = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), in, _mm512_andnot_si512(_mm512_set1_epi32(3), o),
                                                 arg, 1);
        av = _mm512_and_si512(_mm512_srl_epi32(av, a_shift), _mm512_set1_epi32(0xFF));
        __m512 gv;
        if (g_bf16) {
            __m512i w = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), in, _mm512_srli_epi32(o, 1), g, 4);
            w = (c & 1) ? _mm512_and_si512(w, _mm512_set1_epi32((int)0xFFFF0000)) : _mm512_slli_epi32(w, 16);
            gv = _mm512_castsi512_ps(w);
        } else {
            gv = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), in, o, g, 4);
        }
        const __mmask16 live = _mm512_mask_cmplt_epi32_mask(in, av, _mm512_set1_epi32(4))
                               & _mm512_cmp_ps_mask(gv, _mm512_setzero_ps(), _CMP_NEQ_UQ);
        const __m512i dr = _mm512_and_si512(_mm512_srli_epi32(av, 1), _mm512_set1_epi32(1));
        const __m512i ds = _mm512_and_si512(av, _mm512_set1_epi32(1));
        const __m512i ov = _mm512_add_epi32(_mm512_maskz_loadu_epi32(in, base + m0),
                                            _mm512_add_epi32(_mm512_mullo_epi32(dr, _mm512_set1_epi32(W * Cin)),
                                                             _mm512_mullo_epi32(ds, _mm512_set1_epi32(Cin))));
        _mm512_storeu_si512(off + cnt, _mm512_maskz_compress_epi32(live, ov));  /* lists have 16 spare */
        _mm512_storeu_ps(gl + cnt, _mm512_maskz_compress_ps(live, gv));
        cnt += __builtin_popcount(live);
    }
#else
    for (int m = 0; m < M; m++) {
        const size_t o = (size_t)m * C + c;
        const int a = arg[o];
        const float gv = gradient(g, g_bf16, o);
        off[cnt] = base[m] + ((a >> 1) & 1) * W * Cin + (a & 1) * Cin;
        gl[cnt] = gv;
        cnt += (a < 4) & (gv != 0.0f);
    }
#endif
    return cnt;
}

/* image n's live outputs, grouped by pooled output q and window position a: group (q, a) ends at
 * ends[4q + a] */
static void live_of_image(const void *g, int g_bf16, const uint8_t *arg, int n, int P, int C, int32_t *ends,
                          float *gl, int32_t *ch) {
    int cnt = 0;
    for (int q = 0; q < P; q++) {
        const size_t o = ((size_t)n * P + q) * C;
        for (int a = 0; a < 4; a++) {
#ifdef __AVX512BW__
            for (int c0 = 0; c0 < C; c0 += 16) {
                const __m512i av = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(arg + o + c0)));
                const __m512 gv = gradient16(g, g_bf16, o + c0);
                const __mmask16 live = _mm512_cmpeq_epi32_mask(av, _mm512_set1_epi32(a))
                                       & _mm512_cmp_ps_mask(gv, _mm512_setzero_ps(), _CMP_NEQ_UQ);
                const __m512i cv = _mm512_add_epi32(_mm512_set1_epi32(c0), _mm512_setr_epi32(
                    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
                _mm512_storeu_si512(ch + cnt, _mm512_maskz_compress_epi32(live, cv));
                _mm512_storeu_ps(gl + cnt, _mm512_maskz_compress_ps(live, gv));
                cnt += __builtin_popcount(live);
            }
#else
            for (int c = 0; c < C; c++) {
                const float gv = gradient(g, g_bf16, o + c);
                ch[cnt] = c;
                gl[cnt] = gv;
                cnt += (arg[o + c] == a) & (gv != 0.0f);
            }
#endif
            ends[4 * q + a] = cnt;
        }
    }
}

/* one channel's weight gradient (9, 16nv) from its live list; nv and x_bf16 are constants where
 * this is inlined, so the 9nv accumulators live in registers */
static inline __attribute__((always_inline)) void cpool_dw(const void *x, const int x_bf16, const int32_t *off,
                                                           const float *gl, int cnt, int W, float *dwc,
                                                           const int nv) {
    const int Cin = 16 * nv;
    v16f acc[36];
#pragma GCC unroll 36
    for (int k = 0; k < 9 * nv; k++) acc[k] = (v16f){0};
    for (int e = 0; e < cnt; e++) {
        const float gv = gl[e];
#pragma GCC unroll 9
        for (int k = 0; k < 9; k++)
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++)
                acc[k * nv + v] += gv * load16(x, off[e] + ((k / 3) * W + k % 3) * Cin + 16 * v, x_bf16);
    }
#pragma GCC unroll 36
    for (int k = 0; k < 9 * nv; k++) *(v16f_u *)(dwc + 16 * k) = acc[k];
}

/* a group's sum of gradient x channel weights, wt (C, 3, 3, Cin) float32 */
static inline __attribute__((always_inline)) void group_sum(const float *wt, const float *gl, const int32_t *ch,
                                                            int start, int end, v16f *acc, const int nv) {
    for (int e = start; e < end; e++) {
        const float *wc = wt + (size_t)ch[e] * 9 * 16 * nv;
#pragma GCC unroll 36
        for (int k = 0; k < 9 * nv; k++) acc[k] += gl[e] * *(const v16f_u *)(wc + 16 * k);
    }
}

#ifdef __AVX512BF16__
/* With bfloat16 x, g and weights (bfloat16 autocast), AVX512-BF16's vdpbf16ps adds two products to
 * each of 16 float sums in one instruction, instead of the one an FMA adds after a conversion. */
static const uint16_t interleave_idx[32] = {0, 32, 1, 33, 2, 34, 3, 35, 4, 36, 5, 37, 6, 38, 7, 39,
                                            8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47};

static inline uint32_t bf16_bits(float f) {  /* f holds a bfloat16 value */
    uint32_t u;
    memcpy(&u, &f, 4);
    return u >> 16;
}

/* dw: live entries two at a time, their patches interleaved to pair each one's value with its gradient */
static inline __attribute__((always_inline)) void cpool_dw_bf16(const uint16_t *x, const int32_t *off,
                                                                const float *gl, int cnt, int W, float *dwc,
                                                                const int nv) {
    const int Cin = 16 * nv;
    const __m512i idx = _mm512_loadu_si512(interleave_idx);
    __m512 acc[36];
#pragma GCC unroll 36
    for (int k = 0; k < 9 * nv; k++) acc[k] = _mm512_setzero_ps();
    for (int e = 0; e < cnt; e += 2) {
        const int two = e + 1 < cnt;
        const __m512bh B = (__m512bh)_mm512_set1_epi32(
            (int)(bf16_bits(gl[e]) | (two ? bf16_bits(gl[e + 1]) << 16 : 0)));
        const uint16_t *xa = x + off[e], *xb = x + off[e + two];
#pragma GCC unroll 9
        for (int k = 0; k < 9; k++)
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++) {
                const int t = ((k / 3) * W + k % 3) * Cin + 16 * v;
                const __m512i A = _mm512_permutex2var_epi16(
                    _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(xa + t))), idx,
                    _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(xb + t))));
                acc[k * nv + v] = _mm512_dpbf16_ps(acc[k * nv + v], (__m512bh)A, B);
            }
    }
#pragma GCC unroll 36
    for (int k = 0; k < 9 * nv; k++) _mm512_storeu_ps(dwc + 16 * k, acc[k]);
}

/* image n's live outputs for dx, by channel pair (c, c+1): per group (pooled output q, window
 * position a), the pairs with a live member, as their two gradients (a dead member's zeroed) */
static void live_pairs_of_image(const uint16_t *g, const uint8_t *arg, int n, int P, int C, int32_t *ends,
                                uint32_t *pg, int32_t *pair) {
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int cnt = 0;
    for (int q = 0; q < P; q++) {
        const size_t o = ((size_t)n * P + q) * C;
        for (int a = 0; a < 4; a++) {
            for (int c0 = 0; c0 < C; c0 += 16) {
                const __mmask16 m = _mm_cmpeq_epi8_mask(_mm_loadu_si128((const __m128i *)(arg + o + c0)),
                                                        _mm_set1_epi8((char)a));
                const __m256i gy = _mm256_maskz_loadu_epi16(m, g + o + c0);
                const __mmask8 live = _mm256_test_epi32_mask(gy, gy);
                _mm256_storeu_si256((__m256i *)(pg + cnt), _mm256_maskz_compress_epi32(live, gy));
                _mm256_storeu_si256((__m256i *)(pair + cnt), _mm256_maskz_compress_epi32(
                    live, _mm256_add_epi32(iota, _mm256_set1_epi32(c0 / 2))));
                cnt += __builtin_popcount(live);
            }
            ends[4 * q + a] = cnt;
        }
    }
}

/* a group's sum over its channel pairs of their two gradients times their weights, wp
 * (C/2, 3, 3, Cin, 2) bfloat16 */
static inline __attribute__((always_inline)) void group_sum_bf16(const uint16_t *wp, const uint32_t *pg,
                                                                 const int32_t *pair, int start, int end,
                                                                 v16f *acc, const int nv) {
    for (int e = start; e < end; e++) {
        const __m512bh B = (__m512bh)_mm512_set1_epi32((int)pg[e]);
        const uint16_t *w2 = wp + (size_t)pair[e] * 18 * 16 * nv;
#pragma GCC unroll 36
        for (int k = 0; k < 9 * nv; k++)
            acc[k] = (v16f)_mm512_dpbf16_ps((__m512)acc[k], (__m512bh)_mm512_loadu_si512(w2 + 32 * k), B);
    }
}
#endif

/* one image's input gradient into buf (H, W, 16nv) float32: each group's sum is made in registers,
 * then added to its patch; `pairs`: the lists and weights are live_pairs_of_image's and bfloat16 pairs */
static inline __attribute__((always_inline)) void cpool_dx(const void *w, const int32_t *ends, const void *gv,
                                                           const int32_t *ch, int Ho, int Wo, int W, float *buf,
                                                           const int nv, const int pairs) {
    const int Cin = 16 * nv;
    int start = 0;
    for (int i = 0; i < Ho; i++)
        for (int j = 0; j < Wo; j++)
            for (int a = 0; a < 4; a++) {
                const int end = ends[4 * (i * Wo + j) + a];
                if (end == start) continue;
                v16f acc[36];
#pragma GCC unroll 36
                for (int k = 0; k < 9 * nv; k++) acc[k] = (v16f){0};
#ifdef __AVX512BF16__
                if (pairs)
                    group_sum_bf16(w, gv, ch, start, end, acc, nv);
                else
#endif
                    group_sum(w, gv, ch, start, end, acc, nv);
                float *d = buf + ((2 * i + (a >> 1)) * W + 2 * j + (a & 1)) * Cin;
#pragma GCC unroll 9
                for (int k = 0; k < 9; k++)
#pragma GCC unroll 4
                    for (int v = 0; v < nv; v++) *(v16f_u *)(d + ((k / 3) * W + k % 3) * Cin + 16 * v) += acc[k * nv + v];
                start = end;
            }
}

#define CPOOL_NV(call, b) \
    switch (nv) { case 1: call(1, b); break; case 2: call(2, b); break; case 3: call(3, b); break; default: call(4, b); }

void cpool_backward(const void *x, int x_bf16, const void *g, int g_bf16, const uint8_t *arg, const float *wt,
                    int N, int H, int W, int Cin, int C, float *dw, float *db, void *dx, int dx_bf16,
                    int threads) {
    const int Ho = (H - 2) / 2, Wo = (W - 2) / 2, nv = Cin / 16, M = N * Ho * Wo, P = Ho * Wo;
    const int L = (M > P * C ? M : P * C) + 16;  /* a list's length, with room for a last whole vector */
    int32_t *base = malloc(sizeof(int32_t) * M);
    for (int m = 0; m < M; m++) base[m] = (((m / P) * H + 2 * (m % P / Wo)) * W + 2 * (m % Wo)) * Cin;
    uint16_t *wp = NULL;  /* the weights as bfloat16 channel pairs, when everything is bfloat16 */
#ifdef __AVX512BF16__
    if (x_bf16 && g_bf16) {
        wp = malloc(sizeof(uint16_t) * 9 * Cin * C);
        for (int c = 0; c < C; c++)
            for (int t = 0; t < 9 * Cin; t++) wp[((size_t)(c / 2) * 9 * Cin + t) * 2 + (c & 1)] = to_bf16(wt[(size_t)c * 9 * Cin + t]);
    }
#endif
#pragma omp parallel num_threads(threads)
    {
        int32_t *off = malloc(sizeof(int32_t) * L), *ch = malloc(sizeof(int32_t) * L);
        int32_t *ends = malloc(sizeof(int32_t) * 4 * P);
        float *gl = malloc(sizeof(float) * L), *buf = aligned_alloc(64, sizeof(float) * H * W * Cin);
#pragma omp for schedule(dynamic, 2) nowait
        for (int c = 0; c < C; c++) {
            const int cnt = live_of_channel(g, g_bf16, arg, base, c, M, W, Cin, C, off, gl);
            float bsum = 0.0f;
            for (int e = 0; e < cnt; e++) bsum += gl[e];
            if (db) db[c] = bsum;
#define DW(k, b) cpool_dw(x, b, off, gl, cnt, W, dw + (size_t)c * 9 * Cin, k)
#ifdef __AVX512BF16__
#define DWB(k, b) cpool_dw_bf16(x, off, gl, cnt, W, dw + (size_t)c * 9 * Cin, k)
            if (wp) {
                CPOOL_NV(DWB, 1)
                continue;
            }
#endif
            if (x_bf16) {
                CPOOL_NV(DW, 1)
            } else {
                CPOOL_NV(DW, 0)
            }
        }
        if (dx) {
#pragma omp for schedule(static)
            for (int n = 0; n < N; n++) {
                memset(buf, 0, sizeof(float) * H * W * Cin);
#ifdef __AVX512BF16__
                if (wp) {
                    live_pairs_of_image(g, arg, n, P, C, ends, (uint32_t *)gl, ch);
#define DXB(k, b) cpool_dx(wp, ends, gl, ch, Ho, Wo, W, buf, k, 1)
                    CPOOL_NV(DXB, 0)
                } else
#endif
                {
                    live_of_image(g, g_bf16, arg, n, P, C, ends, gl, ch);
#define DX(k, b) cpool_dx(wt, ends, gl, ch, Ho, Wo, W, buf, k, 0)
                    CPOOL_NV(DX, 0)
                }
                const size_t o = (size_t)n * H * W * Cin;
                for (int q = 0; q < H * W * nv; q++)
                    store_rounded(dx, o + (size_t)q * 16, *(v16f_u *)(buf + 16 * q), 16, dx_bf16);
            }
        }
        free(off), free(ch), free(ends), free(gl), free(buf);
    }
    free(base), free(wp);
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
