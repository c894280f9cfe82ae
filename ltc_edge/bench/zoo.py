"""Every cell kind side by side, for `ltc bench --kinds`: each kind is trained on the task
(short schedule, the task's learning rates) at equal hidden size and at equal parameter count,
then the files go through the usual bench like any user's models.

Equal hidden size: every kind gets `units` neurons / hidden units. Equal parameter count:
the first kind (the reference, an LTC by default) keeps `units`; every other kind gets the
hidden size whose parameter count is closest to the reference's. A kind that cannot come that
small (a CfC's backbone alone may be larger) gets its smallest size; the bench rows show each
model's real parameter count either way. A CfC's backbone MLP (128 units by default) holds
most of its parameters, so for the parameter match its backbone width follows its hidden size.
"""

from __future__ import annotations

import time
from pathlib import Path

MATCHES = ("hidden", "params")
MAX_UNITS = 512


def _options(kind: str, units: int, match: str) -> dict:
    return {"backbone_units": units} if (kind == "cfc" and match == "params") else {}


def parameter_count(task, kind: str, units: int, wiring: str | None = None, **options) -> int:
    from ..train.loop import build_task_model

    return build_task_model(task, kind, units=units, wiring=wiring, **options).counts()["parameters"]


def units_for_params(task, kind: str, target: int, wiring: str | None = None) -> int:
    """The hidden size of `kind` whose parameter count is closest to `target` (counts grow
    with units, so a bisection finds the crossing; ties go to the smaller net)."""
    def count(u):
        return parameter_count(task, kind, u, wiring, **_options(kind, u, "params"))

    lo, hi = 1, MAX_UNITS
    while lo < hi:  # smallest units with count >= target
        mid = (lo + hi) // 2
        if count(mid) >= target:
            hi = mid
        else:
            lo = mid + 1
    below = max(1, lo - 1)
    return min((below, lo), key=lambda u: (abs(count(u) - target), u))


def plan_zoo(task, kinds, units: int, match=MATCHES, wiring: str | None = None) -> list[dict]:
    """[{name, kind, units, wiring, options, match, reference_parameters}] without duplicates
    (the reference kind's equal-parameter model is its equal-hidden model)."""
    bad = [m for m in match if m not in MATCHES]
    if bad:
        raise ValueError(f"unknown --match {', '.join(bad)}; choose from {', '.join(MATCHES)}")
    from ..nn.functional import CELLS
    from ..train.loop import WIRED_MODELS

    unknown = [k for k in kinds if k not in CELLS]
    if unknown:
        raise ValueError(f"unknown kind(s) {', '.join(unknown)}; choose from {', '.join(CELLS)}")
    if units < 1:
        raise ValueError(f"--units must be >= 1, got {units}")

    def wiring_of(kind):
        return wiring if kind in WIRED_MODELS else None

    ref = kinds[0]
    target = parameter_count(task, ref, units, wiring_of(ref))
    entries, seen = [], set()
    for m in match:
        for kind in kinds:
            u = units if (m == "hidden" or kind == ref) else units_for_params(task, kind, target, wiring_of(kind))
            options = _options(kind, u, m) if kind != ref else {}
            name = f"{kind}-{u}" + (f"-bb{u}" if options else "")
            if name in seen:
                continue
            seen.add(name)
            entries.append({"name": name, "kind": kind, "units": u, "wiring": wiring_of(kind), "options": options,
                            "match": m, "reference_parameters": target})
    return entries


def train_zoo(task_name: str, entries: list[dict], out: Path, *, epochs: int, seed: int = 0,
              task_options: dict | None = None, progress=None) -> list[Path]:
    """Train every entry (best-on-validation file at out/NAME.safetensors) on the task (load_task
    options: csv/npz, the user's file and columns); returns the paths. `progress(entry, seconds)` after each."""
    from ..train.loop import TrainOptions, build_task_model, default_lr, train
    from ..train.tasks import load_task

    if epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {epochs}")
    task = load_task(task_name, **(task_options or {}))
    paths = []
    for e in entries:
        path = Path(out) / f"{e['name']}.safetensors"
        model = build_task_model(task, e["kind"], units=e["units"], wiring=e["wiring"], seed=seed, **e["options"])
        start = time.time()
        opts = TrainOptions(epochs=epochs, lr=default_lr(task, e["kind"]),
                            batch_size=int(task.defaults.get("batch_size", 16)), seed=seed,
                            grad_clip=task.defaults.get("grad_clip"))
        train(task, model, path, opts, progress=False, log=lambda s: None)
        paths.append(path)
        if progress:
            progress(e, time.time() - start)
    return paths
