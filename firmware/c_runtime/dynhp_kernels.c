/* Kernels of the ahead-of-time C runtime (int8, and the float head). See dynhp_kernels.h.
 *
 * The fixed-point helpers follow the behaviour documented for TFLM's
 * reference kernels (tensorflow/lite/kernels/internal/common.h and the
 * gemmlowp fixed-point routines they use): a doubling high multiply with
 * round-half-away-from-zero, a rounding right shift whose ties go away from
 * zero, and "double rounding" requantization (TFLM's default build). Written
 * for this project from that description.
 */
#include "dynhp_kernels.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* Inner loops stay out of line: inlined into a kernel's loops they compete
 * for the M4's registers with the kernel's own state and spill. */
#if defined(__GNUC__)
#define DYNHP_NOINLINE __attribute__((noinline))
#else
#define DYNHP_NOINLINE
#endif

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define DYNHP_USE_SMLAD 1
#endif

/* High 32 bits of 2*a*b, rounded half away from zero; saturates the one
 * overflowing case (INT32_MIN * INT32_MIN). */
static int32_t doubling_high_mul(int32_t a, int32_t b) {
  int64_t ab;
  int64_t nudge;
  if (a == b && a == INT32_MIN) return INT32_MAX;
  ab = (int64_t)a * (int64_t)b;
  nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
  return (int32_t)((ab + nudge) / ((int64_t)1 << 31)); /* C division truncates */
}

/* x / 2^exponent, rounded to nearest, ties away from zero. */
static int32_t rounding_shift_right(int32_t x, int exponent) {
  const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* x * 2^exponent (exponent > 0), saturating to the int32 range. */
static int32_t saturating_shift_left(int32_t x, int exponent) {
  const int32_t threshold = (int32_t)((1u << (31 - exponent)) - 1u);
  if (x > threshold) return INT32_MAX;
  if (x < -threshold) return INT32_MIN;
  return (int32_t)((uint32_t)x << exponent);
}

int32_t dynhp_mul_by_quantized(int32_t x, int32_t mult, int shift) {
  const int left = shift > 0 ? shift : 0;
  const int right = shift > 0 ? 0 : -shift;
  /* Wrapping left shift, as the int32 multiply of the reference does. */
  return rounding_shift_right(doubling_high_mul((int32_t)((uint32_t)x << left), mult), right);
}

static int8_t clamp_to(int32_t v, int32_t lo, int32_t hi) {
  if (v < lo) v = lo;
  if (v > hi) v = hi;
  return (int8_t)v;
}

#ifdef DYNHP_USE_SMLAD
/* Bytes 1 and 3 of w, sign-extended to two halfwords (one instruction). */
static inline uint32_t sxtb16_ror8(uint32_t w) {
  uint32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(w));
  return r;
}
#endif

/* acc[0] += x . w0 and acc[1] += x . w1 over n values (acc accumulates). On a Cortex-M4 every
 * four products are two SMLADs on pairwise sign-extended words, and the two
 * rows share each load of x. */
static void dot2_s8(const int8_t *x, const int8_t *w0, const int8_t *w1, int n, int32_t *acc) {
  int32_t a0 = 0, a1 = 0;
  int i = 0;
#ifdef DYNHP_USE_SMLAD
  for (; i + 4 <= n; i += 4) {
    uint32_t vx, v0, v1, xe, xo;
    memcpy(&vx, x + i, 4); /* unaligned word loads are fine on the M4 */
    memcpy(&v0, w0 + i, 4);
    memcpy(&v1, w1 + i, 4);
    xe = __sxtb16(vx);
    xo = sxtb16_ror8(vx);
    a0 = __smlad(xe, __sxtb16(v0), a0);
    a0 = __smlad(xo, sxtb16_ror8(v0), a0);
    a1 = __smlad(xe, __sxtb16(v1), a1);
    a1 = __smlad(xo, sxtb16_ror8(v1), a1);
  }
#endif
  for (; i < n; ++i) {
    a0 += (int32_t)x[i] * (int32_t)w0[i];
    a1 += (int32_t)x[i] * (int32_t)w1[i];
  }
  acc[0] += a0;
  acc[1] += a1;
}

/* acc[k] += x . row k for four rows `stride` bytes apart from w: each load of x
 * (and its two sign extensions) serves four rows, so a Cortex-M4 spends five
 * instructions per four products of a row (load, two extensions, two SMLADs)
 * plus the share of x and the loop. Two row pointers and one stride fit the
 * registers (four pointers spill). */
DYNHP_NOINLINE static void dot4_s8(const int8_t *x, const int8_t *w, int stride, int n,
                                   int32_t *acc) {
  int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  const int8_t *w2 = w + 2 * stride;
  const int8_t *end = x + n;
#ifdef DYNHP_USE_SMLAD
  const int8_t *end4 = x + (n & ~3);
  while (x < end4) {
    uint32_t vx, v, xe, xo;
    memcpy(&vx, x, 4);
    xe = __sxtb16(vx);
    xo = sxtb16_ror8(vx);
    memcpy(&v, w, 4);
    a0 = __smlad(xo, sxtb16_ror8(v), __smlad(xe, __sxtb16(v), a0));
    memcpy(&v, w + stride, 4);
    a1 = __smlad(xo, sxtb16_ror8(v), __smlad(xe, __sxtb16(v), a1));
    memcpy(&v, w2, 4);
    a2 = __smlad(xo, sxtb16_ror8(v), __smlad(xe, __sxtb16(v), a2));
    memcpy(&v, w2 + stride, 4);
    a3 = __smlad(xo, sxtb16_ror8(v), __smlad(xe, __sxtb16(v), a3));
    x += 4;
    w += 4;
    w2 += 4;
  }
#endif
  for (; x < end; ++x, ++w, ++w2) {
    a0 += (int32_t)*x * (int32_t)w[0];
    a1 += (int32_t)*x * (int32_t)w[stride];
    a2 += (int32_t)*x * (int32_t)w2[0];
    a3 += (int32_t)*x * (int32_t)w2[stride];
  }
  acc[0] += a0;
  acc[1] += a1;
  acc[2] += a2;
  acc[3] += a3;
}

static int32_t dot_s8(const int8_t *a, const int8_t *b, int n) {
  int32_t acc[2] = {0, 0};
  dot2_s8(a, b, b, n, acc);
  return acc[0];
}

static int32_t requantize(int32_t acc, int32_t mult, int shift, int32_t zp, int32_t lo,
                          int32_t hi) {
  return clamp_to(dynhp_mul_by_quantized(acc, mult, shift) + zp, lo, hi);
}

/* One output pixel whose window lies inside the image (and dil_w == 1): each
 * filter row is k_w * in_c contiguous bytes of input, dotted with four (or
 * two) output channels' filter rows at once; the input offset is folded into
 * bias_folded offline (bias + offset * sum of the channel's filter). */
static void conv_pixel_inside(const dynhp_conv_t *p, const int8_t *in, int iy0, int ix0,
                              int8_t *out) {
  const int row = p->k_w * p->in_c;
  const int taps = p->k_h * row;
  int oc, ky, k, n;
  for (oc = 0; oc < p->out_c; oc += n) {
    const int8_t *f = p->filter + oc * taps;
    int32_t acc[4] = {0, 0, 0, 0};
    n = p->out_c - oc >= 4 ? 4 : (p->out_c - oc >= 2 ? 2 : 1);
    for (ky = 0; ky < p->k_h; ++ky) {
      const int8_t *x = in + ((iy0 + p->dil_h * ky) * p->in_w + ix0) * p->in_c;
      if (n == 4) {
        dot4_s8(x, f + ky * row, taps, row, acc);
      } else {
        dot2_s8(x, f + ky * row, f + (n - 1) * taps + ky * row, row, acc);
      }
    }
    for (k = 0; k < n; ++k) {
      out[oc + k] = requantize(acc[k] + p->bias_folded[oc + k], p->mult[oc + k],
                               p->shift[oc + k], p->out_zp, p->act_min, p->act_max);
    }
  }
}

void dynhp_conv2d(const dynhp_conv_t *p, const int8_t *in, int8_t *out) {
  const int32_t in_offset = -p->in_zp;
  const int taps = p->k_h * p->k_w * p->in_c;
  int oy, ox, oc, ky, kx;
  for (oy = 0; oy < p->out_h; ++oy) {
    const int iy0 = oy * p->stride_h - p->pad_h;
    const int rows_inside = iy0 >= 0 && iy0 + p->dil_h * (p->k_h - 1) < p->in_h;
    for (ox = 0; ox < p->out_w; ++ox) {
      const int ix0 = ox * p->stride_w - p->pad_w;
      if (rows_inside && p->dil_w == 1 && ix0 >= 0 && ix0 + p->k_w <= p->in_w) {
        conv_pixel_inside(p, in, iy0, ix0, out);
        out += p->out_c;
        continue;
      }
      for (oc = 0; oc < p->out_c; ++oc) {
        const int8_t *f = p->filter + oc * taps;
        int32_t acc = 0;
        /* Padded positions are skipped (they hold the real value 0). The
         * input offset is applied as offset * sum(w) per valid tap. */
        for (ky = 0; ky < p->k_h; ++ky) {
          const int iy = iy0 + p->dil_h * ky;
          if (iy < 0 || iy >= p->in_h) continue;
          for (kx = 0; kx < p->k_w; ++kx) {
            const int ix = ix0 + p->dil_w * kx;
            const int8_t *x;
            const int8_t *w;
            int32_t wsum = 0;
            int c;
            if (ix < 0 || ix >= p->in_w) continue;
            x = in + (iy * p->in_w + ix) * p->in_c;
            w = f + (ky * p->k_w + kx) * p->in_c;
            for (c = 0; c < p->in_c; ++c) wsum += w[c];
            acc += dot_s8(x, w, p->in_c) + in_offset * wsum;
          }
        }
        if (p->bias) acc += p->bias[oc];
        *out++ = requantize(acc, p->mult[oc], p->shift[oc], p->out_zp, p->act_min, p->act_max);
      }
    }
  }
}

void dynhp_depthwise_conv2d(const dynhp_conv_t *p, const int8_t *in, int8_t *out) {
  const int32_t in_offset = -p->in_zp;
  int oy, ox, ic, m, ky, kx;
  for (oy = 0; oy < p->out_h; ++oy) {
    const int iy0 = oy * p->stride_h - p->pad_h;
    for (ox = 0; ox < p->out_w; ++ox) {
      const int ix0 = ox * p->stride_w - p->pad_w;
      for (ic = 0; ic < p->in_c; ++ic) {
        for (m = 0; m < p->depth_multiplier; ++m) {
          const int oc = ic * p->depth_multiplier + m;
          int32_t acc = 0;
          for (ky = 0; ky < p->k_h; ++ky) {
            const int iy = iy0 + p->dil_h * ky;
            if (iy < 0 || iy >= p->in_h) continue;
            for (kx = 0; kx < p->k_w; ++kx) {
              const int ix = ix0 + p->dil_w * kx;
              if (ix < 0 || ix >= p->in_w) continue;
              acc += ((int32_t)in[(iy * p->in_w + ix) * p->in_c + ic] + in_offset) *
                     (int32_t)p->filter[(ky * p->k_w + kx) * p->out_c + oc];
            }
          }
          if (p->bias) acc += p->bias[oc];
          *out++ = requantize(acc, p->mult[oc], p->shift[oc], p->out_zp, p->act_min,
                              p->act_max);
        }
      }
    }
  }
}

void dynhp_fully_connected(const dynhp_fc_t *p, const int8_t *in, int8_t *out) {
  const int depth = p->depth;
  int r, u, k, n;
  for (r = 0; r < p->rows; ++r) {
    const int8_t *x = in + r * depth;
    for (u = 0; u < p->units; u += n) {
      /* Four units per pass, then two (the last one twice when one is left). */
      const int8_t *w = p->weights + u * depth;
      int32_t acc[4] = {0, 0, 0, 0};
      n = p->units - u;
      if (n >= 4) {
        n = 4;
        dot4_s8(x, w, depth, depth, acc);
      } else {
        n = n >= 2 ? 2 : 1;
        dot2_s8(x, w, w + (n - 1) * depth, depth, acc);
      }
      for (k = 0; k < n; ++k) {
        const int q = p->per_channel ? u + k : 0;
        *out++ = requantize(p->bias_folded[u + k] + acc[k], p->mult[q], p->shift[q], p->out_zp,
                            p->act_min, p->act_max);
      }
    }
  }
}

void dynhp_fully_connected_f32(const dynhp_fc_f32_t *p, const float *in, float *out) {
  int r, u, d;
  for (r = 0; r < p->rows; ++r) {
    const float *x = in + r * p->depth;
    for (u = 0; u < p->units; ++u) {
      const float *w = p->weights + u * p->depth;
      float total = 0.0f;
      for (d = 0; d < p->depth; ++d) total += x[d] * w[d];
      total += p->bias ? p->bias[u] : 0.0f;
      *out++ = total < p->act_min ? p->act_min : (total > p->act_max ? p->act_max : total);
    }
  }
}

/* Pooling windows are clipped to the image; padding adds nothing. */
static void pool(const dynhp_pool_t *p, const int8_t *in, int8_t *out, int average) {
  int oy, ox, c, y, x;
  for (oy = 0; oy < p->out_h; ++oy) {
    const int iy0 = oy * p->stride_h - p->pad_h;
    const int y0 = iy0 < 0 ? -iy0 : 0;
    const int y1 = p->k_h < p->in_h - iy0 ? p->k_h : p->in_h - iy0;
    for (ox = 0; ox < p->out_w; ++ox) {
      const int ix0 = ox * p->stride_w - p->pad_w;
      const int x0 = ix0 < 0 ? -ix0 : 0;
      const int x1 = p->k_w < p->in_w - ix0 ? p->k_w : p->in_w - ix0;
      for (c = 0; c < p->c; ++c) {
        int32_t acc = average ? 0 : -128;
        int32_t count = 0;
        for (y = y0; y < y1; ++y) {
          for (x = x0; x < x1; ++x) {
            const int32_t v = in[((iy0 + y) * p->in_w + ix0 + x) * p->c + c];
            if (average) {
              acc += v;
            } else if (v > acc) {
              acc = v;
            }
            ++count;
          }
        }
        if (average && count > 0) {
          /* Rounded to nearest, ties away from zero, as the reference does. */
          acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
        }
        *out++ = clamp_to(acc, p->act_min, p->act_max);
      }
    }
  }
}

void dynhp_max_pool(const dynhp_pool_t *p, const int8_t *in, int8_t *out) { pool(p, in, out, 0); }

void dynhp_avg_pool(const dynhp_pool_t *p, const int8_t *in, int8_t *out) { pool(p, in, out, 1); }

void dynhp_mean_hw(const dynhp_mean_t *p, const int8_t *in, int8_t *out) {
  const int32_t n = (int32_t)p->h * p->w;
  int c, i;
  for (c = 0; c < p->c; ++c) {
    int32_t sum = 0;
    for (i = 0; i < n; ++i) sum += in[i * p->c + c] - p->in_zp;
    out[c] = requantize(sum, p->mult, p->shift, p->out_zp, -128, 127);
  }
}

void dynhp_add(const dynhp_add_t *p, const int8_t *a, const int8_t *b, int8_t *out) {
  /* Inputs are scaled up by 2^20 before rescaling to keep precision. */
  const int left_shift = 20;
  int32_t i;
  for (i = 0; i < p->count; ++i) {
    const int32_t va = (p->in1_offset + a[i]) * (1 << left_shift);
    const int32_t vb = (p->in2_offset + b[i]) * (1 << left_shift);
    const int32_t sum = dynhp_mul_by_quantized(va, p->mult1, p->shift1) +
                        dynhp_mul_by_quantized(vb, p->mult2, p->shift2);
    out[i] = requantize(sum, p->mult_out, p->shift_out, p->out_zp, p->act_min, p->act_max);
  }
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out: Taylor series around -1/8. */
static int32_t exp_on_quarter_interval(int32_t a) {
  const int32_t exp_minus_one_eighth = 1895147668;
  const int32_t one_third = 715827883;
  const int32_t x = a + (1 << 28);
  const int32_t x2 = doubling_high_mul(x, x);
  const int32_t x3 = doubling_high_mul(x2, x);
  const int32_t x4 = doubling_high_mul(x2, x2);
  const int32_t x4_over_4 = rounding_shift_right(x4, 2);
  const int32_t terms =
      rounding_shift_right(doubling_high_mul(x4_over_4 + x3, one_third) + x2, 1);
  return exp_minus_one_eighth + doubling_high_mul(exp_minus_one_eighth, x + terms);
}

/* exp(a) for a <= 0 given with `integer_bits` integer bits (Q5.26 for SOFTMAX
 * and TANH, Q4.27 for LOGISTIC); result Q0.31. The argument is split into a
 * part in [-1/4, 0) and multiples of 1/4 .. 16 applied as constants (only the
 * multiples the format can hold). */
static int32_t exp_on_negative(int32_t a, int integer_bits) {
  static const int32_t exp_of_minus_pow2[7] = {
      1672461947, /* exp(-1/4) */
      1302514674, /* exp(-1/2) */
      790015084,  /* exp(-1) */
      290630308,  /* exp(-2) */
      39332535,   /* exp(-4) */
      720401,     /* exp(-8) */
      242,        /* exp(-16) */
  };
  const int32_t one_quarter = (int32_t)1 << (29 - integer_bits);
  const int32_t a_mod = (a & (one_quarter - 1)) - one_quarter;
  const int32_t remainder = a_mod - a;
  int32_t result = exp_on_quarter_interval(saturating_shift_left(a_mod, integer_bits));
  int k;
  for (k = 0; k < 7 && k - 2 < integer_bits; ++k) {
    if (remainder & ((int32_t)1 << (29 - integer_bits + k))) {
      result = doubling_high_mul(result, exp_of_minus_pow2[k]);
    }
  }
  return a == 0 ? INT32_MAX : result;
}

/* 2 / (1 + x) for x in [0, 1) given in Q0.31, as Q2.29: Newton-Raphson from
 * 48/17 - 32/17 d, three steps. */
static int32_t two_over_one_plus(int32_t x) {
  const int64_t s = (int64_t)x + INT32_MAX;
  const int32_t half_den = (int32_t)((s + (s >= 0 ? 1 : -1)) / 2);
  int32_t r = 1515870810 + doubling_high_mul(half_den, -1010580540);
  int i;
  for (i = 0; i < 3; ++i) {
    const int32_t one_minus = (1 << 29) - doubling_high_mul(half_den, r);
    r = r + saturating_shift_left(doubling_high_mul(r, one_minus), 2);
  }
  return r;
}

/* 1 / (1 + x) for x in [0, 1), Q0.31. */
static int32_t one_over_one_plus(int32_t x) { return saturating_shift_left(two_over_one_plus(x), 1); }

/* (1 - x) / (1 + x) = 2 / (1 + x) - 1 for x in [0, 1), Q0.31. */
static int32_t one_minus_over_one_plus(int32_t x) {
  return saturating_shift_left(two_over_one_plus(x) - (1 << 29), 2);
}

static int count_leading_zeros(uint32_t x) {
  int n = 0;
  if (x == 0) return 32;
  while (!(x & 0x80000000u)) {
    x <<= 1;
    ++n;
  }
  return n;
}

void dynhp_softmax(const dynhp_softmax_t *p, const int8_t *in, int8_t *out) {
  int r, c;
  for (r = 0; r < p->rows; ++r) {
    const int8_t *x = in + r * p->depth;
    int8_t *y = out + r * p->depth;
    int32_t max = -128;
    int32_t sum = 0; /* Q12.19 */
    int32_t scale;
    int headroom, bits_over_unit;
    for (c = 0; c < p->depth; ++c) {
      if (x[c] > max) max = x[c];
    }
    for (c = 0; c < p->depth; ++c) {
      const int32_t diff = x[c] - max;
      if (diff >= p->diff_min) {
        const int32_t scaled =
            doubling_high_mul(diff * (1 << p->input_left_shift), p->input_multiplier);
        sum += rounding_shift_right(exp_on_negative(scaled, 5), 12);
      }
    }
    headroom = count_leading_zeros((uint32_t)sum);
    bits_over_unit = 12 - headroom;
    scale = one_over_one_plus((int32_t)(((uint32_t)sum << headroom) - 0x80000000u));
    for (c = 0; c < p->depth; ++c) {
      const int32_t diff = x[c] - max;
      if (diff >= p->diff_min) {
        const int32_t scaled =
            doubling_high_mul(diff * (1 << p->input_left_shift), p->input_multiplier);
        const int32_t e = exp_on_negative(scaled, 5);
        const int32_t v = rounding_shift_right(doubling_high_mul(scale, e), bits_over_unit + 23);
        y[c] = clamp_to(v - 128, -128, 127);
      } else {
        y[c] = -128;
      }
    }
  }
}

void dynhp_softmax_f32(const dynhp_softmax_f32_t *p, const float *in, float *out) {
  int r, c;
  for (r = 0; r < p->rows; ++r) {
    const float *x = in + r * p->depth;
    float *y = out + r * p->depth;
    float max = -FLT_MAX;
    float sum = 0.0f;
    for (c = 0; c < p->depth; ++c) {
      if (x[c] > max) max = x[c];
    }
    for (c = 0; c < p->depth; ++c) {
      y[c] = expf((x[c] - max) * p->beta);
      sum += y[c];
    }
    for (c = 0; c < p->depth; ++c) y[c] = y[c] / sum;
  }
}

void dynhp_copy(const int8_t *in, int8_t *out, int32_t bytes) {
  if (in != out) memcpy(out, in, (size_t)bytes);
}

void dynhp_quantize(const dynhp_quant_t *p, const float *in, int8_t *out) {
  int32_t i;
  for (i = 0; i < p->count; ++i) {
    out[i] = clamp_to((int32_t)roundf(in[i] / p->scale) + p->zp, -128, 127);
  }
}

void dynhp_dequantize(const dynhp_quant_t *p, const int8_t *in, float *out) {
  int32_t i;
  for (i = 0; i < p->count; ++i) out[i] = (float)((double)p->scale * (in[i] - p->zp));
}

/* The input in Q4.27 (0 when the input is outside the radius: not used then). */
static int32_t sigmoid_input(const dynhp_sigmoid_t *p, int32_t x) {
  return dynhp_mul_by_quantized(x, p->input_multiplier, p->input_left_shift);
}

/* Outside the input radius both functions are flat: the output is the int8 extreme. */
static int saturated(const dynhp_sigmoid_t *p, int32_t x, int8_t *out) {
  if (x > -p->radius && x < p->radius) return 0;
  *out = x <= -p->radius ? -128 : 127;
  return 1;
}

void dynhp_logistic(const dynhp_sigmoid_t *p, const int8_t *in, int8_t *out) {
  int32_t i;
  for (i = 0; i < p->count; ++i) {
    const int32_t x = in[i] - p->in_zp;
    int32_t a, y;
    if (saturated(p, x, &out[i])) continue;
    a = sigmoid_input(p, x);
    if (a == 0) {
      y = 1 << 30; /* one half */
    } else {
      /* 1 / (1 + exp(-|a|)), mirrored for a < 0 (Q0.31's "one" is INT32_MAX). */
      const int32_t positive = one_over_one_plus(exp_on_negative(a > 0 ? -a : a, 4));
      y = a > 0 ? positive : INT32_MAX - positive;
    }
    out[i] = clamp_to(rounding_shift_right(y, 23) - 128, -128, 127); /* scale 1/256 */
  }
}

void dynhp_tanh(const dynhp_sigmoid_t *p, const int8_t *in, int8_t *out) {
  int32_t i;
  for (i = 0; i < p->count; ++i) {
    const int32_t x = in[i] - p->in_zp;
    int32_t a, t;
    if (saturated(p, x, &out[i])) continue;
    a = sigmoid_input(p, x);
    /* tanh|a| = (1 - exp(-2|a|)) / (1 + exp(-2|a|)); -|a| in Q4.27 has the raw
     * bits of -2|a| in Q5.26. */
    t = a == 0 ? 0 : one_minus_over_one_plus(exp_on_negative(a > 0 ? -a : a, 5));
    out[i] = clamp_to(rounding_shift_right(a < 0 ? -t : t, 24), -128, 127); /* scale 1/128 */
  }
}
