"""The precisions, one registry: name -> the export formats it applies to, its drift budget, its
quantisation method per format, the formats that calibrate it, and its extra file roles.
artifact (the manifest check), export (every exporter and the drift check), codegen (the C
header's precision line), runtime (the Controller's state tolerance, the tflm backend) and
bench (the job plan, the report's order) derive from it; nothing else spells a precision in a
comparison. Plain data, no imports: every package may read it.
"""

from __future__ import annotations

FP32, FP16, INT8, INT8_FULL, INT8_TFLM = "fp32", "fp16", "int8", "int8-full", "int8-tflm"
REFERENCE = FP32  # the torch model's precision: every format and backend has it; drift is measured against it

_INT8_BUDGET = {"metric_rel": 0.05}  # the task metric within 5% of fp32

# In registry order (the report's column order). Keys:
#   formats      the export formats that write it
#   float        float arithmetic (fp16: float16 weights, float compute); False: quantised
#   drift_budget the export's drift check (export/drift.py): max_abs on the outputs, or metric_rel
#   methods      per format, how it is quantised (None: not quantised)
#   calibration  the formats whose export needs calibration data (static quantisation)
#   c_step       the C step it generates: "float" (codegen/c.py) or "integer" (codegen/int8.py)
#   c_note       the generated header's precision line
#   file_roles   extra files per format and layout (C cmake: the int8 golden harness)
#   tflm         TFLite-Micro runs its .tflite (the tflm backend)
#   bench        `ltc bench --precision` measures it (int8-tflm: `ltc bench --target` on a board)
PRECISIONS = {
    FP32: {"formats": ("onnx", "tflite", "executorch", "c"), "float": True, "drift_budget": {"max_abs": 1e-4},
           "methods": {}, "calibration": (), "c_step": "float", "c_note": "float32 weights and arithmetic",
           "file_roles": {}, "tflm": True, "bench": True},
    FP16: {"formats": ("onnx", "tflite"), "float": True, "drift_budget": {"max_abs": 1e-2},
           "methods": {"onnx": "float16", "tflite": "float16"}, "calibration": (), "file_roles": {},
           "tflm": False, "bench": True},
    INT8: {"formats": ("onnx", "tflite", "executorch", "c"), "float": False, "drift_budget": _INT8_BUDGET,
           "methods": {"onnx": "static QDQ, else weight-only", "tflite": "dynamic", "executorch": "pt2e",
                       "c": "integer-only"},
           "calibration": ("onnx", "executorch", "c"), "c_step": "integer",
           "c_note": "integer-only step: int16 states, int8/int16 constants, int32 sums",
           "file_roles": {("c", "cmake"): {"golden_data": "golden/golden_int_data.h",
                                           "golden_main": "golden/golden_int_main.c"}},
           "tflm": False, "bench": True},
    INT8_FULL: {"formats": ("tflite",), "float": False, "drift_budget": _INT8_BUDGET, "methods": {"tflite": "static"},
                "calibration": ("tflite",), "file_roles": {}, "tflm": False, "bench": True},
    INT8_TFLM: {"formats": ("tflite",), "float": False, "drift_budget": _INT8_BUDGET, "methods": {"tflite": "tflm"},
                "calibration": ("tflite",), "file_roles": {}, "tflm": True, "bench": False},
}


def names(fmt: str | None = None, **where) -> tuple[str, ...]:
    """The precisions (registry order) that `fmt` writes (every one when None) and whose entries
    equal `where` (e.g. bench=True)."""
    return tuple(name for name, p in PRECISIONS.items()
                 if (fmt is None or fmt in p["formats"]) and all(p.get(k) == v for k, v in where.items()))


def is_float(name: str) -> bool:
    """Float arithmetic (fp32, fp16); an unknown name (a runtime's own, e.g. "float32") counts as float."""
    return PRECISIONS.get(name, {"float": True})["float"]


def needs_calibration(name: str, fmt: str) -> bool:
    return fmt in PRECISIONS[name]["calibration"]


def method(name: str, fmt: str) -> str | None:
    """How `fmt` quantises `name` (None: not quantised)."""
    return PRECISIONS[name]["methods"].get(fmt)


def integer_c(name: str) -> bool:
    """The C export of `name` is the integer-only step (codegen/int8.py), else the float one."""
    return PRECISIONS[name].get("c_step") == "integer"


def file_roles(name: str, fmt: str, layout: str) -> dict:
    """Extra file roles (role -> path) an export of `name` in `fmt` / `layout` carries."""
    return PRECISIONS[name]["file_roles"].get((fmt, layout), {})


def drift_budgets() -> dict:
    """name -> drift budget (export/drift.py's BUDGETS)."""
    return {name: dict(p["drift_budget"]) for name, p in PRECISIONS.items()}
