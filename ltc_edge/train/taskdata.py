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

    @property
    def higher_is_better(self) -> bool:
        return self.metric == "accuracy"

    def calibration_inputs(self, n: int = 64, seed: int = 0, split: str = "valid"):
        """Held-out input sequences for quantisation calibration and drift checks:
        (x [n, T, in] float32, dt [n, T] float32 or None), drawn without replacement
        (seeded) from the validation split (never the training data)."""
        s = getattr(self, split)
        idx = np.random.default_rng(seed).permutation(len(s))[: min(n, len(s))]
        idx.sort()
        return s.x[idx], (None if s.dt is None else s.dt[idx])
