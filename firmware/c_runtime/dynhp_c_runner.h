/* Golden check of the ahead-of-time C runtime, reported in the same JSON lines
 * as the TFLM core (firmware/core/dynhp_runner.cc), so dynhp-monitor reads
 * both. Portable C99: depends on dynhp_platform.h and the generated model. */
#ifndef DYNHP_C_RUNNER_H_
#define DYNHP_C_RUNNER_H_

#include "dynhp_platform.h"

/* Prints the boot line, runs every golden input, prints the summary line.
 * Returns 1 when every output was within the tolerance, 0 otherwise. */
int dynhp_c_run_and_report(void);

#endif /* DYNHP_C_RUNNER_H_ */
