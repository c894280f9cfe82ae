"""`ltc control`: run a model as a controller in a gymnasium environment."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(command):
    @command("control")
    def control(
        model: Path = typer.Argument(..., help="A model: .safetensors, .onnx, .tflite, a compiled C library "
                                               "(.so with manifest.json), or an export folder."),
        env: str = typer.Option("Pendulum-v1", "--env", help="gymnasium environment id."),
        backend: str = typer.Option("auto", "--backend", "-b", help="auto, numpy (np), onnxruntime (onnx, ort), "
                                                                    "tflite (litert), c, tflm (tflite-micro), executorch "
                                                                    "(et), or "
                                                                    "mcu:CORE (processor in the loop, --serial)."),
        episodes: int = typer.Option(3, "--episodes", "-k", help="Episodes, >= 1 (seeds seed, seed+1, ...)."),
        seed: int = typer.Option(0, help="Seed of the first episode."),
        max_steps: Optional[int] = typer.Option(None, help="Cut episodes at this many steps."),
        dt: Optional[float] = typer.Option(None, help="Elapsed time per step, > 0 (default: the env's dt)."),
        nonfinite: str = typer.Option("raise", help="NaN/inf observations: raise, hold or zero."),
        as_json: bool = typer.Option(False, "--json", help="Print the results as JSON (instead of the table)."),
        json_out: Optional[Path] = typer.Option(None, "--json-out", help="Also write the results as JSON to this file."),
        serial: Optional[str] = SERIAL, flash_cmd: Optional[str] = FLASH_CMD, board: Optional[str] = BOARD,
        board_c: Optional[Path] = BOARD_C, clock_hz: Optional[float] = CLOCK_HZ,
    ):
        """Run MODEL as a closed-loop controller in a gymnasium env and print the episode returns."""
        import json

        from rich.console import Console

        from ..fileio import atomic_write_bytes, check_output, check_writable_target
        from . import load
        from .control import check_episode_options, run_episodes

        check_episode_options(episodes, seed, max_steps, dt)
        if json_out is not None:  # checked before the episodes run, not after
            check_output(json_out, *_model_files(model), what="--json-out")
            check_writable_target(json_out)
        board_opts = mcu_options(backend, serial, flash_cmd, board, board_c, clock_hz)
        ctrl = load(model, backend=backend, nonfinite=nonfinite, **board_opts)
        try:
            res = run_episodes(ctrl, env, episodes=episodes, seed=seed, max_steps=max_steps, dt=dt)
        finally:
            getattr(ctrl.backend, "close", lambda: None)()  # a board: stop its emulator, free the port
        if board_opts:
            res["board"] = ctrl.backend.describe()
        if as_json:
            typer.echo(json.dumps(res))
        else:
            Console().print(_returns_table(res, env, model, ctrl.backend_name, seed))
        if json_out is not None:
            atomic_write_bytes(json_out, json.dumps(res, indent=1).encode())


# the options of a board on a serial port (--backend mcu:CORE; ltc eval --streaming shares them)
SERIAL = typer.Option(None, "--serial", help="mcu: the board's serial port, a pyserial URL: /dev/ttyACM0, "
                                             "socket://HOST:PORT (an emulator), rfc2217://HOST:PORT.")
FLASH_CMD = typer.Option(None, "--flash-cmd", help="mcu: the command that flashes the firmware, with {elf}, {bin} "
                                                   "or {hex} (e.g. \"pyocd flash -t stm32f446re {hex}\"); one that "
                                                   "keeps running (qemu) is stopped at the end.")
BOARD = typer.Option(None, "--board", help="mcu: the board's UART driver: mps2-an385, mps2-an386, mps2-an500, "
                                           "microbit (default: the core's qemu board).")
BOARD_C = typer.Option(None, "--board-c", help="mcu: your board's uart_init/uart_putc/uart_getc in FILE.c, its "
                                               "linker script FILE.ld beside it (docs/tutorials/ltc-vs-lstm.md: adding a board).")
CLOCK_HZ = typer.Option(None, "--clock-hz", help="mcu: the board's clock (Hz): step cycles also in µs.")


def mcu_options(backend: str, serial, flash_cmd, board, board_c, clock_hz) -> dict:
    """The load() options of --backend mcu:CORE; the board options with another backend are one error."""
    given = {k: v for k, v in (("serial", serial), ("flash_cmd", flash_cmd), ("board", board),
                               ("board_c", board_c), ("clock_hz", clock_hz)) if v is not None}
    if not str(backend).startswith("mcu"):
        if given:
            raise ValueError(f"--{next(iter(given)).replace('_', '-')} applies to --backend mcu:CORE "
                             "(a microcontroller on a serial port)")
        return {}
    if clock_hz is not None and not clock_hz > 0:
        raise ValueError(f"--clock-hz must be > 0, got {clock_hz}")
    return given


def _model_files(model: Path) -> list[Path]:
    """What loading MODEL reads: the file and the manifest beside it, or an export folder's files."""
    if model.is_dir():
        return [p for p in model.iterdir() if p.is_file()]
    return [model, model.with_name("manifest.json")]


def _returns_table(res: dict, env: str, model: Path, backend: str, seed: int):
    from rich.table import Table

    table = Table(title=f"{env} · {model.name} · backend {backend} · dt {res['dt']:g}")
    for col in ("episode", "seed", "steps", "return"):
        table.add_column(col, justify="right")
    for i, (r, n) in enumerate(zip(res["returns"], res["steps"])):
        table.add_row(str(i), str(seed + i), str(n), f"{r:.3f}")
    table.add_row("mean", "", "", f"{res['return_mean']:.3f} ± {res['return_std']:.3f}", style="bold")
    b = res.get("board")
    if b and b.get("cycles_max") is not None:
        us = f" = {b['us_p50']:.1f} / {b['us_max']:.1f} µs at {b['clock_hz']:g} Hz" if "us_max" in b else ""
        table.caption = (f"on {b['core']} ({b['board']}): step cycles p50 {b['cycles_p50']:g}, max {b['cycles_max']} "
                         f"(worst case seen over {b['steps_on_board']} steps; counter {b['counter']}){us}")
    return table
