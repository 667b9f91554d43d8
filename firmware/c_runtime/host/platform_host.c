/* dynhp platform layer for a PC, in C: for the C runtime's host build. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "dynhp_platform.h"

void dynhp_platform_init(void) {}

uint64_t dynhp_platform_micros(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000u + (uint64_t)(t.tv_nsec / 1000);
}

void dynhp_platform_memory(dynhp_memory_t *out) {
  /* A PC has no meaningful heap or stack budget: "not measurable". */
  out->heap_free_bytes = -1;
  out->heap_min_free_bytes = -1;
  out->heap_largest_block_bytes = -1;
  out->stack_free_min_bytes = -1;
}

void *dynhp_platform_alloc(size_t bytes) { return malloc(bytes); }

void dynhp_platform_write_line(const char *line) {
  fputs(line, stdout);
  fputc('\n', stdout);
  fflush(stdout);
}

void dynhp_platform_write(const char *text) { fputs(text, stdout); }
