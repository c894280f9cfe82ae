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
        backend: str = typer.Option("auto", "--backend", "-b", help="auto, numpy, onnxruntime, tflite or c."),
        episodes: int = typer.Option(3, "--episodes", "-k", min=1, help="Episodes (seeds seed, seed+1, ...)."),
        seed: int = typer.Option(0, help="Seed of the first episode."),
        max_steps: Optional[int] = typer.Option(None, help="Cut episodes at this many steps."),
        dt: Optional[float] = typer.Option(None, help="Elapsed time per step (default: the env's dt)."),
        nonfinite: str = typer.Option("raise", help="NaN/inf observations: raise, hold or zero."),
        json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the results as JSON."),
    ):
        """Run MODEL as a closed-loop controller in a gymnasium env and print the episode returns."""
        import json

        from rich.console import Console
        from rich.table import Table

        from . import load
        from .control import run_episodes

        ctrl = load(model, backend=backend, nonfinite=nonfinite)
        res = run_episodes(ctrl, env, episodes=episodes, seed=seed, max_steps=max_steps, dt=dt)
        table = Table(title=f"{env} · {model.name} · backend {ctrl.backend_name} · dt {res['dt']:g}")
        table.add_column("episode", justify="right")
        table.add_column("seed", justify="right")
        table.add_column("steps", justify="right")
        table.add_column("return", justify="right")
        for i, (r, n) in enumerate(zip(res["returns"], res["steps"])):
            table.add_row(str(i), str(seed + i), str(n), f"{r:.3f}")
        table.add_row("mean", "", "", f"{res['return_mean']:.3f} ± {res['return_std']:.3f}", style="bold")
        Console().print(table)
        if json_out is not None:
            from ltc_edge.nn.modelfile import atomic_write_bytes

            atomic_write_bytes(json_out, json.dumps(res, indent=1).encode())
