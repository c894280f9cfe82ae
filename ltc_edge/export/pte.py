"""ExecuTorch export: torch.export of the static step graph (graph.py) lowered with
to_edge_transform_and_lower to the XNNPACK delegate (ExecuTorch's portable ops run what it
does not take) -> model.pte, drift-checked in ExecuTorch's own runtime before it is written.

precision: fp32 | int8 (the PT2E flow with the XNNPACK quantizer: per-channel int8 weights,
int8 activations calibrated on step inputs the torch model visits on the calibration data,
as the other int8 exports; where that misses the metric budget, dynamic int8 activations).
Batch is fixed at 1 (a control loop's step; the runtime steps a batch row by row).

    export(model, out_dir, precision="fp32", calibration=None, fixed_dt=None, force=False)
"""

from __future__ import annotations

import collections
import time
from pathlib import Path

from ..nn import functional as F
from .graph import StepGraph
from .. import precision as precisions
from .manifest import TempDir, as_model, base_manifest, check_out_dir, check_precision, finish, quiet, versions

FILE = "model.pte"
FORMAT = "executorch"
INT8_SCHEMES = ("static", "dynamic")  # tried in order until the drift check passes
DELEGATE = "XnnpackBackend"


class LinearOps(F.TorchOps):
    """TorchOps with each constant product as `linear`: XNNPACK's partitioner and quantizer
    take linear with a constant weight, not the addmm of a [in, out] weight (left to portable
    kernels, unquantised); the transpose is folded into the constant before lowering."""

    def addmm(self, c, a, b):
        return c + self._torch.nn.functional.linear(a, b.t())


class LinearStepGraph(StepGraph):
    """graph.py's step graph (the same inputs, outputs, constants), its products as linear."""

    ops = None

    def forward(self, x, state, dt=None):
        if LinearStepGraph.ops is None:
            LinearStepGraph.ops = LinearOps()
        return F.model_step(self.ops, self.prepared(), x, state, self._dt(dt), self.config)


def step_graph(model, fixed_dt=None) -> LinearStepGraph:
    return LinearStepGraph(model.eval(), fixed_dt).eval()


def _quantized(module, scheme: str, samples):
    """The PT2E-quantised module: XNNPACK quantizer, symmetric per-channel int8 weights;
    static int8 activations calibrated on `samples`, or dynamic ones."""
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                          get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    config = get_symmetric_quantization_config(is_per_channel=True, is_dynamic=scheme == "dynamic")
    prepared = prepare_pt2e(module, XNNPACKQuantizer().set_global(config))
    for args in samples:
        prepared(*(torch.from_numpy(a) for a in args))
    return convert_pt2e(prepared)


def to_program(graph, precision: str = "fp32", samples=None, scheme: str = "static") -> bytes:
    """The .pte bytes of a step graph (batch 1; a LinearStepGraph delegates whole): torch.export,
    PT2E int8 if asked, constants folded (the weights' transposes), lowered to XNNPACK."""
    import torch

    args = graph.sample_inputs(1)
    with quiet(), torch.no_grad():  # torchao / executorch print notices from Python and C++
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower
        from executorch.exir.passes.constant_prop_pass import constant_prop_pass

        exported = torch.export.export(graph, args, strict=False)
        if precisions.method(precision, FORMAT):  # convert_pt2e folds the weights itself (and must keep its dequantize nodes)
            exported = torch.export.export(_quantized(exported.module(), scheme, samples), args, strict=False)
        else:
            exported = constant_prop_pass(exported)
        edge = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
        return bytes(edge.to_executorch().buffer)


def program_ops(content: bytes) -> dict:
    """{"delegates": {backend id: count}, "portable_ops": {op name: count}} of a .pte: what runs
    in XNNPACK and what in ExecuTorch's portable kernels."""
    from executorch.exir._serialize._program import deserialize_pte_binary

    program = deserialize_pte_binary(content)
    program = getattr(program, "program", program)
    plan = program.execution_plan[0]
    delegates = collections.Counter(d.id for d in plan.delegates)
    ops = collections.Counter(plan.operators[i.instr_args.op_index].name for c in plan.chains
                              for i in c.instructions if hasattr(i.instr_args, "op_index"))
    return {"delegates": dict(sorted(delegates.items())), "portable_ops": dict(sorted(ops.items()))}


def runner(content: bytes, names):
    """(x, state, dt) -> (y, new_state) through ExecuTorch's runtime; batch 1 per call."""
    import numpy as np
    import torch

    from ..runtime.executorch_backend import load_method

    method = load_method(content, "the exported program")

    def run(x, state, dt):
        ys, hs = [], []
        for b in range(x.shape[0]):
            feeds = [x[b:b + 1], state[b:b + 1]]
            if "dt" in names:
                feeds.append(dt[b:b + 1] if dt is not None else np.ones((1, 1), np.float32))
            y, h = method.execute([torch.from_numpy(np.ascontiguousarray(f)) for f in feeds])
            ys.append(y.numpy().copy())
            hs.append(h.numpy().copy())
        return np.concatenate(ys), np.concatenate(hs)

    return run


def _program_or_refusal(graph, precision, samples, scheme) -> bytes:
    """to_program, or one line naming why torch.export / the lowering refused the graph."""
    try:
        return to_program(graph, precision, samples, scheme)
    except Exception as e:  # torch.export and exir raise many types; the CLI shows one line
        reason = " ".join(str(e).split()) or type(e).__name__  # whole, on one line
        raise ValueError(f"executorch {precision}: the {graph.config['cell']['kind']} step graph cannot be "
                         f"exported ({type(e).__name__}: {reason}); nothing written") from None


def export(model, out_dir, *, precision: str = "fp32", calibration=None, fixed_dt=None, force: bool = False,
           drift_steps: int | None = None, **kw) -> dict:
    from . import drift as D
    from .quantize import representative_samples

    t0 = time.perf_counter()
    check_precision(precision, FORMAT)
    if kw:
        raise ValueError(f"executorch export: unknown option(s) {', '.join(sorted(kw))}")
    quantized = precisions.method(precision, FORMAT) is not None
    if precisions.needs_calibration(precision, FORMAT) and calibration is None:
        raise ValueError(f"{precision} needs calibration data: --calibration TASK or an .npz file with x [N, T, in]")
    check_out_dir(out_dir, model if isinstance(model, (str, Path)) else None)
    model = as_model(model)
    graph = step_graph(model, fixed_dt)
    data = D.load_reference(calibration, model.config, fixed_dt=fixed_dt)
    samples = representative_samples(model, data, graph) if quantized else None
    for scheme in INT8_SCHEMES if quantized else ("",):
        content = _program_or_refusal(graph, precision, samples, scheme)
        drift = D.drift_check(model, runner(content, graph.input_names()), data, precision, fixed_dt=fixed_dt,
                              steps=drift_steps or D.DRIFT_STEPS, lanes=2)
        if drift["within_budget"]:
            break
    quantization = None if not quantized else {
        "scheme": f"PT2E XNNPACKQuantizer, per-channel int8 weights, {scheme} int8 activations",
        "activations": scheme, "calibration_rows": len(samples), "calibration_data": data.source}
    with TempDir(out_dir) as tmp:
        path = tmp / FILE
        path.write_bytes(content)
        manifest = base_manifest(
            FORMAT, precision, model, graph, {"model": path}, batch=1, **program_ops(content),
            export_seconds=round(time.perf_counter() - t0, 2), drift=drift, quantization=quantization,
            versions=versions("executorch", "torchao"))
        for spec in manifest.inputs + manifest.outputs:
            spec["shape"] = [1 if d == "batch" else d for d in spec["shape"]]
        return finish(tmp, Path(out_dir), manifest, force)
