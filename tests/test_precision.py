"""The one precision registry (ltc_edge/precision.py): what each format writes, what each part
derives from it, and no precision name compared as a string anywhere else in the package."""

import re
from pathlib import Path

import pytest

import ltc_edge
from ltc_edge import artifact, precision
from ltc_edge.export import drift
from ltc_edge.export.manifest import check_precision

ROOT = Path(ltc_edge.__file__).parent
NAMES = "|".join(re.escape(n) for n in precision.PRECISIONS)
# a precision literal on either side of ==, !=, `in` / `not in`, or as a str method's argument
COMPARISON = re.compile(rf"""(==|!=|\bin)\s*\(?\s*["']({NAMES})["']|["']({NAMES})["']\s*(==|!=|\bin\b)"""
                        rf"""|startswith\(\s*["']int8""")


def test_each_format_writes_what_the_registry_says():
    assert precision.names("c") == ("fp32", "int8")
    assert precision.names("onnx") == ("fp32", "fp16", "int8")
    assert precision.names("executorch") == ("fp32", "int8")
    assert precision.names("tflite") == ("fp32", "fp16", "int8", "int8-full", "int8-tflm")
    assert precision.names("tflite", tflm=True) == ("fp32", "int8-tflm")
    assert artifact.PRECISIONS == tuple(precision.PRECISIONS)
    assert drift.BUDGETS["int8-full"] == drift.BUDGETS["int8"] == {"metric_rel": 0.05}
    assert [n for n in precision.PRECISIONS if precision.integer_c(n)] == ["int8"]
    assert [n for n in precision.PRECISIONS if precision.is_float(n)] == ["fp32", "fp16"]


def test_an_exporter_refuses_a_precision_its_format_lacks():
    assert check_precision("int8-full", "tflite") == "int8-full"
    with pytest.raises(ValueError, match="unknown precision 'int8-full'; choose one of fp32, fp16, int8$"):
        check_precision("int8-full", "onnx")


def test_no_precision_name_is_compared_outside_the_registry():
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        if path == ROOT / "precision.py":
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if COMPARISON.search(code):
                bad.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not bad, "\n".join(bad)
