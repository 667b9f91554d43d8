/* PC entry point of the C runtime: one golden check, exit 0 only if it passed. */
#include "dynhp_c_runner.h"

int main(void) {
  dynhp_platform_init();
  dynhp_c_print_boot();
  return dynhp_c_run_and_report() ? 0 : 1;
}
