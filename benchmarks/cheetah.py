"""Result runs of `ltc train` (the LTC paper's cheetah table, digits, pendulum), and the
collection of their metrics into benchmarks/results/.

    .venv/bin/python benchmarks/cheetah.py run ltc_full32 lstm32 ltc_ncp32   # trains (slow)
    .venv/bin/python benchmarks/cheetah.py collect                           # summarises runs/

Each run is an exact `ltc train` command line (RUNS below); models and logs go to runs/<task>/,
the metrics (without the per-epoch history) to benchmarks/results/<task>_<name>.json and a
table to benchmarks/results/train_summary.json.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LTC = [str(ROOT / ".venv/bin/ltc")] if (ROOT / ".venv/bin/ltc").exists() else [sys.executable, "-m", "ltc_edge.cli"]

RUNS = {
    # the paper's table: 32 units, 200 epochs, batch 16, LTC lr 0.01 / LSTM lr 0.001 (task defaults)
    "cheetah/ltc_full32": "train --task cheetah --model ltc --units 32 --wiring full --epochs 200 --seed 0 --compile",
    "cheetah/lstm32": "train --task cheetah --model lstm --units 32 --epochs 200 --seed 0 --compile",
    "cheetah/ltc_ncp32": "train --task cheetah --model ltc --units 32 --wiring auto-ncp --epochs 200 --seed 0 --compile",
    "digits/ltc_ncp48": "train --task digits --model ltc --wiring auto-ncp --wiring-args "
                        "'{\"sparsity_level\": 0.2, \"output_size\": 12}' --units 48 --epochs 100 --seed 0 --compile",
    "pendulum/ltc_ncp32": "train --task pendulum --model ltc --wiring auto-ncp --units 32 --epochs 200 --seed 0 --compile",
}
PAPER = {"cheetah/ltc_full32": 2.308, "cheetah/lstm32": 2.500}


def run(names):
    for name in names:
        if name not in RUNS:
            sys.exit(f"unknown run {name}; choose from {', '.join(RUNS)}")
        out = ROOT / "runs" / f"{name}.safetensors"
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = LTC + shlex.split(RUNS[name]) + ["--out", str(out), "--no-progress"]
        print("$", " ".join(cmd), flush=True)
        with open(out.with_suffix(".log"), "w") as log:
            subprocess.run(cmd, check=True, stderr=log, stdout=log, cwd=ROOT)
    collect()


def collect():
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    summary = []
    for name, args in RUNS.items():
        mfile = ROOT / "runs" / f"{name}.metrics.json"
        if not mfile.exists():
            continue
        m = json.loads(mfile.read_text())
        task = name.split("/")[0]
        keep = {k: v for k, v in m.items() if k != "history"}
        keep["command"] = "ltc " + args + f" --out runs/{name}.safetensors"
        keep["valid_curve"] = [round(h["valid"][m["metric"]], 5) for h in m["history"]]
        row = {"run": name, "task": task, "model": m["model"], "wiring": m["wiring"],
               "params": m["counts"]["parameters"], "best_epoch": m["best_epoch"], "epochs": m["epochs_run"],
               "metric": m["metric"], "valid": m["valid"][m["metric"]], "test": m["test"][m["metric"]],
               "paper_test": PAPER.get(name), "command": keep["command"]}
        closed = ROOT / "runs" / f"{name}.closed_loop.json"
        if closed.exists():
            row["closed_loop"] = keep["closed_loop"] = json.loads(closed.read_text())
        summary.append(row)
        dest = results / f"{task}_{name.split('/')[1]}.json"
        tmp = dest.with_suffix(".tmp")
        tmp.write_text(json.dumps(keep, indent=1))
        os.replace(tmp, dest)
    tmp = results / "train_summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1))
    os.replace(tmp, results / "train_summary.json")
    for r in summary:
        extra = f" (paper {r['paper_test']})" if r["paper_test"] else ""
        cl = f", closed-loop return {r['closed_loop']['return_mean']:.1f} vs expert " \
             f"{r['closed_loop']['expert_return_mean']:.1f}" if "closed_loop" in r else ""
        print(f"{r['run']}: best epoch {r['best_epoch']}/{r['epochs']}, valid {r['metric']} {r['valid']:.4f}, "
              f"test {r['metric']} {r['test']:.4f}{extra}{cl}")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("run", "collect"):
        sys.exit(__doc__)
    run(sys.argv[2:]) if sys.argv[1] == "run" else collect()
