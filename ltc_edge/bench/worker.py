"""One benchmark measurement in its own process: `python -m ltc_edge.bench.worker job.json row.json`.

job: artifact (file or export folder), backend, precision, target, batches, task, min_seconds.
Writes the measured part of a results row (see report.py for the schema): latency per batch
size, and with a task its metric on the test windows and streamed over the whole test series.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..errors import RuntimeInputError
from .timing import measure_latency, peak_rss_bytes, reset_peak_rss

DT = 0.05  # elapsed time fed on every step (a 20 Hz control loop)


def _file_bytes(artifact: Path) -> int:
    if artifact.is_dir():
        manifest = json.loads((artifact / "manifest.json").read_text())
        if manifest.get("size_bytes"):
            return int(manifest["size_bytes"])
        return sum(p.stat().st_size for p in artifact.iterdir() if p.name != "manifest.json")
    return artifact.stat().st_size


def _torch_stepper(path: Path, target: str, batch: int):
    import torch

    from ..nn import load

    device = "cuda" if target == "cuda" else "cpu"
    model = load(path).to(device).eval()
    P = model.prepared()
    x = torch.randn(batch, model.input_size, device=device)
    dt = torch.full((batch, 1), DT, device=device)
    state = [model.initial_state(batch)]

    def step():
        with torch.no_grad():
            _, state[0] = model.step(x, state[0], dt, prepared=P)
        if device == "cuda":
            torch.cuda.synchronize()

    return step, model


def _runtime_stepper(artifact: Path, backend: str, batch: int, target: str):
    from ..runtime import load

    options = {"providers": ["CUDAExecutionProvider"]} if (backend == "onnxruntime" and target == "cuda") else {}
    ctrl = load(artifact, backend=backend, batch=batch, **options)
    ctrl.reset(batch)
    x = np.random.default_rng(0).normal(size=(batch, ctrl.input_size)).astype(np.float32)
    dt = DT if ctrl.meta.fixed_dt is None else None  # an export with a fixed dt (int8 C) steps at it

    def step():
        ctrl.step(x, dt)

    return step, ctrl


def _metric(job: dict, artifact: Path, task) -> float | None:
    """The task metric on the test split's windows (each from the reset state), computed through
    the same backend."""
    split = task.test
    x, y = split.x.astype(np.float32), split.y
    dt = split.dt if split.dt is not None else None
    N, T, _ = x.shape
    if job["backend"] == "torch":
        import torch

        from ..nn import load

        model = load(job["artifact"]).eval()
        with torch.no_grad():
            out, _ = model(torch.from_numpy(x), None if dt is None else torch.from_numpy(dt.astype(np.float32)))
        pred = out.numpy()
    else:
        from ..runtime import load

        ctrl = load(artifact, backend=job["backend"], batch=N)
        ctrl.reset(N)
        if ctrl.meta.fixed_dt is not None:  # an export with a fixed dt (int8 C) steps at it
            dt = None
        pred = np.stack([np.array(ctrl.step(x[:, t], None if dt is None else dt[:, t:t + 1]))
                         for t in range(T)], 1)
    if task.metric == "accuracy":
        return float((pred[:, -1].argmax(-1) == np.asarray(y).reshape(N, -1)[:, -1]).mean())
    return float(((pred - y) ** 2).mean())


class _TorchStream:
    """The torch model behind the reset()/step() a runtime Controller offers (streamed metric)."""

    def __init__(self, path: Path):
        from ..nn import load

        self.model = load(path).eval()
        self.prepared = self.model.prepared()

    def reset(self, batch: int):
        self.state = self.model.initial_state(batch)

    def step(self, x, dt=None):
        import torch

        with torch.no_grad():
            y, self.state = self.model.step(torch.from_numpy(np.asarray(x, np.float32)), self.state,
                                            None if dt is None else torch.from_numpy(np.asarray(dt, np.float32)),
                                            prepared=self.prepared)
        return y.numpy()


class _AtFixedDt:
    """An export with a fixed dt (int8 C) steps at it: the data's dt is not passed (as in _metric)."""

    def __init__(self, ctrl):
        self.ctrl = ctrl

    def reset(self, batch: int):
        self.ctrl.reset(batch)

    def step(self, x, dt=None):
        return self.ctrl.step(x)


def _streaming_metric(job: dict, artifact: Path, task) -> float:
    """The task metric with the state carried over each whole test series (as a controller runs)."""
    from ..train.streaming import stream_metric

    if job["backend"] == "torch":
        stream = _TorchStream(artifact)
        return stream_metric(lambda b: stream, task, "test")[task.metric]
    from ..runtime import load

    def controller(batch: int):
        ctrl = load(artifact, backend=job["backend"], batch=batch)
        return ctrl if ctrl.meta.fixed_dt is None else _AtFixedDt(ctrl)

    return stream_metric(controller, task, "test")[task.metric]


def run(job: dict) -> dict:
    # this process is fresh (exec'd by run.py), so its peak is its own; the reset also drops
    # start-up transients, leaving what stays resident plus the measurement itself
    reset_peak_rss()
    artifact = Path(job["artifact"])
    row = {"file_bytes": _file_bytes(artifact), "latency": {}}
    for batch in job["batches"]:
        if job["backend"] == "torch":
            step, _ = _torch_stepper(artifact, job["target"], batch)
        else:
            step, _ = _runtime_stepper(artifact, job["backend"], batch, job["target"])
        lat = measure_latency(step, min_seconds=job.get("min_seconds", 0.5))
        lat["throughput_steps_per_s"] = batch * 1e6 / lat["mean_us"]
        row["latency"][str(batch)] = lat
    if job.get("task"):
        from ..train.tasks import load_task

        task = load_task(job["task"], **(job.get("task_options") or {}))
        row["metric"] = _metric(job, artifact, task)
        try:
            row["metric_streaming"] = _streaming_metric(job, artifact, task)
        except RuntimeInputError as e:  # e.g. a state leaving its bounds over a long series: a finding, not a lost row
            row["metric_streaming_error"] = " ".join(str(e).split())
    row["peak_rss_bytes"] = peak_rss_bytes()
    return row


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    job = json.loads(Path(argv[0]).read_text())
    row = run(job)
    Path(argv[1]).write_text(json.dumps(row))


if __name__ == "__main__":
    main()
