/* Golden test + timing harness for a generated ltc-edge C model (portable C99).
 * golden_data.h (written by scripts/arm/arm_golden.py) holds inputs, dts and the outputs
 * the numpy runtime produced; the platform file provides output, exit and a counter. */
#include "golden_data.h"

void platform_init(void);
void platform_puts(const char *s);
unsigned long platform_count(void);   /* instructions (Cortex-M4 under qemu -icount) or 0 */
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

/* |e| scaled by 1e9 as an integer (no printf/float formatting needed on bare metal) */
static void put_err(float e)
{
    put_ulong((unsigned long)(e * 1e9f));
    platform_puts("e-9");
}

int main(void)
{
    GOLDEN_STATE_T s;
    float y[GOLDEN_OUTPUTS];
    float worst = 0.0f;
    int t, i;
    unsigned long c0, c1, stack;
    platform_init();
    GOLDEN_RESET(&s);
    for (t = 0; t < GOLDEN_STEPS; ++t) {
        GOLDEN_STEP(&s, golden_x[t], golden_dt[t], y);
        for (i = 0; i < GOLDEN_OUTPUTS; ++i) {
            float e = y[i] - golden_y[t][i];
            if (e < 0.0f) e = -e;
            if (!(e <= worst)) worst = e; /* NaN-safe */
        }
    }
    platform_puts("golden_steps=");
    put_ulong(GOLDEN_STEPS);
    platform_puts(" max_abs_err=");
    put_err(worst);
    platform_puts("\n");

    /* stack used by one step (bare metal: painted-stack high-water mark) */
    platform_stack_probe_begin();
    GOLDEN_STEP(&s, golden_x[0], golden_dt[0], y);
    stack = platform_stack_probe_end();
    platform_puts("step_stack_bytes=");
    put_ulong(stack);
    platform_puts(" state_bytes=");
    put_ulong((unsigned long)sizeof(s));
    platform_puts("\n");

    /* instructions: N steps and 2N steps, differenced (removes the loop/probe overhead) */
    c0 = platform_count();
    for (t = 0; t < GOLDEN_TIMING_STEPS; ++t)
        GOLDEN_STEP(&s, golden_x[t % GOLDEN_STEPS], golden_dt[t % GOLDEN_STEPS], y);
    c1 = platform_count();
    {
        unsigned long one = c1 - c0, two;
        c0 = platform_count();
        for (t = 0; t < 2 * GOLDEN_TIMING_STEPS; ++t)
            GOLDEN_STEP(&s, golden_x[t % GOLDEN_STEPS], golden_dt[t % GOLDEN_STEPS], y);
        c1 = platform_count();
        two = c1 - c0;
        platform_puts("count_n=");
        put_ulong(one * platform_count_scale());
        platform_puts(" count_2n=");
        put_ulong(two * platform_count_scale());
        platform_puts(" timing_steps=");
        put_ulong(GOLDEN_TIMING_STEPS);
        platform_puts("\n");
    }
    if (worst <= GOLDEN_TOL) {
        platform_puts("GOLDEN PASS\n");
        platform_exit(0);
    }
    platform_puts("GOLDEN FAIL\n");
    platform_exit(1);
    return 1;
}
