"""TFLite export through litert-torch (torch -> .tflite, no TensorFlow), quantised with
ai-edge-quantizer recipes, drift-checked in ai-edge-litert's Interpreter.

precision: fp32 | fp16 (fp16 weights, float compute) | int8 (dynamic range: int8 weights,
activations quantised on the fly) | int8-full (static int8 weights and activations from a
representative data set). Batch is fixed at 1 (a control loop's step). Only builtin ops:
the export fails on Flex / custom ops.

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

from .manifest import TempDir, as_model, base_manifest, check_out_dir, check_precision, finish, quiet, versions

FILE = "model.tflite"
PRECISIONS = ("fp32", "fp16", "int8", "int8-full")


def convert_fp32(graph) -> bytes:
    names = graph.input_names()
    with quiet():
        import litert_torch

        edge = litert_torch.convert(graph, sample_kwargs=dict(zip(names, graph.sample_inputs(1))))
        return bytes(edge.model_content())


def _recipe(precision):
    from ai_edge_quantizer import qtyping, recipe, recipe_manager
    from ai_edge_quantizer.recipe import AlgorithmName

    if precision == "int8":
        return recipe.dynamic_wi8_afp32()
    if precision == "int8-full":
        return recipe.static_wi8_ai8()
    rm = recipe_manager.RecipeManager()  # fp16: weights cast to float16, float compute
    rm.add_quantization_config(
        regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
        op_config=qtyping.OpQuantizationConfig(
            weight_tensor_config=qtyping.TensorQuantizationConfig(num_bits=16, dtype=qtyping.TensorDataType.FLOAT),
            compute_precision=qtyping.ComputePrecision.FLOAT, explicit_dequantize=True),
        algorithm_key=AlgorithmName.FLOAT_CASTING)
    return rm.get_quantization_recipe()


def quantize(fp32: bytes, precision: str, samples=None, names=None) -> bytes:
    """fp32 .tflite bytes -> quantised bytes (ai_edge_quantizer)."""
    from ai_edge_quantizer import quantizer

    if precision == "fp32":
        return fp32
    q = quantizer.Quantizer(fp32, _recipe(precision))
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
        reason = " ".join(str(e).split())[:160]
        raise ValueError(f"LiteRT cannot prepare the converted model ({reason}); nothing written "
                         "(int8-full: are the calibration values in the model's real input range?)") from None
    return it


def runner(it, names):
    """(x, state, dt) -> (y, new_state) through the model's serving_default signature;
    batch 1 per call (a batch is run row by row)."""
    sig = it.get_signature_runner("serving_default")
    outs = sorted(it.get_signature_list()["serving_default"]["outputs"])
    ind, outd = sig.get_input_details(), sig.get_output_details()

    def q(name, v):  # float -> the input's type (int8 inputs of a full-int8 model)
        d = ind[name]
        if d["dtype"] == np.float32:
            return v
        scale, zp = d["quantization"]
        info = np.iinfo(d["dtype"])
        return np.clip(np.round(v / scale) + zp, info.min, info.max).astype(d["dtype"])

    def dq(name, v):
        d = outd[name]
        if d["dtype"] == np.float32:
            return v
        scale, zp = d["quantization"]
        return ((v.astype(np.float32) - zp) * scale).astype(np.float32)

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


def export(model, out_dir, *, precision: str = "fp32", calibration=None, fixed_dt=None, force: bool = False,
           drift_steps: int | None = None, **kw) -> dict:
    from . import drift as D
    from .graph import build_graph
    from .quantize import representative_samples

    check_precision(precision, PRECISIONS)
    if kw:
        raise ValueError(f"tflite export: unknown option(s) {', '.join(sorted(kw))}")
    if precision == "int8-full" and calibration is None:
        raise ValueError("int8-full needs calibration data: --calibration TASK or an .npz file with x [N, T, in]")
    check_out_dir(out_dir, model if isinstance(model, (str, Path)) else None)
    model = as_model(model)
    graph = build_graph(model, fixed_dt=fixed_dt)
    data = D.load_reference(calibration, model.config, fixed_dt=fixed_dt)
    names = graph.input_names()
    fp32 = convert_fp32(graph)
    samples = representative_samples(model, data, graph) if precision == "int8-full" else None
    content = quantize(fp32, precision, samples, names)
    hist, custom = op_list(content)
    if custom or any(k.startswith("FLEX") for k in hist):
        raise ValueError(f"tflite export produced non-builtin ops {custom}: not portable to plain TFLite")
    it = interpreter(content)
    budget_precision = {"int8-full": "int8"}.get(precision, precision)
    try:
        drift = D.drift_check(model, runner(it, names), data, budget_precision, fixed_dt=fixed_dt,
                              steps=drift_steps or D.DRIFT_STEPS, lanes=2)
    except RuntimeError as e:  # a kernel refusing its quantised inputs: no file is better than one that fails
        reason = str(e).strip().splitlines()[0]
        hint = " (an int8 denominator rounded to zero: keep the LTC's division in float with --precision int8)" \
            if "div.cc" in reason else ""
        raise ValueError(f"tflite {precision}: LiteRT cannot run the quantised graph on the calibration data: "
                         f"{reason}{hint}; nothing written") from None
    with TempDir(out_dir) as tmp:
        path = tmp / FILE
        path.write_bytes(content)
        manifest = base_manifest(
            "tflite", precision, model, graph, {"model": path}, batch=1, op_count=sum(hist.values()), op_histogram=hist,
            builtin_ops_only=True, signature="serving_default",
            drift=drift, versions=versions("litert-torch", "ai-edge-litert", "ai-edge-quantizer"))
        for spec in manifest.inputs + manifest.outputs:
            spec["shape"] = [1 if d == "batch" else d for d in spec["shape"]]
        return finish(tmp, Path(out_dir), manifest, force)
