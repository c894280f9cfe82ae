"""Range checks of the training commands' options (numpy only), each a one-line ValueError
that names the flag. A check here runs before any data is read or memory allocated."""

from __future__ import annotations

import math

import numpy as np

from ..nn.schema import MAX_UNITS  # noqa: F401  (the model-config schema's cap: one number)

MAX_SEED = 2**32 - 1    # numpy's SeedSequence takes non-negative integers; torch takes 64 bits
MAX_COUNT = 1_000_000   # epochs, batch size, steps per window, episodes: beyond this a typo, not a plan


def check_int(flag: str, value, lo: int = 1, hi: int | None = None):
    """None passes (the task's default); otherwise lo <= value <= hi."""
    if value is None:
        return None
    if value < lo or (hi is not None and value > hi):
        span = f"at least {lo}" if hi is None else f"from {lo} to {hi}"
        raise ValueError(f"{flag} must be {span}, got {value}")
    return int(value)


def check_positive(flag: str, value, allow_zero: bool = False):
    """None passes; otherwise a finite number > 0 (>= 0 with allow_zero) that stays finite in
    float32 (what the model computes in)."""
    if value is None:
        return None
    ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    with np.errstate(over="ignore"):
        ok = ok and bool(np.isfinite(np.float32(value)))
    if not ok:
        need = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{flag} must be a finite number {need} (within float32 range), got {value}")
    return float(value)


def parse_split(text: str | None):
    """'0.7,0.15,0.15' -> [0.7, 0.15, 0.15]: three finite fractions in (0, 1) summing to <= 1."""
    if text is None:
        return None
    try:
        fr = [float(v) for v in text.split(",")]
    except ValueError:
        fr = []
    if len(fr) != 3 or not all(math.isfinite(v) and 0 < v < 1 for v in fr) or sum(fr) > 1 + 1e-9:
        raise ValueError(f"--split must be three fractions in (0, 1) summing to at most 1, "
                         f"like 0.7,0.15,0.15; got {text!r}")
    return fr


def check_train_numbers(units, epochs, lr, batch_size, seed, grad_clip) -> None:
    check_int("--units", units, 1, MAX_UNITS)
    check_int("--epochs", epochs, 1, MAX_COUNT)
    check_positive("--lr", lr)
    check_int("--batch-size", batch_size, 1, MAX_COUNT)
    check_int("--seed", seed, 0, MAX_SEED)
    check_positive("--grad-clip", grad_clip, allow_zero=True)  # 0 turns clipping off


def check_series_numbers(seq_len, stride, episodes) -> None:
    check_int("--seq-len", seq_len, 1, MAX_COUNT)
    check_int("--stride", stride, 1, MAX_COUNT)
    check_int("--episodes", episodes, 1, MAX_COUNT)


COMPILE_NOTICE = "compiling the model with torch.compile: the first epoch is slower"


def use_compile(requested: bool | None) -> bool:
    """torch.compile only when asked for (--compile). It used to switch itself on from 20
    epochs: on a 16-unit LTC the first epoch then took 174 s instead of 1.5 s and later
    epochs were no faster, so no size or epoch count turns it on silently."""
    return bool(requested)
