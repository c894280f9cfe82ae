"""TFLite export through litert-torch (torch -> .tflite, no TensorFlow), quantised with
ai-edge-quantizer recipes, drift-checked in ai-edge-litert's Interpreter.

precision: fp32 | fp16 (fp16 weights, float compute) | int8 (dynamic range: int8 weights,
activations quantised on the fly) | int8-full (static int8 weights and activations from a
representative data set) | int8-tflm (for TensorFlow Lite for Microcontrollers: every weight
int8; the synapse pre-activation products and sigmoids static int8, calibrated; the
products feeding the LTC's update, the update and its division float, their int8 weights
dequantised per tensor, which is all TFLM's DEQUANTIZE does; drift-checked in TFLM's own
interpreter). Batch is fixed at 1 (a control loop's step). Only builtin ops: the export
fails on Flex / custom ops.

    export(model, out_dir, precision="fp32", calibration=None, fixed_dt=None, force=False)
"""

from __future__ import annotations

import os as _os

# LiteRT / TensorFlow Lite log every conversion and delegate at INFO: keep a user's terminal clean
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
_os.environ.setdefault("GLOG_minloglevel", "2")

import collections
from pathlib import Path

import numpy as np

from .. import precision as precisions
from .manifest import TempDir, as_model, base_manifest, check_out_dir, check_precision, finish, quiet, versions

FILE = "model.tflite"
# int8-tflm schemes, tried in order until the drift check passes: tflm_plan's integer group (the
# synapse pre-activations and sigmoids) in int8 or int16 activations, the update products 16x8
# (int16 activations, per-channel int8 weights); else every product's weights int8 (per tensor)
# computed in float (TFLM dequantises them); else the same with the update products' weights in
# float (a small fully connected LTC's bang-bang controller needs that; its int16 sigmoids miss)
TFLM_SCHEMES = ("int8", "int16", "weight-only", "weight-only-float-update")
TFLM_INTEGER_SCHEMES = TFLM_SCHEMES[:2]  # the schemes with integer activations (8 or 16 bits)


def _for_tflm(precision: str) -> bool:
    """The precision whose quantisation is TFLite-Micro's plan (int8-tflm: drift-checked in TFLM)."""
    return precisions.method(precision, "tflite") == "tflm"


def convert_fp32(graph) -> bytes:
    names = graph.input_names()
    with quiet():
        import litert_torch

        edge = litert_torch.convert(graph, sample_kwargs=dict(zip(names, graph.sample_inputs(1))))
        return bytes(edge.model_content())


def _recipe(precision):
    from ai_edge_quantizer import qtyping, recipe, recipe_manager
    from ai_edge_quantizer.recipe import AlgorithmName

    quantized = precisions.method(precision, "tflite")
    if quantized == "dynamic":
        return recipe.dynamic_wi8_afp32()
    if quantized == "static":
        return recipe.static_wi8_ai8()
    rm = recipe_manager.RecipeManager()  # fp16: weights cast to float16, float compute
    rm.add_quantization_config(
        regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
        op_config=qtyping.OpQuantizationConfig(
            weight_tensor_config=qtyping.TensorQuantizationConfig(num_bits=16, dtype=qtyping.TensorDataType.FLOAT),
            compute_precision=qtyping.ComputePrecision.FLOAT, explicit_dequantize=True),
        algorithm_key=AlgorithmName.FLOAT_CASTING)
    return rm.get_quantization_recipe()


def _ops(content: bytes):
    """[(op name, input tensor names, output tensor names)] of the main subgraph."""
    from ai_edge_litert import schema_py_generated as schema

    m = schema.Model.GetRootAsModel(content, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    sg = m.Subgraphs(0)

    def tname(i):
        return sg.Tensors(i).Name().decode("utf-8", "replace") if i >= 0 else ""

    out = []
    for j in range(sg.OperatorsLength()):
        op = sg.Operators(j)
        oc = m.OperatorCodes(op.OpcodeIndex())
        out.append((names.get(max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()), "?"),
                    [tname(op.Inputs(i)) for i in range(op.InputsLength())],
                    [tname(op.Outputs(i)) for i in range(op.OutputsLength())]))
    return out


def _input_names(content: bytes) -> list:
    from ai_edge_litert import schema_py_generated as schema

    sg = schema.Model.GetRootAsModel(content, 0).Subgraphs(0)
    return [sg.Tensors(sg.Inputs(k)).Name().decode("utf-8", "replace") for k in range(sg.InputsLength())]


def tflm_plan(content: bytes) -> dict:
    """Which ops of an fp32 graph int8-tflm computes in integer: each LOGISTIC, the ADD
    feeding it and the FULLY_CONNECTED products feeding those (an LTC's synapse
    pre-activations; the sigmoid's output in [0, 1] fits int8), except the product of the
    model input x (one int8 scale for inputs of very different ranges costs the most, as in
    the int8 ONNX). Integer weights are int8 per tensor: per channel, a synapse column with no
    weight in a product but a bias (the sensory product's recurrent columns, the always-on
    one) gets a zero scale and an int32 bias that overflows. The other products (x's, the
    LTC's numerator and denominator sums, the output map) compute in float from int8 weights:
    quantised outputs there break the convex mix that keeps the state in bounds.
    {"integer": [op scopes], "weight_only": [op scopes]} (scope: the op's output names, as
    ai-edge-quantizer names it)."""
    ops = _ops(content)
    x_name = _input_names(content)[0]  # the model input x: its product stays float (see above)
    producer = {o: k for k, (_, _, outs) in enumerate(ops) for o in outs}
    integer = set()
    for k, (name, ins, _) in enumerate(ops):
        if name != "LOGISTIC":
            continue
        integer.add(k)
        frontier = [producer[i] for i in ins if i in producer]
        while frontier:
            p = frontier.pop()
            if ops[p][0] in ("ADD", "FULLY_CONNECTED") and p not in integer and x_name not in ops[p][1]:
                integer.add(p)
                if ops[p][0] == "ADD":
                    frontier += [producer[i] for i in ops[p][1] if i in producer]

    def scope(k):
        return ";".join(o for o in ops[k][2] if o) + ";"

    sigmoids = {o for name, _, outs in ops if name == "LOGISTIC" for o in outs}
    update = {k for k, (name, ins, _) in enumerate(ops) if name == "FULLY_CONNECTED" and sigmoids & set(ins)}
    return {"integer": sorted(scope(k) for k in integer), "update": sorted(scope(k) for k in update),
            "weight_only": sorted(scope(k) for k, op in enumerate(ops)
                                  if op[0] == "FULLY_CONNECTED" and k not in integer | update)}


def _tflm_recipe(fp32: bytes, scheme: str = "int8"):
    import re

    from ai_edge_quantizer import qtyping, recipe_manager

    plan = tflm_plan(fp32)
    rm = recipe_manager.RecipeManager()
    weight_only = plan["weight_only"] + {"weight-only": plan["integer"] + plan["update"],
                                         "weight-only-float-update": plan["integer"]}.get(scheme, [])
    if weight_only:  # per tensor: TFLM's DEQUANTIZE reads one scale, per-channel weights would run wrong
        rm.add_weight_only_config(regex="^(?:" + "|".join(map(re.escape, weight_only)) + ")$",
                                  operation_name=qtyping.TFLOperationName.FULLY_CONNECTED, num_bits=8,
                                  granularity=qtyping.QuantGranularity.TENSORWISE)
    G = qtyping.QuantGranularity
    static = (("integer", int(scheme[3:]), G.TENSORWISE), ("update", 16, G.CHANNELWISE)) if scheme in TFLM_INTEGER_SCHEMES \
        else ()
    for group, bits, granularity in static:
        if plan[group]:
            rm.add_static_config(regex="^(?:" + "|".join(map(re.escape, plan[group])) + ")$",
                                 operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                                 activation_num_bits=bits, weight_num_bits=8, weight_granularity=granularity)
    return rm.get_quantization_recipe(), plan


def quantize(fp32: bytes, precision: str, samples=None, names=None, scheme: str = "int8") -> bytes:
    """fp32 .tflite bytes -> quantised bytes (ai_edge_quantizer). scheme: int8-tflm's, one of
    TFLM_SCHEMES."""
    from ai_edge_quantizer import quantizer

    if precisions.method(precision, "tflite") is None:
        return fp32
    q = quantizer.Quantizer(fp32, _tflm_recipe(fp32, scheme)[0] if _for_tflm(precision) else _recipe(precision))
    with quiet():
        calib = None
        if q.need_calibration:
            data = {"serving_default": [dict(zip(names, args)) for args in samples]}
            calib = q.calibrate(data, num_threads=1)
        return bytes(q.quantize(calib).quantized_model)


def op_list(content: bytes):
    """(histogram of op names, non-builtin ops) straight from the flatbuffer."""
    from ai_edge_litert import schema_py_generated as schema

    m = schema.Model.GetRootAsModel(content, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes, custom = [], []
    for i in range(m.OperatorCodesLength()):
        oc = m.OperatorCodes(i)
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        if code == schema.BuiltinOperator.CUSTOM:
            cname = oc.CustomCode().decode() if oc.CustomCode() else "?"
            codes.append(f"CUSTOM:{cname}")
            custom.append(cname)
        else:
            codes.append(names.get(code, str(code)))
    hist = collections.Counter()
    for s in range(m.SubgraphsLength()):
        sg = m.Subgraphs(s)
        for j in range(sg.OperatorsLength()):
            hist[codes[sg.Operators(j).OpcodeIndex()]] += 1
    return dict(sorted(hist.items())), custom


def interpreter(content: bytes):
    from ai_edge_litert.interpreter import Interpreter

    try:
        with quiet():  # "Created TensorFlow Lite XNNPACK delegate" from C++
            it = Interpreter(model_content=content, num_threads=1)
            it.allocate_tensors()
    except (RuntimeError, ValueError) as e:  # e.g. a delegate refusing int8 scales from absurd calibration data
        reason = " ".join(str(e).split())
        raise ValueError(f"LiteRT cannot prepare the converted model ({reason}); nothing written "
                         "(int8-full: are the calibration values in the model's real input range?)") from None
    return it


def runner(it, names):
    """(x, state, dt) -> (y, new_state) through the model's serving_default signature;
    batch 1 per call (a batch is run row by row)."""
    sig = it.get_signature_runner("serving_default")
    outs = sorted(it.get_signature_list()["serving_default"]["outputs"])
    ind, outd = sig.get_input_details(), sig.get_output_details()

    from ..runtime.tflite_backend import from_tensor, to_tensor

    def q(name, v):  # float -> the input's type (int8 inputs of a full-int8 model)
        return to_tensor(ind[name], v)

    def dq(name, v):
        return from_tensor(outd[name], v)

    def run(x, state, dt):
        ys, hs = [], []
        for b in range(x.shape[0]):
            feeds = {"x": x[b:b + 1], "state": state[b:b + 1]}
            if "dt" in names:
                feeds["dt"] = dt[b:b + 1] if dt is not None else np.ones((1, 1), np.float32)
            r = sig(**{k: q(k, v) for k, v in feeds.items()})
            ys.append(dq(outs[0], r[outs[0]]))
            hs.append(dq(outs[1], r[outs[1]]))
        return np.concatenate(ys), np.concatenate(hs)

    return run


def constant_bytes(content: bytes) -> dict:
    """Bytes of the constant tensors (weights, biases) by element type, each buffer once."""
    from ai_edge_litert import schema_py_generated as schema

    m = schema.Model.GetRootAsModel(content, 0)
    types = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    out, seen = collections.Counter(), set()
    for s in range(m.SubgraphsLength()):
        sg = m.Subgraphs(s)
        for i in range(sg.TensorsLength()):
            t = sg.Tensors(i)
            b = t.Buffer()
            if b <= 0 or b in seen or b >= m.BuffersLength():
                continue
            seen.add(b)
            buf = m.Buffers(b)
            n = buf.DataLength() or (buf.Size() if buf.Offset() > 1 else 0)
            if n:
                out[types.get(t.Type(), str(t.Type()))] += int(n)
    return dict(sorted(out.items()))


def _drift_runner(content: bytes, precision: str, graph):
    """The exported bytes as a drift-check runner: in TFLite-Micro's interpreter for
    int8-tflm (the component the file is for), else in LiteRT's."""
    if not _for_tflm(precision):
        return runner(interpreter(content), graph.input_names())
    from ..errors import LtcEdgeError
    from ..runtime.tflm_backend import TFLMStepper

    try:
        stepper = TFLMStepper(content, (graph.input_size, graph.state_size, graph.output_size),
                              source="the int8-tflm graph")
    except LtcEdgeError as e:
        raise ValueError(f"tflite int8-tflm: {e}; nothing written") from None
    return stepper.runner()


def _quantization_info(precision, fp32, content, data, samples, scheme="int8") -> dict | None:
    if precisions.method(precision, "tflite") is None:
        return None
    info = {"constant_bytes": constant_bytes(content), "fp32_constant_bytes": constant_bytes(fp32),
            "fp32_file_bytes": len(fp32)}
    if samples is not None:
        info.update(calibration_rows=len(samples), calibration_data=data.source)
    if _for_tflm(precision) and scheme in TFLM_INTEGER_SCHEMES:
        plan = tflm_plan(fp32)
        info.update(interpreter="tflite-micro", scheme=scheme, integer_activation_bits=int(scheme[3:]),
                    integer_ops=len(plan["integer"]), update_products_16x8=len(plan["update"]),
                    float_products_with_int8_weights=len(plan["weight_only"]),
                    activations=f"{scheme} static (asymmetric) in the synapse pre-activations and "
                                "sigmoids; int16 out of the numerator / denominator products; float in the "
                                "state update and its division",
                    weights="int8 (symmetric): per tensor, per channel in the numerator / denominator products")
    elif _for_tflm(precision):
        info.update(interpreter="tflite-micro", scheme=scheme, activations="float (the integer schemes missed "
                    "the drift budget)", weights="int8 per tensor, dequantised by TFLM, in every product"
                    + (" but the numerator / denominator ones (float)" if scheme == "weight-only-float-update" else ""))
    return info


def export(model, out_dir, *, precision: str = "fp32", calibration=None, fixed_dt=None, force: bool = False,
           drift_steps: int | None = None, **kw) -> dict:
    import time

    from . import drift as D
    from .graph import build_graph
    from .quantize import representative_samples

    t0 = time.perf_counter()
    check_precision(precision, "tflite")
    if kw:
        raise ValueError(f"tflite export: unknown option(s) {', '.join(sorted(kw))}")
    static = precisions.needs_calibration(precision, "tflite")
    if static and calibration is None:
        raise ValueError(f"{precision} needs calibration data: --calibration TASK or an .npz file with x [N, T, in]")
    check_out_dir(out_dir, model if isinstance(model, (str, Path)) else None)
    model = as_model(model)
    graph = build_graph(model, fixed_dt=fixed_dt)
    data = D.load_reference(calibration, model.config, fixed_dt=fixed_dt)
    fp32 = convert_fp32(graph)
    t1 = time.perf_counter()
    samples = representative_samples(model, data, graph) if static else None
    tq = time.perf_counter() - t1
    for scheme in TFLM_SCHEMES if _for_tflm(precision) else ("int8",):
        t = time.perf_counter()
        content = quantize(fp32, precision, samples, graph.input_names(), scheme=scheme)
        tq += time.perf_counter() - t
        hist, drift = _checked(model, content, precision, graph, data, fixed_dt, drift_steps)
        if drift["within_budget"]:
            break
    seconds = {"convert": round(t1 - t0, 2), "quantize": round(tq, 2),
               "drift_check": round(time.perf_counter() - t1 - tq, 2)}
    info = _quantization_info(precision, fp32, content, data, samples, scheme)
    return _write(out_dir, model, graph, precision, content, hist, drift, force, info, seconds)


def _checked(model, content, precision, graph, data, fixed_dt, drift_steps):
    """(op histogram, drift) of quantised bytes; one-line errors for non-builtin ops and for
    a kernel that refuses to run them."""
    from . import drift as D

    hist, custom = op_list(content)
    if custom or any(k.startswith("FLEX") for k in hist):
        raise ValueError(f"tflite export produced non-builtin ops {custom}: not portable to plain TFLite")
    run = _drift_runner(content, precision, graph)
    try:
        return hist, D.drift_check(model, run, data, precision, fixed_dt=fixed_dt,
                                   steps=drift_steps or D.DRIFT_STEPS, lanes=2)
    except RuntimeError as e:  # a kernel refusing its quantised inputs: no file is better than one that fails
        reason = str(e).strip().splitlines()[0]
        hint = " (an int8 denominator rounded to zero: keep the LTC's division in float with --precision int8)" \
            if "div.cc" in reason else ""
        where = "TFLite-Micro" if _for_tflm(precision) else "LiteRT"
        raise ValueError(f"tflite {precision}: {where} cannot run the quantised graph on the calibration data: "
                         f"{reason}{hint}; nothing written") from None


def _write(out_dir, model, graph, precision, content, hist, drift, force, quantization, seconds):
    with TempDir(out_dir) as tmp:
        path = tmp / FILE
        path.write_bytes(content)
        extra = {"interpreter": "tflite-micro"} if _for_tflm(precision) else {}
        manifest = base_manifest(
            "tflite", precision, model, graph, {"model": path}, batch=1, op_count=sum(hist.values()), op_histogram=hist,
            builtin_ops_only=True, signature="serving_default", export_seconds=seconds, **extra,
            drift=drift, quantization=quantization,
            versions=versions("litert-torch", "ai-edge-litert", "ai-edge-quantizer",
                              *(("tflite-micro",) if _for_tflm(precision) else ())))
        for spec in manifest.inputs + manifest.outputs:
            spec["shape"] = [1 if d == "batch" else d for d in spec["shape"]]
        return finish(tmp, Path(out_dir), manifest, force)
