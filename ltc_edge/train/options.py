"""The option checks of every command (train, eval, bench, prune, analyze, sweep and its config):
each bad value is one LtcEdgeError line naming the option, the rule and what was given, which
the CLI prints without a traceback. A check runs before any data is read or memory allocated.
Imports neither numpy nor torch itself."""

from __future__ import annotations

import math
import numbers
from pathlib import Path

from ..errors import LtcEdgeError
from ..fileio import check_output
from ..nn.schema import MAX_UNITS  # the model-config schema's cap: one number (loop.py takes it here)

MAX_SEED = 2**32 - 1    # numpy's SeedSequence takes non-negative integers; torch takes 64 bits
MAX_COUNT = 1_000_000   # epochs, batch size, steps per window, episodes: beyond this a typo, not a plan
FLOAT32_MAX = 3.4028234663852886e38  # a model computes in float32: a larger number would be inf there


def _fail(name: str, rule: str, value) -> None:
    raise LtcEdgeError(f"{name} must be {rule}, got {value!r}")


def integer(value, name: str, low: int = 1, high: int | None = None) -> int:
    """An int in [low, high] (bool is not an int here: `true` in a config is a mistake)."""
    span = f">= {low}" if high is None else f"from {low} to {high}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        _fail(name, f"an integer {span}", value)
    if value < low or (high is not None and value > high):
        _fail(name, span, value)
    return int(value)


def number(value, name: str, low: float | None = None, high: float | None = None,
           open_low: bool = False, open_high: bool = False, float32: bool = False) -> float:
    """A finite float within [low, high] (or the open ends asked for); float32: finite as a
    float32 too (a learning rate the model computes with)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        _fail(name, "a finite number", value)
    if float32 and abs(value) > FLOAT32_MAX:
        _fail(name, "a finite number within float32 range", value)
    lo_ok = low is None or (value > low if open_low else value >= low)
    hi_ok = high is None or (value < high if open_high else value <= high)
    if not (lo_ok and hi_ok):
        _fail(name, _interval(low, high, open_low, open_high), value)
    return float(value)


def optional(check, value, *args, **kwargs):
    """None passes (the default, chosen later: the task's); anything else must pass `check`."""
    return None if value is None else check(value, *args, **kwargs)


def _interval(low, high, open_low, open_high) -> str:
    if high is None:
        return f"{'>' if open_low else '>='} {low:g}"
    if low is None:
        return f"{'<' if open_high else '<='} {high:g}"
    return f"in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"


def positive(value, name: str, float32: bool = False) -> float:
    return number(value, name, 0.0, open_low=True, float32=float32)


def fraction(value, name: str) -> float:
    """In (0, 1): 0 would change nothing, 1 would remove everything."""
    return number(value, name, 0.0, 1.0, open_low=True, open_high=True)


def number_list(text: str, name: str, check=positive) -> list[float]:
    """A comma list of numbers, each passing `check`."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise LtcEdgeError(f"{name} is empty")
    values = []
    for t in items:
        try:
            v = float(t)
        except ValueError:
            raise LtcEdgeError(f"{name} must be a comma list of numbers, got {text!r}") from None
        values.append(check(v, name))
    return values


def choice(value, choices, name: str):
    if value not in choices:
        raise LtcEdgeError(f"unknown {name} {value!r}; choose from {', '.join(choices)}")
    return value


def choices(values, allowed, name: str) -> list:
    bad = [v for v in values if v not in allowed]
    if bad:
        raise LtcEdgeError(f"unknown {name} {', '.join(map(str, bad))}; choose from {', '.join(allowed)}")
    return list(values)


def task_name(task: str | None) -> str | None:
    """A known `ltc train` task (or None)."""
    if task is None:
        return None
    from .tasks import TASKS  # numpy only

    return choice(task, tuple(TASKS), "task")


def output_not_input(out, *inputs, what: str = "--out") -> Path:
    """An output (file or folder) must not be one of the input files."""
    check_output(out, *inputs, what=what)
    return Path(out)


def parse_split(text: str | None):
    """'0.7,0.15,0.15' -> [0.7, 0.15, 0.15]: three finite fractions in (0, 1) summing to <= 1."""
    if text is None:
        return None
    try:
        fr = [float(v) for v in text.split(",")]
    except ValueError:
        fr = []
    if len(fr) != 3 or not all(math.isfinite(v) and 0 < v < 1 for v in fr) or sum(fr) > 1 + 1e-9:
        raise LtcEdgeError(f"--split must be three fractions in (0, 1) summing to at most 1, "
                           f"like 0.7,0.15,0.15; got {text!r}")
    return fr


def check_train_numbers(units, epochs, lr, batch_size, seed, grad_clip) -> None:
    optional(integer, units, "--units", 1, MAX_UNITS)
    optional(integer, epochs, "--epochs", 1, MAX_COUNT)
    optional(positive, lr, "--lr", float32=True)
    optional(integer, batch_size, "--batch-size", 1, MAX_COUNT)
    optional(integer, seed, "--seed", 0, MAX_SEED)
    optional(number, grad_clip, "--grad-clip", 0.0, float32=True)  # 0 turns clipping off


def check_series_numbers(seq_len, stride, episodes) -> None:
    optional(integer, seq_len, "--seq-len", 1, MAX_COUNT)
    optional(integer, stride, "--stride", 1, MAX_COUNT)
    optional(integer, episodes, "--episodes", 1, MAX_COUNT)


COMPILE_NOTICE = "compiling the model with torch.compile: the first epoch is slower"
NATIVE_NOTICE = "training step: ltc-edge's native LTC kernel (whole windows in C, closed-form backward; no compile wait)"


def use_compile(requested: bool | None) -> bool:
    """torch.compile only when asked for (--compile). It used to switch itself on from 20
    epochs: on a 16-unit LTC the first epoch then took 174 s instead of 1.5 s and later
    epochs were no faster, so no size or epoch count turns it on silently."""
    return bool(requested)
