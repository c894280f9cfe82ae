"""The isolation study (issue 30, item 3): what does `ltc train --isolate` buy in training time, and
what does it cost in accuracy?

For each model below, runs `train()` (what `ltc train` runs) with no isolation and with isolation
fractions 0.25 / 0.5 / 0.75 chosen by each statistic (magnitude, gradient, fisher), all isolated after
epoch --isolate-at, for each seed. Every run has the same epochs, data, batches and learning rate as
its baseline; the eager (uncompiled) step is used, the form in which an LTC with at most half of its
synapses left trains through synapse lists (torch.compile's step gains nothing from them:
benchmarks/train_speed.py and issue 30). Each run records its per-epoch training wall time, CPU time
and validation metric (time-to-accuracy curves), and the test metric of its best epoch.

    .venv/bin/python benchmarks/isolation.py [--workers 2] [--seeds 0 1] [--models cheetah-ltc ...]

Runs go one per process, `--workers` at a time, each with one torch thread; a finished run's record
is kept in --work and reused, so an interrupted study resumes. Writes
benchmarks/results/isolation.json and benchmarks/results/isolation_<model>.png. Time figures are
this machine's (named in the JSON); the ratios against the baseline of the same run are what carry.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"

# name -> (task, model, units, wiring, wiring args, TrainOptions fields): the paper table's models
MODELS = {
    "cheetah-ltc": ("cheetah", "ltc", 32, "full", None, {"lr": 0.01, "batch_size": 16}),
    "cheetah-ltc-ncp": ("cheetah", "ltc", 32, "auto-ncp", None, {"lr": 0.01, "batch_size": 16}),
    "cheetah-lstm": ("cheetah", "lstm", 32, None, None, {"lr": 0.001, "batch_size": 16}),
    "digits-ltc-ncp": ("digits", "ltc", 48, "auto-ncp", {"sparsity_level": 0.2, "output_size": 12},
                       {"lr": 0.01, "batch_size": 32, "grad_clip": 1.0}),
}
FRACTIONS = (0.25, 0.5, 0.75)
STATISTICS = ("magnitude", "gradient", "fisher")


def run_one(job: dict) -> dict:
    """One training run in this (worker) process; its record."""
    import torch

    from ltc_edge.train.loop import TrainOptions, build_task_model, train
    from ltc_edge.train.tasks import load_task

    torch.set_num_threads(1)
    task_name, kind, units, wiring, wargs, fields = MODELS[job["model"]]
    task = load_task(task_name)
    model = build_task_model(task, kind, units=units, wiring=wiring, wiring_args=wargs, seed=job["seed"])
    iso = {} if job["fraction"] == 0 else {"isolate": job["fraction"], "isolate_by": job["by"],
                                           "isolate_at": job["at"]}
    opts = TrainOptions(epochs=job["epochs"], seed=job["seed"], **fields, **iso)
    out = Path(job["work"]) / f"{job['key']}.safetensors"
    t0, c0 = time.time(), time.process_time()
    m = train(task, model, out, opts, progress=False, log=lambda s: None)
    return {**{k: job[k] for k in ("model", "seed", "fraction", "by", "at", "epochs")},
            "metric": m["metric"], "higher_is_better": task.higher_is_better, "test": m["test"][m["metric"]],
            "best_valid": m["valid"][m["metric"]], "best_epoch": m["best_epoch"],
            "counts": m["counts"], "wall_s": round(time.time() - t0, 2),
            "cpu_s": round(time.process_time() - c0, 2),
            "curve": [{"epoch": h["epoch"], "train_s": h["train_s"], "train_cpu_s": h["train_cpu_s"],
                       "valid": h["valid"][m["metric"]]} for h in m["history"]]}


def jobs(args) -> list[dict]:
    out = []
    for model in args.models:
        for seed in args.seeds:
            grid = [(0.0, "none")] + [(f, by) for f in FRACTIONS for by in STATISTICS]
            for fraction, by in grid:
                key = f"{model}_s{seed}_{by}_{fraction:g}"
                out.append({"key": key, "model": model, "seed": seed, "fraction": fraction, "by": by,
                            "at": args.isolate_at, "epochs": args.epochs[model], "work": str(args.work)})
    return out


def run_all(args, todo: list[dict]) -> list[dict]:
    """Every job's record, from --work where a run already finished; progress on stderr."""
    done, pending = [], []
    for job in todo:
        rec = args.work / f"{job['key']}.json"
        (done if rec.is_file() else pending).append(job)
    records = [json.loads((args.work / f"{j['key']}.json").read_text()) for j in done]
    print(f"{len(done)} runs recorded, {len(pending)} to run with {args.workers} workers", file=sys.stderr)
    t0 = time.time()
    with ProcessPoolExecutor(args.workers) as pool:
        for i, (job, rec) in enumerate(zip(pending, pool.map(run_one, pending)), 1):
            (args.work / f"{job['key']}.json").write_text(json.dumps(rec))
            records.append(rec)
            eta = (time.time() - t0) / i * (len(pending) - i)
            print(f"[{i}/{len(pending)}] {job['key']}: test {rec['metric']} {rec['test']:.4g}, "
                  f"train {sum(c['train_s'] for c in rec['curve']):.0f} s; ETA {eta / 60:.0f} min",
                  file=sys.stderr, flush=True)
    return records


def reached(curve: list[dict], target: float, higher: bool, clock: str) -> float | None:
    """Cumulative training time (clock: train_s or train_cpu_s; or "epochs": their count) at the first
    epoch whose validation metric reaches `target`; None when none does."""
    t = 0.0
    for c in curve:
        t += 1 if clock == "epochs" else c[clock]
        if (c["valid"] >= target) if higher else (c["valid"] <= target):
            return round(t, 2)
    return None


def target_of(base: dict, tol: float) -> float:
    """What counts as the baseline's accuracy: its best validation metric, less `tol` (a share of the
    MSE for regression, accuracy points for classification)."""
    return base["best_valid"] - tol if base["higher_is_better"] else base["best_valid"] * (1 + tol)


def compare(rec: dict, base: dict, tol: float) -> dict:
    """One isolated run against the baseline of the same model and seed."""
    at = rec["at"]
    epoch_s = np.mean([c["train_s"] for c in rec["curve"][at:]])
    base_epoch_s = np.mean([c["train_s"] for c in base["curve"][at:]])
    target = target_of(base, tol)
    out = {"train_s": sum(c["train_s"] for c in rec["curve"]), "train_cpu_s": sum(c["train_cpu_s"] for c in rec["curve"]),
           "epoch_s_after_isolation_ratio": float(epoch_s / base_epoch_s),
           "test": rec["test"], "test_change": rec["test"] - base["test"],
           "test_change_rel": (rec["test"] - base["test"]) / abs(base["test"])}
    for clock in ("epochs", "train_s", "train_cpu_s"):
        mine, theirs = reached(rec["curve"], target, rec["higher_is_better"], clock), \
            reached(base["curve"], target, base["higher_is_better"], clock)
        out[f"to_target_{clock}"] = mine
        out[f"to_target_{clock}_ratio"] = None if mine is None or not theirs else round(mine / theirs, 3)
    return out


def summarise(records: list[dict], tol: float) -> dict:
    """model -> {higher_is_better, configs: {"baseline" | "<statistic> <fraction>": means over seeds
    and the per-seed comparisons with the baseline of the same seed}}."""
    base = {(r["model"], r["seed"]): r for r in records if r["fraction"] == 0}
    out: dict = {}
    for r in sorted(records, key=lambda r: (r["model"], r["fraction"], r["by"], r["seed"])):
        key = "baseline" if r["fraction"] == 0 else f"{r['by']} {r['fraction']:g}"
        model = out.setdefault(r["model"], {"higher_is_better": r["higher_is_better"], "configs": {}})
        cell = model["configs"].setdefault(key, {"runs": []})
        cell["runs"].append({"seed": r["seed"], **compare(r, base[(r["model"], r["seed"])], tol)})
    for model in out.values():
        for cell in model["configs"].values():
            runs = cell["runs"]
            for k in ("train_s", "train_cpu_s", "epoch_s_after_isolation_ratio", "test", "test_change",
                      "test_change_rel"):
                cell[k] = round(float(np.mean([r[k] for r in runs])), 4)
            for clock in ("epochs", "train_s", "train_cpu_s"):
                hits = [r[f"to_target_{clock}_ratio"] for r in runs]
                cell[f"to_target_{clock}_ratio"] = None if None in hits else round(float(np.mean(hits)), 3)
            cell["reached_target"] = sum(r["to_target_train_s"] is not None for r in runs)
    return out


def best_statistic(summary: dict) -> dict:
    """model -> fraction -> the statistic whose runs lost least test accuracy (mean over seeds)."""
    out: dict = {}
    for name, model in summary.items():
        for f in FRACTIONS:
            rows = {by: model["configs"][f"{by} {f:g}"] for by in STATISTICS if f"{by} {f:g}" in model["configs"]}
            if rows:
                pick = (max if model["higher_is_better"] else min)(rows, key=lambda by: rows[by]["test"])
                out.setdefault(name, {})[f"{f:g}"] = pick
    return out


def step_timer(path: Path, task):
    """A training step (forward, backward, Adam, constraints) of the model file at `path`, as the
    training loop runs it after isolation (an LTC through its reduced wiring, another cell with its
    isolated entries frozen)."""
    import torch

    from ltc_edge.nn import modelfile
    from ltc_edge.train import isolate
    from ltc_edge.train.loop import Objective, adam, make_step_fn, run_sequence

    model = modelfile.load(path)
    isolate.restore(model)
    opt, fn, obj = adam(model.parameters(), 1e-4), make_step_fn(model.config), Objective(task)

    def step(x, y):
        loss = obj.loss(run_sequence(model, fn, x, None, last_only=obj.last_only), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        model.apply_constraints()
    return step


def step_ratios(args, records: list[dict], rounds: int = 9, steps: int = 10) -> dict:
    """model -> config -> median over interleaved rounds of (isolated step time / baseline step
    time), the best models of the first seed timed side by side in this process: the training
    time saving without the noise of runs timed minutes apart."""
    import torch

    from ltc_edge.train.tasks import load_task

    torch.set_num_threads(1)
    out = {}
    seed = min(args.seeds)
    for model in args.models:
        task = load_task(MODELS[model][0])
        bs = MODELS[model][5]["batch_size"]
        x, y = torch.from_numpy(task.train.x[:bs].copy()), torch.from_numpy(task.train.y[:bs].copy())
        mine = [r for r in records if r["model"] == model and r["seed"] == seed]
        timers = {("baseline" if r["fraction"] == 0 else f"{r['by']} {r['fraction']:g}"):
                  step_timer(args.work / f"{model}_s{seed}_{r['by']}_{r['fraction']:g}.safetensors", task)
                  for r in mine}
        times = {k: [] for k in timers}
        for _ in range(rounds):
            for k, step in timers.items():
                step(x, y)  # warm
                t = time.perf_counter()
                for _ in range(steps):
                    step(x, y)
                times[k].append((time.perf_counter() - t) / steps)
        out[model] = {k: round(float(np.median(np.array(v) / np.array(times["baseline"]))), 3)
                      for k, v in times.items()}
        out[model]["baseline_step_ms"] = round(float(np.median(times["baseline"])) * 1e3, 2)
        print(f"{model}: step time / baseline {out[model]}", file=sys.stderr, flush=True)
    return out


def plot(records: list[dict], model: str, path: Path) -> str:
    """Validation metric against cumulative training wall and CPU time, seed 0: one line per run
    (colour: fraction, line style: statistic)."""
    from ltc_edge import plots

    plt = plots.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    colours = {0.0: "black", 0.25: "tab:blue", 0.5: "tab:orange", 0.75: "tab:red"}
    styles = {"none": "-", "magnitude": "-", "gradient": "--", "fisher": ":"}
    mine = [r for r in records if r["model"] == model]
    seed = min(r["seed"] for r in mine)
    for r in (r for r in mine if r["seed"] == seed):
        label = "no isolation" if r["fraction"] == 0 else f"{r['by']} {r['fraction']:g}"
        for ax, clock in zip(axes, ("train_s", "train_cpu_s")):
            t = np.cumsum([c[clock] for c in r["curve"]])
            ax.plot(t, [c["valid"] for c in r["curve"]], styles[r["by"]], color=colours[r["fraction"]],
                    lw=2 if r["fraction"] == 0 else 1.2, label=label)
    metric = mine[0]["metric"]
    for ax, what in zip(axes, ("training wall time (s)", "training CPU time (s)")):
        ax.set_xlabel(what)
        ax.grid(alpha=0.3)
        if metric == "mse":
            ax.set_yscale("log")
    axes[0].set_ylabel(f"validation {metric}")
    axes[1].legend(fontsize=7, ncol=2)
    fig.suptitle(f"{model}: isolation during training (seed {seed}, isolated after epoch "
                 f"{mine[0]['at']})")
    return plots.save(fig, path)


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--epochs", nargs="+", default=["cheetah-ltc=12", "cheetah-ltc-ncp=12", "cheetah-lstm=30",
                                                    "digits-ltc-ncp=20"],
                    help="MODEL=EPOCHS for each model (every run of a model trains this many epochs)")
    ap.add_argument("--isolate-at", type=int, default=1, help="isolate after this many epochs (every run)")
    ap.add_argument("--tolerance", type=float, default=0.05,
                    help="time-to-accuracy target: the baseline's best validation MSE x (1 + this), or its "
                         "accuracy - this")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", type=Path, default=Path("/tmp/isolation"))
    ap.add_argument("--out", type=Path, default=RESULTS / "isolation.json")
    args = ap.parse_args(argv)
    try:
        args.epochs = {k: int(v) for k, v in (e.split("=", 1) for e in args.epochs)}
    except ValueError:
        ap.error(f"--epochs takes MODEL=EPOCHS entries, got {' '.join(args.epochs)}")
    missing = [m for m in args.models if m not in args.epochs]
    if missing:
        ap.error(f"--epochs has no entry for {', '.join(missing)}")
    return args


def main(argv=None):
    args = parse(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    records = run_all(args, jobs(args))
    summary = summarise(records, args.tolerance)
    cache = args.work / "step_ratios.json"
    ratios = json.loads(cache.read_text()) if cache.is_file() else {}
    if not all(m in ratios for m in args.models):  # timed once: a rerun for the tables keeps them
        ratios = step_ratios(args, records)
        cache.write_text(json.dumps(ratios))
    for name, model in summary.items():  # epochs to the target x the paired step cost: time without the noise
        for key, cell in model["configs"].items():
            e = cell["to_target_epochs_ratio"]
            cell["to_target_time_estimated_ratio"] = None if e is None else round(e * ratios[name][key], 3)
    from ltc_edge.machine import machine_info

    res = {"study": "isolation during training (ltc train --isolate), eager step, 1 torch thread per run",
           "models": {m: dict(zip(("task", "model", "units", "wiring", "wiring_args", "options"), MODELS[m]))
                      for m in args.models},
           "epochs": args.epochs, "isolate_at": args.isolate_at, "seeds": args.seeds,
           "tolerance": args.tolerance, "workers": args.workers, "summary": summary,
           "step_time_ratio_paired": ratios,
           "best_statistic_by_test": best_statistic(summary), "runs": records, "machine": machine_info(),
           "command": "python benchmarks/isolation.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=1))
    os.replace(tmp, args.out)
    for m in args.models:
        plot(records, m, args.out.parent / f"isolation_{m}.png")
    print_table(summary, ratios)


def print_table(summary: dict, ratios: dict) -> None:
    for name, model in summary.items():
        print(f"\n{name}")
        for key, c in model["configs"].items():
            print(f"  {key:16s} test {c['test']:.4g} ({c['test_change_rel']:+.1%})  train {c['train_s']:.0f} s  "
                  f"epoch after isolation x{c['epoch_s_after_isolation_ratio']:.2f}  "
                  f"step (paired) x{ratios[name][key]:.2f}  "
                  f"to target: epochs x{c['to_target_epochs_ratio']}, wall x{c['to_target_train_s_ratio']}, "
                  f"estimated x{c['to_target_time_estimated_ratio']}  "
                  f"reached {c['reached_target']}/{len(c['runs'])}")


if __name__ == "__main__":
    main()
