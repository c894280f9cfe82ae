"""The guarded Python step over the C backend vs the bare C step (issue 13), interleaved.

    .venv/bin/python scripts/c_guard_overhead.py [rounds]

Per round, N steps each of: the bare C step (a C loop over <prefix>_step, one ctypes call for
all N), the backend's unchecked and checked ctypes calls, and Controller.step(x) (guards on,
checked in C). Times are thread CPU time (time.thread_time: steadier on a shared machine);
printed are the medians over rounds of the time per step and of its ratio to the bare step of
the same round. `guard_overhead(config, raw)` returns them.
"""

from __future__ import annotations

import ctypes
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's ltc_edge

LOOP = r"""
#include "ltc_model.h"
float bench_loop(long steps);
float bench_loop(long steps)
{
    static ltc_model_state_t s;
    float x[LTC_MODEL_INPUTS], y[LTC_MODEL_OUTPUTS], sink = 0.0f;
    long t;
    int i;
    for (i = 0; i < LTC_MODEL_INPUTS; ++i) x[i] = 0.1f;
    for (t = 0; t < steps; ++t) {
        x[t % LTC_MODEL_INPUTS] = (float)(t % 17) * 0.05f - 0.4f;
        ltc_model_step(&s, x, 0.1f, y);
        sink += y[0];
    }
    return sink;
}
"""


def guard_overhead(config, raw, rounds: int = 41, n: int = 5000) -> dict:
    import torch

    from ltc_edge.codegen import c as cgen
    from ltc_edge.nn import Model, save
    from ltc_edge.runtime import load

    d = Path(tempfile.mkdtemp(prefix="guard-"))
    for f, text in cgen.generate(config, raw)["files"].items():
        (d / f).write_text(text)
    (d / "loop.c").write_text(LOOP)
    subprocess.run([cgen.find_cc(), *cgen.CFLAGS, "-shared", "-fPIC", "-I", str(d), "-o", str(d / "loop.so"),
                    str(d / "loop.c"), str(d / "ltc_model.c")], check=True)
    lib = ctypes.CDLL(str(d / "loop.so"))
    lib.bench_loop.restype, lib.bench_loop.argtypes = ctypes.c_float, [ctypes.c_long]
    path = save(Model(config, {k: torch.as_tensor(v) for k, v in raw.items()}), d / "m.safetensors")
    ctrl = load(path, backend="c")
    be, x = ctrl.backend, np.full(config["input_size"], 0.1, np.float32)

    def per_step(fn):
        t = time.thread_time()
        for _ in range(n):
            fn()
        return (time.thread_time() - t) / n * 1e9

    def bare():
        t = time.thread_time()
        lib.bench_loop(n)
        return (time.thread_time() - t) / n * 1e9

    tests = {"bare_c_step": bare, "ctypes_unchecked": lambda: per_step(be.run),
             "ctypes_checked": lambda: per_step(be.run_guarded),
             "controller_step": lambda: per_step(lambda: ctrl.step(x))}
    ns, ratio = {k: [] for k in tests}, {k: [] for k in tests}
    for _ in range(rounds):
        got = {k: fn() for k, fn in tests.items()}
        for k in tests:
            ns[k].append(got[k])
            ratio[k].append(got[k] / got["bare_c_step"])
    return {k: {"ns_median": statistics.median(ns[k]), "ratio_median": statistics.median(ratio[k])} for k in tests}


def main():
    sys.path.insert(0, str(Path(__file__).parent))
    from callgrind_step import issue13_models

    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 41
    config, raw = issue13_models()["ltc_ncp19"]
    for k, v in guard_overhead(config, raw, rounds).items():
        print(f"{k:18s} {v['ns_median']:8.0f} ns/step   {v['ratio_median']:.2f}x the bare C step")


if __name__ == "__main__":
    main()
