"""C export (format "c"): the generated C99 of ltc_edge.codegen.c, compiled for the host,
drift-checked against the torch model like every format (fp32: max-abs <= 1e-4 over >= 1000
steps, through the runtime's own C backend), and written through the one finish step.

    export(model, out_dir, precision="fp32", calibration=None, fixed_dt=None, force=False,
           prefix="ltc_model", sparse=True, build="auto", unroll="auto") -> manifest dict

`build`: True compiles lib<prefix>.so into the folder (an error without a compiler), False
ships sources only (still compiled in a temp folder for the drift check when a compiler is
there), "auto" ships the library when a compiler is there. `unroll` ("auto", "on", "off"): the
LTC step's form (ltc_edge.codegen.c.generate: unrolled straight-line gathers and sums, or loops
over CSR synapse lists; "auto" unrolls up to UNROLL_MAX_SYNAPSES synapses per list).
"""

from __future__ import annotations

from pathlib import Path

from ..artifact import FileEntry, Manifest, model_fields
from ..codegen import c as cgen
from .manifest import TempDir, as_model, check_out_dir, finish, io_specs, versions

PRECISIONS = ("fp32",)


def export(model, out_dir, *, precision: str = "fp32", calibration=None, fixed_dt=None, force: bool = False,
           prefix: str = "ltc_model", sparse: bool = True, build: str | bool = "auto",
           drift_steps: int | None = None, unroll: str = "auto", **kw) -> dict:
    from . import drift as D

    if kw:
        raise cgen.CodegenError(f"C export: unknown option(s) {', '.join(sorted(kw))}")
    if precision not in PRECISIONS:
        raise cgen.CodegenError(f"C export supports precision {', '.join(PRECISIONS)}, not {precision!r}")
    cc = cgen.find_cc()
    if build is True and cc is None:
        raise cgen.CodegenError("no C compiler found to build the library (set CC, or install gcc)")
    check_out_dir(out_dir, model if isinstance(model, (str, Path)) else None)
    model = as_model(model)
    raw = {k: v.detach().cpu().float().numpy() for k, v in model.state_dict().items()}
    gen = cgen.generate(model.config, raw, prefix=prefix, fixed_dt=fixed_dt, sparse=sparse, unroll=unroll)
    data = D.load_reference(calibration, model.config, fixed_dt=fixed_dt)
    with TempDir(out_dir) as tmp:
        for name, text in gen["files"].items():
            (tmp / name).write_text(text)
        manifest = _manifest(model, raw, tmp, prefix, precision, fixed_dt, gen["info"])
        if cc is None:
            manifest.drift = {"skipped": "no host C compiler: the sources were neither compiled nor drift-checked"}
        else:
            lib = cgen.compile_library(tmp / f"{prefix}.c", tmp / f"lib{prefix}.so")
            manifest.files["library"] = FileEntry.of(lib)
            manifest.drift = _drift(model, tmp, manifest, data, precision, fixed_dt, drift_steps or D.DRIFT_STEPS)
            if build is False:
                del manifest.files["library"]
                lib.unlink()
        return finish(tmp, Path(out_dir), manifest, force)


def _manifest(model, raw, folder: Path, prefix, precision, fixed_dt, info) -> Manifest:
    fields = model_fields(model.config, raw)
    shapes = {"x": ["batch", fields["input_size"]], "state": ["batch", fields["state_size"]]}
    if fields["uses_dt"] and fixed_dt is None:
        shapes["dt"] = ["batch", 1]
    return Manifest(
        format="c", precision=precision, prefix=prefix, **fields,
        files={"header": FileEntry.of(folder / f"{prefix}.h"), "source": FileEntry.of(folder / f"{prefix}.c")},
        fixed_dt=fixed_dt, default_dt=fixed_dt or 1.0, inputs=io_specs(shapes),
        outputs=io_specs({"y": ["batch", fields["output_size"]], "new_state": ["batch", fields["state_size"]]}),
        versions=versions(),
        details={**info, "cflags": cgen.CFLAGS, "model": {k: v for k, v in model.counts().items() if v is not None},
                 "functions": {n: f"{prefix}_{n}" for n in ("reset", "step", "step_batch", "step_checked",
                                                             "step_batch_checked", "sizes")}})


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
        backend.dt[...] = manifest.default_dt if dt is None else dt
        backend.run()
        return backend.y.copy(), backend.h_new.copy()

    return D.drift_check(model, run, data, precision, fixed_dt=fixed_dt, steps=steps)
