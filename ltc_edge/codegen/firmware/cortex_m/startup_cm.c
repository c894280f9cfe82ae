/* Minimal Cortex-M0/M3/M4 start-up (qemu microbit, mps2-an385, mps2-an386): vector table,
 * .data copy, .bss clear, FPU enable on a core built for one (__ARM_FP), then main(). */
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
void platform_exit(int code);

void Reset_Handler(void);
void Default_Handler(void);

void Default_Handler(void)
{
    platform_exit(3); /* a fault: report it as a failed run instead of hanging */
}

/* an entry of the vector table: the initial stack pointer, then handlers (a union: ISO C has no
 * conversion between function and object pointers, so the table stays clean under -pedantic) */
typedef union {
    const uint32_t *stack_top;
    void (*handler)(void);
} vector_t;

#define H(f) {.handler = (f)}
#define NONE {0}
__attribute__((section(".isr_vector"), used)) const vector_t vectors[16] = {
    {.stack_top = &_estack}, H(Reset_Handler), H(Default_Handler), H(Default_Handler), /* NMI, HardFault */
    H(Default_Handler), H(Default_Handler), H(Default_Handler), NONE, NONE, NONE, NONE, /* MemManage..UsageFault */
    H(Default_Handler), H(Default_Handler), NONE, H(Default_Handler), H(Default_Handler), /* SVC..SysTick */
};

void Reset_Handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata)
        *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;)
        *dst++ = 0;
#ifdef __ARM_FP
    *(volatile uint32_t *)0xE000ED88 |= (0xFu << 20); /* CPACR: CP10/CP11 (the FPU) */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    platform_exit(main());
}
