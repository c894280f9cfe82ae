"""Robustness record (issue 16): cheetah LTC-NCP, fully connected LTC, LSTM, LSTM told dt and
CfC (32 units) through `ltc analyze robustness`, fp32 on the numpy runtime beside int8 ONNX
exports of the LTC-NCP and the LSTM. Results: benchmarks/results/robustness/.

    .venv/bin/python benchmarks/robustness.py [--runs runs/robustness] [--epochs 10]

Models missing from --runs are trained first (`ltc train --task cheetah --units 32 --epochs E
--compile`, seed 0); a 2-core machine needs about an hour for the five at 10 epochs. The
200-epoch record (benchmarks/results/robustness/cheetah_200ep/) is

    .venv/bin/python benchmarks/robustness.py --runs runs/rob200 --epochs 200 --suffix _200ep \
        --out benchmarks/results/robustness/cheetah_200ep

with the seed-0 models of the paper-table sweeps copied into runs/rob200 as <name>_200ep.safetensors
(they are what `ltc train ... --epochs 200 --seed 0` gives; training all five here takes ~1 h
compiled on 2 cores), and the LSTM told dt trained with the `ltc train` command this script runs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LTC = [sys.executable, "-m", "ltc_edge.cli"]
MODELS = {
    "ltc_ncp32": ["--model", "ltc", "--wiring", "auto-ncp"],
    "ltc_full32": ["--model", "ltc", "--wiring", "full"],
    "lstm32": ["--model", "lstm"],
    "lstm_dt32": ["--model", "lstm", "--dt-input"],
    "cfc32": ["--model", "cfc"],
}
INT8 = ("ltc_ncp32", "lstm32")


def run(*args):
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], check=True, cwd=ROOT)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "robustness")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--suffix", default="", help="appended to each model's file name, e.g. _200ep")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "robustness")
    args = ap.parse_args()
    args.runs.mkdir(parents=True, exist_ok=True)

    def model_file(name):
        return args.runs / f"{name}{args.suffix}.safetensors"

    for name, flags in MODELS.items():
        path = model_file(name)
        if not path.exists():
            run(*LTC, "train", "--task", "cheetah", "--units", "32", "--epochs", args.epochs, "--seed", "0",
                "--compile", "--no-progress", "--out", path, *flags)
    targets = [str(model_file(n)) for n in MODELS]
    for name in INT8:
        folder = args.runs / f"{name}{args.suffix}_onnx_int8"
        if not folder.exists():
            run(*LTC, "export", model_file(name), "--format", "onnx",
                "--precision", "int8", "--calibration", "cheetah", "--out", folder)
        targets.append(str(folder))
    run(*LTC, "analyze", "robustness", ",".join(targets), "--task", "cheetah", "--seeds", "3",
        "--sequences", "256", "--out", args.out)


if __name__ == "__main__":
    main()
