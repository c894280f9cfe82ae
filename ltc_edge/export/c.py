"""C export (format "c"): the generated C99 of ltc_edge.codegen.c, compiled for the host,
drift-checked against the torch model like every format (fp32: max-abs <= 1e-4 over >= 1000
steps, through the runtime's own C backend), and written through the one finish step.

precision "int8" (LTC and LSTM): the integer-only step of ltc_edge/codegen/int8.py (c_int.py,
c_int_lstm.py), dt fixed at export (--fixed-dt, else the training median dt), input formats
calibrated on the reference data; drift budget: the task metric within 5% of fp32, and (LTC)
the states stay within the LTC bounds over the >= 1000 drift steps.

    export(model, out_dir, precision="fp32", calibration=None, fixed_dt=None, force=False,
           prefix="ltc_model", sparse=True, build="auto", layout="flat", unroll="auto") -> manifest dict

`build`: True compiles lib<prefix>.so into the folder (an error without a compiler), False
ships sources only (still compiled in a temp folder for the drift check when a compiler is
there), "auto" ships the library when a compiler is there. The library ships with the flat
layout only; `layout` "cmake" / "arduino" writes a CMake project / an Arduino library
(ltc_edge/export/c_layout.py). The manifest states the step's stack use (host compiler).
`unroll` ("auto", "on", "off"): the LTC step's form (ltc_edge.codegen.c.generate: unrolled
straight-line gathers and sums, or loops over CSR synapse lists; "auto" unrolls up to
UNROLL_MAX_SYNAPSES synapses per list).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import precision as precisions
from ..artifact import FileEntry, Manifest, model_fields
from ..codegen import c as cgen
from .manifest import TempDir, as_model, check_out_dir, finish, io_specs, versions



def export(model, out_dir, *, precision: str = "fp32", calibration=None, fixed_dt=None, force: bool = False,
           prefix: str = "ltc_model", sparse: bool = True, build: str | bool = "auto",
           drift_steps: int | None = None, layout: str = "flat", unroll: str = "auto", **kw) -> dict:
    from . import c_layout as L
    from . import drift as D

    if kw:
        raise cgen.CodegenError(f"C export: unknown option(s) {', '.join(sorted(kw))}")
    if precision not in precisions.names("c"):
        raise cgen.CodegenError(f"C export supports precision {', '.join(precisions.names('c'))}, not {precision!r}")
    prefix, layout = cgen.c_identifier(prefix), L.check_layout(layout)
    cc = cgen.find_cc()
    if build is True and layout != "flat":
        raise cgen.CodegenError(f"the {layout} layout ships sources, not a host library")
    if build is True and cc is None:
        raise cgen.CodegenError("no C compiler found to build the library (set CC, or install gcc)")
    check_out_dir(out_dir, model if isinstance(model, (str, Path)) else None)
    model = as_model(model)
    raw = {k: v.detach().cpu().float().numpy() for k, v in model.state_dict().items()}
    integer = precisions.integer_c(precision)
    if precisions.needs_calibration(precision, "c") and calibration is None:
        raise ValueError(f"{precision} needs calibration data: --calibration TASK or an .npz file with x [N, T, in]")
    data = D.load_reference(calibration, model.config, fixed_dt=None if integer else fixed_dt)
    dt_source = None
    if integer:  # dt folded in: the given one, else the calibration data's (drift.fold_dt)
        fixed_dt, dt_source = D.fold_dt(data, model.config, fixed_dt)
    gen = _generate(model.config, raw, prefix, fixed_dt, sparse, precision, data, unroll)
    golden = _golden(model, gen, prefix, precision, fixed_dt, data, cc) if layout == "cmake" else None
    with TempDir(out_dir) as tmp:
        files = L.write_layout(tmp, layout, prefix, gen["files"], golden, versions().get("ltc-edge", ""), precision)
        manifest = _manifest(model, raw, tmp, files, prefix, precision, fixed_dt, gen["info"], layout)
        if dt_source:
            manifest.details["fixed_dt_source"] = dt_source
        manifest.details["stack_bytes"] = L.stack_usage(files["source"], prefix, cc)
        manifest.details["stack_bytes_note"] = L.stack_note(cc)
        if cc is None:
            manifest.drift = {"skipped": "no host C compiler: the sources were neither compiled nor drift-checked"}
        else:
            lib = cgen.compile_library(files["source"], tmp / f"lib{prefix}.so")
            manifest.files["library"] = FileEntry.of(lib)
            manifest.drift = _drift(model, tmp, manifest, data, precision, fixed_dt, drift_steps or D.DRIFT_STEPS)
            seen = manifest.drift.pop("states_seen")
            if integer and model.config["cell"]["kind"] == "ltc":
                _state_check(manifest, model.config, raw, seen)
            if build is False or layout != "flat":
                del manifest.files["library"]
                lib.unlink()
        return finish(tmp, Path(out_dir), manifest, force)


def _generate(config, raw, prefix, fixed_dt, sparse, precision, data, unroll) -> dict:
    if precisions.integer_c(precision):
        from ..codegen import int8

        return int8.generate(config, raw, prefix=prefix, fixed_dt=fixed_dt, calib_x=data.calib_x)
    return cgen.generate(config, raw, prefix=prefix, fixed_dt=fixed_dt, sparse=sparse, unroll=unroll)


def _golden(model, gen, prefix, precision, fixed_dt, data, cc) -> str:
    """The cmake layout's golden data header: fp32, the torch model's outputs on random inputs;
    int8, the host build's integer outputs on the reference data's first inputs."""
    from . import c_layout as L
    from . import drift as D

    n_in, n_state = int(model.config["input_size"]), cgen.F.state_size(model.config)
    if precisions.integer_c(precision):
        x = data.calib_x if data.calib_x is not None else data.x
        return L.golden_int(gen, prefix, np.asarray(x).reshape(-1, n_in), int(model.config["output_size"]),
                            n_state, cc)
    golden = L.golden_vectors(D.torch_runner(model, fixed_dt), n_in, n_state, fixed_dt)
    return cgen.golden_header(prefix, *golden, source="the torch model (export drift check)")


def _state_check(manifest: Manifest, config, raw, seen) -> None:
    """int8: the states the drift check saw stay within the LTC bounds (one LSB of slack; they
    hold the zero state the sequences start from: the update is a convex mix of a neuron's own
    value and its potentials, it never leaves that hull)."""
    lo, hi = cgen.F.ltc_state_bounds(config, raw)[0]
    lsb = 2.0 ** -manifest.quantization["state_frac_bits"]
    ok = bool(np.all(seen[0] >= lo - lsb) and np.all(seen[1] <= hi + lsb))
    manifest.drift["states_within_bounds"] = ok
    if not ok:
        manifest.drift["within_budget"] = False
        manifest.drift["over_budget"].append("a state left the LTC bounds")


def _manifest(model, raw, folder: Path, files: dict, prefix, precision, fixed_dt, info, layout) -> Manifest:
    from ..nn.schema import default_dt

    fields = model_fields(model.config, raw)
    info = dict(info)
    quant = info.pop("quantization", None)  # int8: the fixed-point formats
    shapes = {"x": ["batch", fields["input_size"]], "state": ["batch", fields["state_size"]]}
    if fields["uses_dt"] and fixed_dt is None:
        shapes["dt"] = ["batch", 1]
    return Manifest(
        format="c", precision=precision, prefix=prefix, **fields,
        files={role: FileEntry(str(p.relative_to(folder)), *_digest(p)) for role, p in files.items()},
        fixed_dt=fixed_dt, default_dt=default_dt(model.config, fixed_dt), inputs=io_specs(shapes), quantization=quant,
        outputs=io_specs({"y": ["batch", fields["output_size"]], "new_state": ["batch", fields["state_size"]]}),
        versions=versions(),
        details={**info, "layout": layout, "cflags": cgen.CFLAGS,
                 "model": {k: v for k, v in model.counts().items() if v is not None},
                 "functions": {n: f"{prefix}_{n}" for n in ("reset", "step", "step_batch", "sizes")
                               + (("step_q",) if precisions.integer_c(precision) else ("step_checked", "step_batch_checked"))}})


def _digest(path: Path) -> tuple[str, int]:
    e = FileEntry.of(path)
    return e.sha256, e.size_bytes


def _drift(model, folder: Path, manifest: Manifest, data, precision, fixed_dt, steps) -> dict:
    """Step the compiled library through the runtime's C backend (which verifies the folder
    exactly as a user's load would) beside the torch model."""
    from ..runtime.c_backend import CBackend
    from . import drift as D

    manifest.write(folder)  # provisional: the backend reads the folder like a user's
    backend = CBackend(folder, batch=1)

    def run(x, state, dt):
        if backend.batch != x.shape[0]:
            backend.bind(x.shape[0])
        backend.x[...] = x
        backend.h[...] = state
        backend.dt[...] = manifest.default_dt if dt is None else dt  # as drift.torch_runner does
        backend.run()
        h = backend.h_new
        seen[0], seen[1] = np.minimum(seen[0], h.min(0)), np.maximum(seen[1], h.max(0))
        return backend.y.copy(), h.copy()

    seen = [np.full(backend.h.shape[1], np.inf), np.full(backend.h.shape[1], -np.inf)]
    out = D.drift_check(model, run, data, precision, fixed_dt=fixed_dt, steps=steps)
    out["states_seen"] = seen
    return out
