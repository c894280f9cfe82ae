"""`ltc bench` on ARM targets (qemu): a relative --out keeps every row (issue 29 item 2: each int8
Cortex-M4 and every Cortex-M0 row was skipped with `arm-none-eabi-size failed ... No such file`),
and each ARM row carries the task metric of the same C source, flash, RAM and a time per step
estimated at the stated clock. Marked qemu; skips only when the tools are absent."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ltc_edge.bench.arm import cortex_m as CM
from ltc_edge.cli import app

pytestmark = pytest.mark.qemu


def test_relative_out_keeps_the_cortex_m_rows(tmp_path, monkeypatch):
    if CM.missing_tools():
        pytest.skip(f"ARM tools missing: {', '.join(CM.missing_tools())} (run scripts/arm/setup.sh)")
    from ltc_edge.nn import build_model, save

    save(build_model("ltc", 8, 10, units=6, seed=0), tmp_path / "m.safetensors")  # digits: 8 in, 10 classes
    (tmp_path / "d").mkdir()
    monkeypatch.chdir(tmp_path / "d")
    r = CliRunner().invoke(app, ["bench", "../m.safetensors", "--backend", "c", "--precision", "int8",
                                 "--target", "cpu,cortex-m0,cortex-m4", "--task", "digits", "--batch", "1",
                                 "--seconds", "0.02", "--clock-hz", "100e6"])  # --out: the default bench-out
    assert r.exit_code == 0, r.output
    results = json.loads(Path("bench-out/results.json").read_text())
    rows = {row["target"]: row for row in results["rows"]}
    assert set(rows) == {"cpu", "cortex-m0", "cortex-m4"}
    assert all(not row["skipped"] for row in rows.values()), [row["skipped"] for row in rows.values()]
    host = rows["cpu"]
    assert 0 <= host["metric"] <= 1 and host["metric_streaming"] is not None
    for target in ("cortex-m0", "cortex-m4"):
        row = rows[target]
        # built from the very C files the host row ran: the same metric, windowed and streamed
        assert row["metric"] == host["metric"] and row["metric_streaming"] == host["metric_streaming"]
        assert "same C source" in row["metric_source"]
        assert 0 < row["flash_bytes"] < 64 * 1024 and 0 < row["ram_bytes"] < 8 * 1024
        assert row["instructions_per_step"] > 1000 and row["clock_hz"] == 100e6
        per_step = row.get("cycles_per_step") or row["instructions_per_step"]
        assert row["est_step_us"] == pytest.approx(per_step / 100.0)
    assert "c/int8@cortex-m0" in r.output and "skipped" not in r.output


def test_cortex_m_build_takes_a_relative_folder(tmp_path, monkeypatch):
    """The root of item 2: the tools run inside the build folder, so the size of a file there is asked
    by its name, not by the folder's relative path a second time."""
    if CM.missing_tools():
        pytest.skip(f"ARM tools missing: {', '.join(CM.missing_tools())} (run scripts/arm/setup.sh)")
    from ltc_edge.nn import build_model, save

    monkeypatch.chdir(tmp_path)
    save(build_model("ltc", 3, 2, units=6, seed=0), tmp_path / "m.safetensors")
    defines = CM.prepare_int8("m.safetensors", Path("w"), steps=10, timing_steps=5)["defines"]
    obj = CM.step_object(Path("w"), "ltc_model", "cortex-m0", defines)
    assert obj["flash_bytes"] > 500 and obj["float_helpers"] == []
