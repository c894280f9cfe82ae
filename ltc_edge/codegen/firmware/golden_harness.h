/* Shared by the golden harnesses (golden_main.c: fp32 step; golden_int_main.c: integer step),
 * portable C99: the platform interface, integer printing, the stack and instruction measurement
 * of one step, and the verdict. Include it after the golden data header. */
#ifndef LTC_EDGE_GOLDEN_HARNESS_H
#define LTC_EDGE_GOLDEN_HARNESS_H

void platform_init(void);
void platform_puts(const char *s);
unsigned long platform_count(void);   /* a counter (Cortex-M: SysTick under qemu -icount) or 0 */
unsigned long platform_count_scale(void);
const char *platform_count_unit(void);  /* what count * scale counts ("instructions", "systick_ticks"), or 0: no counter */
unsigned long platform_stack_probe_begin(void);
unsigned long platform_stack_probe_end(void);
int platform_has_stack_probe(void);     /* 0: a hosted build, no stack measurement */
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

/* labelled: the stack one step used (bare metal; a hosted build says n/a) and the state's size */
static void golden_put_stack(unsigned long stack, unsigned long state_bytes)
{
    platform_puts("step_stack_bytes=");
    if (platform_has_stack_probe())
        put_ulong(stack);
    else
        platform_puts("n/a (hosted build: no stack probe; the export manifest's stack_bytes is gcc's estimate)");
    platform_puts(" state_bytes=");
    put_ulong(state_bytes);
    platform_puts("\n");
}

/* labelled: <unit>_n and <unit>_2n, the counts of GOLDEN_TIMING_STEPS steps and of twice as many */
static void golden_put_counts(unsigned long one, unsigned long two)
{
    const char *unit = platform_count_unit();
    if (!unit) {
        platform_puts("instructions: n/a (hosted build: no counter; measure with callgrind or qemu)\n");
        return;
    }
    platform_puts("timing_steps=");
    put_ulong(GOLDEN_TIMING_STEPS);
    platform_puts(" ");
    platform_puts(unit);
    platform_puts("_n=");
    put_ulong(one * platform_count_scale());
    platform_puts(" ");
    platform_puts(unit);
    platform_puts("_2n=");
    put_ulong(two * platform_count_scale());
    platform_puts(" (");
    platform_puts(unit);
    platform_puts(" over timing_steps and 2*timing_steps steps; per step: their difference / timing_steps)\n");
}

/* Reset `state`, then step through the golden inputs: STEP_AT(t) steps the model once on golden
 * input t, then CHECK(t, i) compares its output i with the reference. */
#define GOLDEN_COMPARE(state, STEP_AT, CHECK)                                  \
    do {                                                                       \
        int g_t_, g_i_;                                                        \
        GOLDEN_RESET(&(state));                                                \
        for (g_t_ = 0; g_t_ < GOLDEN_STEPS; ++g_t_) {                          \
            STEP_AT(g_t_);                                                     \
            for (g_i_ = 0; g_i_ < GOLDEN_OUTPUTS; ++g_i_)                      \
                CHECK(g_t_, g_i_);                                             \
        }                                                                      \
    } while (0)

/* STEP_AT(k) as above. Prints the stack one step uses
 * (bare metal: painted-stack high-water mark) and the state's size, then the count of
 * GOLDEN_TIMING_STEPS steps and of twice as many (differenced, the loop/probe overhead cancels).
 * A macro, so that the timed loops call the step directly, as a hand-written loop would. */
#define GOLDEN_MEASURE(STEP_AT, state_bytes)                                   \
    do {                                                                       \
        unsigned long g_c0_, g_one_;                                           \
        int g_t_;                                                              \
        platform_stack_probe_begin();                                          \
        STEP_AT(0);                                                            \
        golden_put_stack(platform_stack_probe_end(), (state_bytes));           \
        g_c0_ = platform_count();                                              \
        for (g_t_ = 0; g_t_ < GOLDEN_TIMING_STEPS; ++g_t_)                     \
            STEP_AT(g_t_ % GOLDEN_STEPS);                                      \
        g_one_ = platform_count() - g_c0_;                                     \
        g_c0_ = platform_count();                                              \
        for (g_t_ = 0; g_t_ < 2 * GOLDEN_TIMING_STEPS; ++g_t_)                 \
            STEP_AT(g_t_ % GOLDEN_STEPS);                                      \
        golden_put_counts(g_one_, platform_count() - g_c0_);                   \
    } while (0)

/* GOLDEN PASS and exit 0, or GOLDEN FAIL and exit 1 */
static int golden_verdict(int pass)
{
    platform_puts(pass ? "GOLDEN PASS\n" : "GOLDEN FAIL\n");
    platform_exit(pass ? 0 : 1);
    return pass ? 0 : 1;
}

#endif
