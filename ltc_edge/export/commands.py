"""`ltc export`: a model file -> ONNX / TFLite / C, through ltc_edge.export.get_exporter.
Nothing heavy is imported at module level (ltc --help stays fast)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(command, load_task=None):
    """`load_task(name) -> RefData` turns a --calibration task name into arrays; the CLI passes
    it (export never imports train)."""

    @command("export")
    def export_cmd(
        model: Path = typer.Argument(..., help="A model file (.safetensors) written by ltc-edge."),
        fmt: str = typer.Option(..., "--format", "-f", help="onnx, tflite or c."),
        out: Path = typer.Option(..., "--out", "-o", help="Folder for the exported files and manifest.json "
                                                         "(a new folder, or an earlier export: replaced whole)."),
        precision: str = typer.Option("fp32", help="fp32, fp16 or int8 (tflite: also int8-full, and int8-tflm "
                                                    "for TFLite-Micro: int8 weights, int8 synapse products and "
                                                    "sigmoids, the LTC's update in float; int8 is dynamic-range "
                                                    "there; c: fp32 only)."),
        calibration: Optional[str] = typer.Option(
            None, help="Calibration / drift-check data: a task name (cheetah, digits, ...) or an .npz "
                       "with x [N, T, in] (optional dt, y). Required for int8, int8-full and int8-tflm."),
        calibration_method: Optional[str] = typer.Option(
            None, "--calibration-method", help="int8 ONNX: minmax (default), percentile or entropy."),
        fixed_dt: Optional[float] = typer.Option(
            None, "--fixed-dt", help="Fold a constant elapsed time into the graph (no dt input)."),
        force: bool = typer.Option(False, "--force", help="Write the files even when over the drift budget."),
    ):
        """Export a model as a static, unrolled step graph (ONNX, TFLite) or C99 source + library,
        drift-checked against the torch model (fp32: max-abs <= 1e-4 over >= 1000 steps)."""
        from . import get_exporter
        from .manifest import check_out_dir, check_precision

        exporter = get_exporter(fmt)  # unknown format: one-line ValueError
        check_precision(precision, ("fp32", "fp16", "int8", "int8-full", "int8-tflm"))  # each exporter narrows it
        if fixed_dt is not None and not (0 < fixed_dt < 3.4e38):
            raise ValueError(f"--fixed-dt must be a positive finite number, got {fixed_dt}")
        if not model.exists():
            raise FileNotFoundError(f"{model}: no such model file")
        check_out_dir(out, model)
        from ..nn.modelfile import load

        extra = {} if calibration_method is None else {"calibration_method": calibration_method}
        m = load(model)
        manifest = exporter(m, out, precision=precision, calibration=_calibration(calibration, load_task),
                            fixed_dt=fixed_dt, force=force, **extra)
        _summary(manifest, out)


def _calibration(spec, load_task):
    """An .npz path as is; a task name through the CLI's task loader."""
    if spec is None or Path(spec).suffix == ".npz" or Path(spec).exists() or load_task is None:
        return spec
    return load_task(spec)


def _summary(manifest: dict, out: Path):
    drift = manifest.get("drift") or {}
    where = out / manifest["file"] if manifest.get("file") else out
    parts = [f"{manifest.get('format')} {manifest.get('precision')}: {where}"]
    if manifest.get("size_bytes"):
        parts.append(f"{manifest['size_bytes']} bytes")
    if "node_count" in manifest:
        parts.append(f"{manifest['node_count']} nodes")
    quant = manifest.get("quantization") or {}
    if quant.get("excluded_nodes"):
        kept = len(quant["excluded_nodes"])
        parts.append(f"{kept} of {kept + quant['quantized_nodes']} products left out of int8 (mixed precision)")
    if drift.get("skipped"):
        parts.append(f"drift not checked: {drift['skipped']}")
    if "max_abs" in drift:
        parts.append(f"drift max-abs {drift['max_abs']:.2g} over {drift['steps']} steps")
    metric = drift.get("metric") or {}
    if metric.get("name"):
        parts.append(f"{metric['name']} {metric['exported']:.4g} (fp32 {metric['torch_fp32']:.4g})")
    if manifest.get("forced"):
        parts.append("OVER BUDGET (forced)")
    typer.echo(", ".join(parts))
