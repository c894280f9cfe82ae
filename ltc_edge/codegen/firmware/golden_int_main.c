/* Golden test + timing harness for the integer-only step of an ltc-edge int8 C model
 * (portable C99, no float: builds with <PREFIX>_INTEGER_ONLY on a core without an FPU).
 * golden_int_data.h (ltc_edge/bench/arm/cortex_m.py) holds quantised inputs and the outputs
 * the same C produced on the host: an integer step is expected to agree bit for bit. */
#include <stdint.h>
#include "golden_int_data.h"

void platform_init(void);
void platform_puts(const char *s);
unsigned long platform_count(void);
unsigned long platform_count_scale(void);
unsigned long platform_stack_probe_begin(void);
unsigned long platform_stack_probe_end(void);
void platform_exit(int code);

static void put_ulong(unsigned long v)
{
    char buf[24];
    int i = 23;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v && i > 0);
    platform_puts(buf + i);
}

int main(void)
{
    GOLDEN_STATE_T s;
    int16_t y[GOLDEN_OUTPUTS];
    unsigned long worst = 0, mismatches = 0, c0, c1, one, two, stack;
    int t, i;
    platform_init();
    GOLDEN_RESET(&s);
    for (t = 0; t < GOLDEN_STEPS; ++t) {
        GOLDEN_STEP_Q(&s, golden_xq[t], y);
        for (i = 0; i < GOLDEN_OUTPUTS; ++i) {
            long d = (long)y[i] - (long)golden_yq[t][i];
            unsigned long e = (unsigned long)(d < 0 ? -d : d);
            if (e > worst)
                worst = e;
            if (e)
                ++mismatches;
        }
    }
    platform_puts("golden_steps=");
    put_ulong(GOLDEN_STEPS);
    platform_puts(" max_lsb_err=");
    put_ulong(worst);
    platform_puts(" mismatches=");
    put_ulong(mismatches);
    platform_puts("\n");

    platform_stack_probe_begin();
    GOLDEN_STEP_Q(&s, golden_xq[0], y);
    stack = platform_stack_probe_end();
    platform_puts("step_stack_bytes=");
    put_ulong(stack);
    platform_puts(" state_bytes=");
    put_ulong((unsigned long)sizeof(s));
    platform_puts("\n");

    /* N steps and 2N steps, differenced (removes the loop/probe overhead) */
    c0 = platform_count();
    for (t = 0; t < GOLDEN_TIMING_STEPS; ++t)
        GOLDEN_STEP_Q(&s, golden_xq[t % GOLDEN_STEPS], y);
    c1 = platform_count();
    one = c1 - c0;
    c0 = platform_count();
    for (t = 0; t < 2 * GOLDEN_TIMING_STEPS; ++t)
        GOLDEN_STEP_Q(&s, golden_xq[t % GOLDEN_STEPS], y);
    c1 = platform_count();
    two = c1 - c0;
    platform_puts("count_n=");
    put_ulong(one * platform_count_scale());
    platform_puts(" count_2n=");
    put_ulong(two * platform_count_scale());
    platform_puts(" timing_steps=");
    put_ulong(GOLDEN_TIMING_STEPS);
    platform_puts("\n");
    if (worst <= GOLDEN_TOL_LSB) {
        platform_puts("GOLDEN PASS\n");
        platform_exit(0);
    }
    platform_puts("GOLDEN FAIL\n");
    platform_exit(1);
    return 1;
}
