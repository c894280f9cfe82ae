"""Generated C vs ncps (torch) step speed, sparse NCP vs fully connected C, and exact
instruction counts (valgrind callgrind). One run, side by side; results to
benchmarks/results/c_speed.json.

    .venv/bin/python benchmarks/c_speed.py [--steps 20000] [--out benchmarks/results/c_speed.json]

Compared (all LTC-19, 8 inputs, 4 motor outputs, batch 1, 6 unfolds, same parameters):
  * ncps LTCCell.forward under torch.no_grad (the reference implementation)
  * the generated C of the same model (ltc_edge.codegen.c), sparse synapse lists, timed in a
    C loop (clock_gettime) so no Python call overhead is counted; also through ctypes
  * the same model with every synapse pair looped (the "fully connected" dense build)
  * an LTC-19 with a fully connected wiring (the same size, every synapse real)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BENCH_C = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "ltc_model.h"
int main(int argc, char **argv)
{
    long steps = argc > 1 ? atol(argv[1]) : 10000, t;
    int reps = argc > 2 ? atoi(argv[2]) : 5, r, i;
    ltc_model_state_t s;
    float x[LTC_MODEL_INPUTS], y[LTC_MODEL_OUTPUTS];
    double best = 1e30, sink = 0.0;
    for (i = 0; i < LTC_MODEL_INPUTS; ++i) x[i] = 0.1f * (float)(i + 1);
    for (r = 0; r < reps; ++r) {
        struct timespec a, b;
        double ns;
        ltc_model_reset(&s);
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (t = 0; t < steps; ++t) {
            x[t % LTC_MODEL_INPUTS] = (float)(t % 17) * 0.05f - 0.4f;
            ltc_model_step(&s, x, 0.1f, y);
            sink += y[0];
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)steps;
        if (ns < best) best = ns;
    }
    printf("ns_per_step=%.3f sink=%g\n", best, sink);
    return 0;
}
"""


def build_bench(config, raw, out: Path, sparse: bool) -> Path:
    from ltc_edge.codegen import c as cgen

    out.mkdir(parents=True, exist_ok=True)
    gen = cgen.generate(config, raw, prefix="ltc_model", sparse=sparse)
    for name, text in gen["files"].items():
        (out / name).write_text(text)
    (out / "bench.c").write_text(BENCH_C)
    exe = out / "bench"
    subprocess.run([cgen.find_cc(), "-O2", "-std=c99", "-Wall", "-Werror", "-pedantic", "-I", str(out),
                    "-o", str(exe), str(out / "bench.c"), str(out / "ltc_model.c"), "-lm"], check=True)
    return exe


def c_ns_per_step(exe: Path, steps: int) -> float:
    r = subprocess.run([str(exe), str(steps), "7"], capture_output=True, text=True, check=True)
    return float(r.stdout.split("ns_per_step=")[1].split()[0])


def callgrind_instructions(exe: Path, steps: int) -> int | None:
    """Total instructions (Ir) of the whole program for `steps` steps (deterministic)."""
    if shutil.which("valgrind") is None:
        return None
    with tempfile.TemporaryDirectory() as d:
        outf = Path(d) / "cg.out"
        r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={outf}", str(exe), str(steps), "1"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return None
        for line in outf.read_text().splitlines():
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    return None


def instructions_per_step(exe: Path, n: int = 2000) -> dict:
    """callgrind at N and 2N steps, differenced: instructions of one step, start-up removed."""
    a, b = callgrind_instructions(exe, n), callgrind_instructions(exe, 2 * n)
    if a is None or b is None:
        return {"skipped": "valgrind not available"}
    return {"steps_n": n, "total_n": a, "total_2n": b, "per_step": (b - a) / n}


def torch_ncps_us(cell, steps: int, n_in: int) -> float:
    import torch

    torch.set_num_threads(1)
    x = torch.randn(1, n_in)
    h = torch.zeros(1, cell.state_size)
    ts = torch.tensor([0.1])
    with torch.no_grad():
        for _ in range(50):
            _, h = cell(x, h, ts)
        best = 1e30
        for _ in range(3):
            t = time.perf_counter()
            for _ in range(steps):
                _, h = cell(x, h, ts)
            best = min(best, (time.perf_counter() - t) / steps)
    return best * 1e6


def ctypes_us(model_file, steps: int, n_in: int) -> float:
    from ltc_edge.runtime import load

    ctrl = load(model_file, backend="c")
    x = np.full(n_in, 0.1, np.float32)
    for _ in range(100):
        ctrl.step(x, 0.1)
    t = time.perf_counter()
    for _ in range(steps):
        ctrl.step(x, 0.1)
    return (time.perf_counter() - t) / steps * 1e6


def numpy_us(model_file, steps: int, n_in: int) -> float:
    from ltc_edge.runtime import load

    ctrl = load(model_file)
    x = np.full(n_in, 0.1, np.float32)
    for _ in range(50):
        ctrl.step(x, 0.1)
    t = time.perf_counter()
    for _ in range(steps):
        ctrl.step(x, 0.1)
    return (time.perf_counter() - t) / steps * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20000, help="steps per timed C run")
    ap.add_argument("--torch-steps", type=int, default=300)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "c_speed.json"))
    a = ap.parse_args()

    import torch
    from ncps.torch import LTCCell
    from ncps.wirings import AutoNCP, FullyConnected

    from ltc_edge.nn import from_ncps, save

    torch.manual_seed(0)
    n_in = 8
    ncp_cell = LTCCell(AutoNCP(19, 4), in_features=n_in)
    full_cell = LTCCell(FullyConnected(19, 4), in_features=n_in)
    ncp_model, full_model = from_ncps(ncp_cell), from_ncps(full_cell)
    work = Path(tempfile.mkdtemp(prefix="c-speed-"))
    ncp_file = save(ncp_model, work / "ncp.safetensors")
    raw = lambda m: {k: v.detach().numpy() for k, v in m.state_dict().items()}  # noqa: E731
    builds = {
        "c_ncp_sparse": build_bench(ncp_model.config, raw(ncp_model), work / "sparse", sparse=True),
        "c_ncp_dense_loops": build_bench(ncp_model.config, raw(ncp_model), work / "dense", sparse=False),
        "c_fully_connected": build_bench(full_model.config, raw(full_model), work / "full", sparse=True),
    }
    # side by side, interleaved twice to even out machine noise
    res = {k: [] for k in builds}
    res["ncps_torch"] = []
    for _ in range(2):
        res["ncps_torch"].append(torch_ncps_us(ncp_cell, a.torch_steps, n_in))
        for k, exe in builds.items():
            res[k].append(c_ns_per_step(exe, a.steps) / 1000.0)
    us = {k: min(v) for k, v in res.items()}
    us["c_via_ctypes_runtime"] = ctypes_us(ncp_file, 5000, n_in)
    us["numpy_runtime"] = numpy_us(ncp_file, 2000, n_in)
    insn = {k: instructions_per_step(exe) for k, exe in builds.items()}
    synapses = int(np.abs(np.asarray(ncp_model.config["cell"]["wiring"]["adjacency"])).sum())
    out = {
        "what": "LTC-19 step, batch 1, 8 inputs, 4 motor outputs, 6 unfolds; best of runs; microseconds",
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpu_count": os.cpu_count(), "cc": subprocess.run(["cc", "--version"], capture_output=True,
                                                                     text=True).stdout.splitlines()[0]},
        "synapses": {"ncp": synapses, "fully_connected": 19 * 19},
        "us_per_step": us,
        "speedup_c_over_ncps_torch": us["ncps_torch"] / us["c_ncp_sparse"],
        "speedup_c_ctypes_over_ncps_torch": us["ncps_torch"] / us["c_via_ctypes_runtime"],
        "speedup_sparse_over_dense_loops": us["c_ncp_dense_loops"] / us["c_ncp_sparse"],
        "speedup_sparse_over_fully_connected": us["c_fully_connected"] / us["c_ncp_sparse"],
        "callgrind_instructions_per_step": insn,
        "targets": {"c_over_ncps_at_least": 100, "sparse_faster_than_dense": True},
    }
    out["targets_met"] = {"c_100x_ncps": out["speedup_c_over_ncps_torch"] >= 100,
                          "sparse_faster": out["speedup_sparse_over_fully_connected"] > 1
                          and out["speedup_sparse_over_dense_loops"] > 1}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(json.dumps({k: out[k] for k in ("us_per_step", "speedup_c_over_ncps_torch",
                                          "speedup_sparse_over_dense_loops", "speedup_sparse_over_fully_connected",
                                          "callgrind_instructions_per_step", "targets_met")}, indent=1))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
