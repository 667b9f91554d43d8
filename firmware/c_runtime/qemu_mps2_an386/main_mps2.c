/* Emulator entry point: the golden check (same JSON lines as on a board),
 * then one line of emulator figures: SysTick ticks of one inference, a
 * calibration loop of known length (so ticks convert to instructions under
 * qemu -icount shift=0), and the stack high-water mark. */
#include "dynhp_c_runner.h"
#include "dynhp_golden.h"
#include "dynhp_model.h"
#include "platform_mps2.h"

#define CALIBRATION_LOOPS 100000u /* two instructions each: subs, bne */

static void busy_loop(uint32_t n) {
  __asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n) : : "cc");
}

int main(void) {
  dynhp_model_output_t out[DYNHP_MODEL_OUTPUT_ELEMENTS];
  uint64_t t0, t1, t2, t3;
  int passed;
  dynhp_platform_init();
  dynhp_c_print_boot();
  passed = dynhp_c_run_and_report();
  t0 = dynhp_mps2_ticks();
  dynhp_model_invoke(g_golden_inputs, out);
  t1 = dynhp_mps2_ticks();
  busy_loop(CALIBRATION_LOOPS);
  t2 = dynhp_mps2_ticks();
  busy_loop(1u);
  t3 = dynhp_mps2_ticks();
  dynhp_c_json_begin("emulator");
  dynhp_platform_write(",\"machine\":\"mps2-an386\"");
  dynhp_c_json_uint("inference_ticks", (unsigned long)(t1 - t0));
  dynhp_c_json_uint("calibration_instructions", 2ul * CALIBRATION_LOOPS);
  dynhp_c_json_uint("calibration_ticks", (unsigned long)(t2 - t1));
  dynhp_c_json_uint("timer_overhead_ticks", (unsigned long)(t3 - t2));
  dynhp_c_json_uint("stack_used_bytes", (unsigned long)dynhp_mps2_stack_used());
  dynhp_c_json_uint("stack_bytes", (unsigned long)dynhp_mps2_stack_size());
  dynhp_c_json_end();
  return passed ? 0 : 1;
}
