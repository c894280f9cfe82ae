/* UART driver for the Arm MPS2 boards (qemu -M mps2-an385 / mps2-an386 / mps2-an500 and the real
 * FPGA images): CMSDK APB UART0 at 0x40004000. The board's pins and clocks need no set-up. */
#include <stdint.h>

#define UART_BASE 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART_BASE + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(UART_BASE + 0x04u)) /* bit 0: TX full, bit 1: RX full */
#define UART_CTRL (*(volatile uint32_t *)(UART_BASE + 0x08u))  /* bit 0: TX enable, bit 1: RX enable */
#define UART_BAUDDIV (*(volatile uint32_t *)(UART_BASE + 0x10u))

void uart_init(void)
{
    UART_BAUDDIV = 217u; /* 25 MHz / 115200 (qemu ignores it) */
    UART_CTRL = 3u;
}

void uart_putc(int c)
{
    while (UART_STATE & 1u) {
    }
    UART_DATA = (uint32_t)(c & 0xFF);
}

int uart_getc(void)
{
    while (!(UART_STATE & 2u)) {
    }
    return (int)(UART_DATA & 0xFFu);
}
