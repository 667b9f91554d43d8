/* See dynhp_c_runner.h. Numbers are formatted here, without printf: newlib's
 * printf costs kilobytes of flash and hundreds of bytes of stack (more than
 * a small model), and newlib-nano's cannot print floats at all. */
#include "dynhp_c_runner.h"

#include "dynhp_golden.h"
#include "dynhp_model.h"

static void text(const char *s) { dynhp_platform_write(s); }

/* Decimal digits of v, zero-padded to at least `width`. */
static void digits(unsigned long v, int width) {
  char buf[24];
  int n = (int)sizeof(buf) - 1;
  buf[n] = '\0';
  do {
    buf[--n] = (char)('0' + v % 10u);
    v /= 10u;
    --width;
  } while (v != 0 || width > 0);
  text(buf + n);
}

static void key(const char *k) {
  text(",\"");
  text(k);
  text("\":");
}

static void str(const char *k, const char *v) {
  key(k);
  text("\"");
  text(v);
  text("\"");
}

static void integer(const char *k, long v) {
  key(k);
  if (v < 0) {
    text("null"); /* -1 from the platform layer: not measurable here */
    return;
  }
  digits((unsigned long)v, 1);
}

/* A non-negative double as decimal text with nine fractional digits. */
static void fixed(const char *k, double v) {
  unsigned long whole = (unsigned long)v;
  unsigned long frac = (unsigned long)((v - (double)whole) * 1e9 + 0.5);
  if (frac >= 1000000000ul) {
    whole += 1;
    frac -= 1000000000ul;
  }
  key(k);
  digits(whole, 1);
  text(".");
  digits(frac, 9);
}

static void signed_text(const char *k, long v) {
  key(k);
  if (v < 0) text("-");
  digits((unsigned long)(v < 0 ? -v : v), 1);
}

void dynhp_c_json_begin(const char *event) {
  text("{\"event\":\"");
  text(event);
  text("\"");
}

void dynhp_c_json_uint(const char *k, unsigned long value) {
  key(k);
  digits(value, 1);
}

void dynhp_c_json_end(void) {
  text("}");
  dynhp_platform_write_line("");
}

static void identity(const char *event) {
  dynhp_c_json_begin(event);
  str("board", DYNHP_BOARD);
  str("model", DYNHP_MODEL_NAME);
  str("model_hash", DYNHP_MODEL_HASH);
  str("runtime", "c");
  integer("model_bytes", DYNHP_MODEL_BYTES);
  integer("arena_bytes", DYNHP_MODEL_ARENA_BYTES);
  key("arena_static");
  text("true");
}

static void memory(void) {
  dynhp_memory_t m;
  dynhp_platform_memory(&m);
  integer("heap_free_bytes", m.heap_free_bytes);
  integer("heap_min_free_bytes", m.heap_min_free_bytes);
  integer("heap_largest_block_bytes", m.heap_largest_block_bytes);
  integer("stack_free_min_bytes", m.stack_free_min_bytes);
}

void dynhp_c_print_boot(void) {
  identity("boot");
  memory();
  dynhp_c_json_end();
}

int dynhp_c_run_and_report(void) {
  static dynhp_model_output_t out[DYNHP_MODEL_OUTPUT_ELEMENTS];
  double max_diff = 0.0;
  long bad_sample = -1, bad_index = -1, bad_expected = 0, bad_got = 0;
  int s, i;

  identity("summary");
  integer("arena_used_bytes", DYNHP_MODEL_ARENA_BYTES);
  key("inference_us");
  text("[");
  for (s = 0; s < DYNHP_GOLDEN_COUNT; ++s) {
    const dynhp_model_output_t *want = &g_golden_outputs[s * DYNHP_MODEL_OUTPUT_ELEMENTS];
    uint64_t t0 = dynhp_platform_micros();
    dynhp_model_invoke(&g_golden_inputs[s * DYNHP_MODEL_INPUT_ELEMENTS], out);
    unsigned long us = (unsigned long)(dynhp_platform_micros() - t0);
    if (s) text(",");
    digits(us, 1); /* written between inferences, outside the timed span */
    for (i = 0; i < DYNHP_MODEL_OUTPUT_ELEMENTS; ++i) {
      double diff = (double)out[i] - (double)want[i];
      if (diff < 0) diff = -diff;
      if (diff > max_diff) max_diff = diff;
      if (diff > DYNHP_TOLERANCE && bad_sample < 0) {
        /* Expected and got as the output's own integers (float outputs truncated). */
        bad_sample = s;
        bad_index = i;
        bad_expected = (long)want[i];
        bad_got = (long)out[i];
      }
    }
  }
  text("]");
  memory(); /* after the check: the stack's low-water mark includes inference */
  integer("golden_count", DYNHP_GOLDEN_COUNT);
  integer("samples_run", DYNHP_GOLDEN_COUNT);
  fixed("tolerance", DYNHP_TOLERANCE);
  fixed("max_abs_diff", max_diff);
  str("golden", bad_sample < 0 ? "passed" : "failed");
  key("first_mismatch");
  if (bad_sample >= 0) {
    text("{\"sample\":");
    digits((unsigned long)bad_sample, 1);
    integer("index", bad_index);
    signed_text("expected", bad_expected);
    signed_text("got", bad_got);
    text("}");
  } else {
    text("null");
  }
  dynhp_c_json_end();
  return bad_sample < 0;
}
