// ESP-IDF entry point of the C runtime (no TFLM component): the golden check, repeated
// every 5 seconds so a monitor attached after reset still gets a summary. Replaces the
// TFLM main of firmware/layers/esp_idf; the platform layer is the same file.
#include "dynhp_c_runner.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"

extern "C" void app_main(void) {
  dynhp_platform_init();
  dynhp_c_print_boot();
  for (;;) {
    dynhp_c_run_and_report();
    vTaskDelay(pdMS_TO_TICKS(5000));
  }
}
