/* Golden test + timing harness for the integer-only step of an ltc-edge int8 C model
 * (portable C99, no float: builds with <PREFIX>_INTEGER_ONLY on a core without an FPU).
 * golden_int_data.h (ltc_edge/bench/arm/cortex_m.py) holds quantised inputs and the outputs
 * the same C produced on the host: an integer step is expected to agree bit for bit. */
#include <stdint.h>
#include "golden_int_data.h"
#include "golden_harness.h"

/* |output i of step t - the host's| in LSB: the worst, and how many differ */
static void lsb_check(unsigned long *worst, unsigned long *mismatches, int16_t y, int16_t ref)
{
    long d = (long)y - (long)ref;
    unsigned long e = (unsigned long)(d < 0 ? -d : d);
    if (e > *worst)
        *worst = e;
    if (e)
        ++*mismatches;
}

#define STEP_AT(k) GOLDEN_STEP_Q(&s, golden_xq[k], y)
#define CHECK(t, i) lsb_check(&worst, &mismatches, y[i], golden_yq[t][i])

static void golden_put_error(unsigned long worst, unsigned long mismatches)
{
    platform_puts("golden_steps=");
    put_ulong(GOLDEN_STEPS);
    platform_puts(" max_lsb_err=");
    put_ulong(worst);
    platform_puts(" mismatches=");
    put_ulong(mismatches);
    platform_puts("\n");
}

#ifndef GOLDEN_NO_MAIN /* codegen/firmware/mcu/bench_main.c includes this file for the pieces above */
int main(void)
{
    GOLDEN_STATE_T s;
    int16_t y[GOLDEN_OUTPUTS];
    unsigned long worst = 0, mismatches = 0;
    platform_init();
    GOLDEN_COMPARE(s, STEP_AT, CHECK);
    golden_put_error(worst, mismatches);
    GOLDEN_MEASURE(STEP_AT, (unsigned long)sizeof(s));
    return golden_verdict(worst <= GOLDEN_TOL_LSB);
}
#endif
