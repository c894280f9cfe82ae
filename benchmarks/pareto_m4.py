"""Is an LTC better than an LSTM on a Cortex-M4, at equal accuracy? (issue 24, item 4)

Reads the trials of `ltc sweep benchmarks/pareto_m4.toml` (RUNS/trials/NAME/: finished ones, and
ones cut short where their files are there: their best validation epoch so far, marked, kept out of
the verdict; `ltc sweep ... --resume` finishes a sweep that was stopped), measures every trained model as `ltc bench --backend c
--precision fp32,int8 --target cortex-m4 --task cheetah` does (run_bench: the exported C, golden-
checked under qemu-system-arm; instructions per step under -icount; the cycle estimate of
ltc_edge/bench/arm/cycles.py; flash and RAM; the test MSE of the same C run on the host, over
windows and streamed over the whole test series with the state carried; int8 calibrated on
cheetah), and adds the recorded converged anchor: the 200-epoch, 5-seed, 32-unit cheetah table
(benchmarks/results/cheetah_paper_table.json) with the M4 cost of the same architectures.

    .venv/bin/python benchmarks/pareto_m4.py /tmp/pareto/runs [--work /tmp/pareto/m4]

Writes benchmarks/results/pareto_m4.json, pareto_m4.md and the plots pareto_m4_cycles.png (test MSE
vs estimated M4 cycles per step) and pareto_m4_flash.png (vs flash), Pareto fronts marked.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ltc_edge.fileio import atomic_write_bytes  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
ANCHOR = RESULTS / "cheetah_paper_table.json"
# the study's cell kinds: name -> (model, wiring)
KINDS = {"LTC": ("ltc", "full"), "LTC-NCP": ("ltc", "auto-ncp"), "CfC": ("cfc", None), "LSTM": ("lstm", None),
         "GRU": ("gru", None)}
COST = "cycles_per_step"  # the x axis and the verdict's cost: the cycle estimate (instructions where absent)


def kind_name(model: str, wiring: str | None) -> str:
    for name, (m, w) in KINDS.items():
        if m == model and (w is None or w == (wiring or "full")):
            return name
    raise ValueError(f"not a cell kind of this study: {model}/{wiring}")


def trial_params(folder: Path) -> dict:
    """model, seed, units, wiring from a trial folder's name (sweep.trial_name: key=value-...)."""
    return {k: (int(v) if v.isdigit() else v) for k, v in re.findall(r"(\w+)=([\w.-]+?)(?=-\w+=|$)", folder.name)}


def checkpoint_meta(ckpt: Path) -> dict:
    """The JSON metadata of a training checkpoint (epoch, history, best), read with safetensors."""
    from safetensors import safe_open

    with safe_open(str(ckpt), framework="numpy") as f:
        return json.loads(f.metadata()["ltc_edge_checkpoint"])


def trial_status(folder: Path) -> dict | None:
    """How far a trial's training got: finished (its metrics file) or cut short (its checkpoint)."""
    model = folder / "model.safetensors"
    if not model.is_file():
        return None  # not one epoch finished
    metrics = folder / "model.metrics.json"
    if metrics.is_file():
        m = json.loads(metrics.read_text())
        return {"status": "finished", "epochs_run": m["epochs_run"], "best_epoch": m["best_epoch"],
                "stopped_early": m.get("stopped_early"), "epochs_cap": m["options"]["epochs"],
                "train_test_mse": m["test"]["mse"], "train_test_mse_streamed": m["test_streaming"].get("mse")}
    meta = checkpoint_meta(folder / "model.safetensors.ckpt")
    return {"status": "cut short", "epochs_run": meta["epoch"], "best_epoch": meta["best"]["epoch"],
            "stopped_early": False, "epochs_cap": None}


def sweep_trials(runs: Path) -> list[dict]:
    """Every trial folder with a trained model, its parameters and training status."""
    out = []
    for folder in sorted((runs / "trials").glob("*")):
        status = trial_status(folder) if folder.is_dir() else None
        if status is None:
            continue
        p = trial_params(folder)
        out.append({"kind": kind_name(p["model"], p.get("wiring")), "units": p["units"], "seed": p["seed"],
                    "model_file": str(folder / "model.safetensors"), "source": "sweep", **status})
    return out


def anchor_models(work: Path) -> list[dict]:
    """The converged table's 32-unit cells of this study, each as an untrained model of the same
    architecture: its M4 cost (the step's code does not depend on the weights; checked in the JSON),
    with the recorded test MSE."""
    from ltc_edge.nn import save
    from ltc_edge.train.loop import build_task_model
    from ltc_edge.train.tasks import load_task

    table = json.loads(ANCHOR.read_text())
    task = load_task("cheetah")
    out = []
    for row in table["rows"]:
        if row["model"] not in KINDS:
            continue
        model, wiring = KINDS[row["model"]]
        path = work / "anchor" / f"{row['model'].lower()}32.safetensors"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            save(build_task_model(task, model, units=32, wiring=wiring if model == "ltc" else None, seed=0), path)
        out.append({"kind": row["model"], "units": 32, "seeds": row["seeds"], "source": "converged table",
                    "model_file": str(path), "epochs_cap": table["epochs"], "test_mse": row["mean"],
                    "test_mse_std": row["std"], "n": row["n"]})
    return out


def code_digest() -> str:
    """sha256 of the code that writes and measures the C (codegen, the ARM harness): a cached
    measurement holds only for the code it was made with."""
    h = hashlib.sha256()
    for f in sorted([*(ROOT / "ltc_edge" / "codegen").rglob("*"), *(ROOT / "ltc_edge" / "bench" / "arm").rglob("*")]):
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(f.relative_to(ROOT).as_posix().encode() + f.read_bytes())
    return h.hexdigest()[:16]


def measure(model_file: str, work: Path) -> dict:
    """{precision: bench row} of `ltc bench --backend c --precision fp32,int8 --target cortex-m4
    --task cheetah` on one model, cached under work by the model file's and the code's sha256."""
    from ltc_edge.bench.run import run_bench

    digest = hashlib.sha256(Path(model_file).read_bytes() + code_digest().encode()).hexdigest()[:16]
    cache = work / "bench" / f"{Path(model_file).parent.name}-{Path(model_file).stem}-{digest}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    res = run_bench([model_file], backends=("c",), precisions=("fp32", "int8"), targets=("cortex-m4",),
                    task="cheetah", out=work / "bench" / cache.stem)
    keep = ("instructions_per_step", "cycles_per_step", "cycles_low", "cycles_high", "flash_bytes", "ram_bytes",
            "metric", "metric_streaming", "skipped", "golden_max_abs_err")
    rows = {r["precision"]: {k: r.get(k) for k in keep} for r in res["rows"]}
    atomic_write_bytes(cache, json.dumps(rows, indent=1).encode())
    return rows


def config_points(trials: list[dict], measured: dict) -> list[dict]:
    """One point per (source, kind, units, precision): the test MSE (windows, streamed) as the mean
    over its seeds, the M4 cost of its C (the same code for every seed)."""
    by = {}
    for t in trials:
        for precision, row in measured[t["model_file"]].items():
            by.setdefault((t["source"], t["kind"], t["units"], precision, t.get("status")), []).append((t, row))
    points = []  # seeds cut short are a point of their own: not averaged with finished ones
    for (source, kind, units, precision, _), items in by.items():
        t0, r0 = items[0]
        ok = [(t, r) for t, r in items if not r.get("skipped")]
        p = {"source": source, "kind": kind, "units": units, "precision": precision,
             **{k: r0.get(k) for k in ("instructions_per_step", "cycles_per_step", "cycles_low", "cycles_high",
                                       "flash_bytes", "ram_bytes")},
             "skipped": r0.get("skipped") if not ok else None}
        if source == "converged table":  # the recorded fp32 test MSE (torch, windows) of 200-epoch runs
            p.update(seeds=t0["seeds"], epochs_cap=t0["epochs_cap"],
                     test_mse=t0["test_mse"] if precision == "fp32" else None,
                     test_mse_std=t0["test_mse_std"], test_mse_streamed=None)
        else:
            win = [r["metric"] for _, r in ok if r.get("metric") is not None]
            streamed = [r["metric_streaming"] for _, r in ok if r.get("metric_streaming") is not None]
            p.update(seeds=[t["seed"] for t, _ in items], status=[t["status"] for t, _ in items],
                     epochs_run=[t["epochs_run"] for t, _ in items], best_epoch=[t["best_epoch"] for t, _ in items],
                     test_mse=statistics.fmean(win) if win else None,
                     test_mse_std=statistics.stdev(win) if len(win) > 1 else None,
                     test_mse_streamed=statistics.fmean(streamed) if len(streamed) == len(win) and win else None)
        p["cost"] = p["cycles_per_step"] or p["instructions_per_step"]
        points.append(p)
    return sorted(points, key=lambda p: (p["source"], list(KINDS).index(p["kind"]), p["units"], p["precision"]))


def label(p: dict) -> str:
    return f"{p['kind']}-{p['units']} {p['precision']}"


def front(points: list[dict], key: str) -> list[dict]:
    """The Pareto front of points with a `key` MSE: none cheaper and at least as accurate."""
    from ltc_edge.bench.report import pareto_front

    have = [p for p in points if p.get(key) is not None and p.get("cost")]
    return [have[i] for i in pareto_front([(p["cost"], p[key]) for p in have], False)]


def equal_accuracy(points: list[dict], key: str) -> list[dict]:
    """For each point: the cheapest point of another kind that is at least as accurate, and the
    cost ratio (this point's cycles / that one's; > 1: the other kind is cheaper at equal accuracy)."""
    have = [p for p in points if p.get(key) is not None and p.get("cost")]
    out = []
    for p in have:
        rivals = [q for q in have if q["kind"] != p["kind"] and q[key] <= p[key]]
        best = min(rivals, key=lambda q: q["cost"]) if rivals else None
        out.append({"point": label(p), key: p[key], "cycles": p["cost"],
                    "cheapest_other_kind_as_accurate": label(best) if best else None,
                    "its_mse": best[key] if best else None, "its_cycles": best["cost"] if best else None,
                    "cost_ratio": p["cost"] / best["cost"] if best else None})
    return out


def levels(points: list[dict], key: str, cost: str = "cost", unit: str = "cycles/step") -> list[str]:
    """The answer in words, one line per accuracy level (each front point): the cheapest cell that
    reaches it and, for every other kind that reaches it too, how much more its cheapest costs."""
    lines = []
    have = [{**p, "cost": p[cost]} for p in points if p.get(key) is not None and p.get(cost)]
    for f in front(have, key):
        reach = [q for q in have if q[key] <= f[key]]
        others = {}
        for q in sorted(reach, key=lambda q: q["cost"]):
            others.setdefault(q["kind"], q)
        rest = [f"{label(q)} {q['cost'] / f['cost']:.2f}x" for k, q in others.items() if k != f["kind"]]
        missing = [k for k in KINDS if k not in others and any(q["kind"] == k for q in have)]
        lines.append(f"MSE <= {f[key]:.3f}: cheapest {label(f)} ({f['cost']:,.0f} {unit})"
                     + (f"; the cheapest of each other kind as accurate: {', '.join(rest)}" if rest else "")
                     + (f"; not reached by {', '.join(missing)}" if missing else ""))
    return lines


def plot(points: list[dict], xkey: str, xlabel: str, path: Path, converged: bool = False) -> None:
    """Test MSE (windows | streamed) vs an M4 cost, one colour per kind (fp32 o, int8 v; the
    converged 32-unit anchor *), each panel's Pareto front over the sweep's points as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = dict(zip(KINDS, ("tab:red", "tab:orange", "tab:purple", "tab:blue", "tab:green")))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, key, title in zip(axes, ("test_mse", "test_mse_streamed"),
                              ("test MSE over windows (state reset each)", "test MSE streamed (state carried)")):
        for p in points:
            x = p[xkey] if xkey != "cost" else p["cost"]
            if p.get(key) is None or not x:
                continue
            anchor = p["source"] == "converged table"
            ax.scatter(x, p[key], color=colours[p["kind"]], s=90 if anchor else 40, edgecolor="black" if anchor else None,
                       marker="*" if anchor else ("o" if p["precision"] == "fp32" else "v"))
            ax.annotate(str(p["units"]), (x, p[key]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        fronts = ((("sweep", "converged table"), "-", "front (converged: sweep + table)"),) if converged else \
            ((("sweep",), "-", "front (sweep)"), (("converged table",), "--", "front (converged)"))
        for sources, style, name in fronts:
            mine = [{**p, "cost": p[xkey] if xkey != "cost" else p["cost"]} for p in points if p["source"] in sources]
            f = front(mine, key)
            if f:
                ax.step([p["cost"] for p in f], [p[key] for p in f], where="post", color="grey", ls=style, lw=1,
                        label=name)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test MSE")
        ax.set_title(title, fontsize=9)
    for k, c in colours.items():
        axes[0].scatter([], [], color=c, label=k)
    axes[0].scatter([], [], marker="v", color="grey", label="int8 (o: fp32)")
    axes[0].scatter([], [], marker="*", color="grey", edgecolor="black", s=90, label="converged 32-unit table")
    axes[0].legend(fontsize=7)
    fig.suptitle("cheetah, Cortex-M4 under qemu (mps2-an386, -O2); the numbers beside the points are units", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _mse(v, std=None) -> str:
    return "—" if v is None else f"{v:.3f}" + ("" if std is None else f" ± {std:.3f}")


def markdown(result: dict) -> str:
    lines = ["| cell | C | seeds | epochs run (best) | test MSE, windows | streamed | M4 instructions/step | "
             "est. cycles/step | flash B | RAM B |", "|---|---|---|---|---|---|---|---|---|---|"]
    for p in result["points"]:
        if p["source"] == "converged table":
            epochs = f"{p['epochs_cap']} cap, converged table"
        else:
            epochs = ", ".join(f"{e} ({b})" + ("" if s == "finished" else " cut")
                               for e, b, s in zip(p["epochs_run"], p["best_epoch"], p["status"]))
        num = (lambda v: "—" if v is None else f"{v:,.0f}")
        lines.append(f"| {p['kind']}-{p['units']} | {p['precision']} | {len(p['seeds'])} | {epochs} | "
                     f"{_mse(p['test_mse'], p['test_mse_std'])} | {_mse(p['test_mse_streamed'])} | "
                     f"{num(p['instructions_per_step'])} | {num(p['cycles_per_step'])} | {num(p['flash_bytes'])} | "
                     f"{num(p['ram_bytes'])} |")
    lines += ["", *(f"  - {s.strip()}" if s.startswith("  ") else f"- {s}" for s in result["answer"])]
    return "\n".join(lines)


def weight_check(trials: list[dict], work: Path) -> dict | None:
    """The M4 cost of one trained sweep model beside an untrained model of the same architecture:
    the evidence that the converged anchor's cost (untrained weights) is the trained cells' cost."""
    from ltc_edge.nn import save
    from ltc_edge.train.loop import build_task_model
    from ltc_edge.train.tasks import load_task

    t = next((t for t in trials if t["source"] == "sweep"), None)
    if t is None:
        return None
    model, wiring = KINDS[t["kind"]]
    path = work / "anchor" / f"untrained-{t['kind'].lower()}{t['units']}.safetensors"
    if not path.is_file():
        save(build_task_model(load_task("cheetah"), model, units=t["units"], wiring=wiring if model == "ltc" else None,
                              seed=0), path)
    trained, fresh = measure(t["model_file"], work), measure(str(path), work)
    return {"model": f"{t['kind']}-{t['units']}", **{f"{prec}_{k}": [trained[prec].get(k), fresh[prec].get(k)]
            for prec in ("fp32", "int8") for k in ("instructions_per_step", "cycles_per_step", "flash_bytes")},
            "what": "[trained, untrained] M4 cost of the same architecture"}


def converged_schedule(cfg: dict) -> bool:
    """Trained to convergence: a cap of at least 100 epochs with early stopping on validation (a
    trial that reached the cap instead is named in protocol's trials_at_cap)."""
    return cfg.get("epochs", 0) >= 100 and bool(cfg.get("patience"))


def protocol(config: Path, trials: list[dict]) -> dict:
    from ltc_edge.bench.sweep import read_config
    from ltc_edge.bench.sweep import trials as grid

    cfg = read_config(config)
    planned = grid(cfg)
    done = [t for t in trials if t["source"] == "sweep"]
    finished = [t for t in done if t["status"] == "finished"]
    name = (lambda t: f"{t['kind']}-{t['units']} seed {t['seed']}")
    started = {(t["kind"], t["units"], t["seed"]) for t in done}
    missing = [f"{kind_name(p['model'], p.get('wiring'))}-{p['units']} seed {p['seed']}" for p in planned
               if (kind_name(p["model"], p.get("wiring")), p["units"], p["seed"]) not in started]
    return {"config": str(config.relative_to(ROOT) if config.is_relative_to(ROOT) else config),
            "task": cfg["task"], "epochs_cap": cfg.get("epochs"), "patience": cfg.get("patience"),
            "seeds_planned": sorted({p["seed"] for p in planned}), "trials_planned": len(planned),
            "trials_finished": len(finished), "trials_cut_short": [name(t) for t in done if t["status"] != "finished"],
            "trials_not_started": missing,
            "complete": len(finished) == len(planned) and bool(planned),
            "converged": converged_schedule(cfg),
            "trials_at_cap": [name(t) for t in finished if not t.get("stopped_early")],
            "cost": "Cortex-M4 under qemu-system-arm (mps2-an386), not a board: instructions per step from -icount; "
                    "cycles per step ESTIMATED from the executed instruction mix with the Cortex-M4 TRM timings, "
                    "zero-wait-state memory (ltc_edge/bench/arm/cycles.py); flash and RAM of the model's C at -O2",
            "accuracy": "cheetah test MSE of the exported C run on the host (int8 calibrated on cheetah): over windows "
                        "(state reset each) and streamed over the whole test series (state carried), mean over seeds",
            "anchor": "converged table: benchmarks/results/cheetah_paper_table.json (200 epochs, 5 seeds, 32 units, "
                      "fp32 test MSE over windows, torch); its cost is that of the same architecture untrained"}


def rival_lines(points: list[dict], key: str) -> list[str]:
    """Per cell: the cheapest cell of another kind at least as accurate, and the cost ratio."""
    out = []
    for e in equal_accuracy(points, key):
        if e["cheapest_other_kind_as_accurate"] is None:
            out.append(f"{e['point']} (MSE {e[key]:.3f}): no other kind as accurate")
        else:
            out.append(f"{e['point']} (MSE {e[key]:.3f}, {e['cycles']:,.0f} cycles): the cheapest other kind at least "
                       f"as accurate is {e['cheapest_other_kind_as_accurate']} (MSE {e['its_mse']:.3f}, "
                       f"{e['its_cycles']:,.0f} cycles; this cell costs {e['cost_ratio']:.2f}x it)")
    return out


def answer(points: list[dict], proto: dict) -> list[str]:
    """The verdict in words. A converged sweep and the converged table are one evidence (every size,
    fp32 over windows), then the sweep's own fp32 + int8 C, windowed and streamed; a short sweep
    only ranks how fast a cell learns and is kept apart from the converged table."""
    anchor = [p for p in points if p["source"] == "converged table"]
    # the verdict compares trials under the same schedule: a trial cut short stays in the table only
    sweep = [p for p in points if p["source"] == "sweep" and set(p["status"]) == {"finished"}]
    if proto["converged"]:
        both = converged_points(points, proto)
        out = [f"Converged, fp32, test MSE over windows, every size ({sweep_words(proto)}; a 32-unit cell "
               "the sweep has not finished: the 200-epoch, 5-seed table):", *(f"  {s}" for s in levels(both, "test_mse")),
               *(f"  in flash, {s}" for s in levels(both, "test_mse", "flash_bytes", "bytes of flash")),
               *(f"  {s}" for s in rival_lines(both, "test_mse"))]
        out.append(f"This sweep's C, fp32 and int8 together ({sweep_words(proto)}):")
    else:
        out = ["Converged (the recorded 200-epoch, 5-seed table; 32 units only; fp32; windowed test MSE; the M4 "
               "cost of the same architectures):", *(f"  {s}" for s in levels(anchor, "test_mse")),
               *(f"  in flash, {s}" for s in levels(anchor, "test_mse", "flash_bytes", "bytes of flash")),
               *(f"  {s}" for s in rival_lines(anchor, "test_mse"))]
        out.append(f"Short schedule ({sweep_words(proto)}; NOT converged: it ranks how fast a cell learns; "
                   "fp32 and int8 together):")
    out += [f"  windowed {s}" for s in levels(sweep, "test_mse")]
    out += [f"  windowed, fp32: {s}" for s in rival_lines([p for p in sweep if p["precision"] == "fp32"], "test_mse")]
    out += [f"  streamed {s}" for s in levels(sweep, "test_mse_streamed")]
    return out


def converged_points(points: list[dict], proto: dict) -> list[dict]:
    """The converged evidence at fp32: a converged sweep's finished cells (one protocol for every
    size: the exported C's accuracy, the same seeds and early stop), and the 32-unit table's cells
    the sweep has not finished; without a converged sweep, the table."""
    anchor = [p for p in points if p["source"] == "converged table"]
    if not proto["converged"]:
        return anchor
    sweep = [p for p in points if p["source"] == "sweep" and p["precision"] == "fp32"
             and set(p["status"]) == {"finished"}]
    have = {(p["kind"], p["units"]) for p in sweep}
    return sweep + [p for p in anchor if (p["kind"], p["units"]) not in have]


def sweep_words(proto: dict) -> str:
    """The sweep's schedule and completeness in a few words."""
    at_cap = proto.get("trials_at_cap") or []
    return (f"this sweep: at most {proto['epochs_cap']} epochs, early stop after {proto['patience']} without a "
            f"better validation MSE; {proto['trials_finished']} of {proto['trials_planned']} trials finished, "
            f"{len(at_cap)} at the cap{' (' + ', '.join(at_cap) + ')' if at_cap else ''}, "
            f"{len(proto['trials_cut_short'])} cut short (in the table, not in these lines), "
            f"{len(proto['trials_not_started'])} not started")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, help="the --out folder of `ltc sweep benchmarks/pareto_m4.toml`")
    ap.add_argument("--config", type=Path, default=ROOT / "benchmarks" / "pareto_m4.toml")
    ap.add_argument("--work", type=Path, default=Path("/tmp/pareto/m4"), help="builds and the measurement cache")
    ap.add_argument("--out", type=Path, default=RESULTS / "pareto_m4.json")
    a = ap.parse_args()
    if not (a.runs / "trials").is_dir():
        raise SystemExit(f"{a.runs}: no trials folder (the --out of ltc sweep benchmarks/pareto_m4.toml)")
    trials = sweep_trials(a.runs) + anchor_models(a.work)
    measured = {}
    for t in trials:
        print(f"measuring {t['kind']}-{t['units']} ({t['source']}, seed {t.get('seed', '-')})", flush=True)
        measured[t["model_file"]] = measure(t["model_file"], a.work)
    points = config_points(trials, measured)
    proto = protocol(a.config, trials)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    result = {"what": "cheetah: test MSE vs Cortex-M4 cost per cell kind and size, fp32 and int8 C", "protocol": proto,
              "commit": commit.strip(), "code_digest": code_digest(), "points": points, "answer": answer(points, proto),
              "equal_accuracy": {key: equal_accuracy([p for p in points if p["source"] == "sweep"
                                                      and set(p["status"]) == {"finished"}], key)
                                 for key in ("test_mse", "test_mse_streamed")},
              "equal_accuracy_converged": equal_accuracy(converged_points(points, proto), "test_mse"),
              "weights_do_not_change_the_cost": weight_check(trials, a.work),
              "plots": ["pareto_m4_cycles.png", "pareto_m4_flash.png"]}
    plot(points, "cost", "estimated Cortex-M4 cycles per step (qemu instruction mix x TRM timings)",
         a.out.parent / "pareto_m4_cycles.png", proto["converged"])
    plot(points, "flash_bytes", "Cortex-M4 flash of the model's C (bytes, -O2)", a.out.parent / "pareto_m4_flash.png",
         proto["converged"])
    atomic_write_bytes(a.out, json.dumps(result, indent=1).encode())
    text = markdown(result)
    atomic_write_bytes(a.out.with_suffix(".md"), text.encode())
    print(text)
    print(f"-> {a.out}")


if __name__ == "__main__":
    main()
