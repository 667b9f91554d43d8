/* dynhp platform layer for QEMU mps2-an386: SysTick time, painted-stack
 * high-water mark, semihosting console. QEMU's mps2 boards clock the CPU (and
 * SysTick's processor clock source) at 25 MHz. */
#include <string.h>

#include "dynhp_platform.h"
#include "platform_mps2.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define CPU_HZ 25000000u

extern uint32_t _stack_bottom, _stack_top;
static volatile uint32_t g_wraps;

void dynhp_systick(void) { ++g_wraps; }

static int semihost(int op, const void *arg) {
  register int r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

void dynhp_semihost_exit(int success) {
  /* ADP_Stopped_ApplicationExit, or ADP_Stopped_RunTimeErrorUnknown. */
  semihost(0x18, (const void *)(success ? 0x20026u : 0x20023u));
  for (;;) {
  }
}

void dynhp_platform_init(void) {
  SYST_RVR = 0xFFFFFFu;
  SYST_CVR = 0;
  SYST_CSR = 7u; /* enable, interrupt on wrap, processor clock */
}

uint64_t dynhp_mps2_ticks(void) {
  uint32_t wraps, value;
  do {
    wraps = g_wraps;
    value = SYST_CVR;
  } while (wraps != g_wraps);
  return ((uint64_t)wraps << 24) + (0xFFFFFFu - value);
}

uint64_t dynhp_platform_micros(void) { return dynhp_mps2_ticks() / (CPU_HZ / 1000000u); }

uint32_t dynhp_mps2_stack_size(void) {
  return (uint32_t)((char *)&_stack_top - (char *)&_stack_bottom);
}

uint32_t dynhp_mps2_stack_used(void) {
  const uint32_t *p = &_stack_bottom;
  while (p < &_stack_top && *p == DYNHP_STACK_PAINT) ++p;
  return (uint32_t)((char *)&_stack_top - (char *)p);
}

void dynhp_platform_memory(dynhp_memory_t *out) {
  out->heap_free_bytes = -1; /* no heap: everything is static */
  out->heap_min_free_bytes = -1;
  out->heap_largest_block_bytes = -1;
  out->stack_free_min_bytes = (long)(dynhp_mps2_stack_size() - dynhp_mps2_stack_used());
}

void *dynhp_platform_alloc(size_t bytes) {
  (void)bytes;
  return 0;
}

void dynhp_platform_write(const char *text) { semihost(0x04, text); /* SYS_WRITE0 */ }

void dynhp_platform_write_line(const char *line) {
  dynhp_platform_write(line);
  dynhp_platform_write("\n");
}
