"""int8 ONNX that pays: file and weight bytes, export time, drift and step latency of the int8
ONNX export against fp32, for trained models (each on its stored task's data).

Per model, three exports through `ltc_edge.export.onnx.export` (drift-checked as `ltc export`
does): fp32, int8 (the default: weight-only int8) and int8 static QDQ (`calibration_method=
"minmax"`: the default before weight-only, with its mixed-precision search). Recorded: file
bytes, weight bytes (every initializer's data), export wall time, the drift check's task metric
change and max-abs error, the node count of the graph onnxruntime runs once it has loaded
the file (constants folded), and onnxruntime step latency (batch 1, one thread, median of
`--reps` interleaved repetitions of `--calls` steps, fp32 / int8 / static side by side, and
the fastest repetition: the steadier figure on shared cores).

    .venv/bin/python benchmarks/onnx_int8.py [MODEL.safetensors ...] [--csv] [--out PATH]

Without models: the 10-epoch cheetah models in runs/robustness (ltc_ncp32, ltc_full32, lstm32,
cfc32; benchmarks/robustness.py trains them) when present. --csv also trains a small LTC (6 units, 2 epochs) on a generated CSV (a
driven oscillator logged at irregular times, as tests/test_own_data.py) and measures it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from datagen import oscillator_csv  # noqa: E402

from ltc_edge.export import onnx as X  # noqa: E402
from ltc_edge.export.int8_weights import weight_bytes  # noqa: E402
from ltc_edge.export.manifest import versions  # noqa: E402
from ltc_edge.nn.functional import state_size  # noqa: E402
from ltc_edge.nn.modelfile import load  # noqa: E402
from ltc_edge.train.reference import model_reference  # noqa: E402

RUNS = ROOT / "runs" / "robustness"  # where benchmarks/robustness.py trains them
DEFAULT_MODELS = ["ltc_ncp32", "ltc_full32", "lstm32", "cfc32"]
VARIANTS = {"fp32": {"precision": "fp32"}, "int8": {"precision": "int8"},
            "int8_static": {"precision": "int8", "calibration_method": "minmax"}}


def oscillator_model(folder: Path) -> Path:
    """A 6-unit LTC trained 2 epochs on a generated CSV (x'' = u - 0.5 x' - 6 x, irregular dt)."""
    from typer.testing import CliRunner

    from ltc_edge.cli import app

    csv = folder / "osc.csv"
    oscillator_csv(csv)  # the same data as tests/test_own_data.py
    out = folder / "osc_ltc6.safetensors"
    res = CliRunner().invoke(app, ["train", "--task", "csv", "--data", str(csv), "--inputs", "force", "--targets",
                                   "position", "--time", "time_s", "--seq-len", "16", "--units", "6", "--epochs", "2",
                                   "--out", str(out), "--no-progress"])
    if res.exit_code != 0:
        raise SystemExit(res.output)
    return out


def export_variant(path: Path, ref, out: Path, options: dict) -> dict:
    import onnx

    t = time.perf_counter()
    man = X.export(load(path), out, calibration=ref, force=True, **options)
    seconds = time.perf_counter() - t
    proto = onnx.load(out / X.FILE)
    drift, quant = man["drift"], man.get("quantization") or {}
    return {"export_s": round(seconds, 2), "file_bytes": (out / X.FILE).stat().st_size,
            "weight_bytes": weight_bytes(proto), "nodes": man["node_count"], "op_histogram": man["op_histogram"],
            "within_budget": drift.get("within_budget"), "drift_max_abs": drift.get("max_abs"),
            "metric": drift["metric"]["name"], "metric_exported": drift["metric"]["exported"],
            "metric_fp32": drift["metric"]["torch_fp32"], "metric_rel_change": drift["metric"]["rel_delta"],
            "scheme": quant.get("scheme"), "float_weights": quant.get("float_weights"),
            "excluded_nodes": quant.get("excluded_nodes")}


def ort_nodes(path: Path) -> int:
    """Nodes of the graph onnxruntime runs after its load-time optimisations (constant folding)."""
    import onnx
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.optimized_model_filepath = str(path.with_suffix(".opt.onnx"))
    so.log_severity_level = 3
    ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return len(onnx.load(so.optimized_model_filepath).graph.node)


def latencies(files: dict, feeds: dict, reps: int, calls: int) -> dict:
    """(median, min) µs per step of each file over the repetitions, interleaved."""
    runs = {}
    for name, f in files.items():
        sess = X.session(Path(f).read_bytes(), threads=1)
        mine = {i.name: feeds[i.name] for i in sess.get_inputs()}
        sess.run(None, mine)
        runs[name] = (sess, mine)
    times = {name: [] for name in files}
    for rep in range(reps):
        for name, (sess, mine) in (runs.items() if rep % 2 == 0 else reversed(runs.items())):  # A B C, C B A, ...
            t = time.perf_counter()
            for _ in range(calls):
                sess.run(None, mine)
            times[name].append((time.perf_counter() - t) / calls * 1e6)
    return {name: (round(statistics.median(v), 2), round(min(v), 2)) for name, v in times.items()}


def measure(path: Path, tmp: Path, reps: int, calls: int, static: bool) -> dict:
    model = load(path)
    ref, _ = model_reference(path, None, "int8")
    row = {"model": path.name, "cell": model.config["cell"]["kind"], "data": getattr(ref, "source", str(ref))}
    files = {}
    for name, options in VARIANTS.items():
        if name == "int8_static" and not static:
            continue
        row[name] = export_variant(path, ref, tmp / f"{path.stem}-{name}", options)
        files[name] = tmp / f"{path.stem}-{name}" / X.FILE
    rng = np.random.default_rng(0)
    S = state_size(model.config)
    feeds = {"x": np.ascontiguousarray(ref.x[0, :1]).astype(np.float32),
             "state": (0.1 * rng.standard_normal((1, S))).astype(np.float32),
             "dt": np.full((1, 1), float(np.median(ref.dt)) if ref.dt is not None else 1.0, np.float32)}
    us = latencies(files, feeds, reps, calls)
    for name in files:
        row[name]["onnxruntime_nodes"] = ort_nodes(files[name])
        row[name]["step_us"], row[name]["step_us_min"] = us[name]
        row[name]["step_vs_fp32"] = round(us[name][0] / us["fp32"][0], 3)
        row[name]["step_vs_fp32_min"] = round(us[name][1] / us["fp32"][1], 3)
        row[name]["file_vs_fp32"] = round(row[name]["file_bytes"] / row["fp32"]["file_bytes"], 3)
        row[name]["weights_smaller_x"] = round(row["fp32"]["weight_bytes"] / row[name]["weight_bytes"], 2)
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument("--csv", action="store_true", help="also train and measure a small LTC on a generated CSV")
    ap.add_argument("--no-static", action="store_true", help="skip the static QDQ export (its search is slow)")
    ap.add_argument("--reps", type=int, default=21)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "onnx_int8.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    models = args.models or [RUNS / f"{m}.safetensors" for m in DEFAULT_MODELS if (RUNS / f"{m}.safetensors").exists()]
    rows = []
    with tempfile.TemporaryDirectory(prefix="onnx-int8-") as tmp:
        tmp = Path(tmp)
        if args.csv:
            models = [*models, oscillator_model(tmp)]
        for path in models:
            rows.append(measure(Path(path), tmp, args.reps, args.calls, not args.no_static))
            r = rows[-1]
            print(f"{r['model']}: " + "; ".join(
                f"{k} {r[k]['file_bytes']} B (weights {r[k]['weight_bytes']} B) {r[k]['export_s']} s "
                f"{r[k]['metric']} {100 * r[k]['metric_rel_change']:+.2f}% {r[k]['step_us']} us (min {r[k]['step_us_min']})"
                for k in VARIANTS if k in r), flush=True)
    res = {"what": __doc__.split("\n")[0], "rows": rows, "reps": args.reps, "calls": args.calls,
           "machine": {"platform": platform.platform(), "processor": platform.processor(),
                       "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
           "versions": versions("onnx", "onnxruntime", "onnxscript", "torch")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
