/* Kernels of the ahead-of-time C runtime (plain C99, no heap): int8, and the
 * float32 classifier head (`dynhp-export --head float`).
 *
 * Each kernel reproduces the arithmetic of TFLM's reference kernels (integer
 * ops exactly; the float head in the reference's order of float operations,
 * built without fused multiply-add), so its outputs equal TFLM's; the generator
 * (converters/c_runtime.py) computes every multiplier and shift offline, in
 * double precision, the way TFLM's Prepare step does. The parameter structs
 * are const data in flash; the activations live in the model's static arena.
 */
#ifndef DYNHP_KERNELS_H_
#define DYNHP_KERNELS_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* CONV_2D and DEPTHWISE_CONV_2D. Shapes NHWC with batch 1; the filter is
 * [out_c][k_h][k_w][in_c] for CONV_2D and [k_h][k_w][out_c] for depthwise.
 * mult/shift are per output channel (a per-tensor filter repeats one value). */
typedef struct {
  int16_t in_h, in_w, in_c, out_h, out_w, out_c;
  int16_t k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_h, pad_w;
  int16_t depth_multiplier; /* depthwise only */
  int32_t in_zp, out_zp, act_min, act_max;
  const int8_t *filter;
  const int32_t *bias; /* may be NULL */
  /* CONV_2D only: bias + input offset * sum of the channel's filter, for output
   * pixels whose window has no padding. */
  const int32_t *bias_folded;
  const int32_t *mult;
  const int8_t *shift;
} dynhp_conv_t;

/* FULLY_CONNECTED: `rows` input rows of `depth` values, `units` outputs each.
 * bias_folded already holds bias + input_offset * sum(weights of the unit),
 * so the inner loop is a plain int8 dot product (exact: integer algebra).
 * per_channel: mult/shift have one entry per unit, else one. */
typedef struct {
  int16_t rows, depth, units, per_channel;
  int32_t out_zp, act_min, act_max;
  const int8_t *weights;
  const int32_t *bias_folded;
  const int32_t *mult;
  const int8_t *shift;
} dynhp_fc_t;

/* FULLY_CONNECTED in float32 (the float head): out = clamp(sum(in * w) + bias),
 * summed in input order as TFLM's reference kernel does. */
typedef struct {
  int16_t rows, depth, units;
  float act_min, act_max;
  const float *weights; /* [units][depth] */
  const float *bias;    /* may be NULL */
} dynhp_fc_f32_t;

/* MAX_POOL_2D and AVERAGE_POOL_2D. */
typedef struct {
  int16_t in_h, in_w, c, out_h, out_w;
  int16_t k_h, k_w, stride_h, stride_w, pad_h, pad_w;
  int32_t act_min, act_max;
} dynhp_pool_t;

/* MEAN over the two spatial axes of an NHWC tensor (GlobalAveragePooling2D):
 * the sum of (x - in_zp) times one multiplier that includes 1 / (h * w). */
typedef struct {
  int16_t h, w, c;
  int32_t in_zp, out_zp, mult, shift;
} dynhp_mean_t;

/* ADD of two same-shape int8 tensors (TFLM's left_shift = 20 scheme). */
typedef struct {
  int32_t count;
  int32_t in1_offset, in2_offset, out_zp, act_min, act_max;
  int32_t mult1, mult2, mult_out;
  int8_t shift1, shift2, shift_out;
} dynhp_add_t;

/* SOFTMAX of int8 rows (TFLM's fixed-point exp; output scale 1/256, zp -128). */
typedef struct {
  int16_t rows, depth;
  int32_t input_multiplier, input_left_shift, diff_min;
} dynhp_softmax_t;

/* SOFTMAX of float32 rows (the float head): exp((x - max) * beta) / sum. */
typedef struct {
  int16_t rows, depth;
  float beta;
} dynhp_softmax_f32_t;

/* LOGISTIC (output scale 1/256, zp -128) and TANH (scale 1/128, zp 0): the input
 * rescaled to Q4.27 by multiplier and left shift; beyond +-radius it saturates. */
typedef struct {
  int32_t count, in_zp, radius, input_multiplier, input_left_shift;
} dynhp_sigmoid_t;

/* QUANTIZE (float32 -> int8) and DEQUANTIZE (int8 -> float32). */
typedef struct {
  int32_t count, zp;
  float scale;
} dynhp_quant_t;

int32_t dynhp_mul_by_quantized(int32_t x, int32_t mult, int shift);

void dynhp_conv2d(const dynhp_conv_t *p, const int8_t *in, int8_t *out);
void dynhp_depthwise_conv2d(const dynhp_conv_t *p, const int8_t *in, int8_t *out);
void dynhp_fully_connected(const dynhp_fc_t *p, const int8_t *in, int8_t *out);
void dynhp_fully_connected_f32(const dynhp_fc_f32_t *p, const float *in, float *out);
void dynhp_max_pool(const dynhp_pool_t *p, const int8_t *in, int8_t *out);
void dynhp_avg_pool(const dynhp_pool_t *p, const int8_t *in, int8_t *out);
void dynhp_mean_hw(const dynhp_mean_t *p, const int8_t *in, int8_t *out);
void dynhp_add(const dynhp_add_t *p, const int8_t *a, const int8_t *b, int8_t *out);
void dynhp_softmax(const dynhp_softmax_t *p, const int8_t *in, int8_t *out);
void dynhp_softmax_f32(const dynhp_softmax_f32_t *p, const float *in, float *out);
void dynhp_logistic(const dynhp_sigmoid_t *p, const int8_t *in, int8_t *out);
void dynhp_tanh(const dynhp_sigmoid_t *p, const int8_t *in, int8_t *out);
void dynhp_copy(const int8_t *in, int8_t *out, int32_t bytes);
void dynhp_quantize(const dynhp_quant_t *p, const float *in, int8_t *out);
void dynhp_dequantize(const dynhp_quant_t *p, const int8_t *in, float *out);

#ifdef __cplusplus
}
#endif

#endif /* DYNHP_KERNELS_H_ */
