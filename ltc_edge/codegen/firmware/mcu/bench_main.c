/* ltc bench --target mcu:CORE: the bench firmware's runner (ltc_edge/codegen/mcu.py builds it with
 * the golden data of ltc_edge/bench/arm). It waits for 'G' on the UART, steps the golden inputs with
 * golden_main.c's (MCU_INT8: golden_int_main.c's) checks, times every step with counter.c, and
 * prints the report ltc_edge/bench/mcu.py parses:
 *   LTC-MCU BENCH id=MCU_BUILD_ID counter=dwt_cyccnt|systick overhead=N
 *   golden_steps=N max_abs_err=Ne-9            (int8: max_lsb_err=N mismatches=N)
 *   step_stack_bytes=N state_bytes=N
 *   cycles=c0,c1,...                            (one per golden step, the counter's overhead taken off)
 *   GOLDEN PASS | GOLDEN FAIL
 *   LTC-MCU END
 * then waits for the next 'G'. */
#define GOLDEN_NO_MAIN
#ifdef MCU_INT8
#include "golden_int_main.c"
#define MCU_TOL_OK (worst <= GOLDEN_TOL_LSB)
#else
#include "golden_main.c"
#define MCU_TOL_OK (worst <= GOLDEN_TOL)
#endif
#include "mcu.h"

static uint32_t cycles[GOLDEN_STEPS];
static uint32_t overhead;

#define TIMED_STEP(k)                                                          \
    do {                                                                       \
        uint32_t c0_ = mcu_count();                                            \
        STEP_AT(k);                                                            \
        cycles[k] = mcu_elapsed(c0_, mcu_count()) - overhead;                  \
    } while (0)

static void put_cycles(void)
{
    int t;
    platform_puts("cycles=");
    for (t = 0; t < GOLDEN_STEPS; ++t) {
        if (t)
            platform_puts(",");
        put_ulong(cycles[t]);
    }
    platform_puts("\n");
}

int main(void)
{
    GOLDEN_STATE_T s;
    const char *counter;
#ifdef MCU_INT8
    int16_t y[GOLDEN_OUTPUTS];
    unsigned long worst, mismatches;
#else
    float y[GOLDEN_OUTPUTS];
    float worst;
#endif
    platform_init();
    counter = mcu_counter_init();
    overhead = mcu_overhead();
    for (;;) {
        while (uart_getc() != 'G') {
        }
        worst = 0;
        platform_puts("LTC-MCU BENCH id=");
        put_ulong(MCU_BUILD_ID);
        platform_puts(" counter=");
        platform_puts(counter);
        platform_puts(" overhead=");
        put_ulong(overhead);
        platform_puts("\n");
#ifdef MCU_INT8
        mismatches = 0;
        GOLDEN_COMPARE(s, TIMED_STEP, CHECK);
        golden_put_error(worst, mismatches);
#else
        GOLDEN_COMPARE(s, TIMED_STEP, CHECK);
        golden_put_error(worst);
#endif
        platform_stack_probe_begin();
        STEP_AT(0);
        golden_put_stack(platform_stack_probe_end(), (unsigned long)sizeof(s));
        put_cycles();
        platform_puts(MCU_TOL_OK ? "GOLDEN PASS\nLTC-MCU END\n" : "GOLDEN FAIL\nLTC-MCU END\n");
    }
}
