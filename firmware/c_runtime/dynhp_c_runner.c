/* See dynhp_c_runner.h. Numbers are formatted here, without printf: newlib's
 * printf costs kilobytes of flash and hundreds of bytes of stack (more than
 * a small model), and newlib-nano's cannot print floats at all. */
#include "dynhp_c_runner.h"

#include <string.h>

#include "dynhp_golden.h"
#include "dynhp_model.h"

#define LINE_BYTES 1024

typedef struct {
  char buf[LINE_BYTES];
  size_t len;
  int first;
} line_t;

static void raw(line_t *l, const char *s) {
  size_t n = strlen(s);
  if (l->len + n >= LINE_BYTES) n = LINE_BYTES - 1 - l->len;
  memcpy(l->buf + l->len, s, n);
  l->len += n;
  l->buf[l->len] = '\0';
}

/* Decimal digits of v, zero-padded to at least `width`. */
static void uint_text(line_t *l, unsigned long v, int width) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = (char)('0' + v % 10u);
    v /= 10u;
  } while (v != 0 || n < width);
  while (n > 0 && l->len < LINE_BYTES - 1) l->buf[l->len++] = digits[--n];
  l->buf[l->len] = '\0';
}

static void key(line_t *l, const char *k) {
  if (!l->first) raw(l, ",");
  l->first = 0;
  raw(l, "\"");
  raw(l, k);
  raw(l, "\":");
}

static void str(line_t *l, const char *k, const char *v) {
  key(l, k);
  raw(l, "\"");
  raw(l, v);
  raw(l, "\"");
}

static void integer(line_t *l, const char *k, long v) {
  key(l, k);
  if (v < 0) {
    raw(l, "null"); /* -1 from the platform layer: not measurable here */
    return;
  }
  uint_text(l, (unsigned long)v, 1);
}

/* A non-negative double as decimal text with nine fractional digits. */
static void fixed(line_t *l, const char *k, double v) {
  unsigned long whole = (unsigned long)v;
  unsigned long frac = (unsigned long)((v - (double)whole) * 1e9 + 0.5);
  if (frac >= 1000000000ul) {
    whole += 1;
    frac -= 1000000000ul;
  }
  key(l, k);
  uint_text(l, whole, 1);
  raw(l, ".");
  uint_text(l, frac, 9);
}

static void signed_text(line_t *l, long v) {
  if (v < 0) raw(l, "-");
  uint_text(l, (unsigned long)(v < 0 ? -v : v), 1);
}

static void identity(line_t *l, const char *event) {
  l->len = 0;
  l->first = 1;
  raw(l, "{");
  str(l, "event", event);
  str(l, "board", DYNHP_BOARD);
  str(l, "model", DYNHP_MODEL_NAME);
  str(l, "model_hash", DYNHP_MODEL_HASH);
  str(l, "runtime", "c");
  integer(l, "model_bytes", DYNHP_MODEL_BYTES);
  integer(l, "arena_bytes", DYNHP_MODEL_ARENA_BYTES);
  raw(l, "");
}

static void memory(line_t *l, const dynhp_memory_t *m) {
  integer(l, "heap_free_bytes", m->heap_free_bytes);
  integer(l, "heap_min_free_bytes", m->heap_min_free_bytes);
  integer(l, "heap_largest_block_bytes", m->heap_largest_block_bytes);
  integer(l, "stack_free_min_bytes", m->stack_free_min_bytes);
}

static void emit(line_t *l) {
  raw(l, "}");
  dynhp_platform_write_line(l->buf);
}

int dynhp_c_run_and_report(void) {
  static line_t l;
  static dynhp_model_output_t out[DYNHP_MODEL_OUTPUT_ELEMENTS];
  static unsigned long us[DYNHP_GOLDEN_COUNT];
  dynhp_memory_t m;
  double max_diff = 0.0;
  long bad_sample = -1, bad_index = -1;
  double bad_expected = 0.0, bad_got = 0.0;
  int s, i;

  dynhp_platform_memory(&m);
  identity(&l, "boot");
  key(&l, "arena_static");
  raw(&l, "true");
  memory(&l, &m);
  emit(&l);

  for (s = 0; s < DYNHP_GOLDEN_COUNT; ++s) {
    const dynhp_model_output_t *want = &g_golden_outputs[s * DYNHP_MODEL_OUTPUT_ELEMENTS];
    uint64_t t0 = dynhp_platform_micros();
    dynhp_model_invoke(&g_golden_inputs[s * DYNHP_MODEL_INPUT_ELEMENTS], out);
    us[s] = (unsigned long)(dynhp_platform_micros() - t0);
    for (i = 0; i < DYNHP_MODEL_OUTPUT_ELEMENTS; ++i) {
      double diff = (double)out[i] - (double)want[i];
      if (diff < 0) diff = -diff;
      if (diff > max_diff) max_diff = diff;
      if (diff > DYNHP_TOLERANCE && bad_sample < 0) {
        bad_sample = s;
        bad_index = i;
        bad_expected = (double)want[i];
        bad_got = (double)out[i];
      }
    }
  }

  dynhp_platform_memory(&m);
  identity(&l, "summary");
  key(&l, "arena_static");
  raw(&l, "true");
  integer(&l, "arena_used_bytes", DYNHP_MODEL_ARENA_BYTES);
  memory(&l, &m);
  key(&l, "inference_us");
  raw(&l, "[");
  for (s = 0; s < DYNHP_GOLDEN_COUNT; ++s) {
    if (s) raw(&l, ",");
    uint_text(&l, us[s], 1);
  }
  raw(&l, "]");
  integer(&l, "golden_count", DYNHP_GOLDEN_COUNT);
  integer(&l, "samples_run", DYNHP_GOLDEN_COUNT);
  fixed(&l, "tolerance", DYNHP_TOLERANCE);
  fixed(&l, "max_abs_diff", max_diff);
  str(&l, "golden", bad_sample < 0 ? "passed" : "failed");
  if (bad_sample >= 0) {
    /* Expected and got as the output's own integers (float outputs truncated). */
    key(&l, "first_mismatch");
    raw(&l, "{");
    l.first = 1;
    integer(&l, "sample", bad_sample);
    integer(&l, "index", bad_index);
    key(&l, "expected");
    signed_text(&l, (long)bad_expected);
    key(&l, "got");
    signed_text(&l, (long)bad_got);
    raw(&l, "}");
    l.first = 0;
  } else {
    key(&l, "first_mismatch");
    raw(&l, "null");
  }
  emit(&l);
  return bad_sample < 0;
}
