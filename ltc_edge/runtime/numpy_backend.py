"""Pure-numpy backend: F.model_step traced once into preallocated in-place numpy calls."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .backend import Backend, check_batch, check_options
from .errors import ModelLoadError
from .meta import meta_from_config


class NumpyBackend(Backend):
    name = "numpy"

    def __init__(self, path, batch: int = 1, **kw):
        from ltc_edge.nn import functional as F
        from ltc_edge.nn.modelfile import ModelFileError, read

        check_options("numpy", kw)
        path = Path(path)
        if path.suffix != ".safetensors":
            raise ModelLoadError(f"{path}: the numpy backend runs .safetensors model files")
        try:
            self.config, raw = read(path)
        except ModelFileError as e:
            raise ModelLoadError(str(e)) from None
        self.meta = meta_from_config(self.config, raw, str(path))
        # the synapse-list form where the cell has one: fewer ops per step than the dense form
        self.P = F.model_prepare_static(F.NumpyOps, raw, self.config)
        self.bind(batch)

    @classmethod
    def from_arrays(cls, config: dict, raw: dict, batch: int = 1):
        """A numpy backend straight from a config and raw parameter arrays (no file), checked
        exactly as a model file's are (ModelFileError, a ModelLoadError, otherwise)."""
        from ltc_edge.nn import functional as F
        from ltc_edge.nn.modelfile import validate

        validate(config, raw, where="<arrays>")
        self = cls.__new__(cls)
        self.config = config
        self.meta = meta_from_config(config, raw, "<arrays>")
        self.P = F.model_prepare_static(F.NumpyOps, {k: v for k, v in raw.items()}, config)
        self.bind(batch)
        return self

    def bind(self, batch: int) -> None:
        from .trace import TracedStep

        batch = check_batch(batch)  # before the trace allocates [batch, ...] buffers
        self.traced = TracedStep(self.P, self.config, batch)
        t = self.traced
        self.batch = batch
        self.x, self.h, self.dt, self.y, self.h_new = t.x, t.h, t.dt, t.y, t.h_new
        self.x[...] = 0
        self.h[...] = 0
        self.dt[...] = self.meta.default_dt
        self._replay = t.tape.run

    def run(self) -> None:
        # huge x or dt can overflow inside the model math; the result is a NaN/inf state that
        # the Controller reports (StateBoundError, nothing committed). numpy's warning would only
        # repeat that, and escape the error hierarchy under -W error; the other backends are quiet
        with np.errstate(all="ignore"):
            self._replay()

    def describe(self) -> dict:
        return {"traced_ops": self.traced.n_ops}
