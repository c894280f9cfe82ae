/* The bench and processor-in-the-loop firmware (ltc_edge/codegen/mcu.py) on a board's UART. */
#ifndef LTC_EDGE_MCU_H
#define LTC_EDGE_MCU_H
#include <stdint.h>

/* the board's UART driver (uart_cmsdk.c, uart_nrf51.c, or the user's --board-c file) */
void uart_init(void);
void uart_putc(int c);
int uart_getc(void);

/* the step's cycle counter (counter.c): "dwt_cyccnt" or "systick" */
const char *mcu_counter_init(void);
uint32_t mcu_count(void);
uint32_t mcu_elapsed(uint32_t from, uint32_t to);
uint32_t mcu_overhead(void);
#endif
