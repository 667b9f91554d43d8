/* Emulator entry point: the golden check (same JSON lines as on a board),
 * then one line of emulator figures: SysTick ticks of one inference, a
 * calibration loop of known length (so ticks convert to instructions under
 * qemu -icount shift=0), and the stack high-water mark. */
#include <string.h>

#include "dynhp_c_runner.h"
#include "dynhp_golden.h"
#include "dynhp_model.h"
#include "platform_mps2.h"

#define CALIBRATION_LOOPS 100000u /* two instructions each: subs, bne */

static void busy_loop(uint32_t n) {
  __asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n) : : "cc");
}

/* Appends `text` and the decimal digits of v (no printf: see dynhp_c_runner.c). */
static void append(char *line, const char *text, unsigned long v) {
  char digits[24];
  int n = 0;
  size_t len;
  strcat(line, text);
  len = strlen(line);
  do {
    digits[n++] = (char)('0' + v % 10u);
    v /= 10u;
  } while (v != 0);
  while (n > 0) line[len++] = digits[--n];
  line[len] = '\0';
}

int main(void) {
  static dynhp_model_output_t out[DYNHP_MODEL_OUTPUT_ELEMENTS];
  static char line[256];
  uint64_t t0, t1, t2, t3;
  int passed;
  dynhp_platform_init();
  passed = dynhp_c_run_and_report();
  t0 = dynhp_mps2_ticks();
  dynhp_model_invoke(g_golden_inputs, out);
  t1 = dynhp_mps2_ticks();
  busy_loop(CALIBRATION_LOOPS);
  t2 = dynhp_mps2_ticks();
  busy_loop(1u);
  t3 = dynhp_mps2_ticks();
  append(line, "{\"event\":\"emulator\",\"machine\":\"mps2-an386\",\"inference_ticks\":",
         (unsigned long)(t1 - t0));
  append(line, ",\"calibration_instructions\":", 2ul * CALIBRATION_LOOPS);
  append(line, ",\"calibration_ticks\":", (unsigned long)(t2 - t1));
  append(line, ",\"timer_overhead_ticks\":", (unsigned long)(t3 - t2));
  append(line, ",\"stack_used_bytes\":", (unsigned long)dynhp_mps2_stack_used());
  append(line, ",\"stack_bytes\":", (unsigned long)dynhp_mps2_stack_size());
  strcat(line, "}");
  dynhp_platform_write_line(line);
  return passed ? 0 : 1;
}
