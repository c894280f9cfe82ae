"""The backend interface: a backend owns numpy buffers for one batch size and fills the
outputs from the inputs when `run()` is called. The Controller writes the inputs in place,
so the whole step path can be allocation-free (the numpy backend is)."""

from __future__ import annotations

import numpy as np

from .meta import ModelMeta


class Backend:
    name = "?"

    meta: ModelMeta
    # inputs (written by the Controller): x[B, in], h[B, S] (the state), dt[B, 1]
    # outputs (read after run()): y[B, out], h_new[B, S] (may be h itself: updated in place)

    def bind(self, batch: int) -> None:
        """(Re)allocate the buffers for `batch` rows."""
        m = self.meta
        self.batch = batch
        self.x = np.zeros((batch, m.input_size), np.float32)
        self.h = np.zeros((batch, m.state_size), np.float32)
        self.dt = np.full((batch, 1), m.default_dt, np.float32)
        self.y = np.zeros((batch, m.output_size), np.float32)
        self.h_new = np.zeros((batch, m.state_size), np.float32)

    def run(self) -> None:
        raise NotImplementedError

    def describe(self) -> dict:
        return {}
