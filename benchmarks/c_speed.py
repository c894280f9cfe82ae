"""Generated C step speed (issue 13): instructions per step (valgrind callgrind) and wall time,
for the ncps NCP-19 LTC, a fully connected LTC-19 and an LSTM-19 (benchmarks/c_models.py),
each built with two flag sets, beside ncps's torch LTCCell and the Python runtime's C backend.
Results: benchmarks/results/c_speed.json (with the issue's targets, met or not).

    .venv/bin/python benchmarks/c_speed.py [--rounds 7] [--out benchmarks/results/c_speed.json]
    .venv/bin/python benchmarks/c_speed.py --inputs-only   (the input forms alone: c_speed_inputs.json)

  * instructions: callgrind totals of the bench program at N and 2N steps, differenced / N
    (start-up and the harness loop outside the step cancel; deterministic)
  * wall time: each measurement is one timed block (C: clock_gettime around a loop of steps in
    C, no Python; torch / Python: perf_counter around a loop); the kinds are measured in turn,
    interleaved round by round, and the median over rounds is reported
  * ncps LTCCell.forward: torch.no_grad, torch.set_num_threads(1), batch 1
  * python_c_guarded: Controller.step through the C backend (input checks, state guards) on a
    float32 x[in]; python_c_guarded_f64 / _row / _row_f64: the same step on a float64 x[in] (what
    gymnasium environments return), a float32 x[1, in] and a float64 x[1, in] (issue 24 item 6:
    each <= 1.3x the float32 x[in] step: ratios python_guarded_*_over_f32, the median over
    --pair-blocks blocks of each form's time over the float32 form's in the same block, every
    form timed in turn for --pair-steps steps; the medians of the rounds beside them);
    python_c_bare: the backend's ctypes call alone on pre-filled buffers
Flag sets: O2 = the project's (ltc_edge.codegen.c.CFLAGS), O3 = -O3 -ffast-math -march=x86-64-v3.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "scripts"))

from c_models import model_files, ncps_cells  # noqa: E402
from callgrind_step import differenced  # noqa: E402

PREFIX = "m"
FLAG_SETS = {"O2": None, "O3": ["-O3", "-ffast-math", "-march=x86-64-v3", "-std=c99"]}  # None: cgen.CFLAGS
TARGETS = {  # issue 13, "Done when"
    "ncp19_O2_instructions": ("<=", 7500), "ncp19_O3_instructions": ("<=", 3500),
    "fc19_O2_instructions": ("<=", 50000), "fc19_O3_instructions": ("<=", 20000),
    "bare_c_speedup_over_ncps": (">=", 400), "python_guarded_over_bare_c": ("<=", 2.5),
    # issue 24 item 6: every controller input on the fast path
    "python_guarded_f64_over_f32": ("<=", 1.3), "python_guarded_row_over_f32": ("<=", 1.3),
    "python_guarded_row_f64_over_f32": ("<=", 1.3),
}

BENCH_C = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "m.h"
/* bench STEPS [WARMUP]: WARMUP steps, then STEPS steps timed; prints ns per step */
int main(int argc, char **argv)
{
    long steps = argc > 1 ? atol(argv[1]) : 10000, warm = argc > 2 ? atol(argv[2]) : 1000, t;
    m_state_t s;
    float x[M_INPUTS], y[M_OUTPUTS];
    double sink = 0.0, ns;
    struct timespec a, b;
    int i;
    for (i = 0; i < M_INPUTS; ++i) x[i] = 0.1f * (float)(i + 1);
    m_reset(&s);
    for (t = 0; t < warm; ++t) {
        x[t % M_INPUTS] = (float)(t % 17) * 0.05f - 0.4f;
        m_step(&s, x, 0.1f, y);
    }
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (t = 0; t < steps; ++t) {
        x[t % M_INPUTS] = (float)(t % 17) * 0.05f - 0.4f;
        m_step(&s, x, 0.1f, y);
        sink += (double)y[0];
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)steps;
    printf("ns_per_step=%.3f sink=%g\n", ns, sink);
    return 0;
}
"""


def build(model_file: Path, out: Path, flags) -> Path:
    from ltc_edge.codegen import c as cgen
    from ltc_edge.nn.modelfile import read

    out.mkdir(parents=True, exist_ok=True)
    config, raw = read(model_file)
    gen = cgen.generate(config, raw, prefix=PREFIX)
    for name, text in gen["files"].items():
        (out / name).write_text(text)
    (out / "bench.c").write_text(BENCH_C)
    exe = out / "bench"
    flags = list(cgen.CFLAGS if flags is None else flags)
    subprocess.run([cgen.find_cc(), *flags, "-I", str(out), "-o", str(exe), str(out / "bench.c"),
                    str(out / f"{PREFIX}.c"), "-lm"], check=True)
    return exe


def c_ns(exe: Path, steps: int) -> float:
    r = subprocess.run([str(exe), str(steps)], capture_output=True, text=True, check=True)
    return float(r.stdout.split("ns_per_step=")[1].split()[0])


def instructions_per_step(exe: Path, n: int) -> dict:
    """callgrind_step.differenced of the bench program (no warm-up steps), or why it was skipped."""
    if shutil.which("valgrind") is None:
        return {"skipped": "valgrind not installed"}
    try:
        return differenced(exe, n, "0")
    except RuntimeError:
        return {"skipped": "callgrind failed"}


class TorchNcps:
    def __init__(self, cell):
        import torch

        torch.set_num_threads(1)
        self.torch, self.cell = torch, cell
        self.x = torch.randn(1, 8)
        self.h = torch.zeros(1, cell.state_size)
        self.ts = torch.tensor([0.1])

    def us(self, steps: int) -> float:
        with self.torch.no_grad():
            t = time.perf_counter()
            for _ in range(steps):
                _, self.h = self.cell(self.x, self.h, self.ts)
            return (time.perf_counter() - t) / steps * 1e6


class PythonC:
    """The runtime's Controller on the C backend (guarded step) and its bare ctypes call."""

    def __init__(self, model_file):
        from ltc_edge.runtime import load

        self.ctrl = load(model_file, backend="c")
        self.x = np.full(8, 0.1, np.float32)
        self.inputs = {"": self.x, "_f64": self.x.astype(np.float64), "_row": self.x[None, :].copy(),
                       "_row_f64": self.x[None, :].astype(np.float64)}  # the forms a controller gets
        b = self.ctrl.backend
        b.x[...] = self.x
        b.dt[...] = 0.1

    def guarded_us(self, steps: int, form: str = "") -> float:
        step, x = self.ctrl.step, self.inputs[form]
        t = time.perf_counter()
        for _ in range(steps):
            step(x, 0.1)
        return (time.perf_counter() - t) / steps * 1e6

    def paired_ratios(self, blocks: int, steps: int) -> dict:
        """Each input form's step time over the float32 x[in] step's, block by block (a block times
        every form for `steps` steps in turn, the order rotated): medians of the per-block ratios.
        The two times of a pair lie milliseconds apart and share the machine's load, which on a
        shared machine moves far more than the ratio between rounds seconds apart."""
        forms = list(self.inputs)
        ratios = {f: [] for f in forms if f}
        for b in range(blocks):
            k = b % len(forms)
            t = {f: self.guarded_us(steps, f) for f in forms[k:] + forms[:k]}
            for f in ratios:
                ratios[f].append(t[f] / t[""])
        return {f"python_guarded{f}_over_f32": statistics.median(v) for f, v in ratios.items()}

    def bare_us(self, steps: int) -> float:
        b = self.ctrl.backend
        b.x[...] = self.x
        b.dt[...] = 0.1
        run = b.run
        t = time.perf_counter()
        for _ in range(steps):
            run()
        return (time.perf_counter() - t) / steps * 1e6


def measure_wall(exes: dict, torch_ncp: TorchNcps, py: PythonC, rounds: int, c_steps: int, torch_steps: int,
                 py_steps: int) -> dict:
    """Interleaved: every kind once per round, in turn; medians over rounds (microseconds)."""
    kinds = {f"c_{k}": (lambda e=e: c_ns(e, c_steps) / 1000.0) for k, e in exes.items()}
    kinds["ncps_ltccell_torch"] = lambda: torch_ncp.us(torch_steps)
    for form in py.inputs:
        kinds[f"python_c_guarded{form}"] = lambda form=form: py.guarded_us(py_steps, form)
    kinds["python_c_bare_ctypes"] = lambda: py.bare_us(py_steps)
    for f in kinds.values():  # warm-up round, not kept
        f()
    samples = {k: [] for k in kinds}
    for _ in range(rounds):
        for k, f in kinds.items():
            samples[k].append(f())
    return {k: {"median_us": statistics.median(v), "min_us": min(v), "max_us": max(v), "rounds": len(v)}
            for k, v in samples.items()}


def targets(values: dict) -> dict:
    out = {}
    for key, (op, bound) in TARGETS.items():
        v = values.get(key)
        met = None if v is None else (v <= bound if op == "<=" else v >= bound)
        out[key] = {"value": v, "target": f"{op} {bound}", "met": met}
    return out


def machine() -> dict:
    """The project's machine facts plus the compiler and whether valgrind is there."""
    from ltc_edge.codegen import c as cgen
    from ltc_edge.machine import machine_info

    cc = cgen.find_cc()
    return {**machine_info(), "cc": subprocess.run([cc, "--version"], capture_output=True,
                                                   text=True).stdout.splitlines()[0],
            "valgrind": shutil.which("valgrind") is not None}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7, help="interleaved wall-time rounds (median reported)")
    ap.add_argument("--c-steps", type=int, default=20000, help="steps per timed C block")
    ap.add_argument("--torch-steps", type=int, default=300, help="steps per timed ncps block")
    ap.add_argument("--py-steps", type=int, default=3000, help="steps per timed Python block")
    ap.add_argument("--pair-blocks", type=int, default=1000, help="blocks of the input forms' paired ratios")
    ap.add_argument("--pair-steps", type=int, default=300, help="steps per form and block")
    ap.add_argument("--callgrind-steps", type=int, default=1000, help="N of the N vs 2N callgrind runs")
    ap.add_argument("--inputs-only", action="store_true",
                    help="only the guarded step's input forms (paired ratios) -> results/c_speed_inputs.json")
    ap.add_argument("--out", default=None, help="default: benchmarks/results/c_speed.json (c_speed_inputs.json)")
    a = ap.parse_args()
    results = ROOT / "benchmarks" / "results"
    a.out = a.out or str(results / ("c_speed_inputs.json" if a.inputs_only else "c_speed.json"))
    if a.inputs_only:
        return inputs_only(a)

    work = Path(tempfile.mkdtemp(prefix="c-speed-"))
    try:
        cells = ncps_cells()
        files = model_files(work / "models", cells)
        exes = {f"{m}_{fs}": build(files[m], work / f"{m}_{fs}", flags)
                for m in files for fs, flags in FLAG_SETS.items()}
        insn = {k: instructions_per_step(e, a.callgrind_steps) for k, e in exes.items()}
        py = PythonC(files["ncp19"])
        wall = measure_wall(exes, TorchNcps(cells["ncp19"]), py, a.rounds, a.c_steps, a.torch_steps, a.py_steps)
        forms = py.paired_ratios(a.pair_blocks, a.pair_steps)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {k: v["median_us"] for k, v in wall.items()}
    ratios = {"bare_c_speedup_over_ncps": med["ncps_ltccell_torch"] / med["c_ncp19_O2"],
              "bare_c_O3_speedup_over_ncps": med["ncps_ltccell_torch"] / med["c_ncp19_O3"],
              "python_guarded_over_bare_c": med["python_c_guarded"] / med["c_ncp19_O2"],
              "python_bare_ctypes_over_bare_c": med["python_c_bare_ctypes"] / med["c_ncp19_O2"],
              **forms,  # paired blocks (PythonC.paired_ratios)
              **{f"python_guarded{form}_over_f32_round_medians": med[f"python_c_guarded{form}"]
                 / med["python_c_guarded"] for form in ("_f64", "_row", "_row_f64")},
              "ltc_ncp19_over_lstm19_instructions_O2": _ratio(insn, "ncp19_O2", "lstm19_O2"),
              "ltc_ncp19_over_lstm19_instructions_O3": _ratio(insn, "ncp19_O3", "lstm19_O3")}
    values = {f"{k}_instructions": v.get("per_step") for k, v in insn.items()}
    values.update(ratios)
    out = {
        "what": "one step, batch 1, 8 inputs, 2 outputs, 19 units (LTC: 6 unfolds); the generated C "
                "(ltc_edge.codegen.c) as it is when this ran",
        "machine": machine(),
        "models": {"ncp19": "ncps LTCCell(AutoNCP(19, 2, seed=22222), in_features=8) via from_ncps",
                   "fc19": "ncps LTCCell(FullyConnected(19, 2), in_features=8) via from_ncps",
                   "lstm19": "ltc_edge LSTM, 19 units"},
        "flag_sets": {k: (v or ["(ltc_edge.codegen.c.CFLAGS)"]) for k, v in FLAG_SETS.items()},
        "instructions_per_step": {k: v.get("per_step", v.get("skipped")) for k, v in insn.items()},
        "callgrind": insn,
        "wall_us": wall,
        "ratios": ratios,
        "targets": targets(values),
        "notes": {"bare_c": "c_ncp19_O2: the generated step in a C loop (clock_gettime), project flags",
                  "wall_time": f"medians of {a.rounds} interleaved rounds; the machine is shared, so wall "
                               "times carry noise; instruction counts do not",
                  "input_forms": f"python_guarded_*_over_f32: medians over {a.pair_blocks} blocks of the "
                                 f"per-block ratio ({a.pair_steps} steps per form and block, the forms in "
                                 "turn): the two times of a pair share the machine's load; "
                                 "*_round_medians: the same from the rounds' medians (noisier)"},
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(json.dumps({"instructions_per_step": out["instructions_per_step"], "ratios": ratios,
                      "targets": {k: (v["value"], v["target"], v["met"]) for k, v in out["targets"].items()}},
                     indent=1))


def inputs_only(a) -> None:
    """The guarded step's input forms alone (issue 24 item 6): the paired ratios and each form's
    median over --rounds interleaved rounds of --py-steps steps; c_speed.json stays as recorded."""
    work = Path(tempfile.mkdtemp(prefix="c-speed-"))
    try:
        py = PythonC(model_files(work / "models")["ncp19"])
        forms = py.paired_ratios(a.pair_blocks, a.pair_steps)
        samples = {f: [] for f in py.inputs}
        for _ in range(a.rounds):  # interleaved: every form once per round
            for f in samples:
                samples[f].append(py.guarded_us(a.py_steps, f))
        us = {f"python_c_guarded{f}": statistics.median(v) for f, v in samples.items()}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = {"what": "Controller.step on the C backend (ncps NCP-19, batch 1, checks in C) for each input form, "
                   "over the float32 x[in] step: the same model and step as c_speed.json's python_c_guarded",
           "machine": machine(), "ratios": forms, "median_us": us,
           "targets": {k: v for k, v in targets(forms).items() if k in forms},
           "notes": {"ratios": f"medians over {a.pair_blocks} blocks of the per-block ratio ({a.pair_steps} steps "
                               "per form and block, the forms in turn): the two times of a pair share the "
                               "machine's load",
                     "median_us": f"medians of {a.rounds} interleaved rounds of {a.py_steps} steps; the machine "
                                  "is shared, so these carry its load"}}
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(json.dumps({"ratios": forms, "median_us": us}, indent=1))


def _ratio(insn, a, b):
    x, y = insn[a].get("per_step"), insn[b].get("per_step")
    return None if x is None or y is None else x / y


if __name__ == "__main__":
    main()
