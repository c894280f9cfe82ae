/* Golden test + timing harness for a generated ltc-edge C model (portable C99).
 * golden_data.h (written by scripts/arm/arm_golden.py) holds inputs, dts and the outputs
 * the numpy runtime produced; the platform file provides output, exit and a counter. */
#include "golden_data.h"
#include "golden_harness.h"

/* |e| scaled by 1e9 as an integer (no printf/float formatting needed on bare metal) */
static void put_err(float e)
{
    put_ulong((unsigned long)(e * 1e9f));
    platform_puts("e-9");
}

/* the worst |error| so far, updated with one output against its reference; a NaN stays (it fails) */
static float worse(float worst, float y, float ref)
{
    float e = y - ref;
    if (e < 0.0f) e = -e;
    return (e <= worst || worst != worst) ? worst : e;
}

#define STEP_AT(k) GOLDEN_STEP(&s, golden_x[k], golden_dt[k], y)
#define CHECK(t, i) (worst = worse(worst, y[i], golden_y[t][i]))

static void golden_put_error(float worst)
{
    platform_puts("golden_steps=");
    put_ulong(GOLDEN_STEPS);
    platform_puts(" max_abs_err=");
    put_err(worst);
    platform_puts("\n");
}

#ifndef GOLDEN_NO_MAIN /* codegen/firmware/mcu/bench_main.c includes this file for the pieces above */
int main(void)
{
    GOLDEN_STATE_T s;
    float y[GOLDEN_OUTPUTS];
    float worst = 0.0f;
    platform_init();
    GOLDEN_COMPARE(s, STEP_AT, CHECK);
    golden_put_error(worst);
    GOLDEN_MEASURE(STEP_AT, (unsigned long)sizeof(s));
    return golden_verdict(worst <= GOLDEN_TOL);
}
#endif
