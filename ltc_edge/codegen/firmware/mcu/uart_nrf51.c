/* UART driver for the BBC micro:bit (nRF51822, qemu -M microbit): the UART at 0x40002000, TX on
 * P0.24 and RX on P0.25 (the pins wired to the board's USB serial bridge), 115200 baud. */
#include <stdint.h>

#define UART_BASE 0x40002000u
#define REG(off) (*(volatile uint32_t *)(UART_BASE + (off)))
#define STARTRX REG(0x000u)
#define STARTTX REG(0x008u)
#define RXDRDY REG(0x108u)
#define TXDRDY REG(0x11Cu)
#define ENABLE REG(0x500u)
#define PSELTXD REG(0x50Cu)
#define PSELRXD REG(0x514u)
#define RXD REG(0x518u)
#define TXD REG(0x51Cu)
#define BAUDRATE REG(0x524u)

void uart_init(void)
{
    PSELTXD = 24u;
    PSELRXD = 25u;
    BAUDRATE = 0x01D7E000u; /* 115200 */
    ENABLE = 4u;
    STARTTX = 1u;
    STARTRX = 1u;
}

void uart_putc(int c)
{
    TXDRDY = 0u;
    TXD = (uint32_t)(c & 0xFF);
    while (!TXDRDY) {
    }
}

int uart_getc(void)
{
    while (!RXDRDY) {
    }
    RXDRDY = 0u;
    return (int)(RXD & 0xFFu);
}
