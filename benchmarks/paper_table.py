"""The LTC paper's cheetah table with error bars, from an `ltc sweep` over seeds
(benchmarks/paper_table.toml): mean ± std (n-1) of the test MSE per model beside the paper's
figures, as JSON (benchmarks/results/cheetah_paper_table.json) and a markdown table.

    ltc sweep benchmarks/paper_table.toml --out runs/paper
    .venv/bin/python benchmarks/paper_table.py runs/paper/sweep.json [--out FILE.json]
    .venv/bin/python benchmarks/paper_table.py runs/paper/trials     # a sweep cut short: the
                                                                      # trials that finished
    .venv/bin/python benchmarks/paper_table.py A/sweep.json B/sweep.json   # the grid split in runs

"protocol_complete" is true only for 200 epochs and 5 seeds of every model; anything shorter is
recorded as what it is (its epochs and seeds), never as the paper's protocol.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ltc_edge.fileio import atomic_write_bytes  # noqa: E402

# the table's rows: name -> (model, wiring) of a sweep group
MODELS = {"LTC": ("ltc", "full"), "LTC-NCP": ("ltc", "auto-ncp"), "LSTM": ("lstm", None),
          "CT-RNN": ("ctrnn", None), "ODE-RNN": ("node", None), "CfC": ("cfc", None)}
# the paper's Table 3 (half-cheetah kinematic modelling, test MSE, mean ± std)
PAPER = {"LTC": (2.308, 0.015), "LSTM": (2.500, 0.140), "CT-RNN": (2.838, 0.112), "ODE-RNN": (3.805, 0.313)}
PROTOCOL = {"epochs": 200, "seeds": 5, "units": 32}


def _row_model(row: dict) -> str | None:
    """The MODELS name of a sweep row (32 units), or None."""
    for name, (model, wiring) in MODELS.items():
        if (row.get("param_model") == model and row.get("param_wiring") in ((wiring,) if wiring else (None, "full"))
                and row.get("param_units", PROTOCOL["units"]) == PROTOCOL["units"]):
            return name
    return None


def table_rows(summary: dict) -> list[dict]:
    """One row per MODELS entry found in the sweep's groups (32 units)."""
    rows = []
    for name in MODELS:
        found = [g for g in summary.get("groups", []) if _row_model(g) == name]
        if not found:
            continue
        g = found[0]
        paper = PAPER.get(name)
        rows.append({"model": name, "n": g["n"], "seeds": g["seeds"], "mean": g["mean"], "std": g["std"],
                     "min": g["min"], "max": g["max"], "paper_mean": paper[0] if paper else None,
                     "paper_std": paper[1] if paper else None})
    return rows


def summary_from_trials(folder: Path) -> dict:
    """A sweep summary from the trial folders whose training finished (their metrics files):
    what a sweep stopped before its end leaves."""
    from ltc_edge.bench.sweep import groups

    rows, epochs = [], set()
    for f in sorted(folder.glob("*/model.metrics.json")):
        m = json.loads(f.read_text())
        epochs.add(m["options"]["epochs"])
        rows.append({"param_model": m["model"], **({"param_wiring": m["wiring"]} if m["wiring"] else {}),
                     "param_units": m["counts"]["neurons"], "param_seed": m["options"]["seed"],
                     "metric": float(m["test"][m["metric"]]), "metric_name": m["metric"],
                     "best_epoch": m["best_epoch"], "task": m["task"], "machine": m.get("machine")})
    if not rows:
        raise SystemExit(f"{folder}: no finished trials (*/model.metrics.json)")
    if len(epochs) != 1 or len({r["task"] for r in rows}) != 1:
        raise SystemExit(f"{folder}: trials of different tasks or epoch counts")
    return {"task": rows[0]["task"], "epochs": epochs.pop(), "rows": rows, "groups": groups(rows),
            "machine": rows[0]["machine"], "failed": []}


def build(summary: dict, source: str) -> dict:
    if summary.get("task") != "cheetah":
        raise SystemExit(f"{source}: a sweep on task {summary.get('task')!r}, not cheetah")
    if not summary.get("groups"):
        raise SystemExit(f"{source}: no seed groups (sweep with seed = [...] in its [[search]] tables)")
    rows = table_rows(summary)
    for r in rows:  # each seed's test MSE and best epoch, for the record
        r["per_seed"] = sorted(({"seed": x["param_seed"], "test_mse": x["metric"], "best_epoch": x.get("best_epoch")}
                                for x in summary["rows"] if _row_model(x) == r["model"]), key=lambda e: e["seed"])
    complete = (summary["epochs"] == PROTOCOL["epochs"] and len(rows) == len(MODELS)
                and all(r["n"] >= PROTOCOL["seeds"] for r in rows))
    return {"what": "cheetah test MSE (best validation epoch), mean ± std (n-1) over seeds, 32 units",
            "protocol": PROTOCOL, "protocol_complete": complete, "epochs": summary["epochs"],
            "failed_trials": summary.get("failed", []), "machine": summary.get("machine"),
            "source": source, "rows": rows}


def markdown(result: dict) -> str:
    def cell(mean, std):
        return "—" if mean is None else f"{mean:.3f}" + ("" if std is None else f" ± {std:.3f}")

    head = f"{result['epochs']} epochs" + (
        "" if result["protocol_complete"] else " (NOT the paper's protocol)"
        if result["epochs"] != PROTOCOL["epochs"] else ", incomplete: models or seeds missing")
    lines = [f"| model ({head}) | seeds | test MSE, ours | paper |", "|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['model']} | {r['n']} | {cell(r['mean'], r['std'])} | "
                     f"{cell(r['paper_mean'], r['paper_std'])} |")
    return "\n".join(lines)


def read_summary(path: Path) -> dict:
    try:
        return summary_from_trials(path) if path.is_dir() else json.loads(path.read_text())
    except (OSError, ValueError, KeyError) as e:
        raise SystemExit(f"{path}: cannot read the sweep summary ({e})") from None


def merge(summaries: list[dict]) -> dict:
    """Several sweeps (e.g. the table's models split over runs) as one: same task and epochs."""
    from ltc_edge.bench.sweep import groups

    if len({(s.get("task"), s.get("epochs")) for s in summaries}) != 1:
        raise SystemExit("the sweeps differ in task or epochs: " + ", ".join(
            f"{s.get('task')}/{s.get('epochs')}" for s in summaries))
    rows = [r for s in summaries for r in s.get("rows", [])]
    keys = [json.dumps({k: v for k, v in r.items() if k.startswith("param_")}, sort_keys=True) for r in rows]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise SystemExit(f"the same trial in more than one sweep: {twice[0]}")
    return {**summaries[0], "rows": rows, "groups": groups(rows) if rows else [],
            "failed": [f for s in summaries for f in s.get("failed", [])]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep", nargs="+", help="sweep.json of `ltc sweep benchmarks/paper_table.toml`, or its "
                                             "trials folder; several: their trials together")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cheetah_paper_table.json"))
    a = ap.parse_args()
    paths = [Path(p) for p in a.sweep]
    if any(Path(a.out).resolve() == p.resolve() for p in paths):
        raise SystemExit(f"--out {a.out} is one of the inputs; write the table elsewhere")
    result = build(merge([read_summary(p) for p in paths]), ", ".join(map(str, paths)))
    atomic_write_bytes(Path(a.out), json.dumps(result, indent=1).encode())
    print(markdown(result))
    print(f"-> {a.out}")


if __name__ == "__main__":
    main()
