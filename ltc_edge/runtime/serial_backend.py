"""The mcu backend: processor in the loop. The model's C runs on a microcontroller; each step's
observation, dt and state go to the board over a serial port and the board answers with the
action, the new state and the cycles the step took (firmware/mcu/pil_main.c states the framed
protocol: sync byte, type, length, payload of float32s, CRC-16). The state travels with each
step, so the Controller's guards apply as on the host.

    load("model.safetensors", backend="mcu:cortex-m4", serial="socket://127.0.0.1:4321",
         flash_cmd="qemu-system-arm -M mps2-an386 ... -kernel {elf}")

`serial`: a pyserial URL (/dev/ttyACM0, socket://host:port, rfc2217://host:port). `flash_cmd`: run
with {elf}, {bin}, {hex} replaced by the firmware's files (no shell); a command that keeps running
(an emulator serving the port) runs until the backend is closed. Board (the link, shared with
`ltc bench --target mcu:...`) turns every failure into one BoardError line. Needs pyserial.
"""

from __future__ import annotations

import os
import shlex
import signal
import struct
import subprocess
import tempfile
import time
import weakref
from pathlib import Path

import numpy as np

from ltc_edge.errors import BoardError

from .backend import Backend, check_options
from .errors import BackendUnavailableError
from .meta import meta_from_config

SYNC = 0xA5
ANSWER_S, CONNECT_S = 5.0, 30.0  # default seconds: one answer; flash + connect + the first answer
PORT_AFTER_FLASH_S = 5.0  # a port that is not there this long after the flash command finished is an error
ERROR_CODES = {1: "a bad checksum", 2: "a bad length", 3: "an unknown type"}


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), as pil_main.c computes it."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def frame(kind: bytes, payload: bytes = b"") -> bytes:
    head = kind + struct.pack("<H", len(payload))
    return bytes([SYNC]) + head + payload + struct.pack("<H", crc16(head + payload))


def flash_argv(flash_cmd: str, files: dict) -> list[str]:
    """The flash command's words with {elf}, {bin}, {hex} replaced (one line if it names none)."""
    try:
        words = shlex.split(flash_cmd or "")
    except ValueError as e:
        raise BoardError(f"--flash-cmd: {e}") from None
    if not any(f"{{{k}}}" in w for w in words for k in ("elf", "bin", "hex")):
        raise BoardError(f"--flash-cmd must name the firmware as {{elf}}, {{bin}} or {{hex}}, got {flash_cmd!r}")
    out = []
    for w in words:
        for k in ("elf", "bin", "hex"):
            w = w.replace(f"{{{k}}}", str(files[k]))
        out.append(w)
    return out


def need_pyserial() -> None:
    try:
        import serial  # noqa: F401
    except ImportError:
        raise BackendUnavailableError("a board on a serial port needs pyserial (pip install 'ltc-edge[boards]')") from None


class Board:
    """A board behind a serial port, flashed by the user's command. open() runs the command
    (kept alive while it runs: an emulator) and connects; read/write raise BoardError."""

    def __init__(self, url: str, flash_cmd: str, files: dict, *, timeout: float = ANSWER_S,
                 connect_timeout: float = CONNECT_S):
        need_pyserial()
        if not url:
            raise BoardError("give the board's serial port: --serial /dev/ttyACM0, socket://HOST:PORT or rfc2217://...")
        self.url, self.timeout, self.connect_timeout = url, float(timeout), float(connect_timeout)
        self.argv = flash_argv(flash_cmd, files)
        self.port = self.proc = None
        self._log = tempfile.TemporaryFile()
        self._finalizer = weakref.finalize(self, _stop, self)

    def open(self) -> None:
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                         start_new_session=True)
        except OSError as e:
            raise BoardError(f"the flash command failed to start: {e.strerror}: {self.argv[0]}") from None
        deadline = time.monotonic() + self.connect_timeout
        while self.port is None:
            self.check_flasher()
            if self.proc.poll() == 0:  # a flasher that finished: its board's port shows up soon or never
                deadline = min(deadline, time.monotonic() + PORT_AFTER_FLASH_S)
            try:
                import serial

                self.port = serial.serial_for_url(self.url, timeout=0.05, baudrate=115200)
            except (serial.SerialException, OSError, ValueError) as e:
                if isinstance(e, ValueError) or "not supported" in str(e) or "expected" in str(e):
                    raise BoardError(f"--serial {self.url}: {' '.join(str(e).split())}") from None
                if time.monotonic() > deadline:
                    when = "after the flash command finished" if self.proc.poll() == 0 else \
                        f"within {self.connect_timeout:g} s"
                    raise BoardError(f"cannot open {self.url} {when}: {' '.join(str(e).split())}") from None
                time.sleep(0.1)

    def check_flasher(self) -> None:
        """A flash command that exited with an error stops the run (one line, its last words)."""
        rc = None if self.proc is None else self.proc.poll()
        if rc:
            self._log.seek(0)
            lines = [l for l in self._log.read().decode(errors="replace").splitlines() if l.strip()]
            last = f": {' '.join(lines[-1].split())[:200]}" if lines else ""
            raise BoardError(f"the flash command failed (exit {rc}){last}")

    def write(self, data: bytes) -> None:
        try:
            self.port.write(data)
        except Exception as e:  # a closed socket, an unplugged board
            raise BoardError(f"cannot write to {self.url}: {' '.join(str(e).split())}") from None

    def read(self, n: int, deadline: float, what: str = "an answer") -> bytes:
        """Exactly n bytes before the monotonic deadline."""
        buf = b""
        while len(buf) < n:
            try:
                buf += self.port.read(n - len(buf))
            except Exception as e:
                raise BoardError(f"lost {self.url}: {' '.join(str(e).split())}") from None
            if len(buf) < n and time.monotonic() > deadline:
                self.check_flasher()
                got = f" (got {len(buf)} of {n} bytes: {buf[:16].hex(' ')})" if buf else ""
                raise BoardError(f"no answer from the board on {self.url} within {self.timeout:g} s "
                                 f"waiting for {what}{got}")
        return buf

    def read_some(self) -> bytes:
        """What has arrived (up to 4 KB; waits up to 50 ms)."""
        try:
            return self.port.read(max(1, min(4096, self.port.in_waiting)))
        except Exception as e:
            raise BoardError(f"lost {self.url}: {' '.join(str(e).split())}") from None

    def read_frame(self, deadline: float) -> tuple[bytes, bytes]:
        """(type, payload) of the next frame; garbage or a bad checksum is one BoardError line."""
        first = self.read(1, deadline, "a frame")
        if first[0] != SYNC:
            extra = self.port.read(15)
            raise BoardError(f"garbage from the board on {self.url} where a frame was expected: "
                             f"{(first + extra).hex(' ')}")
        head = self.read(3, deadline, "a frame header")
        (length,) = struct.unpack("<H", head[1:])
        body = self.read(length + 2, deadline, "a frame payload")
        payload, (crc,) = body[:-2], struct.unpack("<H", body[-2:])
        if crc != crc16(head + payload):
            raise BoardError(f"a frame from the board on {self.url} failed its CRC-16 check "
                             "(line noise, a wrong baud rate or another program on the port)")
        return head[:1], payload

    def close(self) -> None:
        self._finalizer()


def _stop(board: Board) -> None:
    """Close the port and stop a flash command still running (its whole process group)."""
    if board.port is not None:
        board.port.close()
        board.port = None
    proc = board.proc
    if proc is not None and proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    board._log.close()


def step_on_board(link: Board, payload: bytes, answer: struct.Struct) -> tuple:
    """One 'S' frame out, its 's' answer unpacked; a reset, a rejection or another frame is one line."""
    link.write(frame(b"S", payload))
    kind, p = link.read_frame(time.monotonic() + link.timeout)
    while kind == b"i":  # answers to the handshake's repeated 'I' frames
        kind, p = link.read_frame(time.monotonic() + link.timeout)
    if kind == b"B":
        raise BoardError(f"the board on {link.url} reset during the run (it sent its start-up frame)")
    if kind == b"E":
        raise BoardError(f"the board rejected a step frame: {ERROR_CODES.get(p[0] if p else 0, 'unknown error')}")
    if kind != b"s" or len(p) != answer.size:
        raise BoardError(f"garbage from the board on {link.url}: a {kind!r} frame of {len(p)} bytes "
                         f"where a step answer ({answer.size} bytes) was expected")
    return answer.unpack(p)


class SerialBackend(Backend):
    """A .safetensors model's C on a board (fp32, the core's default build) stepped over a serial port."""
    name = "mcu"

    def __init__(self, path, batch: int = 1, *, core: str = "cortex-m4", serial: str | None = None,
                 flash_cmd: str | None = None, board: str | None = None, board_c=None, clock_hz: float | None = None,
                 timeout: float = ANSWER_S, connect_timeout: float = CONNECT_S, **kw):
        check_options("mcu", kw)
        need_pyserial()  # before the firmware build
        from ltc_edge.codegen import mcu
        from ltc_edge.nn.modelfile import read

        path = Path(path)
        if path.suffix != ".safetensors":
            raise BoardError(f"{path}: the mcu backend builds its firmware from a .safetensors model")
        self.core = mcu.core_name(core)
        board_spec = mcu.board_files(self.core, board, board_c)
        if not serial or not flash_cmd:
            raise BoardError("the mcu backend needs --serial URL and --flash-cmd \"CMD ... {elf}\"")
        flash_argv(flash_cmd, {"elf": "", "bin": "", "hex": ""})  # a bad command fails before the build
        config, raw = read(path)
        self.meta = meta_from_config(config, raw, source=str(path))
        self._tmp = tempfile.TemporaryDirectory(prefix="ltc-mcu-")
        self.firmware = mcu.pil_firmware(Path(self._tmp.name), config, raw, self.core, board_spec)
        self.board_name, self.clock_hz, self.cycles = board_spec["name"], clock_hz, []
        self.link = Board(serial, flash_cmd, self.firmware, timeout=timeout, connect_timeout=connect_timeout)
        try:
            self.link.open()
            self.counter = self._handshake()
        except BaseException:
            self.link.close()
            raise
        self.bind(batch)

    def _handshake(self) -> str:
        """Ask for the board's sizes (again every 0.5 s: a board may still be booting) until this
        build answers; a stale firmware's answers, boot frames and noise are skipped until the deadline."""
        link, m = self.link, self.meta
        deadline, last = time.monotonic() + link.connect_timeout, None
        while time.monotonic() < deadline:
            link.write(frame(b"I"))
            try:
                kind, p = link.read_frame(min(deadline, time.monotonic() + 0.5))
            except BoardError as e:
                link.check_flasher()
                last = e
                continue
            if kind == b"i" and len(p) == 11:
                n_in, n_out, n_state, dwt, build = struct.unpack("<HHHBI", p)
                if build != self.firmware["build_id"]:
                    continue
                if (n_in, n_out, n_state) != (m.input_size, m.output_size, m.state_size):
                    raise BoardError(f"the board's model has sizes {(n_in, n_out, n_state)}, expected "
                                     f"{(m.input_size, m.output_size, m.state_size)}")
                return "dwt_cyccnt" if dwt else "systick"
        raise last or BoardError(f"no answer from the board on {link.url} within {link.connect_timeout:g} s")

    def bind(self, batch: int) -> None:
        super().bind(batch)
        m = self.meta
        self._answer = struct.Struct(f"<I{m.output_size + m.state_size}f")

    def run(self) -> None:
        """Each row: one 'S' frame (dt, x, h) out, one 's' frame (cycles, y, h) back."""
        m = self.meta
        for b in range(self.batch):
            payload = np.concatenate([self.dt[b], self.x[b], self.h[b]]).astype("<f4").tobytes()
            values = step_on_board(self.link, payload, self._answer)
            self.cycles.append(values[0])
            self.y[b] = values[1:1 + m.output_size]
            self.h_new[b] = values[1 + m.output_size:]

    def close(self) -> None:
        self.link.close()

    def describe(self) -> dict:
        c = np.asarray(self.cycles, np.float64)
        d = {"core": self.core, "board": self.board_name, "serial": self.link.url, "counter": self.counter,
             "firmware_flash_bytes": self.firmware["flash_bytes"], "steps_on_board": int(c.size),
             "cycles_p50": float(np.median(c)) if c.size else None, "cycles_max": int(c.max()) if c.size else None}
        if self.clock_hz and c.size:
            d.update(clock_hz=float(self.clock_hz), us_p50=d["cycles_p50"] / self.clock_hz * 1e6,
                     us_max=d["cycles_max"] / self.clock_hz * 1e6)
        return d
