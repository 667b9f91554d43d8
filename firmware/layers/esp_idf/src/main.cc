// ESP-IDF entry point: run the golden check once, then repeat the summary so a
// monitor attached after reset still gets it.
#include "dynhp_platform.h"
#include "dynhp_runner.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"

static dynhp_result_t g_result;

extern "C" void app_main(void) {
  dynhp_platform_init();
  dynhp_print_boot();
  dynhp_run(&g_result);
  for (;;) {
    dynhp_print_summary(&g_result);
    vTaskDelay(pdMS_TO_TICKS(5000));
  }
}
