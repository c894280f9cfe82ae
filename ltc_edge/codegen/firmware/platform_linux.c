/* Hosted platform (aarch64 Linux under qemu-aarch64, or the host): stdio + exit. */
#include <stdio.h>
#include <stdlib.h>

void platform_init(void) {}
void platform_puts(const char *s) { fputs(s, stdout); fflush(stdout); }
unsigned long platform_count(void) { return 0; }
unsigned long platform_count_scale(void) { return 1; }
const char *platform_count_unit(void) { return 0; } /* no counter */
unsigned long platform_stack_probe_begin(void) { return 0; }
unsigned long platform_stack_probe_end(void) { return 0; }
int platform_has_stack_probe(void) { return 0; }
void platform_exit(int code) { exit(code); }
