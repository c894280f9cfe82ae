"""One option-check module (ltc_edge/train/options.py) for every command: train's and bench's
checks were two copies with two wordings; the merged rules, one line each."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import ltc_edge
from ltc_edge.errors import LtcEdgeError
from ltc_edge.train import options as A


@pytest.mark.parametrize("call, message", [
    (lambda: A.integer(0, "--units", 1, 2048), "--units must be from 1 to 2048, got 0"),
    (lambda: A.integer(0, "--epochs"), "--epochs must be >= 1, got 0"),
    (lambda: A.integer(True, "seed", 0), "seed must be an integer >= 0, got True"),
    (lambda: A.integer(2.0, "--units", 1, 2048), "--units must be an integer from 1 to 2048, got 2.0"),
    (lambda: A.positive(1e39, "--lr", float32=True), "--lr must be a finite number within float32 range, got 1e+39"),
    (lambda: A.positive(0.0, "--lr"), "--lr must be > 0, got 0.0"),
    (lambda: A.number(float("nan"), "--grad-clip", 0.0), "--grad-clip must be a finite number, got nan"),
    (lambda: A.parse_split("0.9,0.2,0.1"), "--split must be three fractions"),
])
def test_one_line_per_bad_value(call, message):
    with pytest.raises(LtcEdgeError, match="^" + message.replace("+", r"\+").replace("(", r"\(")):
        call()


def test_good_values_pass_and_none_is_the_default():
    assert A.integer(np.int64(7), "--units", 1, 2048) == 7 and type(A.integer(np.int64(7), "x")) is int
    assert A.positive(np.float32(0.5), "--lr", float32=True) == 0.5
    assert A.optional(A.integer, None, "--patience", 1) is None
    A.check_train_numbers(None, None, None, None, None, 0.0)  # every default; grad-clip 0 turns clipping off
    with pytest.raises(LtcEdgeError, match="--grad-clip must be >= 0"):
        A.check_train_numbers(None, None, None, None, None, -1.0)


def test_no_second_option_check_module():
    """bench/args.py merged here: no other module defines the checks."""
    root = Path(ltc_edge.__file__).parent
    names = {"integer", "number", "positive", "check_int", "check_positive", "number_list"}
    found = sorted(f"{p.relative_to(root)}:{n.name}" for p in root.rglob("*.py")
                   for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, ast.FunctionDef) and n.name in names)
    assert found == ["train/options.py:integer", "train/options.py:number", "train/options.py:number_list",
                     "train/options.py:positive"]
