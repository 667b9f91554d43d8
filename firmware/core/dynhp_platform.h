// The whole contract between the portable core and a board: six C functions.
// Each board layer (layers/<name>/src/platform_*.c*) implements them; the core
// never includes an SDK header.
#ifndef DYNHP_PLATFORM_H_
#define DYNHP_PLATFORM_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Figures a board can report; -1 means "this board cannot measure it".
typedef struct {
  long heap_free_bytes;          // free heap now
  long heap_min_free_bytes;      // lowest free heap since boot
  long heap_largest_block_bytes; // largest allocatable block now
  long stack_free_min_bytes;     // least free stack the running task ever had
} dynhp_memory_t;

// Brings up the console (serial) so that write_line works.
void dynhp_platform_init(void);

// Monotonic microseconds.
uint64_t dynhp_platform_micros(void);

// Fills every field; unknown ones with -1.
void dynhp_platform_memory(dynhp_memory_t* out);

// Heap memory for an arena too large to be static. May return NULL.
// The core aligns the pointer itself, so no alignment is required here.
void* dynhp_platform_alloc(size_t bytes);

// Writes one line of text followed by a newline, and flushes.
void dynhp_platform_write_line(const char* line);

// Writes text with no newline (a line is ended by write_line, possibly with "").
// The C runtime streams its JSON lines through it, so it needs no line buffer.
void dynhp_platform_write(const char* text);

#ifdef __cplusplus
}
#endif

#endif  // DYNHP_PLATFORM_H_
