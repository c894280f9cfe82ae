"""Benchmark results: results.json (schema below), report.md and PNG plots.

results.json (schema "ltc-edge-bench/2"):
  schema, created (ISO time), machine {platform, machine, python, cpu_count, processor,
  versions{...}}, task (name or null), metric (name or null), metric_better ("lower"|"higher"),
  figures {field: what it measures, in which unit} (FIGURES below: every figure is labelled),
  plots [file names], plots_note (why there are none, when there are none),
  rows: one per model x backend x precision x target:
    model (label), path, cell, wiring, neurons, synapses, parameters, backend, precision,
    target, file_bytes, metric, metric_streaming (floats or null; metric_streaming_error: why the
    runtime refused the streamed run, when it did), metric_source (ARM rows),
    latency {batch (str): {p50_us, p90_us, p99_us, mean_us, min_us, iterations,
                           throughput_steps_per_s}},
    peak_rss_bytes (int or null: the measuring process's peak RSS),
    instructions_per_step, cycles_per_step, cycles_low, cycles_high (Cortex-M), clock_hz,
    est_step_us, flash_bytes, ram_bytes, golden_max_abs_err
    (ARM targets; null elsewhere),
    cycles_max, us_max, cycle_counter, board, stack_bytes, firmware_flash_bytes,
    golden_max_lsb_err (mcu:CORE targets only: measured on the board, bench/mcu.py),
    drift_within_budget, drift_max_abs, drift_metric_rel_change (exported files: the export's
    drift check against the torch model; false = measured anyway, over its budget),
    skipped (null, or the reason this combination was not measured)
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import precision as precisions
from ..plots import COLORS, label_points, pyplot, save

SCHEMA = "ltc-edge-bench/2"
# what each figure is: written into results.json and used for the table and report headers
FIGURES = {
    "metric": "the task metric on the test split's windows, each from the reset state",
    "metric_streaming": "the task metric with the state carried over each whole test series (as a controller "
                        "runs it; `ltc eval --streaming`)",
    "metric_source": "ARM rows: the metric of the host build of the same C source (the target build passes "
                     "the golden check against it under qemu)",
    "latency": "µs per step where the row ran: this host (cpu, cuda) or an ssh:// board (wall clock, "
               "perf_counter_ns, through the Python runtime)",
    "file_bytes": "bytes of the file(s) the row runs: the model file, the export (ONNX, TFLite, C library), or "
                  "on ARM targets the C source (.c + .h); not flash",
    "instructions_per_step": "instructions per step counted under qemu (Cortex-M: -icount, SysTick; arm64: an "
                             "exec trace); not cycles, not time",
    "cycles_per_step": "Cortex-M: cycles per step estimated from the executed instruction mix (qemu trace) and "
                       "the core's TRM timings, zero-wait-state memory; cycles_low/high: the TRM's ranges "
                       "(branch refill 1-3, divide 2-12); an estimate, not a measurement",
    "clock_hz": "the clock the time estimate assumes (--clock-hz; default per target)",
    "est_step_us": "cycles_per_step (Cortex-M; arm64: instructions_per_step, one per cycle) / clock_hz in µs: "
                   "an estimate (no wait states), not a measurement; mcu:CORE rows: the board's measured median "
                   "cycles / clock_hz (us_max: the worst step's)",
    "flash_bytes": "flash the model adds to a firmware (code, weights, library helpers it pulls in)",
    "ram_bytes": "RAM the model needs (state, step stack, its own data and bss)",
    "cycles_max": "mcu:CORE rows: the worst step of the golden run, counted on the board (cycles_per_step: "
                  "the median); cycle_counter says which counter (DWT CYCCNT, else SysTick: under qemu a "
                  "SysTick tick is one of the emulated board's clock, not a real cycle)",
}
ARM_TARGETS = ("arm64", "cortex-m0", "cortex-m3", "cortex-m4")


def write_json(path: Path, results: dict) -> None:
    from ..nn.modelfile import atomic_write_bytes

    atomic_write_bytes(path, json.dumps(results, indent=2, sort_keys=False).encode())


def _fmt(v, digits=3):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def measured_rows(results: dict) -> list[dict]:
    return [r for r in results["rows"] if not r.get("skipped")]


def pareto_front(points: list[tuple[float, float]], higher_is_better: bool) -> list[int]:
    """Indices of points (latency, metric) not beaten on both: faster and better."""
    front = []
    for i, (lat, met) in enumerate(points):
        dominated = False
        for j, (lat2, met2) in enumerate(points):
            better = met2 > met if higher_is_better else met2 < met
            no_worse = met2 >= met if higher_is_better else met2 <= met
            if j != i and lat2 <= lat and no_worse and (lat2 < lat or better):
                dominated = True
                break
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def metric_labels(results: dict) -> tuple[str, str]:
    """Column labels of the windowed and the streamed task metric, e.g. "mse (windows)"."""
    name = results.get("metric") or "metric"
    return f"{name} (windows)", f"{name} (streamed)"


def _host_rows(results: dict) -> list[dict]:
    return [r for r in results["rows"] if r["target"] in ("cpu", "cuda")]


def _ssh_rows(results: dict) -> list[dict]:
    """ssh:// rows: measured on a Linux board by the same worker as on the host (bench/ssh.py)."""
    return [r for r in results["rows"] if r["target"].startswith("ssh://")]


def _board_rows(results: dict) -> list[dict]:
    """mcu:CORE rows: measured on a board over its serial port (bench/mcu.py)."""
    return [r for r in results["rows"] if r["target"].startswith("mcu:")]


def _arm_rows(results: dict) -> list[dict]:
    return [r for r in results["rows"] if r["target"] in ARM_TARGETS]


def _md_table(head: list[str], rows: list[dict], cells_of) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = cells_of(r)
        if r.get("skipped"):
            cells = cells[:3] + [f"skipped: {r['skipped']}"] + [""] * (len(head) - 4)
        lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    return lines + [""]


def _host_markdown(results: dict, rows=None, heading: str = "On this host", where: str = "host") -> list[str]:
    """The latency table of rows measured on one kind of machine: this host, or ssh:// boards."""
    rows = _host_rows(results) if rows is None else rows
    batches = sorted({b for r in measured_rows(results) for b in r.get("latency", {})}, key=int)
    head = ["model", "cell", "run on", "params", "synapses", "file bytes", *metric_labels(results),
            f"p50 µs ({where})", f"p90 µs ({where})", f"p99 µs ({where})"] + \
        [f"steps/s @B={b} ({where})" for b in batches]

    def cells(r):
        lat1 = r.get("latency", {}).get("1", {})
        return ([r["model"], r.get("cell"), run_on(r), r.get("parameters"), r.get("synapses"), r.get("file_bytes"),
                 r.get("metric"), r.get("metric_streaming"), lat1.get("p50_us"), lat1.get("p90_us"),
                 lat1.get("p99_us")] + [r.get("latency", {}).get(b, {}).get("throughput_steps_per_s")
                                        for b in batches])

    return [f"## {heading}", ""] + _md_table(head, rows, cells) if rows else []


def _ssh_markdown(results: dict) -> list[str]:
    lines = []
    for target, f in (results.get("boards") or {}).items():
        lines.append(f"- board {target}: {f.get('cpu') or '?'} ({f.get('arch')}, {f.get('cores')} cores), Linux "
                     f"{f.get('kernel')}, Python {f.get('python')}"
                     + (f", C built with {f['c_compiled_with']}" if f.get("c_compiled_with") else ""))
    rows = _ssh_rows(results)
    table = _host_markdown(results, rows, "On your Linux boards over SSH (measured there, through the same "
                                          "Python runtime)", "board")
    return table[:2] + lines + [""] + table[2:] if rows else []


def _arm_markdown(results: dict) -> list[str]:
    rows = _arm_rows(results)
    windows, streamed = metric_labels(results)
    head = ["model", "cell", "run on", "params", "C source bytes", f"{windows} (host C)", f"{streamed} (host C)",
            "instr/step (qemu)", "est. cycles/step (TRM)", "clock MHz", "est. µs/step (cycles ÷ clock)",
            "flash bytes", "RAM bytes",
            "golden max err"]

    def cells(r):
        clock = r.get("clock_hz")
        return [r["model"], r.get("cell"), run_on(r), r.get("parameters"), r.get("file_bytes"), r.get("metric"),
                r.get("metric_streaming"), r.get("instructions_per_step"), r.get("cycles_per_step"),
                clock / 1e6 if clock else None,
                r.get("est_step_us"), r.get("flash_bytes"), r.get("ram_bytes"), r.get("golden_max_abs_err")]

    if not rows:
        return []
    return ["## On ARM targets (the generated C under qemu)", ""] + _md_table(head, rows, cells)


BOARD_HEAD = ["model", "run on", "board", "counter", "cycles/step p50", "cycles/step max", "MHz", "µs p50",
              "µs max", "flash bytes", "RAM bytes", "stack bytes"]


def _board_cells(r: dict) -> list:
    clock = r.get("clock_hz")
    return [r["model"], run_on(r), r.get("board"), r.get("cycle_counter"), r.get("cycles_per_step"),
            r.get("cycles_max"), clock / 1e6 if clock else None, r.get("est_step_us"), r.get("us_max"),
            r.get("flash_bytes"), r.get("ram_bytes"), r.get("stack_bytes")]


def _board_text(c) -> str:
    """A board table cell: counts with thousands separators, small numbers as _fmt, words as they are."""
    if isinstance(c, (int, float)) and not isinstance(c, bool):
        return _count(c) if abs(c) >= 100 else _fmt(float(c))
    return "-" if c is None else str(c)


def _board_markdown(results: dict) -> list[str]:
    rows = _board_rows(results)
    if not rows:
        return []
    return ["## On your board (mcu:CORE: measured there, read over its serial port)", ""] + _md_table(
        BOARD_HEAD, rows, _board_cells)


def run_on(r: dict) -> str:
    return f"{r['backend']}/{r['precision']}@{r['target']}"


def markdown(results: dict, plots: list[str]) -> str:
    m = results["machine"]
    lines = [f"# ltc-edge benchmark", "",
             f"- created: {results['created']}",
             f"- machine: {m.get('processor')} ({m.get('cpu_count')} cores), {m.get('platform')}",
             f"- versions: " + ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items()),
             f"- task: {results.get('task') or '-'} (metric: {results.get('metric') or '-'}, "
             f"{results.get('metric_better', 'lower')} is better)", ""]
    lines += _host_markdown(results) + _ssh_markdown(results) + _arm_markdown(results) + _board_markdown(results)
    lines += ["What each figure is:", ""] + [f"- {k}: {v}" for k, v in FIGURES.items()] + [""]
    if not plots:
        lines += [f"Plots: none ({results.get('plots_note') or no_plots_reason(results)}).", ""]
    for p in plots:
        lines += [f"![{Path(p).stem}]({Path(p).name})", ""]
    return "\n".join(lines)


def no_plots_reason(results: dict) -> str:
    """Why make_plots drew nothing: the real reason, for the console and the report."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        return "matplotlib is not installed: pip install matplotlib"
    if not measured_rows(results):
        return "every row was skipped"
    return "no row has a host latency or a file size to plot"


def make_plots(results: dict, out_dir: Path) -> list[str]:
    """PNG plots; returns their paths (none when matplotlib is not installed)."""
    try:
        plt = pyplot()
    except ImportError:
        return []
    out_dir = Path(out_dir)
    rows = [r for r in measured_rows(results) if r.get("latency", {}).get("1")]
    pts = [r for r in rows if r.get("metric") is not None]
    sized = [r for r in measured_rows(results) if r.get("file_bytes")]
    plots = ((pts, _plot_pareto, "latency_vs_accuracy.png"), (rows, _plot_latency, "latency_by_backend.png"),
             (sized, _plot_sizes, "size_by_precision.png"))
    return [save(draw(plt, chosen, results), out_dir / name) for chosen, draw, name in plots if chosen]


def _plot_pareto(plt, pts: list, results: dict):
    """Latency vs accuracy with the Pareto front."""
    fig, ax = plt.subplots(figsize=(7, 5))
    higher = results.get("metric_better") == "higher"
    xy = [(r["latency"]["1"]["p50_us"], r["metric"]) for r in pts]
    for r, (x, y) in zip(pts, xy):
        big = r.get("cell") in ("ltc", "lstm")
        ax.scatter(x, y, s=90 if big else 35, color=COLORS.get(r.get("cell"), "gray"),
                   edgecolor="black" if big else "none", zorder=3)
    front = pareto_front(xy, higher)
    ax.plot([xy[i][0] for i in front], [xy[i][1] for i in front], "k--", lw=1, label="Pareto front")
    for cell, color in COLORS.items():
        if any(r.get("cell") == cell for r in pts):
            ax.scatter([], [], color=color, label=cell)
    ax.set_xscale("log")
    ax.set_xlabel("step latency p50, batch 1 (µs, log)")
    ax.set_ylabel(f"{results.get('metric')} ({'higher' if higher else 'lower'} is better)")
    ax.set_title("latency vs accuracy (LTC red, LSTM blue)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()  # the layout first: labels are placed in display points
    label_points(fig, ax, xy, [f"{r['model']} {r['backend']}/{r['precision']}" for r in pts])
    return fig


def _plot_latency(plt, rows: list, results: dict):
    """Latency by backend and precision (p50 bars, p99 whiskers)."""
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(rows)), 4.5))
    labels = [f"{r['model']}\n{r['backend']}/{r['precision']}" + ("" if r["target"] == "cpu" else f"\n@{r['target']}")
              for r in rows]  # where it ran, when not this host's CPU (cuda, an ssh:// board)
    ax.bar(range(len(rows)), [r["latency"]["1"]["p50_us"] for r in rows],
           yerr=[[0] * len(rows), [r["latency"]["1"]["p99_us"] - r["latency"]["1"]["p50_us"] for r in rows]],
           color=[COLORS.get(r.get("cell"), "gray") for r in rows], capsize=2)
    ax.set_xticks(range(len(rows)), labels, rotation=60, ha="right", fontsize=6)
    ax.set_yscale("log")
    ax.set_ylabel("step latency p50 (bar) to p99 (whisker), µs")
    ax.set_title("latency by backend and precision (batch 1)")
    ax.grid(axis="y", alpha=0.3)
    return fig


# the file a row measures: the .safetensors for torch/numpy, else the backend's export format
ROW_FORMAT = {"torch": "safetensors", "numpy": "safetensors", "onnxruntime": "onnx", "tflite": "tflite", "c": "c",
              "executorch": "executorch"}
PRECISION_ORDER = precisions.names(bench=True)  # the registry's order (ltc_edge/precision.py)


def row_format(row: dict) -> str:
    """The file format behind a row's file_bytes (ARM targets: the C sources)."""
    if row.get("target") in ARM_TARGETS or row.get("target", "").startswith("mcu:"):
        return "c-source"
    return ROW_FORMAT.get(row.get("backend"), str(row.get("backend")))


def size_groups(sized: list) -> list[tuple[str, str, dict]]:
    """[(model, format, {precision: bytes})]: sizes compared like with like, each precision
    beside the others of the same model in the same format (never a .safetensors beside an
    int8 .tflite). Rows measuring the same file (torch and numpy) count once."""
    groups: dict = {}
    for r in sized:
        sizes = groups.setdefault((r["model"], row_format(r)), {})
        prec = r["precision"]
        sizes[prec] = min(sizes.get(prec, r["file_bytes"]), r["file_bytes"])
    order = {f: i for i, f in enumerate(("safetensors", "onnx", "tflite", "executorch", "c", "c-source"))}
    keys = sorted(groups, key=lambda k: (k[0], order.get(k[1], 99), k[1]))
    return [(m, f, {p: groups[(m, f)][p] for p in PRECISION_ORDER if p in groups[(m, f)]}) for m, f in keys]


def _plot_sizes(plt, sized: list, results: dict):
    """File size per precision, within each model x format group."""
    groups = size_groups(sized)
    precs = [p for p in PRECISION_ORDER if any(p in g[2] for g in groups)]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(groups)), 4))
    width = 0.8 / max(1, len(precs))
    for k, prec in enumerate(precs):
        xs = [i + k * width for i, g in enumerate(groups) if prec in g[2]]
        ax.bar(xs, [g[2][prec] / 1024 for g in groups if prec in g[2]], width, label=prec)
    ax.set_xticks([i + width * (len(precs) - 1) / 2 for i in range(len(groups))],
                  [f"{m}\n{f}" for m, f, _ in groups], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("file size (KiB)")
    ax.set_title("size by precision, per model and format")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return fig


def terminal_table(results: dict):
    """The measured rows as rich tables (skipped ones: see skipped_lines): host rows with their
    latency, ARM rows with instructions, the estimated time per step, flash and RAM."""
    from rich.console import Group
    from rich.table import Table

    windows, streamed = metric_labels(results)
    title = f"ltc-edge bench ({results.get('task') or 'no task'})"
    host = [r for r in _host_rows(results) if not r.get("skipped")]
    arm = [r for r in _arm_rows(results) if not r.get("skipped")]
    board = [r for r in _board_rows(results) if not r.get("skipped")]
    tables = []
    if board:
        t = _rich_table(Table, f"{title}: generated C on your board (measured; µs = cycles ÷ clock)", BOARD_HEAD)
        for r in board:
            t.add_row(*(_board_text(c) for c in _board_cells(r)))
        tables.append(t)
    linux = [r for r in _ssh_rows(results) if not r.get("skipped")]
    if (host or not (arm or linux)) and not (board and not host):
        tables.append(_latency_table(Table, f"{title}: on this host", host, windows, streamed, "host"))
    if linux:
        tables.append(_latency_table(Table, f"{title}: on your Linux board (over SSH, measured there)", linux,
                                     windows, streamed, "board"))
    if arm:
        t = _rich_table(Table, f"{title}: generated C on ARM targets (qemu; {results.get('metric') or 'metric'}: "
                        "the host build of the same C)", ["model", "run on", windows, streamed, "instr/step (qemu)",
                        "est. cycles/step", "MHz", "est. µs/step", "flash KiB", "RAM KiB"])
        for r in arm:
            t.add_row(r["model"], run_on(r), _fmt(r.get("metric"), 4), _fmt(r.get("metric_streaming"), 4),
                      _count(r.get("instructions_per_step")), _count(r.get("cycles_per_step")),
                      _fmt(r["clock_hz"] / 1e6 if r.get("clock_hz") else None), _fmt(r.get("est_step_us")),
                      _kib(r.get("flash_bytes")), _kib(r.get("ram_bytes")))
        tables.append(t)
        tables.append("[dim]est. cycles/step: the executed instruction mix × the core's TRM timings, zero-wait-state "
                      "memory (Cortex-M); est. µs/step = cycles (arm64: instructions) ÷ clock (--clock-hz): "
                      "estimates, not measurements; flash/RAM: what the model adds to a firmware; file KiB: the "
                      "export's files[/dim]")
    return Group(*tables)


def _latency_table(Table, title: str, rows: list, windows: str, streamed: str, where: str):
    t = _rich_table(Table, title, ["model", "params", "run on", windows, streamed, f"p50 µs ({where})",
                                   f"p99 µs ({where})", f"steps/s ({where})", "file KiB"])
    for r in rows:
        lat = r.get("latency", {})
        lat1, top = lat.get("1", {}), (lat[max(lat, key=int)] if lat else {})
        over = " [red](over drift budget)[/red]" if r.get("drift_within_budget") is False else ""
        t.add_row(r["model"], str(r.get("parameters") or "-"), run_on(r) + over, _fmt(r.get("metric"), 4),
                  _fmt(r.get("metric_streaming"), 4), _fmt(lat1.get("p50_us")), _fmt(lat1.get("p99_us")),
                  _fmt(top.get("throughput_steps_per_s")) + (f" @B={max(lat, key=int)}" if lat else ""),
                  _fmt(r["file_bytes"] / 1024 if r.get("file_bytes") else None))
    return t


def _count(n) -> str:
    return "-" if n is None else f"{n:,.0f}"


def _kib(n) -> str:
    return "-" if n is None else f"{n / 1024:.1f}"


def _rich_table(Table, title: str, columns: list[str]):
    t = Table(title=title)
    for col in columns:
        left = col in ("model", "run on")  # the others in two lines: "p50 µs" over "(host)"
        t.add_column(col if left else "\n".join(col.rsplit(" ", 1)), justify="left" if left else "right",
                     no_wrap=col == "run on")
    return t


def skipped_lines(results: dict) -> list[str]:
    return [f"skipped {r['model']} {r['backend']}/{r['precision']}@{r['target']}: {r['skipped']}"
            for r in results["rows"] if r.get("skipped")]
