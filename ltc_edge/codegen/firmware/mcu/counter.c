/* The step's cycle counter. DWT CYCCNT where the core has one and it counts (ARMv7-M and ARMv8-M
 * Mainline; a core may lack it, and qemu's boards do not implement it: checked at run time), else
 * SysTick (24 bits from the CPU clock, started by platform_cm.c; a step must stay under 2^24
 * cycles). The host is told which one counted. */
#include "mcu.h"

#define DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
#define DWT_LAR (*(volatile uint32_t *)0xE0001FB0u) /* Cortex-M7: unlock the DWT */
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static int use_dwt;

const char *mcu_counter_init(void)
{
#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_8M_MAIN__)
    DEMCR |= 1u << 24; /* TRCENA */
    DWT_LAR = 0xC5ACCE55u;
    if (!(DWT_CTRL & (1u << 25))) { /* NOCYCCNT clear */
        volatile int i;
        uint32_t a;
        DWT_CYCCNT = 0;
        DWT_CTRL |= 1u; /* CYCCNTENA */
        a = DWT_CYCCNT;
        for (i = 0; i < 16; ++i) {
        }
        use_dwt = DWT_CYCCNT != a; /* a counter that does not count is not used */
    }
#endif
    return use_dwt ? "dwt_cyccnt" : "systick";
}

uint32_t mcu_count(void) { return use_dwt ? DWT_CYCCNT : 0x00FFFFFFu - SYST_CVR; }

uint32_t mcu_elapsed(uint32_t from, uint32_t to) { return use_dwt ? to - from : (to - from) & 0x00FFFFFFu; }

/* what reading the counter twice costs (subtracted from each step) */
uint32_t mcu_overhead(void)
{
    uint32_t best = 0xFFFFFFFFu, a, e;
    int i;
    for (i = 0; i < 8; ++i) {
        a = mcu_count();
        e = mcu_elapsed(a, mcu_count());
        best = e < best ? e : best;
    }
    return best;
}
