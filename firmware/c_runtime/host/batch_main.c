/* Host test driver: reads raw input samples from stdin until EOF, runs each
 * through dynhp_model_invoke and writes the raw outputs to stdout. Used by the
 * test suite to compare the C runtime with TFLM on many inputs at once. */
#include <stdio.h>

#include "dynhp_model.h"

int main(void) {
  static dynhp_model_input_t in[DYNHP_MODEL_INPUT_ELEMENTS];
  static dynhp_model_output_t out[DYNHP_MODEL_OUTPUT_ELEMENTS];
  while (fread(in, sizeof(in), 1, stdin) == 1) {
    if (dynhp_model_invoke(in, out) != 0) return 2;
    if (fwrite(out, sizeof(out), 1, stdout) != 1) return 3;
  }
  return 0;
}
