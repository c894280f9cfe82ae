"""A misbehaving "board" for tests/test_mcu_board.py, started as the flash command:
    python fake_board.py PORT MODE FIRMWARE
listens on 127.0.0.1:PORT (the --serial socket://) and, once connected, per MODE:
silent (reads, never answers), garbage (text where frames belong), badcrc (a frame with a wrong
checksum). Exits when the host closes the connection."""

import socket
import sys

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
    if mode == "garbage":
        conn.sendall(b"Hello from the bootloader\r\n")
    elif mode == "badcrc":
        conn.sendall(bytes([0xA5]) + b"i" + (11).to_bytes(2, "little") + bytes(11) + b"\x00\x00")
