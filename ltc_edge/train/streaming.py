"""`ltc eval --streaming`: a split's whole sequences through the runtime's `step()`, the state
carried from step to step as a controller would (numpy, plus the backend's package; torch only
to export for the onnx / tflite backends). Regression: MSE over every step; classification:
accuracy of the last step's output."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np


def check_backend(name: str) -> str:
    """The runtime backend's canonical name (every runtime backend and alias; one line if unknown)."""
    from ..runtime import backend_name

    if isinstance(name, str) and name.startswith("mcu:"):  # a board on a serial port: mcu:CORE
        from ..codegen.mcu import core_name

        return f"mcu:{core_name(name)}"
    return backend_name(name)


def _groups(streams: list) -> list:
    """Streams of equal length stacked into one batch (each lane its own sequence)."""
    by_len: dict = {}
    for s in streams:
        by_len.setdefault(s.x.shape[1], []).append(s)
    out = []
    for group in by_len.values():
        x = np.concatenate([s.x for s in group]).astype(np.float32)
        y = np.concatenate([np.asarray(s.y) for s in group])
        dt = None if group[0].dt is None else np.concatenate([s.dt for s in group]).astype(np.float32)
        out.append((x, y, dt))
    return out


def _run(ctrl, x, dt, last_only: bool) -> np.ndarray:
    """Outputs [B, T, out] (or the last step's [B, out]) of sequences from the reset state."""
    B, T, _ = x.shape
    ctrl.reset(B)
    ys = []
    for t in range(T):
        y = ctrl.step(x[:, t], None if dt is None else dt[:, t:t + 1])
        if not last_only or t == T - 1:
            ys.append(np.array(y, dtype=np.float64))
    return ys[-1] if last_only else np.stack(ys, 1)


def stream_metric(ctrl_for, td, split: str = "test") -> dict:
    """{"<metric>": value, "steps": n, "sequences": k} over the split's whole sequences;
    ctrl_for(batch) -> a runtime Controller for that batch size."""
    last_only = td.kind == "classification"
    total = count = steps = seqs = 0
    for x, y, dt in _groups(td.stream(split)):
        pred = _run(ctrl_for(x.shape[0]), x, dt, last_only)
        if last_only:
            total += float((pred.argmax(-1) == np.asarray(y).reshape(-1)).sum())
            count += x.shape[0]
        else:
            total += float(((pred - y) ** 2).sum())
            count += y.size
        steps += x.shape[0] * x.shape[1]
        seqs += x.shape[0]
    return {td.metric: total / max(count, 1), "steps": int(steps), "sequences": int(seqs)}


def streaming_eval(model_path, net, td, split: str = "test", backend: str = "numpy", board: dict | None = None) -> dict:
    """stream_metric through runtime `backend` (a name or alias); onnxruntime / tflite / tflm
    run an fp32 export made in a temporary folder, c the model's generated C compiled on the fly,
    mcu:CORE on a board flashed once (`board`: serial, flash_cmd, ... as load() takes them)."""
    from ..export import export_for_backend
    from ..runtime import load

    name = check_backend(backend)
    if name.startswith("mcu:"):
        ctrl = load(model_path, backend=name, **(board or {}))
        try:
            got = stream_metric(lambda b: (ctrl.reset(batch=b), ctrl)[1], td, split)
        finally:
            ctrl.backend.close()
        d = ctrl.backend.describe()
        return {**got, **{k: d[k] for k in ("core", "board", "counter", "cycles_p50", "cycles_max")}}
    with tempfile.TemporaryDirectory(prefix="ltc-stream-") as tmp:
        target = export_for_backend(model_path, name, Path(tmp) / name, net=net, drift_steps=50)
        return stream_metric(lambda b: load(target, backend=name, batch=b), td, split)


def final_streaming(model_path, td, split: str = "test") -> dict:
    """Train's final figure beside the windowed one: stream_metric of the saved model on the
    numpy runtime, or {"error": why} when the runtime refuses a step (a state outside its
    bounds, a non-finite output): that is a finding to report, not a reason to lose the run."""
    from ..errors import RuntimeInputError

    try:
        return {"backend": "numpy", **streaming_eval(model_path, None, td, split, "numpy")}
    except RuntimeInputError as e:
        return {"backend": "numpy", "error": str(e)}


def streaming_phrase(metric: str, got: dict, split: str = "test") -> str:
    """'streamed test mse 0.81 (the whole series, state carried: 1 sequence, 540 steps)'."""
    if "error" in got:
        return f"streamed {split} {metric}: not measured ({got['error']})"
    seqs = got["sequences"]
    return (f"streamed {split} {metric} {got[metric]:.5g} (the whole series, state carried: {seqs} sequence"
            f"{'s' if seqs != 1 else ''}, {got['steps']} steps)")
