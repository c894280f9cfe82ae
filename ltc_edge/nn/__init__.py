"""Cells, wirings and the model file.

Imports are lazy: `ltc_edge.nn.functional`, `.wirings` and `.modelfile` need numpy only;
the torch parts (`Model`, `build_model`, `from_ncps`, `load`) import torch on first use.
"""

from .functional import CELLS, SOLVERS  # noqa: F401  (numpy only)
from .modelfile import ModelFileError, describe, load, read, save, write  # noqa: F401
from .wirings import WIRINGS, AutoNCP, FullyConnected, NCP, Random, make_wiring  # noqa: F401

_TORCH_NAMES = {"Model", "build_model", "make_config", "from_ncps"}


def __getattr__(name):
    if name in _TORCH_NAMES:
        from . import model

        return getattr(model, name)
    raise AttributeError(f"module 'ltc_edge.nn' has no attribute {name!r}")
