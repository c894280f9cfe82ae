"""Live progress of `ltc sweep`: one short line per trial event (started, an epoch, done, failed,
retried) and a `k/N done, ETA` line, in place of Ray Tune's status tables; Ray's own output goes
to a log file in the sweep's folder.

A Tune callback (TrialEvents) turns Tune's hooks into plain event dicts and hands them to a sink:
the driver's handler itself on a local Ray or `auto`, where Tune runs in the driver; a Ray queue
drained by the driver on a ray:// client, where Tune runs on the head. The driver's handler
(SweepProgress) prints the lines and brings each finished trial home (its `record`)."""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

# what a trial's per-epoch report carries (run_trial sends it with tune.report)
EPOCH_KEYS = ("epoch", "epochs", "metric", "valid", "best_valid", "best_epoch", "node")
WIRING_LABELS = {"auto-ncp": "NCP"}
OVERALL_EVERY_S = 60  # the k/N done line after each trial's end, and at least this often on epochs


def trial_label(t: dict) -> str:
    """A trial as a reader names it: `LTC-NCP-16 seed 1`, `GRU-8 lr 0.01`."""
    wiring = t.get("wiring")
    parts = [t["model"].upper(), *([WIRING_LABELS.get(wiring, wiring)] if wiring else []), str(t.get("units", 32))]
    extra = [f"{name} {t[key]:g}" if isinstance(t[key], float) else f"{name} {t[key]}"
             for key, name in (("ode_unfolds", "unfolds"), ("lr", "lr"), ("seed", "seed")) if key in t]
    return " ".join(["-".join(parts), *extra])


def duration(seconds: float) -> str:
    """45s, 3m05s, 1h02m."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _error_line(trial) -> str:
    """A failed trial's error, its last line (Tune keeps the whole traceback in its error file)."""
    try:
        text = str(trial.get_error() or "").strip()
    except Exception:  # noqa: BLE001 - a label only
        text = ""
    return (text.splitlines()[-1] if text else "see the Ray log")[:200]


def _event(kind: str, trial, **fields) -> dict:
    return {"kind": kind, "trial": trial.config["trial"], **fields}


def tune_callback(sink):
    """A Tune callback that hands each trial event to sink(event)."""
    from ray import tune

    class TrialEvents(tune.Callback):
        def on_trial_start(self, iteration, trials, trial, **info):
            sink(_event("start", trial))

        def on_trial_result(self, iteration, trials, trial, result, **info):
            if "epoch" in result and "artifacts" not in result:  # an epoch report, not the final row
                sink(_event("epoch", trial, report={k: result.get(k) for k in EPOCH_KEYS}))

        def on_trial_complete(self, iteration, trials, trial, **info):
            sink(_event("done", trial, row=dict(trial.last_result)))

        def on_trial_error(self, iteration, trials, trial, **info):
            sink(_event("error", trial, error=_error_line(trial)))

        def on_trial_recover(self, iteration, trials, trial, **info):
            sink(_event("retry", trial, error=_error_line(trial), failures=trial.num_failures))

    return TrialEvents()


class SweepProgress:
    """The driver's side: prints a line per event to `out` and brings finished trials home
    (record(trial, row) -> an error text, or None)."""

    def __init__(self, total: int, out, record, max_failures: int):
        self.total, self.out, self.record, self.max_failures = total, out, record, max_failures
        self.t0, self.started, self.fraction, self.node = time.monotonic(), {}, {}, {}
        self.ended, self.done, self.failed, self.last_overall = set(), 0, 0, self.t0

    def __getstate__(self):
        """Tune pickles its callbacks (and so this handler) into the experiment's state file: all
        but the terminal stream, which does not pickle and is of no use in a restored copy."""
        return {**self.__dict__, "out": None}

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def handle(self, event: dict) -> None:
        t = event["trial"]
        key = trial_label(t)
        getattr(self, f"_on_{event['kind']}")(key, t, event)

    def _elapsed(self, key: str) -> str:
        return duration(time.monotonic() - self.started.get(key, self.t0))

    def _on_start(self, key, t, event):
        self.started.setdefault(key, time.monotonic())
        self.fraction[key] = 0.0
        self.say(f"{key}  started")

    def _on_epoch(self, key, t, event):
        r = event["report"]
        self.fraction[key] = r["epoch"] / r["epochs"]
        self.node[key] = r.get("node") or "?"
        best = "-" if r.get("best_valid") is None else f"{r['best_valid']:.4g} (epoch {r['best_epoch']})"
        self.say(f"{key}  epoch {r['epoch']}/{r['epochs']}  valid {r['metric']} {r['valid']:.4g}  best {best}  "
                 f"{self._elapsed(key)}  node {self.node[key]}")
        if time.monotonic() - self.last_overall >= OVERALL_EVERY_S:  # long trials: the ETA between their ends too
            self.say(self.overall())

    def _on_done(self, key, t, event):
        row = event["row"]
        problem = self.record(t, row)
        self.fraction[key] = 1.0
        self.ended.add(key)
        if problem:
            self.failed += 1
            self.say(f"{key}  FAILED to come home: {problem}")
        else:
            self.done += 1
            self.say(f"{key}  done  test {row['metric_name']} {row['metric']:.4g}  best epoch "
                     f"{row['best_epoch']}/{row['epochs_run']}  p50 {row['p50_us']:.1f} µs  {self._elapsed(key)}  "
                     f"node {self.node.get(key, '?')}")
        self.say(self.overall())

    def _on_error(self, key, t, event):
        self.failed += 1
        self.fraction[key] = 1.0
        self.ended.add(key)
        self.say(f"{key}  FAILED after {self._elapsed(key)}: {event['error']}")
        self.say(self.overall())

    def _on_retry(self, key, t, event):
        self.fraction[key] = 0.0
        self.started[key] = time.monotonic()
        self.say(f"{key}  lost ({event['error']}); retry {event['failures']} of {self.max_failures}")

    def overall(self) -> str:
        """`k/N done (f failed), r running, elapsed, ETA` (the ETA from the epochs done so far)."""
        finished = self.done + self.failed
        running = len(set(self.fraction) - self.ended)
        part = sum(self.fraction.values())
        spent = time.monotonic() - self.t0
        eta = duration(spent * (self.total - part) / part) if 0 < part < self.total else "-"
        failed = f" ({self.failed} failed)" if self.failed else ""
        self.last_overall = time.monotonic()
        return f"{finished}/{self.total} done{failed}, {running} running  elapsed {duration(spent)}  ETA {eta}"


def _stdout_fd() -> int | None:
    try:
        return sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return None  # a captured stream (a test's CliRunner)


@contextmanager
def ray_output_to(path: Path):
    """While the sweep runs, Ray's own output (Tune's notices and tables, its loggers, the C++
    warnings of its core on stderr) goes to path, kept for debugging; yields the stream for the
    progress lines (the terminal's stdout)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", buffering=1, encoding="utf-8", errors="replace") as log:
        sys.stdout.flush()
        sys.stderr.flush()
        real = _stdout_fd() == 1
        terminal = os.fdopen(os.dup(1), "w", buffering=1, encoding=sys.stdout.encoding or "utf-8",
                             errors="replace") if real else sys.stdout
        saved, streams = (os.dup(1), os.dup(2)), (sys.stdout, sys.stderr)
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        sys.stdout = sys.stderr = log
        try:
            yield terminal
        finally:
            log.flush()
            sys.stdout, sys.stderr = streams
            for fd, target in zip(saved, (1, 2)):
                os.dup2(fd, target)
                os.close(fd)
            if real:
                terminal.close()
