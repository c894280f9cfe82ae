"""Quantisation helpers: int8 ONNX (weight-only int8 by default, int8_weights.py; static QDQ
through onnxruntime.quantization with a calibration method), calibration samples from the
training data, and representative data sets for TFLite.

A step graph's inputs include the recurrent state, so calibration samples are whole step
inputs (x_t, state_t, dt_t) collected by running the torch model over the calibration
sequences: the state ranges the quantiser sees are the ones the model really visits.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

CALIBRATION_ROWS = 2048
MAX_RANKED_NODES = 48  # the mixed-precision fallback runs one drift check per product: bound the export time
FEED_BATCH = 256


def step_samples(model, data, *, rows: int = CALIBRATION_ROWS, seed: int = 0, fixed_dt=None) -> dict:
    """{"x": [M, in], "state": [M, S], "dt": [M, 1]} step inputs visited by the torch model
    on the calibration sequences (M <= rows, drawn at random over sequences and steps)."""
    from .drift import run_sequences, torch_runner

    x, dt = data.calib_x, data.calib_dt
    if fixed_dt is not None and dt is not None:
        dt = np.full_like(dt, fixed_dt)
    rng = np.random.default_rng(seed)
    N, T, _ = x.shape
    if N * T > 4 * rows:  # enough sequences for the rows wanted, no more
        keep = np.sort(rng.permutation(N)[: max(1, -(-4 * rows // T))])
        x, dt = x[keep], (None if dt is None else dt[keep])
        N = x.shape[0]
    states = []
    ref = torch_runner(model, fixed_dt)

    def recording(xt, h, d):
        states.append(h)
        return ref(xt, h, d)

    from ..nn import functional as F

    run_sequences(recording, x, dt, F.state_size(model.config))
    H = np.stack(states, 1)  # [N, T, S]: the state *entering* each step
    flat = rng.permutation(N * T)[:rows]
    n, t = flat // T, flat % T
    out = {"x": x[n, t].astype(np.float32), "state": H[n, t].astype(np.float32)}
    dcol = np.ones((len(flat), 1), np.float32) if dt is None else dt[n, t][:, None].astype(np.float32)
    out["dt"] = np.full_like(dcol, fixed_dt) if fixed_dt is not None else dcol
    return out


# The LTC's numerator and denominator sums (synapse lists w*erev and w, graph.py buffer names):
# static QDQ leaves them float (weight-only int8 quantises them as a pair, int8_weights.py). Quantised independently they stop forming the positive mix that
# keeps every state inside the LTC paper's bounds (the runtime guard then trips).
LTC_FLOAT_WEIGHTS = ("cell__we", "cell__w")
# ops that int8 quantises (weights and activations): the matrix products. Element-wise ops
# (the LTC's division, sigmoid) stay float between DequantizeLinear and QuantizeLinear.
INT8_OP_TYPES = ["Gemm", "MatMul"]


def int8_nodes(onnx_model):
    """The nodes int8 quantises: matrix products (Gemm/MatMul) whose weights are constants
    (their activations and weights go int8; a Gemm's C term that is itself computed stays
    float), but not the LTC's numerator / denominator sums; where a graph has none (the dense
    LTC form), its multiplications by constant tensors. Everything else stays float between
    DequantizeLinear and QuantizeLinear (the LTC's division and the recurrent state)."""
    consts = {i.name for i in onnx_model.graph.initializer}
    consts |= {o for n in onnx_model.graph.node if n.op_type == "Constant" for o in n.output}

    def nodes_of(types, want):
        return [n.name for n in onnx_model.graph.node if n.op_type in types and want(n)]

    nodes = nodes_of(INT8_OP_TYPES, lambda n: n.input[1] in consts and n.input[1] not in LTC_FLOAT_WEIGHTS)
    if nodes:
        return nodes, list(INT8_OP_TYPES)
    return nodes_of(["Mul"], lambda n: any(i in consts for i in n.input)), ["Mul"]


def int8_onnx(fp32_model, model, graph, data, method: str | None = None, check=None):
    """int8 ONNX: (ModelProto, info dict, drift dict or None). `check(ModelProto) -> drift dict`
    is the export's drift check (None: no check).

    Without a calibration method: weight-only int8 first (int8_weights.py: every weight matrix
    int8 with per-row/column scales, float compute; no calibration pass, no QDQ around the
    activations); when it misses the budget, its matrices go back to float one at a time,
    largest quantisation error first. A graph without weight matrices (or a given method:
    minmax, percentile, entropy) gets static QDQ (int8_static)."""
    if method is None:
        found = weight_only_search(fp32_model, check)
        if found is not None:
            return found
    return int8_static(fp32_model, model, graph, data, method or "minmax", check)


def weight_only_search(fp32_model, check=None):
    """(ModelProto, info, drift) of weight-only int8, or None when the graph has no weight
    matrix to quantise. Over budget: matrices left float, largest relative error first, until
    within budget; none within: the fully quantised graph (the export then reports it)."""
    from .int8_weights import weight_only_int8

    q, info = weight_only_int8(fp32_model)
    if not info["int8_weights"]:
        return None
    first = (q, info, None if check is None else check(q))
    if check is None or first[2]["within_budget"]:
        return first
    errors = info["int8_weights"]
    keep = []
    for name in sorted(errors, key=lambda n: -errors[n]["rel_error"])[: len(errors) - 1]:
        keep.append(name)
        q2, info2 = weight_only_int8(fp32_model, keep_float=keep)
        drift = check(q2)
        if drift["within_budget"]:
            return q2, info2, drift
    return first


def int8_static(fp32_model, model, graph, data, method: str = "minmax", check=None):
    """Static QDQ int8 (onnxruntime.quantization.quantize_static: int8 activations and
    weights of the matrix products) with a CalibrationDataReader fed from the calibration data.
    When the fully quantised graph is over its budget, the products whose quantisation costs
    the task metric most (each measured alone left out) are left out of quantisation one at a
    time until it fits: the usual mixed-precision fallback, one drift check per product."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod

    samples = step_samples(model, data, fixed_dt=graph.fixed_dt)
    names = graph.input_names()
    rows = len(samples["x"])
    size = min(FEED_BATCH, rows)  # equal batches: the histogram calibrators stack them
    batches = [{k: samples[k][s:s + size] for k in names} for s in range(0, rows - size + 1, size)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(batches)

        def get_next(self):
            return next(self._it, None)

    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
    nodes, op_types = int8_nodes(fp32_model)

    def quantize(exclude=()):
        return _quantize_static(fp32_model, Reader(), methods[method], op_types,
                                [n for n in nodes if n not in exclude])

    q = quantize()
    qdq = sum(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in q.graph.node)
    if qdq == 0:
        raise ValueError(f"int8: nothing to quantise in this {model.kind} graph (no {'/'.join(op_types)} ops)")
    info = {"scheme": "static", "method": method, "format": "QDQ", "activations": "int8 (asymmetric)", "weights": "int8 (symmetric)",
            "op_types": op_types, "calibration_rows": int(len(samples["x"])), "calibration_data": data.source,
            "quantized_nodes": len(nodes), "excluded_nodes": []}
    if check is None:
        return q, info, None
    drift = check(q)
    if drift["within_budget"] or not 2 <= len(nodes) <= MAX_RANKED_NODES:
        return q, info, drift
    # the metric change with each product alone left out: the lower, the more it costs quantised
    cost = {n: check(quantize({n}))["metric"]["rel_delta"] for n in nodes}
    excluded = []
    for n in sorted(nodes, key=lambda n: cost[n])[: len(nodes) - 1]:
        excluded.append(n)
        q = quantize(set(excluded))
        drift = check(q)
        if drift["within_budget"]:
            break
    info["excluded_nodes"] = excluded
    info["quantized_nodes"] = len(nodes) - len(excluded)
    return q, info, drift


def _quantize_static(fp32_model, reader, method, op_types, nodes):
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    from .manifest import quiet

    with tempfile.TemporaryDirectory(prefix="ltc-int8-") as tmp, quiet():  # the calibrators print()
        src, dst = os.path.join(tmp, "fp32.onnx"), os.path.join(tmp, "int8.onnx")
        onnx.save(fp32_model, src)
        try:
            quantize_static(src, dst, reader, quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                            weight_type=QuantType.QInt8, calibrate_method=method,
                            op_types_to_quantize=op_types, nodes_to_quantize=nodes, per_channel=False,
                            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True,
                                           "CalibPercentile": 99.99, "CalibTensorRangeSymmetric": False})
        except (AssertionError, ArithmeticError, ValueError) as e:  # e.g. "scale issue" on a 3e38 range
            reason = " ".join(str(e).split())[:120] or type(e).__name__
            raise ValueError(f"int8 calibration failed on these data ({reason}): are the calibration "
                             "values in the model's real input range?") from None
        return onnx.load(dst)


def representative_samples(model, data, graph, rows: int = 256):
    """Step inputs for a TFLite representative data set: a list of argument tuples."""
    s = step_samples(model, data, rows=rows, fixed_dt=graph.fixed_dt)
    return [tuple(s[k][i:i + 1] for k in graph.input_names()) for i in range(len(s["x"]))]
