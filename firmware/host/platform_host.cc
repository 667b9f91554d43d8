// dynhp platform layer for a PC: same core, standard C++ only.
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "dynhp_platform.h"

extern "C" {

void dynhp_platform_init(void) {}

uint64_t dynhp_platform_micros(void) {
  using namespace std::chrono;
  return static_cast<uint64_t>(
      duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count());
}

void dynhp_platform_memory(dynhp_memory_t* out) {
  // A PC has no meaningful heap or stack budget: report "not measurable".
  out->heap_free_bytes = -1;
  out->heap_min_free_bytes = -1;
  out->heap_largest_block_bytes = -1;
  out->stack_free_min_bytes = -1;
}

void* dynhp_platform_alloc(size_t bytes) { return std::malloc(bytes); }

void dynhp_platform_write_line(const char* line) {
  std::fputs(line, stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void dynhp_platform_write(const char* text) { std::fputs(text, stdout); }

}  // extern "C"
