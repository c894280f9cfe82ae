"""The data types every task returns (numpy only). Its own module so that task loaders that
live elsewhere (pendulum.py) and the registry in tasks.py both import it without a cycle."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Split:
    x: np.ndarray                    # [N, T, in] float32
    y: np.ndarray                    # [N, T, out] float32 (regression) or [N] int64 (classification)
    dt: np.ndarray | None = None     # [N, T] float32 elapsed time per step, None = 1.0

    def __len__(self):
        return int(self.x.shape[0])


@dataclass
class TaskData:
    name: str
    kind: str                        # "regression" or "classification"
    metric: str                      # "mse" or "accuracy"
    train: Split
    valid: Split
    test: Split
    input_size: int
    output_size: int                 # regression: target columns; classification: classes
    normalization: dict | None = None  # goes into the model config (raw in, raw out)
    defaults: dict = field(default_factory=dict)  # epochs, batch_size, grad_clip, lr{model}
    info: dict = field(default_factory=dict)       # provenance, options, column names
    # whole sequences per split for streaming (`ltc eval --streaming`): e.g. a csv's contiguous
    # test rows, cheetah's test traces; a split not here streams its windows one by one
    streams: dict = field(default_factory=dict)   # split name -> list[Split] (each N = 1)

    @property
    def higher_is_better(self) -> bool:
        return self.metric == "accuracy"

    def stream(self, split: str = "test") -> list:
        """The split as whole sequences (each a Split of one sequence), state carried along
        each: the contiguous series where the task has one, else its windows one by one."""
        if split in self.streams:
            return list(self.streams[split])
        s = getattr(self, split)
        return [Split(s.x[i:i + 1], s.y[i:i + 1], None if s.dt is None else s.dt[i:i + 1]) for i in range(len(s))]

    def train_dt(self) -> dict:
        """The training data's dt distribution (what the model config records): the series'
        own time steps where the task has them (info["train_dt"]), else the training windows' dt
        (1.0 per step when the task has none)."""
        if isinstance(self.info.get("train_dt"), dict):
            return dict(self.info["train_dt"])
        dt = self.train.dt
        return dt_summary(np.ones(1) if dt is None else dt)

    def calibration_inputs(self, n: int = 64, seed: int = 0, split: str = "valid"):
        """Held-out input sequences for quantisation calibration and drift checks:
        (x [n, T, in] float32, dt [n, T] float32 or None), drawn without replacement
        (seeded) from the validation split (never the training data)."""
        s = getattr(self, split)
        idx = np.random.default_rng(seed).permutation(len(s))[: min(n, len(s))]
        idx.sort()
        return s.x[idx], (None if s.dt is None else s.dt[idx])


def dt_summary(values) -> dict:
    """median / min / max / mean / std of elapsed times (float64, plain floats)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if not len(v):
        v = np.ones(1)
    return {"median": float(np.median(v)), "min": float(v.min()), "max": float(v.max()),
            "mean": float(v.mean()), "std": float(v.std())}
