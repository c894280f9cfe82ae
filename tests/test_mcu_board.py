"""Microcontrollers over a serial port (issue 25 items 2-4): the framed protocol, the link's
one-line errors against a misbehaving fake board (tests/fake_board.py as the flash command),
and, marked qemu, qemu-system-arm as the board: processor in the loop (mps2-an386 for the M4,
microbit for the M0) agrees with the host C backend step by step, and `ltc bench --target
mcu:cortex-m4` reads the golden run's cycles over the UART."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ltc_edge.errors import BoardError
from ltc_edge.runtime.serial_backend import Board, crc16, flash_argv, frame

HERE = Path(__file__).resolve().parent
ARM_GCC = shutil.which("arm-none-eabi-gcc") is not None
QEMU = ARM_GCC and shutil.which("qemu-system-arm") is not None
pytest.importorskip("serial")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def qemu_cmd(machine: str, port: int) -> str:
    return (f"qemu-system-arm -M {machine} -nographic -monitor none -icount shift=0 "
            f"-serial tcp:127.0.0.1:{port},server=on,wait=on -kernel {{elf}}")


def test_crc16_is_ccitt_false_and_frames_carry_it():
    assert crc16(b"123456789") == 0x29B1  # the standard check value
    f = frame(b"S", b"\x01\x02")
    assert f[:4] == bytes([0xA5]) + b"S\x02\x00" and int.from_bytes(f[-2:], "little") == crc16(b"S\x02\x00\x01\x02")


def test_flash_command_placeholders():
    files = {"elf": "/b/fw.elf", "bin": "/b/fw.bin", "hex": "/b/fw.hex"}
    assert flash_argv("cp {bin} '/media/NODE F446RE/'", files) == ["cp", "/b/fw.bin", "/media/NODE F446RE/"]
    assert flash_argv("openocd -c 'program {elf} verify reset exit'", files)[-1] == "program /b/fw.elf verify reset exit"
    with pytest.raises(BoardError, match=r"must name the firmware"):
        flash_argv("st-flash write fw.bin 0x8000000", files)


def _fake(mode: str, timeout: float = 1.0) -> Board:
    port = free_port()
    board = Board(f"socket://127.0.0.1:{port}", f"{sys.executable} {HERE / 'fake_board.py'} {port} {mode} {{elf}}",
                  {"elf": "fw.elf", "bin": "fw.bin", "hex": "fw.hex"}, timeout=timeout, connect_timeout=10)
    board.open()
    return board


@pytest.mark.parametrize("mode, message", [
    # waiting for the handshake's answer
    ("silent", r"^no answer from the board on socket://127\.0\.0\.1:\d+ within 1 s waiting for a frame$"),
    ("garbage", r"^garbage from the board on socket://\S+ where a frame was expected: 48 65 6c 6c 6f"),
    ("badcrc", r"^a frame from the board on socket://\S+ failed its CRC-16 check"),
    # a step's answer (step_on_board)
    ("reset", r"^the board on socket://\S+ reset during the run \(it sent its start-up frame\)$"),
    ("reject", r"^the board rejected a step frame: a bad checksum$"),
    ("short", r"^garbage from the board on socket://\S+: a b's' frame of 4 bytes where a step answer \(12 bytes\)"),
])
def test_a_misbehaving_board_is_one_line(mode, message):
    import struct
    import time

    from ltc_edge.runtime.serial_backend import step_on_board

    board = _fake(mode)
    try:
        with pytest.raises(BoardError, match=message) as e:
            if mode in ("silent", "garbage", "badcrc"):
                board.write(frame(b"I"))
                board.read_frame(time.monotonic() + 1.0)
            else:
                step_on_board(board, bytes(12), struct.Struct("<Iff"))
        assert "\n" not in str(e.value)
    finally:
        board.close()
    assert board.proc.poll() is not None  # the flash command (the fake board) was stopped


def test_a_failing_flash_command_is_one_line():
    board = Board("socket://127.0.0.1:1", f"{sys.executable} -c \"import sys; sys.exit('no probe found')\" {{elf}}",
                  {"elf": "fw.elf", "bin": "", "hex": ""}, connect_timeout=10)
    with pytest.raises(BoardError, match=r"^the flash command failed \(exit 1\): no probe found$"):
        board.open()
    board.close()


@pytest.mark.qemu  # builds the firmware (arm-none-eabi-gcc) before the flash command fails
@pytest.mark.skipif(not ARM_GCC, reason="needs arm-none-eabi-gcc")
def test_cli_board_errors_are_one_line(tmp_path):
    from typer.testing import CliRunner

    from ltc_edge.cli import app
    from ltc_edge.nn import build_model, save

    model = save(build_model("ltc", 3, wiring="auto-ncp", units=6, output_size=1, seed=0), tmp_path / "m.safetensors")
    run = CliRunner().invoke
    cases = {("-b", "mcu:cortex-m4", "--serial", "socket://127.0.0.1:9", "--flash-cmd", "false {elf}"):
             "error: the flash command failed (exit 1)",
             ("-b", "mcu:cortex-m9", "--serial", "x", "--flash-cmd", "x {elf}"): "error: unknown microcontroller core",
             ("-b", "c", "--serial", "/dev/ttyACM0"): "error: --serial applies to --backend mcu:CORE",
             ("-b", "mcu:cortex-m33", "--serial", "x", "--flash-cmd", "x {elf}"): "error: cortex-m33 has no built-in board"}
    for args, first in cases.items():
        r = run(app, ["control", str(model), "-k", "1", *args])
        assert r.exit_code != 0 and r.output.startswith(first) and r.output.count("\n") == 1, (args, r.output)


# ---- qemu-system-arm as the board -------------------------------------------------------------


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from ltc_edge.nn import build_model, save

    m = build_model("ltc", 3, wiring="auto-ncp", units=8, output_size=1, seed=0)
    m.apply_constraints()
    return save(m, tmp_path_factory.mktemp("mcu") / "pend.safetensors")


@pytest.mark.qemu
@pytest.mark.skipif(not QEMU, reason="needs arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("core, machine", [("cortex-m4", "mps2-an386"), ("cortex-m0", "microbit"),
                                           ("cortex-m7", "mps2-an500")])
def test_pil_on_qemu_equals_the_host_c_backend(model, core, machine):
    """Pendulum closed loop: the board's action at every step within 1e-4 of the host C's (both see
    the same observation), and the episode returns agree."""
    gym = pytest.importorskip("gymnasium")
    from ltc_edge.runtime import load
    from ltc_edge.runtime.control import make_action

    port = free_port()
    board = load(model, backend=f"mcu:{core}", serial=f"socket://127.0.0.1:{port}", flash_cmd=qemu_cmd(machine, port))
    host = load(model, backend="c")
    env = gym.make("Pendulum-v1")
    try:
        obs, _ = env.reset(seed=0)
        ret_board = ret_host = 0.0
        worst = 0.0
        for _ in range(25):
            x = np.asarray(obs, np.float32)
            a, b = np.array(board.step(x, 0.05)), np.array(host.step(x, 0.05))
            worst = max(worst, float(np.abs(a - b).max()))
            obs, r, *_ = env.step(make_action(b, env.action_space))
            ret_host += r
            ret_board += r if np.abs(a - b).max() <= 1e-4 else np.nan
        d = board.backend.describe()
    finally:
        board.backend.close()
        env.close()
    assert worst <= 1e-4 and ret_board == ret_host
    assert board.backend.link.proc.poll() is not None  # qemu was stopped
    assert d["steps_on_board"] == 25 and d["counter"] == "systick"  # qemu has no DWT CYCCNT: detected
    assert 0 < d["cycles_p50"] <= d["cycles_max"]
    assert np.allclose(board.state, host.state, atol=1e-4)  # the state came back from the board each step


@pytest.mark.qemu
@pytest.mark.skipif(not QEMU, reason="needs arm-none-eabi-gcc and qemu-system-arm")
def test_bench_on_qemu_reads_cycles_over_the_uart(model, tmp_path):
    from typer.testing import CliRunner

    from ltc_edge.cli import app

    port = free_port()
    r = CliRunner().invoke(app, ["bench", str(model), "--target", "mcu:cortex-m4", "--out", str(tmp_path / "b"),
                                 "--serial", f"socket://127.0.0.1:{port}", "--flash-cmd",
                                 qemu_cmd("mps2-an386", port), "--clock-hz", "25e6"])
    assert r.exit_code == 0, r.output
    row = json.loads((tmp_path / "b" / "results.json").read_text())["rows"][0]
    assert row["skipped"] is None, row["skipped"]
    assert row["target"] == "mcu:cortex-m4" and row["board"] == "mps2-an386" and row["cycle_counter"] == "systick"
    assert 0 < row["cycles_per_step"] <= row["cycles_max"] and row["golden_max_abs_err"] < 1e-4
    assert row["est_step_us"] == pytest.approx(row["cycles_per_step"] / 25.0)
    assert 0 < row["stack_bytes"] < row["ram_bytes"] and row["flash_bytes"] > 500
    assert "On your board" in (tmp_path / "b" / "report.md").read_text()
    assert not subprocess.run(["pgrep", "-f", f"tcp:127.0.0.1:{port},"], capture_output=True).stdout  # qemu stopped


@pytest.mark.qemu
@pytest.mark.skipif(not QEMU, reason="needs arm-none-eabi-gcc and qemu-system-arm")
def test_eval_streaming_on_the_qemu_board_equals_the_host_c(tmp_path):
    """`ltc eval --streaming --backend mcu:cortex-m4`: the streamed metric of the board run is the host C's."""
    from datagen import oscillator_csv
    from typer.testing import CliRunner

    from ltc_edge.cli import app

    run = CliRunner().invoke
    oscillator_csv(tmp_path / "osc.csv", 400, 11)
    model = tmp_path / "osc.safetensors"
    r = run(app, ["train", "--task", "csv", "--data", str(tmp_path / "osc.csv"), "--inputs", "force", "--targets",
                  "position", "--time", "time_s", "--seq-len", "16", "--units", "6", "--epochs", "1", "--out",
                  str(model), "--no-progress"])
    assert r.exit_code == 0, r.output
    port = free_port()
    got = {}
    for backend, extra in (("c", []), ("mcu:cortex-m4", ["--serial", f"socket://127.0.0.1:{port}", "--flash-cmd",
                                                         qemu_cmd("mps2-an386", port)])):
        r = run(app, ["eval", str(model), "--streaming", "--backend", backend, *extra, "--json"])
        assert r.exit_code == 0, r.output
        got[backend] = json.loads(r.output.strip().splitlines()[-1])
    board = got["mcu:cortex-m4"]
    assert board["streaming_mse"] == pytest.approx(got["c"]["streaming_mse"], rel=1e-4)
    assert board["streaming_steps"] == got["c"]["streaming_steps"] > 10
    assert board["streaming_board"] == "mps2-an386" and 0 < board["streaming_cycles_p50"] <= board["streaming_cycles_max"]


def test_board_c_needs_its_linker_script_beside_it(tmp_path):
    from ltc_edge.codegen.mcu import board_files

    (tmp_path / "nucleo.c").write_text("/* uart_* */\n")
    with pytest.raises(BoardError, match=r"^its linker script \(--board-c FILE.c needs FILE.ld beside it\): no such "
                                         r"file .*nucleo\.ld$"):
        board_files("cortex-m4", board_c=tmp_path / "nucleo.c")
    (tmp_path / "nucleo.ld").write_text("/* memory */\n")
    got = board_files("cortex-m4", board_c=tmp_path / "nucleo.c")
    assert got["name"] == "nucleo" and got["ld"] == (tmp_path / "nucleo.ld").resolve()


@pytest.mark.qemu
@pytest.mark.skipif(not QEMU, reason="needs arm-none-eabi-gcc and qemu-system-arm")
def test_control_with_the_users_board_file_on_qemu(model, tmp_path):
    """The README's escape hatch: --board-c FILE.c (+ FILE.ld), here a copy of the mps2 driver, on the M3;
    `ltc control` prints the step cycles and its returns equal the host C's."""
    from typer.testing import CliRunner

    from ltc_edge.cli import app
    from ltc_edge.codegen.mcu import CM, MCU

    shutil.copy(MCU / "uart_cmsdk.c", tmp_path / "myboard.c")
    shutil.copy(CM / "mps2.ld", tmp_path / "myboard.ld")
    port = free_port()
    common = ["control", str(model), "--env", "Pendulum-v1", "-k", "1", "--max-steps", "15", "--json"]
    r = CliRunner().invoke(app, [*common, "-b", "mcu:cortex-m3", "--board-c", str(tmp_path / "myboard.c"),
                                 "--serial", f"socket://127.0.0.1:{port}", "--flash-cmd",
                                 qemu_cmd("mps2-an385", port), "--clock-hz", "25e6"])
    assert r.exit_code == 0, r.output
    board = json.loads(r.output.strip().splitlines()[-1])
    host = json.loads(CliRunner().invoke(app, [*common, "-b", "c"]).output.strip().splitlines()[-1])
    assert board["returns"] == pytest.approx(host["returns"], abs=1e-4)
    b = board["board"]
    assert b["board"] == "myboard" and b["core"] == "cortex-m3" and b["steps_on_board"] == 15
    assert b["us_max"] == pytest.approx(b["cycles_max"] / 25.0)


@pytest.mark.qemu  # builds the firmware (arm-none-eabi-gcc); the "board" is tests/fake_board.py
@pytest.mark.skipif(not ARM_GCC, reason="needs arm-none-eabi-gcc")
@pytest.mark.parametrize("mode, message", [("garbage", r"^garbage from the board on socket://\S+ where a frame"),
                                           ("silent", r"^no answer from the board on socket://\S+ within")])
def test_a_board_that_fails_the_handshake_is_one_line_and_stopped(model, mode, message):
    from ltc_edge.runtime import load

    port = free_port()
    cmd = f"{sys.executable} {HERE / 'fake_board.py'} {port} {mode} {{elf}}"
    with pytest.raises(BoardError, match=message):
        load(model, backend="mcu:cortex-m4", serial=f"socket://127.0.0.1:{port}", flash_cmd=cmd, connect_timeout=3)
    assert not subprocess.run(["pgrep", "-f", f"fake_board.py {port} "], capture_output=True).stdout


@pytest.mark.qemu
@pytest.mark.skipif(not QEMU, reason="needs arm-none-eabi-gcc and qemu-system-arm")
def test_nucleo_f4_board_on_qemu_netduinoplus2(model):
    """The built-in STM32F4 Nucleo board (USART2 on PA2/PA3, RCC/GPIO set up by the driver) runs on
    qemu's STM32F405 machine, whose USART2 is the second -serial: the step on the board equals the
    host C's."""
    from ltc_edge.runtime import load

    port = free_port()
    cmd = (f"qemu-system-arm -M netduinoplus2 -nographic -monitor none -serial null "
           f"-serial tcp:127.0.0.1:{port},server=on,wait=on -kernel {{elf}}")
    board = load(model, backend="mcu:cortex-m4", serial=f"socket://127.0.0.1:{port}", flash_cmd=cmd,
                 board="nucleo-f4")
    host = load(model, backend="c")
    x = np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32)
    try:
        worst = max(float(np.abs(np.array(board.step(x[t], 0.05)) - np.array(host.step(x[t], 0.05))).max())
                    for t in range(len(x)))
        d = board.backend.describe()
    finally:
        board.backend.close()
    assert worst <= 1e-4 and d["steps_on_board"] == 30
