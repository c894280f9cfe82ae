"""A misbehaving "board" for tests/test_mcu_board.py, started as the flash command:
    python fake_board.py PORT MODE FIRMWARE
listens on 127.0.0.1:PORT (the --serial socket://) and, once connected, per MODE:
silent (reads, never answers), garbage (text where frames belong), badcrc (a frame with a wrong
checksum), reset (its start-up frame), reject (an 'E' frame: bad checksum), short (an 's' frame of
4 bytes). Exits when the host closes the connection."""

import socket
import sys

from ltc_edge.runtime.serial_backend import frame

ANSWERS = {"garbage": b"Hello from the bootloader\r\n", "badcrc": frame(b"i", bytes(11))[:-2] + b"\0\0",
           "reset": frame(b"B"), "reject": frame(b"E", b"\x01"), "short": frame(b"s", bytes(4))}

port, mode = int(sys.argv[1]), sys.argv[2]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(1)
conn, _ = srv.accept()
while True:
    data = conn.recv(256)
    if not data:
        break
    if mode in ANSWERS:
        conn.sendall(ANSWERS[mode])
