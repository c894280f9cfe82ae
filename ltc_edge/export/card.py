"""What an export folder tells a person and a tool about its model: MODEL_CARD.md (written
into every export folder by the one finish step, listed in the manifest with role "card")
and the facts ONNX files carry as metadata_props. Both come from the same functions here.

    write_card(folder, manifest)  -> writes folder/MODEL_CARD.md, adds files["card"]
    card_text(manifest) -> str
    onnx_metadata(config, precision, fixed_dt, inputs, outputs, drift, version) -> {key: str}
"""

from __future__ import annotations

import json
from pathlib import Path

from ..artifact import FileEntry, Manifest
from ..fileio import atomic_write_bytes
from ..nn.schema import default_dt, dt_note

CARD = "MODEL_CARD.md"
UNITS_NOTE = "not recorded (ltc-edge stores column names, not units)"


def _task(config) -> dict:
    task = (config or {}).get("task")
    return task if isinstance(task, dict) else {}


def _names(spec, n: int, letter: str) -> list[str]:
    """Column names from a stored csv/npz option ("a,b" or ["a", "b"]), else x[0], x[1], ..."""
    if isinstance(spec, str):
        spec = [s.strip() for s in spec.split(",") if s.strip()]
    if isinstance(spec, list) and len(spec) == n:
        return [str(s) for s in spec]
    return [f"{letter}[{i}]" for i in range(n)]


def io_names(config) -> tuple[list[str], list[str]]:
    """(input names, output names): the training columns when the task stored them."""
    options = _task(config).get("options") or {}
    return (_names(options.get("inputs"), int(config["input_size"]), "x"),
            _names(options.get("targets"), int(config["output_size"]), "y"))


def data_facts(config) -> dict:
    """{path, sha256, size_bytes} of the training data file, or {} when not recorded."""
    data = _task(config).get("data")
    return dict(data) if isinstance(data, dict) else {}


def drift_summary(drift) -> str:
    """One line: the export's drift check result."""
    if not drift:
        return "not checked"
    if drift.get("skipped"):
        return f"not checked: {drift['skipped']}"
    parts = ["within budget" if drift.get("within_budget", True) else "OVER BUDGET (forced)"]
    if "max_abs" in drift:
        parts.append(f"max-abs {drift['max_abs']:.3g} vs the torch model over {drift.get('steps')} steps")
    metric = drift.get("metric") or {}
    if metric.get("name") and "exported" in metric:
        ref = "" if str(metric["name"]).endswith("_to_fp32") else f" (torch fp32 {metric.get('torch_fp32', float('nan')):.4g})"
        parts.append(f"{metric['name']} {metric['exported']:.4g}{ref}")
    if drift.get("data"):  # synthetic inputs are said so: never mistaken for real data
        parts.append(f"on {'synthetic inputs (no real data given)' if drift['data'] == 'synthetic' else drift['data']}")
    return ", ".join(parts)


def onnx_metadata(config, precision, fixed_dt, inputs, outputs, drift, version: str = "") -> dict:
    """ONNX metadata_props: string keys and values (JSON where structured)."""
    in_names, out_names = io_names(config)
    props = {"ltc_edge.model_kind": config["cell"]["kind"],
             "ltc_edge.version": version,
             "ltc_edge.precision": precision,
             "ltc_edge.inputs": json.dumps(inputs), "ltc_edge.outputs": json.dumps(outputs),
             "ltc_edge.input_size": str(config["input_size"]), "ltc_edge.output_size": str(config["output_size"]),
             "ltc_edge.input_names": json.dumps(in_names), "ltc_edge.output_names": json.dumps(out_names),
             "ltc_edge.default_dt": repr(default_dt(config, fixed_dt)),
             "ltc_edge.fixed_dt": "" if fixed_dt is None else repr(float(fixed_dt)),
             "ltc_edge.drift": drift_summary(drift)}
    sha = data_facts(config).get("sha256")
    if sha:
        props["ltc_edge.training_data_sha256"] = sha
    if _task(config).get("name"):
        props["ltc_edge.task"] = _task(config)["name"]
    return props


def _what(m: Manifest) -> list[str]:
    cell = (m.config or {}).get("cell", {})
    counts = m.details.get("model") or {}
    wiring = (cell.get("wiring") or {}).get("kind", "none")
    lines = ["## What it is", "",
             f"- cell: {m.kind}, {cell.get('units', '?')} units, wiring {wiring}"
             + (f", {counts['synapses']} synapses" if counts.get("synapses") is not None else ""),
             f"- parameters: {counts.get('parameters', '?')}; state size {m.state_size}",
             f"- export: {m.format} {m.precision}, a {m.graph_kind} graph (one call = one time step)"]
    for key in ("solver", "ode_unfolds"):
        if cell.get(key) is not None:
            lines.append(f"- {key.replace('_', ' ')}: {cell[key]}")
    return lines + [""]


def _io(m: Manifest) -> list[str]:
    config = m.config or {"input_size": m.input_size, "output_size": m.output_size}
    in_names, out_names = io_names(config)
    time_col = (_task(config).get("options") or {}).get("time")
    lines = ["## Inputs and outputs", "", f"Units: {UNITS_NOTE}.", "", "| | index | name |", "|---|---|---|"]
    lines += [f"| input | {i} | {n} |" for i, n in enumerate(in_names)]
    lines += [f"| output | {i} | {n} |" for i, n in enumerate(out_names)]
    lines += ["", "Graph tensors: " + ", ".join(f"`{s['name']}` {s.get('shape')}" for s in m.inputs)
              + " -> " + ", ".join(f"`{s['name']}` {s.get('shape')}" for s in m.outputs)]
    if time_col:
        lines.append("")
        lines.append(f"Time column in training: `{time_col}` (dt = its difference, passed per step).")
    return lines + [""]


def _dt(m: Manifest) -> list[str]:
    lines = ["## Time step (dt)", ""]
    if not m.uses_dt:
        lines.append(f"- a {m.kind} cell has no notion of elapsed time: dt is ignored")
    elif m.fixed_dt is not None:
        source = m.details.get("fixed_dt_source")
        lines.append(f"- fixed dt {m.fixed_dt:g} baked into the graph" + (f", taken from {source}" if source else "")
                     + "; step(dt=...) must match it")
    else:
        lines.append(f"- dt is an input; a step without one uses the default dt {m.default_dt:g}")
    lines.append(f"- the model's training dt: {dt_note(m.config or {})}")
    dts = _task(m.config).get("dt")
    if isinstance(dts, dict):
        lines.append("- training dt distribution: " + ", ".join(f"{k} {v:g}" for k, v in dts.items()))
    return lines + [""]


def _provenance(m: Manifest) -> list[str]:
    task, data = _task(m.config), data_facts(m.config)
    lines = ["## Training data and metrics", ""]
    lines.append(f"- task: {task.get('name', 'not recorded')}" + (f" ({task['type']})" if task.get("type") else ""))
    if data:
        lines.append(f"- data file: `{data.get('path')}`, sha256 `{data.get('sha256')}`")
    else:
        lines.append("- data file hash: not recorded")
    metrics = task.get("metrics")
    if isinstance(metrics, dict) and metrics:
        lines.append("- metrics: " + ", ".join(f"{k} {v}" for k, v in metrics.items()))
    else:
        lines.append(f"- metrics: none recorded in the model file"
                     + (f" (task metric: {task['metric']}; see the training run's .metrics.json)"
                        if task.get("metric") else ""))
    lines += [f"- drift check of this export: {drift_summary(m.drift)}", ""]
    return lines


def _usage(m: Manifest) -> list[str]:
    dt_arg = f", dt={m.default_dt:g}" if m.uses_dt and m.fixed_dt is None else ""
    lines = ["## How to call it", "", "Python (`pip install ltc-edge`; the folder is verified against "
             "manifest.json before it is loaded):", "", "```python", "import numpy as np",
             "import ltc_edge.runtime as rt", "",
             "ctrl = rt.load(\"path/to/this/folder\")  # backend chosen from manifest.json",
             "ctrl.reset()", f"x = np.zeros({m.input_size}, np.float32)",
             f"y = ctrl.step(x{dt_arg})  # y[{m.output_size}]; the state is carried to the next step", "```", ""]
    if m.format == "c" and m.prefix:
        p = m.prefix
        header = m.files["header"].name if "header" in m.files else f"{p}.h"
        lines += ["C (compile the .c file with your code; the header declares the API):", "", "```c",
                  f"#include \"{header}\"", "", f"{p}_state_t s;", f"float x[{m.input_size}], y[{m.output_size}];",
                  f"{p}_reset(&s);", f"{p}_step(&s, x, {float(m.default_dt)!r}f, y);  /* dt = elapsed time */", "```", ""]
    return lines


def card_text(m: Manifest) -> str:
    version = m.versions.get("ltc-edge", "")
    head = [f"# Model card: {m.kind} model, {m.format} {m.precision}", "",
            f"Written by ltc-edge {version} with this export; manifest.json holds the machine-readable "
            "facts and every file's sha256.", ""]
    return "\n".join(head + _what(m) + _io(m) + _dt(m) + _provenance(m) + _usage(m))


def write_card(folder, m: Manifest) -> Path:
    """MODEL_CARD.md into the (temp) export folder, listed in the manifest as role "card"."""
    path = Path(folder) / CARD
    atomic_write_bytes(path, card_text(m).encode())
    m.files["card"] = FileEntry.of(path)
    return path
