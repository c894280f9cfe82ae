"""One machine-facts function (ltc_edge/machine.py) for every record that carries timings."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import ltc_edge
from ltc_edge.machine import machine_info


def test_machine_info_says_what_the_numbers_ran_on():
    import torch

    info = machine_info()
    assert info["cpu_count"] == os.cpu_count() and info["python"].count(".") == 2
    assert info["processor"] and info["platform"] and info["machine"]
    assert info["versions"]["ltc_edge"] == ltc_edge.__version__
    assert info["versions"]["torch"] == torch.__version__  # loaded: read from the module
    assert info["torch_threads"] == torch.get_num_threads()


def test_no_second_machine_facts_function():
    """bench/timing.py, train/loop.py and the robustness sweep each had their own; one is left."""
    root = Path(ltc_edge.__file__).parent
    found = [f"{p.relative_to(root)}:{node.name}" for p in sorted(root.rglob("*.py"))
             for node in ast.walk(ast.parse(p.read_text()))
             if isinstance(node, ast.FunctionDef) and node.name in ("machine_info", "machine", "_cpu_model", "cpu_model")]
    assert sorted(found) == ["machine.py:cpu_model", "machine.py:machine_info"]
