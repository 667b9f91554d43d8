// Arduino entry points: run the golden check once in setup(), then repeat the
// summary so a monitor opened after reset still gets it.
#include <Arduino.h>
// Naming the library header lets PlatformIO's dependency finder pick it up.
#include <Chirale_TensorFlowLite.h>

#include "dynhp_platform.h"
#include "dynhp_runner.h"

static dynhp_result_t g_result;

void setup() {
  dynhp_platform_init();
  dynhp_print_boot();
  dynhp_run(&g_result);
}

void loop() {
  dynhp_print_summary(&g_result);
  delay(5000);
}
