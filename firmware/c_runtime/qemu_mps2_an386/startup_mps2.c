/* Reset and vector table for QEMU mps2-an386: copies .data, clears .bss,
 * enables the FPU, paints the stack for the high-water mark, runs main and
 * ends QEMU through semihosting with main's verdict. */
#include <stdint.h>

#include "platform_mps2.h"

extern uint32_t _data_start, _data_end, _data_load, _bss_start, _bss_end;
extern uint32_t _stack_bottom, _stack_top;
int main(void);
void dynhp_reset(void);
void dynhp_systick(void);

static void hang(void) {
  dynhp_semihost_exit(0);
}

/* Initial stack pointer, reset, NMI, HardFault, 11 more exceptions, SysTick. */
__attribute__((section(".vectors"), used)) static void (*const g_vectors[16])(void) = {
    (void (*)(void))(&_stack_top), dynhp_reset, hang, hang, hang, hang, hang, 0, 0, 0, 0,
    hang, hang, 0, hang, dynhp_systick,
};

void dynhp_reset(void) {
  uint32_t *src = &_data_load;
  uint32_t *dst;
  volatile uint32_t *p;
  uint32_t sp;
  for (dst = &_data_start; dst < &_data_end;) *dst++ = *src++;
  for (dst = &_bss_start; dst < &_bss_end;) *dst++ = 0;
  /* CP10 and CP11 full access: the hard-float ABI uses the FPU. */
  *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
  __asm__ volatile("dsb\n isb");
  /* Paint the stack below this frame (64 bytes of margin). */
  __asm__ volatile("mov %0, sp" : "=r"(sp));
  for (p = (volatile uint32_t *)&_stack_bottom; (uint32_t)p < sp - 64u;) {
    *p++ = DYNHP_STACK_PAINT;
  }
  dynhp_semihost_exit(main() == 0);
}
