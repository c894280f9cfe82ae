"""`ltc export`: a model file -> ONNX / TFLite / C, through ltc_edge.export.get_exporter.
Nothing heavy is imported at module level (ltc --help stays fast)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(command, load_reference=None):
    """`load_reference(model, spec, precision) -> (RefData | .npz path | None, note | None)` turns
    --calibration (a task name, a CSV, an NPZ, or nothing: the model's stored task) into the
    exporters' reference data; the CLI passes it (export never imports train)."""

    @command("export")
    def export_cmd(
        model: Path = typer.Argument(..., help="A model file (.safetensors) written by ltc-edge."),
        fmt: str = typer.Option(..., "--format", "-f", help="onnx, tflite, executorch (XNNPACK .pte) or c."),
        out: Path = typer.Option(..., "--out", "-o", help="Folder for the exported files and manifest.json "
                                                         "(a new folder, or an earlier export: replaced whole)."),
        precision: str = typer.Option("fp32", help="fp32, fp16 or int8 (tflite: also int8-full, and int8-tflm "
                                                    "for TFLite-Micro: int8 weights, int8 synapse products and "
                                                    "sigmoids, the LTC's update in float; int8 is dynamic-range "
                                                    "there; c: fp32, or int8 = an integer-only LTC or LSTM "
                                                    "step with dt fixed at export; executorch: fp32, int8 = PT2E)."),
        calibration: Optional[str] = typer.Option(
            None, help="Calibration / drift-check data. Default: the task and data file the model was "
                       "trained on (sha256-checked). Or a task name (cheetah, digits, ...), a CSV (the "
                       "model's own columns on it), or an .npz with x [N, T, in] (optional dt, y); the int8 "
                       "precisions need real data."),
        calibration_method: Optional[str] = typer.Option(
            None, "--calibration-method", help="int8 ONNX: static QDQ (int8 activations too) calibrated with "
                                                    "minmax, percentile or entropy. Default: weight-only int8 "
                                                    "(int8 weight matrices, float compute; no calibration pass)."),
        fixed_dt: Optional[float] = typer.Option(
            None, "--fixed-dt", help="Fold a constant dt into the graph (no dt input; c int8: the data's dt)."),
        force: bool = typer.Option(False, "--force", help="Write the files even when over the drift budget."),
        prefix: Optional[str] = typer.Option(
            None, "--prefix", help="c: the symbol prefix (a C identifier; default ltc_model): NAME.h, NAME_step, "
                                   "NAME_state_t... so that several models link into one firmware."),
        layout: Optional[str] = typer.Option(
            None, "--layout", help="c: flat (default: header, source, host library), cmake (a CMake library "
                                   "target + golden test + arm-none-eabi toolchain file) or arduino (a library)."),
        ort: bool = typer.Option(
            False, "--ort", help="onnx: also model.ort (ONNX Runtime Mobile's format) and model_b1.onnx (batch fixed "
                                 "to 1, for the NNAPI / CoreML providers), both checked against model.onnx; "
                                 "onnxruntime's mobile usability verdict goes in the manifest."),
        unroll: Optional[str] = typer.Option(
            None, "--unroll", help="c, LTC: auto (default: up to 512 synapses per list), on, off: straight-line "
                                   "or loops; Cortex-M4F/M7/M33 builds take its FPv4 assembly step."),
    ):
        """Export a model as a static, unrolled step graph (ONNX, TFLite, ExecuTorch) or C99 source + library,
        drift-checked against the torch model (fp32: max-abs <= 1e-4 over >= 1000 steps)."""
        extra = {} if calibration_method is None else {"calibration_method": calibration_method}
        if ort:
            extra["ort"] = True
        _run(model, fmt, out, precision, calibration, fixed_dt, force, extra, load_reference, (prefix, layout, unroll))


def _run(model: Path, fmt: str, out: Path, precision: str, calibration, fixed_dt, force: bool, extra: dict,
         load_reference, c_options: tuple) -> None:
    """export_cmd's work: the arguments checked (one line each), the model loaded, exported, summarised."""
    from . import get_exporter
    from .manifest import check_out_dir, check_precision

    exporter = get_exporter(fmt)  # unknown format: one-line ValueError
    check_precision(precision)  # any registry name (ltc_edge/precision.py); each exporter narrows it
    if fixed_dt is not None and not (0 < fixed_dt < 3.4e38):
        raise ValueError(f"--fixed-dt must be a positive finite number, got {fixed_dt}")
    if extra.get("ort") and fmt != "onnx":
        raise ValueError(f"--ort applies to --format onnx only (ONNX Runtime Mobile), not {fmt}")
    if not model.exists():
        raise FileNotFoundError(f"{model}: no such model file")
    check_out_dir(out, model)
    from ..nn.modelfile import load

    extra.update(_c_options(fmt, *c_options))
    ref, note = (calibration, None) if load_reference is None else load_reference(model, calibration, precision)
    if note:
        typer.echo(f"note: {note}", err=True)
    manifest = exporter(load(model), out, precision=precision, calibration=ref, fixed_dt=fixed_dt, force=force,
                        **extra)
    _summary(manifest, out)


def _c_options(fmt: str, prefix, layout, unroll) -> dict:
    """--prefix / --layout / --unroll: C only, checked before anything is loaded."""
    given = {k: v for k, v in (("prefix", prefix), ("layout", layout), ("unroll", unroll)) if v is not None}
    if given and fmt != "c":
        raise ValueError(f"--{' and --'.join(given)} {'applies' if len(given) == 1 else 'apply'} to --format c only")
    from ..codegen.c import UNROLL_MODES, c_identifier
    from .c_layout import check_layout

    if prefix is not None:
        c_identifier(prefix)
    if layout is not None:
        check_layout(layout)
    if unroll is not None and unroll not in UNROLL_MODES:
        raise ValueError(f"--unroll must be one of {', '.join(UNROLL_MODES)}, got {unroll!r}")
    return given


def _summary(manifest: dict, out: Path):
    drift = manifest.get("drift") or {}
    where = out / manifest["file"] if manifest.get("file") else out
    parts = [f"{manifest.get('format')} {manifest.get('precision')}: {where}"]
    if manifest.get("size_bytes"):
        parts.append(f"{manifest['size_bytes']} bytes")
    if "node_count" in manifest:
        parts.append(f"{manifest['node_count']} nodes")
    quant = manifest.get("quantization") or {}
    if quant.get("weight_bytes"):
        parts.append(f"weights {quant['weight_bytes']} bytes (fp32 {quant['fp32_weight_bytes']})")
    if quant.get("float_weights"):
        kept = len(quant["float_weights"])
        parts.append(f"{kept} of {kept + len(quant['int8_weights'])} weight matrices left float")
    if quant.get("excluded_nodes"):
        kept = len(quant["excluded_nodes"])
        parts.append(f"{kept} of {kept + quant['quantized_nodes']} products left out of int8 (mixed precision)")
    mobile = (manifest.get("ort_mobile") or {}).get("usability")
    if mobile:
        parts.append(f"model.ort + model_b1.onnx (mobile usability check {'passes' if mobile['passes'] else 'FAILS'})")
    if manifest.get("fixed_dt_source"):
        parts.append(f"dt fixed at {manifest['fixed_dt']:g} from {manifest['fixed_dt_source']}")
    if drift.get("skipped"):
        parts.append(f"drift not checked: {drift['skipped']}")
    if "max_abs" in drift:
        parts.append(f"drift max-abs {drift['max_abs']:.2g} over {drift['steps']} steps")
    metric = drift.get("metric") or {}
    if metric.get("name"):
        parts.append(f"{metric['name']} {metric['exported']:.4g} (fp32 {metric['torch_fp32']:.4g})")
    if manifest.get("forced"):
        parts.append("OVER BUDGET (forced)")
    if manifest.get("kept"):
        parts.append(f"kept what the export did not write: {', '.join(manifest['kept'][:5])}"
                     f"{' ...' if len(manifest['kept']) > 5 else ''}")
    typer.echo(", ".join(parts))
