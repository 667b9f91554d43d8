/* Emulator entry point: the golden check (same JSON lines as on a board),
 * then one line of emulator figures: SysTick ticks of one inference, a
 * calibration loop of known length (so ticks convert to instructions under
 * qemu -icount shift=0), and the stack high-water mark. */
#include <stdio.h>

#include "dynhp_c_runner.h"
#include "dynhp_golden.h"
#include "dynhp_model.h"
#include "platform_mps2.h"

#define CALIBRATION_LOOPS 100000u /* two instructions each: subs, bne */

static void busy_loop(uint32_t n) {
  __asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n) : : "cc");
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
  snprintf(line, sizeof(line),
           "{\"event\":\"emulator\",\"machine\":\"mps2-an386\",\"inference_ticks\":%lu,"
           "\"calibration_instructions\":%lu,\"calibration_ticks\":%lu,"
           "\"timer_overhead_ticks\":%lu,\"stack_used_bytes\":%lu,\"stack_bytes\":%lu}",
           (unsigned long)(t1 - t0), (unsigned long)(2u * CALIBRATION_LOOPS),
           (unsigned long)(t2 - t1), (unsigned long)(t3 - t2),
           (unsigned long)dynhp_mps2_stack_used(), (unsigned long)dynhp_mps2_stack_size());
  dynhp_platform_write_line(line);
  return passed ? 0 : 1;
}
