"""`ltc demo`: the command; the work is in pipeline.py (imported inside, so `ltc --help` stays fast)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(command):
    command()(demo)


def demo(out: Path = typer.Option(Path("demo-out"), help="Folder for models, exports, report and plots."),
         seed: int = typer.Option(0, help="Random seed."),
         epochs: int = typer.Option(12, help="Cheetah training epochs per model (the paper uses 200)."),
         pendulum_rounds: int = typer.Option(16, help="Most pendulum DAgger rounds (student rollouts labelled by the expert; stops once within 1% of the expert on its selection episodes)."),
         quick: bool = typer.Option(False, help="A seconds-long smoke run (tiny data, one epoch)."),
         robustness: bool = typer.Option(True, help="Run the short robustness sweep of the cheetah models "
                                                    "(report section 6; a few seconds of CPU).")):
    """The whole pipeline in minutes: train an NCP-wired LTC and an LSTM on HalfCheetah, export them
    (ONNX, TFLite: fp32 + int8; C), benchmark them, write the report and plots, and run a cloned
    pendulum controller (cloned with DAgger) closed-loop; report.md covers every stage."""
    from .pipeline import run_demo

    run_demo(out, seed=seed, epochs=epochs, pendulum_rounds=pendulum_rounds, quick=quick, robustness=robustness)
