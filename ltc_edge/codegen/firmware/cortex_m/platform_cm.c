/* Bare-metal Cortex-M0/M3/M4 platform for qemu-system-arm (microbit, mps2-an385, mps2-an386):
 * ARM semihosting for output and exit status, SysTick as an instruction counter
 * (under `-icount shift=0` the virtual clock advances 1 ns per instruction and SysTick runs
 * from the board's CPU clock), and a painted stack. The count is in SysTick ticks times
 * PLATFORM_COUNT_SCALE: 1 by default (the caller scales: mps2 25 MHz = 40 instructions per tick,
 * microbit 16 MHz = 62.5); the M4 golden harness (bench/arm/build_m4.sh, the cmake layout)
 * builds with -DPLATFORM_COUNT_SCALE=40u so that it prints instructions. */
#include <stdint.h>

#define SYS_WRITE0 0x04
#define SYS_EXIT 0x18
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

#define SYST_CSR (*(volatile uint32_t *)0xE000E010)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018)

#ifndef PLATFORM_COUNT_SCALE
#define PLATFORM_COUNT_SCALE 1u /* ticks */
#define PLATFORM_COUNT_UNIT "systick_ticks"
#else
#define PLATFORM_COUNT_UNIT "instructions" /* ticks x instructions per tick (qemu -icount shift=0) */
#endif

static void platform_start_systick(void)
{
    SYST_RVR = 0x00FFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 5u; /* enable, CPU clock, no interrupt */
}

#ifdef PLATFORM_UART
/* a board's UART instead of semihosting (ltc bench --target mcu:..., ltc_edge/codegen/mcu.py): a real
 * board has no debugger attached; uart_* come from the board's driver (codegen/firmware/mcu/uart_*.c) */
void uart_init(void);
void uart_putc(int c);
void platform_init(void)
{
    uart_init();
    platform_start_systick();
}
void platform_puts(const char *s)
{
    while (*s)
        uart_putc(*s++);
}
#else
static int semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void platform_init(void) { platform_start_systick(); }

void platform_puts(const char *s) { semihost(SYS_WRITE0, s); }
#endif

/* 24-bit down-counter; measurements are kept well under one wrap (16.7M ticks) */
static uint32_t last, acc;
unsigned long platform_count(void)
{
    uint32_t now = SYST_CVR;
    acc += (last - now) & 0x00FFFFFFu;
    last = now;
    return acc;
}
unsigned long platform_count_scale(void) { return PLATFORM_COUNT_SCALE; }
const char *platform_count_unit(void) { return PLATFORM_COUNT_UNIT; }

/* stack high-water mark: paint 8 KB below the current stack pointer, then look for the
 * deepest word that changed */
#define PAINT_WORDS 2048
#define PAINT 0xC0FFEE11u
static uint32_t *paint_top;
unsigned long platform_stack_probe_begin(void)
{
    uintptr_t sp;
    uint32_t *p;
    int i;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    paint_top = (uint32_t *)(sp & ~(uintptr_t)3) - 16; /* leave this frame alone */
    p = paint_top;
    for (i = 0; i < PAINT_WORDS; ++i)
        *--p = PAINT;
    return 0;
}
unsigned long platform_stack_probe_end(void)
{
    uint32_t *p = paint_top - PAINT_WORDS;
    while (p < paint_top && *p == PAINT)
        ++p;
    /* bytes used below the probe's frame (+64 for the 16 words skipped) */
    return (unsigned long)((uintptr_t)paint_top - (uintptr_t)p) + 64u;
}
int platform_has_stack_probe(void) { return 1; }

#ifdef PLATFORM_UART
void platform_exit(int code)
{
    platform_puts(code == 3 ? "\nLTC-MCU FAULT\n" : "\nLTC-MCU EXIT\n"); /* the host reads this line */
    for (;;) {
    }
}
#else
void platform_exit(int code)
{
    uint32_t block[2];
    block[0] = ADP_STOPPED_APPLICATION_EXIT;
    block[1] = (uint32_t)code;
    semihost(SYS_EXIT_EXTENDED, block);
    semihost(SYS_EXIT, (const void *)(uintptr_t)(code == 0 ? ADP_STOPPED_APPLICATION_EXIT : 0x20023));
    for (;;) {
    }
}
#endif
