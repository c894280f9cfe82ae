"""Argument checks for `ltc bench`, `ltc analyze`, `ltc prune` and `ltc sweep` (and the sweep
config): each bad value is one line naming the option, the rule and what was given, raised as
a LtcEdgeError, which the CLI prints without a traceback. Numpy-free and torch-free."""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import LtcEdgeError
from ..fileio import check_output


def _fail(name: str, rule: str, value) -> None:
    raise LtcEdgeError(f"{name} must be {rule}, got {value!r}")


def integer(value, name: str, low: int = 1) -> int:
    """An int >= low (bool is not an int here: `true` in a config is a mistake)."""
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(name, f"an integer >= {low}", value)
    if value < low:
        _fail(name, f">= {low}", value)
    return value


def number(value, name: str, low: float | None = None, high: float | None = None,
           open_low: bool = False, open_high: bool = False) -> float:
    """A finite float within [low, high] (or the open ends asked for)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(name, "a finite number", value)
    lo_ok = low is None or (value > low if open_low else value >= low)
    hi_ok = high is None or (value < high if open_high else value <= high)
    if not (lo_ok and hi_ok):
        _fail(name, _interval(low, high, open_low, open_high), value)
    return float(value)


def _interval(low, high, open_low, open_high) -> str:
    if high is None:
        return f"{'>' if open_low else '>='} {low:g}"
    if low is None:
        return f"{'<' if open_high else '<='} {high:g}"
    return f"in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"


def positive(value, name: str) -> float:
    return number(value, name, 0.0, open_low=True)


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
    from ..train.tasks import TASKS  # numpy only

    return choice(task, tuple(TASKS), "task")


def output_not_input(out, *inputs, what: str = "--out") -> Path:
    """An output (file or folder) must not be one of the input files."""
    check_output(out, *inputs, what=what)
    return Path(out)
