"""`ltc bench --target mcu:CORE --serial URL --flash-cmd "CMD ... {elf}"`: a row measured on a
microcontroller. The bench firmware (codegen/mcu.py: the exported C + firmware/mcu/bench_main.c +
the board's UART) steps the golden inputs of ltc_edge/bench/arm (fp32: the numpy runtime's outputs;
int8: the host build's, bit for bit), times every step with the core's cycle counter (DWT CYCCNT
where it counts, else SysTick: the report says which) and prints its report over the UART; the
flash command runs (kept alive while it runs: an emulator) and the report is read from the port."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np

from .. import precision as precisions
from ..codegen import mcu
from ..errors import BoardError
from ..runtime.serial_backend import Board

REPORT_S = 120.0  # flash, connect and the whole golden run


def check_options(targets, serial, flash_cmd, board, board_c) -> dict:
    """The board options of `ltc bench` (one line when missing for an mcu target, or given without one)."""
    mcus = [t for t in targets if t.startswith("mcu:")]
    given = {k: v for k, v in (("serial", serial), ("flash_cmd", flash_cmd), ("board", board), ("board_c", board_c))
             if v is not None}
    if not mcus:
        if given:
            raise ValueError(f"--{next(iter(given)).replace('_', '-')} applies to --target mcu:CORE")
        return {}
    if not serial or not flash_cmd:
        raise ValueError(f"--target {mcus[0]} needs --serial URL and --flash-cmd \"CMD ... {{elf}}\"")
    for t in mcus:
        mcu.board_files(mcu.core_name(t), board, board_c)  # unknown core or board: one line now
    return given


def mcu_row(job: dict, out: Path, source: Path, board_opts: dict) -> dict:
    """One row on the board: golden check, cycles per step (p50, max), flash, RAM, stack."""
    from . import arm
    from .arm import cortex_m as CM

    core = mcu.core_name(job["target"])
    board = mcu.board_files(core, board_opts.get("board"), board_opts.get("board_c"))
    work = out / "mcu" / f"{Path(job['model']).stem}-{core}-{job['precision']}"
    defines = []
    if precisions.integer_c(job["precision"]):
        defines = CM.prepare_int8(job["model"], work, steps=50, timing_steps=20, source=source)["defines"]
    else:
        arm.prepare(job["model"], work, steps=50, timing_steps=20, source=source)
    fw = mcu.bench_firmware(work, "ltc_model", job["precision"], core, board, defines)
    obj = mcu.object_sizes(work, "ltc_model", core, defines)
    rep = parse_report(read_report(board_opts, fw))
    if not rep["passed"]:
        raise BoardError(f"golden check failed on the board ({core}, {board['name']}): {rep['error']}")
    cycles = np.asarray(rep["cycles"], np.float64)
    return {"file_bytes": sum((work / f).stat().st_size for f in ("ltc_model.c", "ltc_model.h")),
            "cycles_per_step": float(np.median(cycles)), "cycles_max": int(cycles.max()),
            "cycle_counter": rep["counter"], "board": board["name"], "flash_bytes": obj["text"] + obj["data"],
            "ram_bytes": rep["state_bytes"] + rep["step_stack_bytes"] + obj["data"] + obj["bss"],
            "stack_bytes": rep["step_stack_bytes"], "firmware_flash_bytes": fw["flash_bytes"],
            "golden_max_abs_err": rep.get("max_abs_err"), "golden_max_lsb_err": rep.get("max_lsb_err")}


def read_report(board_opts: dict, fw: dict, timeout: float = REPORT_S) -> str:
    """Flash, then send 'G' (again every 0.5 s until this build's report starts) and read the
    report's text; the flash command is stopped afterwards."""
    link = Board(board_opts["serial"], board_opts["flash_cmd"], fw, connect_timeout=timeout)
    try:
        link.open()
        deadline, next_go, buf = time.monotonic() + timeout, 0.0, b""
        head = f"LTC-MCU BENCH id={fw['build_id']} ".encode()
        while time.monotonic() < deadline:
            if head not in buf and time.monotonic() >= next_go:
                link.write(b"G")
                next_go = time.monotonic() + 0.5
            buf += link.read_some()
            start = buf.find(head)
            if start >= 0 and b"LTC-MCU END" in buf[start:]:
                return buf[start:buf.index(b"LTC-MCU END", start)].decode("ascii", "replace")
            if b"LTC-MCU FAULT" in buf:
                raise BoardError("the bench firmware hit a fault on the board (HardFault: stack, memory map or "
                                 "a core without the FPU the build assumes)")
            link.check_flasher()
        got = f"; it sent {buf[-40:]!r}" if buf else "; it sent nothing"
        raise BoardError(f"no bench report from the board on {link.url} within {timeout:g} s{got}")
    finally:
        link.close()


def parse_report(text: str) -> dict:
    kv = dict(re.findall(r"(\w+)=([0-9]+)", text))
    cycles = re.search(r"cycles=([0-9,]+)", text)
    counter = re.search(r"counter=(\w+)", text)
    if not cycles or not counter or "step_stack_bytes" not in kv:
        raise BoardError(f"an incomplete bench report from the board: {' '.join(text.split())[-200:]!r}")
    rep = {"passed": "GOLDEN PASS" in text, "counter": counter.group(1), "cycles": [int(c) for c in
           cycles.group(1).split(",")], "step_stack_bytes": int(kv["step_stack_bytes"]),
           "state_bytes": int(kv["state_bytes"]), "error": " ".join(l for l in text.splitlines() if "err=" in l)}
    if "max_abs_err" in kv:
        rep["max_abs_err"] = int(kv["max_abs_err"]) * 1e-9
    if "max_lsb_err" in kv:
        rep["max_lsb_err"] = int(kv["max_lsb_err"])
    return rep
