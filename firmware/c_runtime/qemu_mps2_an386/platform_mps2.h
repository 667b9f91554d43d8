/* Pieces of the mps2-an386 platform layer that main_mps2.c also uses. */
#ifndef PLATFORM_MPS2_H_
#define PLATFORM_MPS2_H_

#include <stdint.h>

#define DYNHP_STACK_PAINT 0xA5A5A5A5u

/* SysTick ticks (CPU clock) since dynhp_platform_init; 64-bit. */
uint64_t dynhp_mps2_ticks(void);
/* Bytes of the stack region ever used (highest paint overwritten). */
uint32_t dynhp_mps2_stack_used(void);
uint32_t dynhp_mps2_stack_size(void);
/* Ends the emulator: success != 0 -> QEMU exits 0, else 1. */
void dynhp_semihost_exit(int success) __attribute__((noreturn));

#endif /* PLATFORM_MPS2_H_ */
