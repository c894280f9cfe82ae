"""The files a training run writes, and the checks that keep them off its inputs (no torch)."""

from __future__ import annotations

from pathlib import Path

from ..fileio import check_output, check_writable_target


def checkpoint_path(out) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".ckpt")


def metrics_path(out) -> Path:
    out = Path(out)
    stem = out.name[: -len(".safetensors")] if out.name.endswith(".safetensors") else out.name
    return out.with_name(stem + ".metrics.json")


def check_outputs(out, *inputs) -> None:
    """--out and the two files written beside it: never one of the inputs, never a device,
    FIFO or folder. Checked before any data is read or any epoch is run."""
    for what, path in (("--out", out), ("the checkpoint", checkpoint_path(out)),
                       ("the metrics file", metrics_path(out))):
        check_output(path, *inputs, what=what)
        check_writable_target(path)
