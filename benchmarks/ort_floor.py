"""Where onnxruntime's floor lies for the LTC-19 step: what a node costs, what an unfold costs,
and what the step would take with fewer nodes an unfold than the LTC's math allows.

Issue 27's standing target is a runtime (onnxruntime backend) step at <= 0.2x the naive ncps
export's (benchmarks/export_speed.py). At batch 1 the step is dispatch, not arithmetic, so the
question is how many nodes a correct unfold needs and what each costs. Timed side by side in
one run (interleaved repetitions, batch 1, one thread, IOBinding unless said):
  * naive: torch.onnx.export of ncps's LTCCell, plain sess.run (the target's denominator);
  * runtime_backend: ltc_edge.runtime's onnxruntime backend run() (the target's numerator);
  * ltc_edge_b1 / ltc_edge_fixed_dt_b1: the exported graphs with batch fixed to 1;
  * unfolds_K / fixed_dt_unfolds_K: the same model with K semi-implicit unfolds (K = 1, 3, 6):
    the difference is the cost of one unfold;
  * bound_N_per_unfold: a graph of the LTC-19 step's shapes with N nodes an unfold (N = 4:
    the fixed-dt graph's own layout; N = 3 and 2 drop the denominator product and then the
    division; their numbers are wrong on purpose, they only time a smaller graph);
  * chain_OP: an empty graph, and 20 nodes of one kind in a chain at the step's shapes: the
    per-run and per-node costs.
Writes benchmarks/results/ort_floor.json (or --out).

    .venv/bin/python benchmarks/ort_floor.py [--reps 15] [--calls 2000] [--out PATH]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from export_speed import TARGET, ltc19, naive_onnx, ort_bound_timer, ort_timer, runtime_timer  # noqa: E402

from ltc_edge.export import onnx as X  # noqa: E402
from ltc_edge.export.graph import build_graph  # noqa: E402
from ltc_edge.export.manifest import versions  # noqa: E402
from ltc_edge.export.ort_mobile import fixed_batch  # noqa: E402

CHAIN = 20  # nodes in a chain_OP graph


def _model(nodes, inputs, outputs, inits):
    from onnx import helper as H

    m = H.make_model(H.make_graph(nodes, "g", inputs, outputs, inits), opset_imports=[H.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def bound_graph(cell: dict, per_unfold: int, unfolds: int = 6):
    """The fixed-dt step's layout (z_x product; per unfold: sigmoid(v @ sv + z_x), a @ we + v,
    a @ w + 1, division; output product) cut to `per_unfold` nodes an unfold for timing."""
    from onnx import TensorProto as T
    from onnx import helper as H
    from onnx import numpy_helper as NH

    names = ("sv", "sx", "b", "we", "w", "out", "out_b", "ones")
    inits = [NH.from_array(np.asarray(cell[k], np.float32), k) for k in names]
    nodes, v = [H.make_node("Gemm", ["x", "sx", "b"], ["zx"])], "state"
    for u in range(unfolds):
        nodes += [H.make_node("Gemm", [v, "sv", "zx"], [f"p{u}"]), H.make_node("Sigmoid", [f"p{u}"], [f"a{u}"]),
                  H.make_node("Gemm", [f"a{u}", "we", v], [f"n{u}"])]
        if per_unfold == 4:
            nodes += [H.make_node("Gemm", [f"a{u}", "w", "ones"], [f"d{u}"]),
                      H.make_node("Div", [f"n{u}", f"d{u}"], [f"v{u}"])]
        elif per_unfold == 3:
            nodes.append(H.make_node("Div", [f"n{u}", "ones"], [f"v{u}"]))
        else:
            nodes[-1].output[0] = f"v{u}"
        v = f"v{u}"
    nodes += [H.make_node("Gemm", [v, "out", "out_b"], ["y"]), H.make_node("Identity", [v], ["new_state"])]
    n_in, n, m = cell["sx"].shape[0], cell["sv"].shape[0], cell["out"].shape[1]
    ins = [H.make_tensor_value_info("x", T.FLOAT, [1, n_in]), H.make_tensor_value_info("state", T.FLOAT, [1, n])]
    outs = [H.make_tensor_value_info("y", T.FLOAT, [1, m]), H.make_tensor_value_info("new_state", T.FLOAT, [1, n])]
    return _model(nodes, ins, outs, inits)


def chain_graph(op: str, n: int, width: int, cols: int):
    """`n` nodes of `op` in a chain on a [1, width] tensor (Gemm: pairs width->cols->width)."""
    from onnx import TensorProto as T
    from onnx import helper as H
    from onnx import numpy_helper as NH

    rng, nodes, inits, cur = np.random.default_rng(0), [], [], "x"
    for i in range(n if op != "Gemm" else n // 2):
        if op == "Gemm":
            for j, shape in enumerate(((width, cols), (cols, width))):
                inits.append(NH.from_array((0.1 * rng.standard_normal(shape)).astype(np.float32), f"W{i}_{j}"))
                nodes.append(H.make_node("Gemm", [cur, f"W{i}_{j}"], [f"o{i}_{j}"]))
                cur = f"o{i}_{j}"
        else:
            nodes.append(H.make_node(op, [cur] * (2 if op in ("Div", "Mul") else 1), [f"o{i}"]))
            cur = f"o{i}"
    nodes.append(H.make_node("Identity", [cur], ["y"]))
    return _model(nodes, [H.make_tensor_value_info("x", T.FLOAT, [1, width])],
                  [H.make_tensor_value_info("y", T.FLOAT, [1, width])], inits)


def timers_for(cell_module, model, feeds):
    """name -> run(n) (µs per call), all at batch 1."""
    naive = naive_onnx(cell_module, *(torch.from_numpy(feeds[k]) for k in ("x", "state", "dt")))
    ours = X.to_onnx(build_graph(model))
    timers = {"naive": ort_timer(naive, feeds)[0], "runtime_backend": runtime_timer(ours, feeds)[0],
              "ltc_edge_b1": ort_bound_timer(fixed_batch(ours), feeds)[0]}
    for k in (1, 3, 6):
        m = copy.deepcopy(model)
        m.config["cell"]["ode_unfolds"] = k
        timers[f"unfolds_{k}"] = ort_bound_timer(fixed_batch(X.to_onnx(build_graph(m))), feeds)[0]
        timers[f"fixed_dt_unfolds_{k}"] = ort_bound_timer(fixed_batch(X.to_onnx(build_graph(m, fixed_dt=1.0))),
                                                          feeds)[0]
    cell = {k: v.numpy() for k, v in build_graph(model, fixed_dt=1.0).prepared()["cell"].items()
            if isinstance(v, torch.Tensor)}
    for k in (4, 3, 2):
        timers[f"bound_{k}_per_unfold"] = ort_bound_timer(bound_graph(cell, k), feeds)[0]
    n, cols = cell["sv"].shape
    one = {"x": np.full((1, n), 0.5, np.float32)}
    for op, count in (("Identity", 1), ("Sigmoid", CHAIN), ("Div", CHAIN), ("Mul", CHAIN), ("Gemm", CHAIN)):
        timers[f"chain_{op}"] = ort_bound_timer(chain_graph(op, count, n, cols), one)[0]
    return timers, {"synapse_columns": int(cols), "neurons": int(n)}


def measure(timers, reps: int, calls: int) -> dict:
    """Interleaved repetitions -> name -> list of µs per call."""
    for run in timers.values():
        run(max(50, calls // 10))
    samples = {k: [] for k in timers}
    for _ in range(reps):
        for k, run in timers.items():
            samples[k].append(run(calls))
    return samples


def derive(samples: dict) -> dict:
    """Medians, ratios to the naive export (medians of per-repetition ratios) and costs."""
    med = {k: statistics.median(v) for k, v in samples.items()}
    ratio = {k: statistics.median(a / b for a, b in zip(v, samples["naive"])) for k, v in samples.items()}
    floor = med["chain_Identity"]
    return {
        "us_median": med,
        "x_naive": ratio,
        "per_run_us": floor,
        "per_node_us": {op: (med[f"chain_{op}"] - floor) / CHAIN for op in ("Sigmoid", "Div", "Mul", "Gemm")},
        "per_unfold_us": {"dt_input": (med["unfolds_6"] - med["unfolds_1"]) / 5,
                          "fixed_dt": (med["fixed_dt_unfolds_6"] - med["fixed_dt_unfolds_1"]) / 5},
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ort_floor.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cell_module, model, feeds = ltc19()
    timers, shapes = timers_for(cell_module, model, feeds)
    d = derive(measure(timers, args.reps, args.calls))
    r = d["x_naive"]
    out = {"benchmark": "ort_floor", "what": __doc__.split("\n\n")[1].strip(), "shapes": shapes,
           "setup": {"batch": 1, "threads": 1, "reps": args.reps, "calls_per_rep": args.calls,
                     "order": "interleaved", "load_average": os.getloadavg()},
           **d, "target": TARGET,
           "meets_target": r["runtime_backend"] <= TARGET,
           "reading": (f"runtime step {r['runtime_backend']:.3f}x the naive export (5 nodes an unfold with a dt "
                       f"input), fixed dt {r['fixed_dt_unfolds_6']:.3f}x (4 nodes); a 4-node bound graph "
                       f"{r['bound_4_per_unfold']:.3f}x, 3 nodes {r['bound_3_per_unfold']:.3f}x, 2 nodes "
                       f"{r['bound_2_per_unfold']:.3f}x"),
           "versions": versions("onnx", "onnxruntime", "ncps"), "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=1))
    os.replace(tmp, args.out)
    for k in d["us_median"]:
        print(f"{k:26s} {d['us_median'][k]:8.2f} µs  {r[k]:.3f}x naive")
    print({k: round(v, 3) for k, v in d["per_node_us"].items()}, {k: round(v, 3) for k, v in d["per_unfold_us"].items()})
    print(out["reading"], f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
