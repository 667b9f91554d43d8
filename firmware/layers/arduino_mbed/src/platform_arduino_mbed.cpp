// dynhp platform layer for the Arduino mbed core (Nano 33 BLE, nRF52840).
// The core's precompiled mbed OS is built with MBED_HEAP_STATS_ENABLED and
// MBED_STACK_STATS_ENABLED (variants/ARDUINO_NANO33BLE/conf/mbed_app.json in
// arduino/ArduinoCore-mbed), so mbed_stats_* work from a sketch.
#include <Arduino.h>
#include <stdlib.h>

#include "dynhp_platform.h"
#include "mbed.h"
#include "mbed_stats.h"

extern "C" {

void dynhp_platform_init(void) {
  Serial.begin(115200);
  // USB CDC: give the host a moment to open the port; never block forever.
  unsigned long start = millis();
  while (!Serial && millis() - start < 3000) {
  }
}

uint64_t dynhp_platform_micros(void) { return static_cast<uint64_t>(micros()); }

static long MainThreadFreeStackMin(void) {
  // One entry per thread; pick the thread running setup()/loop().
  const int kMaxThreads = 16;
  mbed_stats_stack_t stacks[kMaxThreads];
  int n = static_cast<int>(mbed_stats_stack_get_each(stacks, kMaxThreads));
  uint32_t self = reinterpret_cast<uint32_t>(osThreadGetId());
  for (int i = 0; i < n; ++i) {
    if (stacks[i].thread_id == self) {
      return static_cast<long>(stacks[i].reserved_size) - static_cast<long>(stacks[i].max_size);
    }
  }
  return -1;
}

void dynhp_platform_memory(dynhp_memory_t* out) {
  mbed_stats_heap_t heap;
  mbed_stats_heap_get(&heap);
  // reserved_size is the whole heap region; current/max are bytes in use.
  out->heap_free_bytes = static_cast<long>(heap.reserved_size) - static_cast<long>(heap.current_size);
  out->heap_min_free_bytes = static_cast<long>(heap.reserved_size) - static_cast<long>(heap.max_size);
  out->heap_largest_block_bytes = -1;  // mbed's allocator does not expose it
  out->stack_free_min_bytes = MainThreadFreeStackMin();
}

void* dynhp_platform_alloc(size_t bytes) { return malloc(bytes); }

void dynhp_platform_write_line(const char* line) {
  Serial.println(line);
  Serial.flush();
}

void dynhp_platform_write(const char* text) { Serial.print(text); }

}  // extern "C"
