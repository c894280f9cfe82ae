/* UART driver for STM32F4 Nucleo-64 boards (F401RE, F411RE, F446RE, ...): USART2 on PA2 (TX) /
 * PA3 (RX), the ST-LINK's virtual COM port, 115200 8N1. Runs from the reset clock (HSI 16 MHz,
 * APB1 undivided), so it needs no clock set-up; a firmware that raises the clock must raise BRR
 * with it. Also runs on qemu -M netduinoplus2 (STM32F405; USART2 is qemu's second -serial). */
#include <stdint.h>

#define REG(addr) (*(volatile uint32_t *)(addr))
#define RCC_AHB1ENR REG(0x40023830u)
#define RCC_APB1ENR REG(0x40023840u)
#define GPIOA_MODER REG(0x40020000u)
#define GPIOA_AFRL REG(0x40020020u)
#define USART2_SR REG(0x40004400u) /* bit 5: RXNE, bit 7: TXE */
#define USART2_DR REG(0x40004404u)
#define USART2_BRR REG(0x40004408u)
#define USART2_CR1 REG(0x4000440Cu) /* bit 13: UE, bit 3: TE, bit 2: RE */

#ifndef UART_PCLK_HZ
#define UART_PCLK_HZ 16000000u
#endif

void uart_init(void)
{
    RCC_AHB1ENR |= 1u;          /* GPIOA */
    RCC_APB1ENR |= 1u << 17;    /* USART2 */
    GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 4)) | (0xAu << 4);      /* PA2, PA3: alternate function */
    GPIOA_AFRL = (GPIOA_AFRL & ~(0xFFu << 8)) | (0x77u << 8);      /* AF7: USART2 */
    USART2_BRR = (UART_PCLK_HZ + 57600u) / 115200u;                /* 16x oversampling: 139 at 16 MHz */
    USART2_CR1 = (1u << 13) | (1u << 3) | (1u << 2);
}

void uart_putc(int c)
{
    while (!(USART2_SR & (1u << 7))) {
    }
    USART2_DR = (uint32_t)(c & 0xFF);
}

int uart_getc(void)
{
    while (!(USART2_SR & (1u << 5))) {
    }
    return (int)(USART2_DR & 0xFFu);
}
