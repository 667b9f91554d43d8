// Arduino entry points of the C runtime (no TFLM library): the golden check runs in
// setup() and again every 5 seconds, so a monitor opened after reset still gets a
// summary. Replaces the TFLM main of firmware/layers/arduino_mbed; the platform layer
// (platform_arduino_mbed.cpp) is the same file.
#include <Arduino.h>

#include "dynhp_c_runner.h"

void setup() {
  dynhp_platform_init();
  dynhp_c_print_boot();
  dynhp_c_run_and_report();
}

void loop() {
  delay(5000);
  dynhp_c_run_and_report();
}
