// PC entry point: one golden check; exit status 0 only when it passed, so the
// host build can serve as a test (`make run`).
#include "dynhp_platform.h"
#include "dynhp_runner.h"

int main() {
  static dynhp_result_t result;
  dynhp_platform_init();
  dynhp_print_boot();
  dynhp_run(&result);
  dynhp_print_summary(&result);
  return (result.ok && result.golden_passed) ? 0 : 1;
}
