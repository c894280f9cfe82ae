"""Latency measurement and peak memory (numpy only; the machine facts: ltc_edge/machine.py).

Timing is never asserted in tests: benchmarks report it, with the machine it ran on.
"""

from __future__ import annotations

import sys
import time

import numpy as np


def measure_latency(step, *, warmup: int = 50, min_iters: int = 200, max_iters: int = 20000,
                    min_seconds: float = 0.5) -> dict:
    """Time `step()` call by call with perf_counter_ns.

    Runs `warmup` calls, then at least `min_iters` and until `min_seconds` have passed (so that
    p99 rests on at least ~100 samples above it), at most `max_iters`. Returns microseconds.
    """
    for _ in range(warmup):
        step()
    samples = []
    start = time.perf_counter_ns()
    budget = int(min_seconds * 1e9)
    while len(samples) < max_iters:
        t0 = time.perf_counter_ns()
        step()
        samples.append(time.perf_counter_ns() - t0)
        if len(samples) >= min_iters and time.perf_counter_ns() - start >= budget:
            break
    us = np.asarray(samples, dtype=np.float64) / 1e3
    return {"p50_us": float(np.percentile(us, 50)), "p90_us": float(np.percentile(us, 90)),
            "p99_us": float(np.percentile(us, 99)), "mean_us": float(us.mean()),
            "min_us": float(us.min()), "iterations": int(us.size)}


def peak_rss_bytes() -> int | None:
    """This process's own peak resident set size.

    Linux: VmHWM from /proc/self/status, which belongs to this process's memory map alone.
    ru_maxrss is only the fallback: Linux carries a parent's peak into a child across fork
    and exec, so a worker started by a big parent would report the parent's peak.
    """
    hwm = _proc_status_kib("VmHWM")
    if hwm is not None:
        return hwm * 1024
    try:
        import resource

        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(kib) * (1 if sys.platform == "darwin" else 1024)
    except Exception:  # pragma: no cover - neither /proc nor resource
        return None


def reset_peak_rss() -> bool:
    """Start a new peak-RSS window (Linux: writing 5 to /proc/self/clear_refs resets VmHWM to
    the current RSS). False where that is not possible; the peak then covers the whole process."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _proc_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])  # "VmHWM:    10944 kB"
    except (OSError, ValueError, IndexError):
        pass
    return None
