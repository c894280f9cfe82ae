/* ltc control --backend mcu:CORE (processor in the loop): the board steps the exported C for the
 * host over the UART. pil_model.h (written by ltc_edge/codegen/mcu.py) names the model.
 *
 * Frame (both ways): 0xA5, type, length (u16 LE), payload, CRC-16/CCITT-FALSE (u16 LE) over type,
 * length and payload; floats are IEEE-754 single, little-endian.
 *   board -> host 'B' at start-up (empty): a 'B' in the middle of a run means the board reset
 *   host 'I' (empty)                 -> 'i': u16 inputs, outputs, state size; u8 counter (1 = DWT CYCCNT);
 *                                       u32 MCU_BUILD_ID (the host tells its own build from a stale one)
 *   host 'S': f32 dt, x[in], h[S]    -> 's': u32 cycles of the step, y[out], the new h[S]
 *   a frame with a bad checksum, length or type -> 'E': u8 code (1 checksum, 2 length, 3 type)
 * The state travels with each step, so the host's guards see it (and may clip or restore it). */
#include <string.h>
#include "pil_model.h"
#include "mcu.h"

void platform_init(void);

#define SYNC 0xA5
#define IN_BYTES (4 * (1 + PIL_INPUTS + PIL_STATE_SIZE))
#define OUT_BYTES (4 * (1 + PIL_OUTPUTS + PIL_STATE_SIZE))
#define MAX_BYTES (IN_BYTES > OUT_BYTES ? IN_BYTES : OUT_BYTES)

static uint8_t buf[MAX_BYTES];

static uint16_t crc16(uint16_t crc, const uint8_t *p, unsigned n)
{
    unsigned i;
    int b;
    for (i = 0; i < n; ++i) {
        crc ^= (uint16_t)(p[i] << 8);
        for (b = 0; b < 8; ++b)
            crc = (uint16_t)((crc & 0x8000u) ? (crc << 1) ^ 0x1021u : crc << 1);
    }
    return crc;
}

static void send(uint8_t type, const uint8_t *p, unsigned n)
{
    uint8_t head[3];
    uint16_t crc;
    unsigned i;
    head[0] = type;
    head[1] = (uint8_t)(n & 0xFF);
    head[2] = (uint8_t)(n >> 8);
    crc = crc16(crc16(0xFFFFu, head, 3), p, n);
    uart_putc(SYNC);
    for (i = 0; i < 3; ++i)
        uart_putc(head[i]);
    for (i = 0; i < n; ++i)
        uart_putc(p[i]);
    uart_putc(crc & 0xFF);
    uart_putc(crc >> 8);
}

static void send_error(uint8_t code) { send('E', &code, 1); }

/* the next frame's type and length (its payload in buf), or -1 after answering a bad one with 'E' */
static int receive(unsigned *len)
{
    uint8_t head[3];
    uint16_t crc;
    unsigned i, n;
    while (uart_getc() != SYNC) {
    }
    for (i = 0; i < 3; ++i)
        head[i] = (uint8_t)uart_getc();
    n = head[1] | ((unsigned)head[2] << 8);
    if (n > MAX_BYTES) {
        send_error(2);
        return -1;
    }
    for (i = 0; i < n; ++i)
        buf[i] = (uint8_t)uart_getc();
    crc = (uint16_t)uart_getc();
    crc |= (uint16_t)(uart_getc() << 8);
    if (crc != crc16(crc16(0xFFFFu, head, 3), buf, n)) {
        send_error(1);
        return -1;
    }
    *len = n;
    return head[0];
}

static void info(int dwt)
{
    uint8_t p[11];
    uint32_t id = MCU_BUILD_ID;
    p[0] = PIL_INPUTS & 0xFF, p[1] = PIL_INPUTS >> 8;
    p[2] = PIL_OUTPUTS & 0xFF, p[3] = PIL_OUTPUTS >> 8;
    p[4] = PIL_STATE_SIZE & 0xFF, p[5] = PIL_STATE_SIZE >> 8;
    p[6] = (uint8_t)dwt;
    memcpy(p + 7, &id, 4);
    send('i', p, sizeof p);
}

static void step(uint32_t overhead)
{
    PIL_STATE_T s;
    float dt, x[PIL_INPUTS], y[PIL_OUTPUTS];
    uint32_t c0, cycles;
    memcpy(&dt, buf, 4);
    memcpy(x, buf + 4, sizeof x);
    memcpy(s.h, buf + 4 + sizeof x, sizeof s.h);
    c0 = mcu_count();
    PIL_STEP(&s, x, dt, y);
    cycles = mcu_elapsed(c0, mcu_count()) - overhead;
    memcpy(buf, &cycles, 4);
    memcpy(buf + 4, y, sizeof y);
    memcpy(buf + 4 + sizeof y, s.h, sizeof s.h);
    send('s', buf, OUT_BYTES);
}

int main(void)
{
    unsigned len;
    int type, dwt;
    uint32_t overhead;
    platform_init();
    dwt = mcu_counter_init()[0] == 'd';
    overhead = mcu_overhead();
    send('B', buf, 0);
    for (;;) {
        type = receive(&len);
        if (type == 'I' && len == 0)
            info(dwt);
        else if (type == 'S' && len == IN_BYTES)
            step(overhead);
        else if (type == 'S')
            send_error(2);
        else if (type >= 0)
            send_error(3);
    }
}
