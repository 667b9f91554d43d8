// dynhp platform layer for ESP-IDF (ESP32, ESP32-S3).
#include <stdio.h>

#include "dynhp_platform.h"
#include "esp_heap_caps.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"

extern "C" {

void dynhp_platform_init(void) {
  // The console UART is up before app_main; nothing to do.
}

uint64_t dynhp_platform_micros(void) {
  return static_cast<uint64_t>(esp_timer_get_time());
}

void dynhp_platform_memory(dynhp_memory_t* out) {
  // 8-bit capable internal and external RAM: what malloc can hand out.
  out->heap_free_bytes = static_cast<long>(heap_caps_get_free_size(MALLOC_CAP_8BIT));
  out->heap_min_free_bytes =
      static_cast<long>(heap_caps_get_minimum_free_size(MALLOC_CAP_8BIT));
  out->heap_largest_block_bytes =
      static_cast<long>(heap_caps_get_largest_free_block(MALLOC_CAP_8BIT));
  // On ESP-IDF the high-water mark is in bytes (StackType_t is uint8_t).
  out->stack_free_min_bytes = static_cast<long>(uxTaskGetStackHighWaterMark(nullptr));
}

void* dynhp_platform_alloc(size_t bytes) {
  // Internal RAM: PSRAM (when a board has it) is several times slower.
  return heap_caps_malloc(bytes, MALLOC_CAP_INTERNAL | MALLOC_CAP_8BIT);
}

void dynhp_platform_write_line(const char* line) {
  fputs(line, stdout);
  fputc('\n', stdout);
  fflush(stdout);
}

void dynhp_platform_write(const char* text) { fputs(text, stdout); }

}  // extern "C"
