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

__attribute__((section(".isr_vector"), used)) const void *const vectors[16] = {
    &_estack, (const void *)Reset_Handler, (const void *)Default_Handler, (const void *)Default_Handler,
    (const void *)Default_Handler, (const void *)Default_Handler, (const void *)Default_Handler, 0, 0, 0, 0,
    (const void *)Default_Handler, (const void *)Default_Handler, 0, (const void *)Default_Handler,
    (const void *)Default_Handler,
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
