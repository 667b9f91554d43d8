/* Golden check of the ahead-of-time C runtime, reported in the same JSON lines
 * as the TFLM core (firmware/core/dynhp_runner.cc), so dynhp-monitor reads
 * both. Portable C99: depends on dynhp_platform.h and the generated model.
 *
 * Lines are streamed through dynhp_platform_write piece by piece: no line
 * buffer and no array of timings, so the RAM this firmware needs is the
 * model's activation arena, one output vector and a small stack. */
#ifndef DYNHP_C_RUNNER_H_
#define DYNHP_C_RUNNER_H_

#include "dynhp_platform.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Prints the boot line (identity and memory at boot). */
void dynhp_c_print_boot(void);

/* Runs every golden input and prints the summary line while it runs (the
 * timings are written as they are measured). Call it again to repeat the
 * summary. Returns 1 when every output was within the tolerance, else 0. */
int dynhp_c_run_and_report(void);

/* The JSON line writer, for a platform that adds lines of its own:
 * begin prints {"event":"<event>", each field adds ,"key":value, end
 * prints } and the newline. */
void dynhp_c_json_begin(const char *event);
void dynhp_c_json_uint(const char *key, unsigned long value);
void dynhp_c_json_end(void);

#ifdef __cplusplus
}
#endif

#endif /* DYNHP_C_RUNNER_H_ */
