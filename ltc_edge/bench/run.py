"""`ltc bench`: latency, throughput, size, memory and accuracy of models x backends x
precisions x targets.

Exports happen in this process (they need torch); each measurement then runs in its own
subprocess (`python -m ltc_edge.bench.worker`, fork + exec) so that its peak RSS (VmHWM, not
ru_maxrss, which a child inherits from its parent: see timing.peak_rss_bytes) is its own and a backend
that crashes costs one row, not the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from ..precision import REFERENCE, integer_c, is_float
from ..precision import names as precision_names
from ..codegen.mcu import CORES as MCU_CORES
from ..machine import machine_info
from . import report

BACKENDS = ("torch", "numpy", "onnxruntime", "tflite", "c", "executorch")
PRECISIONS = precision_names(bench=True)  # the registry's (ltc_edge/precision.py)
TARGETS = ("cpu", "cuda", "arm64", "cortex-m0", "cortex-m3", "cortex-m4")
ARM_TARGETS = ("arm64", "cortex-m0", "cortex-m3", "cortex-m4")
MCU_TARGETS = tuple(f"mcu:{c}" for c in MCU_CORES)  # a board on a serial port (bench/mcu.py)
TARGETS += MCU_TARGETS
TARGET_BACKENDS = {"cpu": BACKENDS, "cuda": ("torch", "onnxruntime"),
                   **{t: ("c",) for t in ARM_TARGETS + MCU_TARGETS}}
EXPORT_FORMAT = {"onnxruntime": "onnx", "tflite": "tflite", "c": "c", "executorch": "executorch"}
# which precisions each backend runs (others are not combinations, so they are not rows): the
# model file's own for torch / numpy, else what its format writes
BACKEND_PRECISIONS = {"torch": (REFERENCE,), "numpy": (REFERENCE,),
                      **{b: precision_names(fmt, bench=True) for b, fmt in EXPORT_FORMAT.items()}}
METRIC_KEYS = ("metric", "metric_streaming", "metric_streaming_error")  # what a worker reports of the task


def parse_list(text: str, allowed: tuple | None, what: str) -> list[str]:
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise ValueError(f"--{what} is empty")
    if allowed is not None:
        bad = [t for t in items if t not in allowed]
        if bad:
            raise ValueError(f"unknown {what} {', '.join(bad)}; choose from {', '.join(allowed)}")
    return items


def parse_batches(text: str) -> list[int]:
    try:
        batches = [int(t) for t in str(text).split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--batch must be comma-separated positive integers, got {text!r}") from None
    if not batches or min(batches) < 1:
        raise ValueError(f"--batch must be comma-separated positive integers, got {text!r}")
    return sorted(set(batches))


def cuda_status(backend: str = "torch") -> str | None:
    """None when `backend` can use a CUDA device here, else the reason it cannot."""
    if backend == "onnxruntime":
        try:
            import onnxruntime as ort
        except ImportError:
            return "onnxruntime is not installed"
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return "onnxruntime has no CUDAExecutionProvider here (install onnxruntime-gpu on a CUDA machine)"
        return None
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available() is False)"
    return None


def target_backends(target: str) -> tuple:
    from . import ssh

    return ssh.BACKENDS if ssh.is_ssh(target) else TARGET_BACKENDS[target]


def parse_targets(text: str) -> list[str]:
    """--target: the named targets and ssh://USER@HOST[:PORT] boards (checked here, one line)."""
    from . import ssh

    items = parse_list(text, None, "target")
    bad = [t for t in items if t not in TARGETS and not ssh.is_ssh(t)]
    if bad:
        raise ValueError(f"unknown target {', '.join(bad)}; choose from {', '.join(TARGETS)} or ssh://USER@HOST[:PORT]")
    for t in items:
        if ssh.is_ssh(t):
            ssh.parse(t)
    return items


def nothing_to_measure(backends, precisions, targets) -> str:
    """The one line for an empty plan: what each asked-for backend runs, where."""
    runs = []
    for b in backends:
        where = [t for t in targets if b in target_backends(t)]
        runs.append(f"{b} runs {'/'.join(BACKEND_PRECISIONS[b])}" + (f" on {', '.join(where)}" if where else
                                                                     f", not on {', '.join(targets)}"))
    asked = "" if isinstance(precisions, dict) else f" in {', '.join(precisions)}"
    arm = any(t in ARM_TARGETS + MCU_TARGETS for t in targets)
    return f"nothing to measure{asked}: {'; '.join(runs)}" + ("; ARM and mcu: targets run the c backend only" if arm else "")


def plan(models: list[Path], backends, precisions, targets) -> list[dict]:
    """Every (model, target, backend, precision) the backend runs. `precisions`: one list for
    every backend, or a dict backend -> its own list (a backend not in it: none)."""
    jobs = []
    for model in models:
        for target in targets:
            for backend in backends:
                if backend not in target_backends(target):
                    continue
                for precision in (precisions.get(backend, ()) if isinstance(precisions, dict) else precisions):
                    if precision in BACKEND_PRECISIONS[backend]:
                        jobs.append({"model": str(model), "backend": backend, "precision": precision,
                                     "target": target})
    return jobs


def _reference(job: dict, task, calibration: str | None, cache: dict):
    """int8 calibration data for a job (loaded once): --calibration for that model (a task name,
    CSV or NPZ, through train.reference.model_reference), else the benchmark task's data, else
    None (the export then says int8 needs calibration)."""
    if is_float(job["precision"]):
        return None
    key = ("reference", job["model"] if calibration else None)
    if key not in cache:
        from ..train.reference import model_reference, task_reference

        if calibration:
            cache[key] = model_reference(job["model"], calibration, job["precision"])[0]
        else:
            cache[key] = None if task is None else task_reference(task[0], **task[1])
    return cache[key]


def _artifact(job: dict, out: Path, calibration, cache: dict) -> Path:
    """The file the backend runs: the .safetensors itself, or an export of it (cached)."""
    fmt = EXPORT_FORMAT.get(job["backend"])
    model = Path(job["model"])
    if fmt is None:
        return model, {}
    key = (str(model), fmt, job["precision"])
    if key not in cache:
        from ..export import get_exporter
        from ..nn import load

        dest = out / "artifacts" / model.stem / f"{fmt}-{job['precision']}"
        kwargs = {"precision": job["precision"], "force": True, "calibration": calibration}
        manifest = get_exporter(fmt)(load(model), dest, **kwargs)
        # force=True so an over-budget quantization is still measured; the row says so
        drift = manifest.get("drift") or {}
        cache[key] = (dest, {"drift_within_budget": drift.get("within_budget"),
                             "drift_max_abs": drift.get("max_abs"),
                             "drift_metric_rel_change": (drift.get("metric") or {}).get("rel_delta")})
    return cache[key]


def run_bench(models, *, backends=("numpy", "onnxruntime"), precisions=("fp32",), targets=("cpu",),
              batches=(1, 8, 64), task: str | None = None, task_options: dict | None = None,
              calibration: str | None = None, out: Path = Path("bench-out"), min_seconds: float = 0.5,
              clock_hz: float | None = None, mcu: tuple = (), ssh_opts: str = "", board_python: str = "python3",
              boards: dict | None = None, progress=None, console=None) -> dict:
    """Measure every combination; write results.json, report.md and plots into `out`. `task` (with
    `task_options`, as load_task takes them) gives the metric column and the int8 calibration;
    `calibration` (a task name, CSV or NPZ per model) overrides the latter. `clock_hz`: the clock
    ARM rows' estimated time per step assumes (default: CLOCK_HZ per target). `mcu`: (serial, flash_cmd,
    board, board_c) of the mcu:CORE targets (bench/mcu.py). ssh:// targets are Linux boards
    (bench/ssh.py): each is probed first (an unreachable board is one line, nothing written),
    reached with the system ssh plus `ssh_opts`, and runs `board_python` (`boards`: already probed)."""
    out = Path(out).resolve()  # once: builds run in their own folders (cwd), so every path is absolute
    models = [Path(m).resolve() for m in models]
    from ..nn.modelfile import describe, read

    facts = {}
    for m in models:
        read(m)  # fails early, with one clear line, on a bad model file
        facts[str(m)] = describe(m)
    from .mcu import check_options

    mcu = check_options(targets, *mcu) if mcu else {}  # one line for a missing --serial, before any export
    jobs = plan(models, backends, precisions, targets)
    if not jobs:
        raise ValueError(nothing_to_measure(backends, precisions, targets))
    metric_name, better = None, "lower"
    spec = None if not task else (task, dict(task_options or {}))
    if spec:
        metric_name, better = _task_metric(*spec)
    cache = {}
    boards = _open_boards(targets, ssh_opts, board_python) if boards is None else boards
    measure = {"out": out, "spec": spec, "calibration": calibration, "batches": list(batches),
               "min_seconds": min_seconds, "clock_hz": clock_hz, "mcu": mcu, "boards": boards, "cache": cache}
    try:
        rows = _measure_all(jobs, facts, measure, progress)
    finally:
        for session in boards.values():
            session.close()
    results = {"schema": report.SCHEMA, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": machine_info(), "task": task, "metric": metric_name, "metric_better": better,
               "guards": "controller defaults (non-finite inputs raise, LTC state bounds checked)",
               "figures": report.FIGURES, "rows": rows}
    if boards:
        results["boards"] = {t: session.facts for t, session in boards.items()}
    out.mkdir(parents=True, exist_ok=True)
    plots = report.make_plots(results, out)
    results["plots"] = [Path(p).name for p in plots]
    if not plots:
        results["plots_note"] = report.no_plots_reason(results)
    report.write_json(out / "results.json", results)
    from ..nn.modelfile import atomic_write_bytes

    atomic_write_bytes(out / "report.md", report.markdown(results, plots).encode())
    return results


def _measure_all(jobs, facts, measure, progress) -> list:
    rows = []
    for job in jobs:
        row = _new_row(job, facts[job["model"]])
        try:
            row.update(_measure(job, **measure))
        except Exception as e:  # one failing combination is a row that says why, not a lost run
            row["skipped"] = one_line(e)
        rows.append(row)
        if progress:
            progress(row)
    return rows


def _open_boards(targets, ssh_opts: str, python: str) -> dict:
    """{ssh target: BoardSession}, each board probed (its facts) before anything is measured."""
    from . import ssh

    return {t: ssh.BoardSession(board, ssh.probe(board))
            for t in targets if ssh.is_ssh(t) for board in [ssh.parse(t, ssh_opts, python)]}


def one_line(e: Exception) -> str:
    """An exception as one whole line (its lines joined, nothing cut)."""
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _new_row(job: dict, f: dict) -> dict:
    return {"model": Path(job["model"]).stem, "path": job["model"], "cell": f["cell"], "wiring": f["wiring"],
            "neurons": f["neurons"], "synapses": f["synapses"], "parameters": f["parameters"],
            "backend": job["backend"], "precision": job["precision"], "target": job["target"],
            "file_bytes": None, "metric": None, "metric_streaming": None, "metric_source": None, "latency": {},
            "peak_rss_bytes": None, "instructions_per_step": None, "cycles_per_step": None, "cycles_low": None,
            "cycles_high": None, "clock_hz": None, "est_step_us": None,
            "flash_bytes": None, "ram_bytes": None, "skipped": None}


def _measure(job: dict, *, out: Path, spec, calibration, batches, min_seconds, clock_hz, mcu, boards,
             cache) -> dict:
    """The measured part of one row (raises when it cannot be measured)."""
    if job["target"] == "cuda" and cuda_status(job["backend"]):
        return {"skipped": cuda_status(job["backend"])}
    reference = _reference(job, spec, calibration, cache)
    if job["target"] in boards:  # a Linux board over SSH: the host's export, measured there
        artifact, drift = _artifact(job, out, reference, cache)
        return {**drift, **boards[job["target"]].row({**job, "batches": batches, "min_seconds": min_seconds,
                                                      "task": spec and spec[0], "task_options": spec and spec[1]},
                                                     artifact)}
    if job["target"] in ARM_TARGETS + MCU_TARGETS:
        return _arm_row(job, out, spec, reference, clock_hz, cache, mcu)
    artifact, drift = _artifact(job, out, reference, cache)
    row = _run_worker({**job, "artifact": str(artifact), "batches": batches, "task": spec and spec[0],
                       "task_options": spec and spec[1], "min_seconds": min_seconds})
    cache[("metric", str(artifact))] = {k: row[k] for k in METRIC_KEYS if k in row}
    return {**drift, **row}


def wide_console():
    import sys

    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 120)  # logs and CI: room for the table


def progress_bar(console, label: str):
    """The rich progress bar every bench and training loop here shows."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn(f"[bold]{label}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TextColumn("{task.description}"), TimeElapsedColumn(), console=console)


def run_with_progress(console, models, *, backends, precisions, targets, **options) -> dict:
    """run_bench with a progress bar, one tick per row (ssh:// boards probed before it shows)."""
    options["boards"] = _open_boards(targets, options.get("ssh_opts", ""), options.get("board_python", "python3"))
    if options.get("mcu"):  # mcu:CORE: a missing --serial is one line before the bar shows
        from .mcu import check_options

        check_options(targets, *options["mcu"])
    total = len(plan(models, backends, precisions, targets))
    if not total:  # one line, no empty progress bar
        raise ValueError(nothing_to_measure(backends, precisions, targets))
    with progress_bar(console, "bench") as prog:
        t = prog.add_task("", total=total)

        def tick(row):
            prog.update(t, advance=1, description=f"{row['model']} {row['backend']}/{row['precision']}/{row['target']}")

        return run_bench(models, backends=backends, precisions=precisions, targets=targets, progress=tick, **options)


def _task_metric(task: str, options: dict) -> tuple[str, str]:
    from ..train.tasks import load_task

    t = load_task(task, **options)
    return t.metric, ("higher" if t.metric in ("accuracy", "return") else "lower")


def _run_worker(job: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        spec, result = Path(tmp) / "job.json", Path(tmp) / "row.json"
        spec.write_text(json.dumps(job))
        # the worker imports the same ltc_edge as this process, whatever the working folder
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": os.pathsep.join([root] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
        proc = subprocess.run([sys.executable, "-m", "ltc_edge.bench.worker", str(spec), str(result)],
                              capture_output=True, text=True, env=env, timeout=1800)
        if proc.returncode != 0 or not result.exists():
            lines = [l for l in (proc.stderr or proc.stdout).strip().splitlines() if l.strip()]
            raise RuntimeError(lines[-1] if lines else f"worker exited with {proc.returncode}")
        return json.loads(result.read_text())


# the clock an ARM row's estimated time per step assumes when --clock-hz is not given: a common
# part of each class (STM32F4 at 168 MHz, STM32F1 at 72 MHz, a 48 MHz M0+, a Raspberry Pi 4's A72)
CLOCK_HZ = {"cortex-m0": 48e6, "cortex-m3": 72e6, "cortex-m4": 168e6, "arm64": 1.5e9,
            **{f"mcu:{c}": hz for c, hz in {"cortex-m0": 48e6, "cortex-m3": 72e6, "cortex-m4": 168e6,
                                             "cortex-m7": 216e6, "cortex-m33": 110e6}.items()}}


def _arm_row(job: dict, out: Path, spec, reference, clock_hz, cache, mcu_options=None) -> dict:
    """One ARM row, built from the very C files the bench exported for the host `c` rows (so the
    host-run task metric is that of the same source): golden check and instructions per step
    under qemu, flash/RAM (Cortex-M), and the time per step estimated at a stated clock."""
    if job["precision"] not in precision_names("c"):
        return {"skipped": f"C on {job['target']} runs {' and '.join(precision_names('c'))}"}
    integer = integer_c(job["precision"])
    if job["target"] == "arm64" and integer:
        return {"skipped": "C on arm64 runs fp32 here (the int8 step: --target cortex-m0/m3/m4)"}
    missing = _missing_arm_tools(job)
    if missing:
        return {"skipped": f"ARM tools missing: {', '.join(missing)} (run scripts/arm/setup.sh)"}
    source, _ = _artifact({**job, "backend": "c"}, out, reference, cache)
    if job["target"] in MCU_TARGETS:  # measured on the board: cycles from its counter
        from . import mcu

        row = mcu.mcu_row(job, out, source, mcu_options)
    elif job["target"] == "arm64" or (job["target"] == "cortex-m4" and not integer):
        row = _m4_or_aarch64_row(job, out, source)
    else:
        row = _cortex_m_row(job, out, source)
    clock = float(clock_hz or CLOCK_HZ[job["target"]])
    if row.get("cycles_max") is not None:
        row["us_max"] = row["cycles_max"] / clock * 1e6
    per_step = row.get("cycles_per_step") or row["instructions_per_step"]  # Cortex-M: the cycle estimate
    row.update(clock_hz=clock, est_step_us=per_step / clock * 1e6)
    if spec:
        row.update(_host_metric(job, source, spec, cache),
                   metric_source="host build of the same C source (golden-checked on the target under qemu)")
    return row


def _missing_arm_tools(job: dict) -> list[str]:
    from . import arm
    from .arm import cortex_m as CM

    if job["target"] == "arm64":
        return arm.missing_tools("aarch64")
    if job["target"] in MCU_TARGETS:  # the board runs it: no emulator needed here
        from ..codegen import mcu

        return mcu.missing_tools()
    return CM.missing_tools() + (arm.missing_tools("m4") if job["target"] == "cortex-m4" else [])


def _host_metric(job: dict, source: Path, spec, cache) -> dict:
    """The task metric (windowed and streamed) of the exported C run on the host (once per export)."""
    key = ("metric", str(source))
    if key not in cache:
        row = _run_worker({**job, "backend": "c", "target": "cpu", "artifact": str(source), "batches": [],
                           "task": spec[0], "task_options": spec[1]})
        cache[key] = {k: row[k] for k in METRIC_KEYS if k in row}
    return cache[key]


def _m4_or_aarch64_row(job: dict, out: Path, source: Path) -> dict:
    """fp32 on arm64 (qemu-aarch64) and on the Cortex-M4 (its default build: the FPv4 step)."""
    from . import arm

    from .arm import cycles

    target = "aarch64" if job["target"] == "arm64" else "m4"
    work = out / "arm" / f"{Path(job['model']).stem}-{target}"
    arm.prepare(job["model"], work, steps=50, timing_steps=50, source=source)
    row = {"file_bytes": sum((work / f).stat().st_size for f in ("ltc_model.c", "ltc_model.h"))}
    if target == "aarch64":
        res = arm.run_aarch64(work, "ltc_model")
        if not res["passed"]:
            raise RuntimeError(f"aarch64 golden check failed: {res['output'][-200:]}")
        row["instructions_per_step"] = arm.count_aarch64_instructions(work, "ltc_model")
    else:
        res = arm.run_m4(work, "ltc_model")
        if not res["passed"]:
            raise RuntimeError(f"Cortex-M4 golden check failed: {res['output'][-200:]}")
        row.update({"instructions_per_step": res.get("instructions_per_step"),
                    "flash_bytes": res.get("model_flash_bytes"), "ram_bytes": res.get("model_ram_bytes"),
                    **{k: res.get(k) for k in cycles.FIELDS}})
    row["golden_max_abs_err"] = res.get("max_abs_err")
    return row


def _cortex_m_row(job: dict, out: Path, source: Path) -> dict:
    """Cortex-M0/M3 (soft float for fp32) and int8 on any Cortex-M: ltc_edge.bench.arm.cortex_m
    (int8: the integer-only step, bit-exact golden check against the host build)."""
    from . import arm
    from .arm import cortex_m as CM
    from .arm import cycles

    work = out / "arm" / f"{Path(job['model']).stem}-{job['target']}-{job['precision']}"
    if integer_c(job["precision"]):
        defines = CM.prepare_int8(job["model"], work, steps=50, timing_steps=20, source=source)["defines"]
    else:
        defines = []
        arm.prepare(job["model"], work, steps=50, timing_steps=20, source=source)
    obj = CM.step_object(work, "ltc_model", job["target"], defines)
    res = CM.run_golden(work, "ltc_model", job["target"], job["precision"], defines)
    if not res["passed"]:
        raise RuntimeError(f"{job['target']} golden check failed: {res['output'][-200:]}")
    return {"file_bytes": sum((work / f).stat().st_size for f in ("ltc_model.c", "ltc_model.h")),
            "instructions_per_step": res.get("instructions_per_step"), "flash_bytes": res.get("linked_flash_bytes"),
            "ram_bytes": res.get("state_bytes", 0) + res.get("step_stack_bytes", 0) + obj["data"] + obj["bss"],
            "golden_max_abs_err": res.get("max_abs_err"), "float_helpers": obj["float_helpers"],
            **{k: res.get(k) for k in cycles.FIELDS}}
