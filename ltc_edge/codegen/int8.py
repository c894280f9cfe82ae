"""int8 (integer-only) C generators by cell kind: the LTC (c_int.py) and the LSTM
(c_int_lstm.py). `generate(config, raw, prefix=, fixed_dt=, calib_x=)` -> {"files", "info"}."""

from __future__ import annotations

from ltc_edge.codegen import c_int, c_int_lstm
from ltc_edge.codegen.c import CodegenError

GENERATORS = {"ltc": c_int.generate, "lstm": c_int_lstm.generate}


def generate(config: dict, raw: dict, **kw) -> dict:
    kind = config["cell"]["kind"]
    if kind not in GENERATORS:
        raise CodegenError(f"int8 C export supports {' and '.join(GENERATORS)} models, not {kind!r}")
    return GENERATORS[kind](config, raw, **kw)
