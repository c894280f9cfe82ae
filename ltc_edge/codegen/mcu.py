"""Firmware for a microcontroller on a serial port: `ltc bench --target mcu:CORE` (the golden
bench runner, firmware/mcu/bench_main.c) and the `mcu` runtime backend (processor in the loop,
firmware/mcu/pil_main.c). Both are the generated C + the Cortex-M start-up and platform of
firmware/cortex_m (output on the board's UART: -DPLATFORM_UART) + a board's UART driver.

Boards (BOARDS, a plain dict: name -> UART driver and linker script). To add a real board, write
board.c with uart_init / uart_putc / uart_getc (firmware/mcu/uart_stm32f4.c, the STM32F4 Nucleo's
USART2, is a worked example) and board.ld (stm32f4.ld or firmware/cortex_m/mps2.ld with your FLASH
and RAM), then pass --board-c board.c (the .ld beside it), or add an entry here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .. import precision as precisions
from ..errors import BoardError

FIRMWARE = Path(__file__).resolve().parent / "firmware"
CM, MCU = FIRMWARE / "cortex_m", FIRMWARE / "mcu"
CORES = {  # gcc flags per core (hard float where the core has an FPU)
    "cortex-m0": ["-mcpu=cortex-m0", "-mthumb", "-mfloat-abi=soft"],
    "cortex-m3": ["-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"],
    "cortex-m4": ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
    "cortex-m7": ["-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16"],
    "cortex-m33": ["-mcpu=cortex-m33", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16"],
}
BOARDS = {  # name -> the UART driver (uart_init/uart_putc/uart_getc) and the linker script
    "mps2-an385": {"uart": MCU / "uart_cmsdk.c", "ld": CM / "mps2.ld"},  # Cortex-M3 (qemu -M mps2-an385)
    "mps2-an386": {"uart": MCU / "uart_cmsdk.c", "ld": CM / "mps2.ld"},  # Cortex-M4 (qemu -M mps2-an386)
    "mps2-an500": {"uart": MCU / "uart_cmsdk.c", "ld": CM / "mps2.ld"},  # Cortex-M7 (qemu -M mps2-an500)
    "microbit": {"uart": MCU / "uart_nrf51.c", "ld": CM / "microbit.ld"},  # Cortex-M0 (qemu -M microbit)
    # Cortex-M4F: STM32F4 Nucleo-64 (F401RE/F411RE/F446RE), USART2 on the ST-LINK's virtual COM port;
    # also qemu -M netduinoplus2 (USART2 = its second -serial)
    "nucleo-f4": {"uart": MCU / "uart_stm32f4.c", "ld": MCU / "stm32f4.ld"},
}
DEFAULT_BOARD = {"cortex-m0": "microbit", "cortex-m3": "mps2-an385", "cortex-m4": "mps2-an386",
                 "cortex-m7": "mps2-an500"}
TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-objcopy", "arm-none-eabi-size")
CFLAGS = ["-O2", "-std=c99", "-Wall", "-ffunction-sections", "-fdata-sections", "-DPLATFORM_UART"]


def core_name(target: str) -> str:
    """'mcu:cortex-m4' or 'cortex-m4' -> 'cortex-m4' (one line naming the cores otherwise)."""
    core = target[4:] if target.startswith("mcu:") else target
    if core not in CORES:
        raise BoardError(f"unknown microcontroller core {target!r}; choose from "
                         f"{', '.join('mcu:' + c for c in CORES)}")
    return core


def board_files(core: str, board: str | None = None, board_c=None) -> dict:
    """{"name", "uart", "ld"}: --board-c FILE.c (its linker script FILE.ld beside it), else --board
    (a BOARDS name), else the core's default board."""
    if board_c is not None:
        c = Path(board_c)
        ld = c.with_suffix(".ld")
        for f, what in ((c, "--board-c"), (ld, "its linker script (--board-c FILE.c needs FILE.ld beside it)")):
            if not f.is_file():
                raise BoardError(f"{what}: no such file {f}")
        return {"name": c.stem, "uart": c.resolve(), "ld": ld.resolve()}
    name = board or DEFAULT_BOARD.get(core)
    if name is None:
        raise BoardError(f"{core} has no built-in board; give --board ({', '.join(BOARDS)}) or --board-c FILE.c")
    if name not in BOARDS:
        raise BoardError(f"unknown board {name!r}; choose from {', '.join(BOARDS)}, or give --board-c FILE.c")
    return {"name": name, **BOARDS[name]}


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def _run(cmd, cwd) -> str:
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise BoardError(f"{Path(str(cmd[0])).name} failed: {' '.join((r.stderr or r.stdout).split())[-400:]}")
    return r.stdout


def build(work: Path, name: str, core: str, board: dict, sources, defines=()) -> dict:
    """Link `sources` (the runner and the model's C, in `work`) with the platform and the board's
    UART into NAME.elf, then NAME.bin and NAME.hex; returns their paths and the ELF's sizes."""
    missing = missing_tools()
    if missing:
        raise BoardError(f"the firmware build needs {', '.join(missing)} (the GNU Arm Embedded toolchain)")
    work = Path(work)
    elf = work / f"{name}.elf"
    build_id = int.from_bytes(os.urandom(4), "little") >> 1  # the host tells this build from a stale one
    _run(["arm-none-eabi-gcc", *CORES[core], *CFLAGS, *defines, f"-DMCU_BUILD_ID={build_id}u", "-I.",
          f"-I{FIRMWARE}", f"-I{MCU}", "-o", elf, *sources, CM / "platform_cm.c", CM / "startup_cm.c", MCU / "counter.c", board["uart"],
          "-nostartfiles", "--specs=nosys.specs", "-T", board["ld"], "-Wl,--gc-sections", "-lm"], work)
    files = {"elf": elf, "bin": elf.with_suffix(".bin"), "hex": elf.with_suffix(".hex")}
    _run(["arm-none-eabi-objcopy", "-O", "binary", elf, files["bin"]], work)
    _run(["arm-none-eabi-objcopy", "-O", "ihex", elf, files["hex"]], work)
    text, data, bss = (int(v) for v in _run(["arm-none-eabi-size", elf], work).splitlines()[1].split()[:3])
    return {**files, "build_id": build_id, "flash_bytes": text + data, "static_ram_bytes": data + bss}


def object_sizes(work: Path, prefix: str, core: str, defines=()) -> dict:
    """text/data/bss of the model's own object for `core` (its flash: text + data)."""
    _run(["arm-none-eabi-gcc", *CORES[core], *CFLAGS, *defines, "-I.", "-c", "-o", f"model_{core}.o", f"{prefix}.c"], work)
    text, data, bss = (int(v) for v in _run(["arm-none-eabi-size", f"model_{core}.o"], work).splitlines()[1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


def pil_firmware(work: Path, config: dict, raw: dict, core: str, board: dict, *, prefix: str = "ltc_model") -> dict:
    """The processor-in-the-loop firmware of a model (fp32 C, the core's default build)."""
    from . import c as cgen

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    gen = cgen.generate(config, raw, prefix=prefix)
    for name, text in gen["files"].items():
        (work / name).write_text(text)
    up = prefix.upper()
    (work / "pil_model.h").write_text(
        f'#include "{prefix}.h"\n#define PIL_INPUTS {up}_INPUTS\n#define PIL_OUTPUTS {up}_OUTPUTS\n'
        f"#define PIL_STATE_SIZE {up}_STATE_SIZE\n#define PIL_STATE_T {prefix}_state_t\n#define PIL_STEP {prefix}_step\n")
    return build(work, "pil", core, board, [MCU / "pil_main.c", f"{prefix}.c"])


def bench_firmware(work: Path, prefix: str, precision: str, core: str, board: dict, defines=()) -> dict:
    """The bench firmware of the C and golden data that ltc_edge/bench/arm prepared in `work`."""
    flags = [*defines, "-DMCU_INT8"] if precisions.integer_c(precision) else list(defines)
    return build(work, f"bench_{precision}", core, board, [MCU / "bench_main.c", f"{prefix}.c"], flags)
