// Portable model runner: TFLM only, no board SDK. See dynhp_runner.cc.
#ifndef DYNHP_RUNNER_H_
#define DYNHP_RUNNER_H_

#include <stddef.h>
#include <stdint.h>

#include "dynhp_platform.h"

// At most this many golden samples are embedded (the generator enforces it).
#define DYNHP_MAX_GOLDEN 32

typedef struct {
  int ok;                     // 1 when setup and every inference succeeded
  const char* error_stage;    // set when ok == 0 and setup/invoke failed
  const char* error_message;
  size_t arena_used_bytes;    // interpreter.arena_used_bytes()
  int arena_static;           // 1: .bss array, 0: heap
  dynhp_memory_t memory_before;  // after boot, before the arena exists
  dynhp_memory_t memory_after;   // after all golden inferences
  int samples_run;
  uint32_t inference_us[DYNHP_MAX_GOLDEN];
  int golden_passed;          // every element within tolerance
  double max_abs_diff;        // largest |device - golden| over all samples
  int mismatch_sample;        // first element outside tolerance, or -1
  int mismatch_index;
  double mismatch_expected;
  double mismatch_got;
} dynhp_result_t;

// Runs every embedded golden input once, compares with the golden outputs.
void dynhp_run(dynhp_result_t* result);

// Prints the result as one JSON line (the "summary" event).
void dynhp_print_summary(const dynhp_result_t* result);

// Prints the "boot" event (board, model hash, arena size) as one JSON line.
void dynhp_print_boot(void);

#endif  // DYNHP_RUNNER_H_
