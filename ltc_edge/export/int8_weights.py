"""Weight-only int8 for ONNX graphs: every weight matrix stored as int8 with one float32 scale
per row or column (symmetric, zero point 0); the graph computes in float32 as before. Each
matrix is stored once, however many of the LTC's unfolds (or a sequence graph's steps) use it.

    weight_only_int8(fp32_model, keep_float=()) -> (ModelProto, info dict)

A matrix is read back as Mul(Cast(int8 -> float), scale): constants only, so onnxruntime folds
them into a float matrix when it loads the file, and a step costs what the fp32 step costs.
(A DequantizeLinear instead stays in the graph at run time, where onnxruntime fuses it with
the products into dynamically quantised int8 products: ~5x slower per step than fp32 for the
32-neuron cheetah LTC at batch 1, and less accurate.)

The scale axis is the matrix's shorter one (fewer scales to store): per pre-synaptic neuron for
the LTC's synapse pre-activations `sv`, per input for `sx` (inputs of very different ranges get
their own scale), per post-synaptic neuron for the numerator / denominator sums `we`, `w`.

The LTC pair: the numerator weights `we` = w * erev are stored as int8 reversal potentials
(one scale per neuron, each clipped into its neuron's range of reversal potentials, leak
included) and read back as w_int8 * erev_int8: `w` >= 0 stays >= 0 (the denominator stays
positive), a synapse whose w rounds to 0 leaves the numerator too, and every update stays a
positive mix of values inside the neuron's range, so the LTC state bound (LTC paper, Theorem
2) holds for the int8 graph as it does for the float one. (Quantising `we` on its own as a
matrix loses the bound and, on the 10-epoch cheetah LTC-NCP, costs +1.5% test MSE against
+0.35% this way; clipped to keep the bound, +3.0%.)
"""

from __future__ import annotations

import numpy as np

MIN_ELEMENTS = 32  # smaller matrices stay float: their int8 copy, scales and node cost more than they save
LTC_PAIR = ("cell__we", "cell__w")  # graph.py buffer names: numerator (w * erev) and denominator weights
WEIGHT_OPS = {"Gemm": (1,), "MatMul": (0, 1)}  # inputs that may be weight matrices


def symmetric_int8(a: np.ndarray, axis: int):
    """(int8 array, float32 scales [a.shape[axis]]): q = round(a / s), |q| <= 127."""
    other = tuple(i for i in range(a.ndim) if i != axis)
    peak = np.abs(a).max(axis=other).astype(np.float64)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    shape = [1] * a.ndim
    shape[axis] = -1
    q = np.clip(np.round(a / scale.reshape(shape).astype(np.float64)), -127, 127).astype(np.int8)
    return q, scale


def ltc_pair_int8(we: np.ndarray, w: np.ndarray):
    """((erev_q, erev_scales), (w_q, w_scales)) for the LTC's numerator / denominator weights
    we = w * erev and w [synapses, n], one scale per neuron (column) each. The reversal
    potentials erev = we / w of the synapses with w > 0 are quantised (clipped into their
    neuron's range [min, max] of them, the leak included), so the int8 graph's numerator is
    exactly w_int8 * erev_int8. None when w has a negative entry (no bound to keep: the pair
    is then quantised like any matrix)."""
    if (w < 0).any():
        return None
    w64, we64 = w.astype(np.float64), we.astype(np.float64)
    live = w64 > 0
    erev = np.where(live, we64 / np.where(live, w64, 1.0), 0.0)
    lo = np.where(live, erev, np.inf).min(axis=0)
    hi = np.where(live, erev, -np.inf).max(axis=0)
    lo, hi = np.where(np.isfinite(lo), lo, 0.0), np.where(np.isfinite(hi), hi, 0.0)
    eq, s_e = symmetric_int8(erev, 1)
    s64 = s_e.astype(np.float64)
    low, high = np.ceil(lo / s64 - 1e-9), np.floor(hi / s64 + 1e-9)  # the grid points inside [lo, hi]
    eq = np.where(low <= high, np.clip(eq, low, high), eq)  # none: a range narrower than one step
    return (eq.astype(np.int8), s_e), symmetric_int8(w, 1)


def _weight_names(graph) -> list:
    """Float32 2-D initializers (>= MIN_ELEMENTS) read only as a Gemm's B or a MatMul operand."""
    import onnx

    inits = {t.name: t for t in graph.initializer}
    uses = {}
    for node in graph.node:
        for pos, name in enumerate(node.input):
            if name in inits:
                uses.setdefault(name, []).append(pos in WEIGHT_OPS.get(node.op_type, ()))
    return [n for n, t in inits.items() if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) == 2
            and int(np.prod(t.dims)) >= MIN_ELEMENTS and uses.get(n) and all(uses[n])]


def _plan(arrays: dict, names: list) -> dict:
    """{name: (int8 array, scales, axis, stored name, factor)}: the graph reads matrix `name` as
    Cast(stored_int8) * stored_scale, times the matrix `factor` when there is one (the LTC's
    we = w * erev)."""
    plan = {}
    we, w = LTC_PAIR
    if we in names and w in arrays:
        pair = ltc_pair_int8(arrays[we], arrays[w])
        if pair is not None:
            plan[we] = (*pair[0], 1, "cell__erev", w)
            if w in names:
                plan[w] = (*pair[1], 1, w, None)
    for n in names:
        if n not in plan:
            a = arrays[n]
            axis = 0 if a.shape[0] < a.shape[1] else 1
            plan[n] = (*symmetric_int8(a, axis), axis, n, None)
    return plan


def _read_back(name, q, scale, stored, factor):
    """(initializers, nodes) that compute matrix `name` from its int8 form."""
    import onnx
    from onnx import helper, numpy_helper

    inits = [numpy_helper.from_array(q, f"{stored}_int8"), numpy_helper.from_array(scale, f"{stored}_scale")]
    out = name if factor is None else stored
    nodes = [helper.make_node("Cast", [f"{stored}_int8"], [f"{stored}_int8f"], name=f"{stored}_cast",
                              to=onnx.TensorProto.FLOAT),
             helper.make_node("Mul", [f"{stored}_int8f", f"{stored}_scale"], [out], name=f"{stored}_dequantize")]
    if factor is not None:
        nodes.append(helper.make_node("Mul", [factor, stored], [name], name=f"{name}_product"))
    return inits, nodes


def weight_only_int8(fp32_model, keep_float=()):
    """The graph with its weight matrices int8 (see the module doc); `keep_float` names
    matrices to leave float (the LTC's `w` stays float with `we`: an int8 denominator under a
    float numerator would not keep the bound). Returns (ModelProto, info)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.ModelProto()
    model.CopyFrom(fp32_model)
    g = model.graph
    keep_float = set(keep_float) | ({LTC_PAIR[1]} if LTC_PAIR[0] in keep_float else set())  # w with w*erev
    every = _weight_names(g)
    names = [n for n in every if n not in keep_float]
    arrays = {t.name: numpy_helper.to_array(t) for t in g.initializer if t.name in set(names) | set(LTC_PAIR)}
    plan = _plan(arrays, names)
    added, first, then, back = [], [], [], {}
    for name, (q, scale, axis, stored, factor) in plan.items():
        scale = np.expand_dims(scale, 1 - axis)  # [rows, 1] or [1, columns]: broadcasts over q
        inits, nodes = _read_back(name, q, scale, stored, factor)
        added += inits
        (first if factor is None else then).extend(nodes)  # a factor's read-back comes first
        back[name] = q.astype(np.float64) * scale
    for name, (*_, factor) in plan.items():
        if factor is not None:
            back[name] = back[name] * back.get(factor, arrays[factor].astype(np.float64))
    errors = {n: float(np.linalg.norm(back[n] - arrays[n]) / max(np.linalg.norm(arrays[n]), 1e-30)) for n in plan}
    kept = [t for t in g.initializer if t.name not in plan]
    del g.initializer[:]
    g.initializer.extend(kept + added)
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(first + then + nodes)
    info = {"scheme": "weight-only", "weights": "int8 (symmetric, one scale per row or column)",
            "activations": "float32", "float_weights": sorted(n for n in every if n in keep_float),
            "int8_weights": {n: {"shape": list(plan[n][0].shape), "scale_axis": plan[n][2],
                                 "stored_as": f"{plan[n][3]}_int8", "rel_error": errors[n]} for n in plan},
            "weight_bytes": weight_bytes(model), "fp32_weight_bytes": weight_bytes(fp32_model)}
    return model, info


def weight_bytes(model) -> int:
    """Bytes of every initializer's data (the weights a file stores)."""
    from onnx import numpy_helper

    return int(sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer))
