"""Regression tests for the CLI fuzz campaign: every bad input ends with exit status != 0, ONE
line of error output, no traceback, nothing overwritten, nothing hung and nothing huge allocated.

Each case fails before any training starts (checked before data is read or torch is used), so
the whole file runs in seconds."""

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ltc_edge.cli import app

runner = CliRunner()
SERIES = ["--task", "csv", "--inputs", "a,b", "--targets", "c", "--seq-len", "8", "--epochs", "1",
          "--units", "4", "--model", "gru", "--no-progress"]


def _csv(path: Path, n: int = 120, bom: bool = False) -> Path:
    t = np.arange(n) * 0.1
    rows = "".join(f"{t[i]:.3f},{np.sin(t[i]):.5f},{np.cos(t[i]):.5f},{np.sin(2 * t[i]):.5f}\n" for i in range(n))
    path.write_text("t,a,b,c\n" + rows, encoding="utf-8-sig" if bom else "utf-8")
    return path


def _fails(args, *protected: Path, message: str | None = None):
    """Run the CLI; assert one error line, no traceback, and the protected files unchanged."""
    before = {p: (p.read_bytes() if p.is_file() else None) for p in protected}
    res = runner.invoke(app, [str(a) for a in args])
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code not in (0, None), res.output
    assert "Traceback" not in res.output and not isinstance(res.exception, (TypeError, KeyError)), res.output
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    if message is not None:
        assert message in lines[0], lines[0]
    for p, content in before.items():
        assert (p.read_bytes() if p.is_file() else None) == content, f"{p} was changed"
    return lines[0]


@pytest.fixture
def data(tmp_path):
    return _csv(tmp_path / "d.csv")


# -------------------------------------------------------------------------------------- 1. data loss


def test_train_out_is_the_data(tmp_path, data):
    _fails(["train", *SERIES, "--data", data, "--out", data], data, message="is the input")
    link = tmp_path / "link.csv"
    link.symlink_to(data)
    _fails(["train", *SERIES, "--data", link, "--out", data], data, message="is the input")


def test_train_out_is_the_npz_data(tmp_path):
    f = tmp_path / "d.npz"
    np.savez(f, a=np.arange(100.0), c=np.arange(100.0))
    _fails(["train", "--task", "npz", "--data", f, "--inputs", "a", "--targets", "c", "--out", f], f,
           message="is the input")


def test_train_files_beside_out_are_not_the_data(tmp_path, data):
    # --out X also writes X.ckpt: that must not be the data either
    os.replace(data, tmp_path / "m.ckpt")
    _fails(["train", *SERIES, "--data", tmp_path / "m.ckpt", "--out", tmp_path / "m"], tmp_path / "m.ckpt",
           message="the checkpoint")


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="no /dev/null")
def test_train_out_onto_a_device(data):
    _fails(["train", *SERIES, "--data", data, "--out", "/dev/null"], message="not a regular file")
    assert Path("/dev/null").is_char_device()


def test_control_json_is_the_model(tmp_path):
    from ltc_edge.nn import build_model, save

    m = save(build_model("ltc", 3, wiring="full", units=4, output_size=1, seed=0), tmp_path / "m.safetensors")
    _fails(["control", m, "--json-out", m, "--episodes", "1"], m, message="is the input")
    _fails(["control", m, "--json-out", "/dev/null", "--episodes", "1"], m, message="not a regular file")


# -------------------------------------------------------------------------------------- 2. hangs, memory


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("cmd", ["train", "eval", "control", "info"])
def test_fifo_never_hangs(tmp_path, cmd):
    fifo = tmp_path / "f.csv"
    os.mkfifo(fifo)
    args = {"train": ["train", *SERIES, "--data", fifo, "--out", tmp_path / "m.safetensors"],
            "eval": ["eval", fifo], "control": ["control", fifo], "info": ["info", fifo]}[cmd]
    _fails(args)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_dev_zero_link_is_refused(tmp_path):
    link = tmp_path / "z.csv"
    link.symlink_to("/dev/zero")
    _fails(["train", *SERIES, "--data", link, "--out", tmp_path / "m.safetensors"], message="not a regular file")
    link2 = tmp_path / "z.npz"
    link2.symlink_to("/dev/zero")
    _fails(["train", "--task", "npz", "--data", link2, "--inputs", "a", "--targets", "c",
            "--out", tmp_path / "m.safetensors"], message="not a regular file")


def test_huge_sparse_csv_is_refused(tmp_path):
    f = tmp_path / "big.csv"
    with open(f, "wb") as fh:
        fh.truncate(3 << 30)  # sparse: no disk used
    _fails(["train", *SERIES, "--data", f, "--out", tmp_path / "m.safetensors"], message="MiB")


def _npz_with_header(path, shape, descr="<f8", body=b"\0" * 64):
    hdr = io.BytesIO()
    np.lib.format.write_array_header_1_0(hdr, {"descr": descr, "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.npy", hdr.getvalue() + body)
        z.writestr("c.npy", hdr.getvalue() + body)
    return path


def test_npz_header_claiming_1e10_floats(tmp_path):
    f = _npz_with_header(tmp_path / "bomb.npz", (10**10,))
    _fails(["train", "--task", "npz", "--data", f, "--inputs", "a", "--targets", "c",
            "--out", tmp_path / "m.safetensors"], message="claims shape")


def test_units_out_of_range(tmp_path, data):
    _fails(["train", *SERIES, "--data", data, "--units", "100000", "--out", tmp_path / "m.safetensors"],
           message="--units must be from 1 to 2048")
    _fails(["train", *SERIES, "--data", data, "--model", "ltc", "--wiring", "ncp",
            "--wiring-args", '{"inter_neurons": 100000}', "--out", tmp_path / "m.safetensors"],
           message="inter_neurons")


@pytest.mark.parametrize("split", ["nan,0.2,0.2", "inf,0.1,0.1", "0.7,0.2", "0.7,0.2,0.2", "0,0.5,0.5",
                                   "-0.5,0.7,0.8", "1,0.1,0.1", "a,b,c"])
def test_bad_split(tmp_path, data, split):
    _fails(["train", *SERIES, "--data", data, "--split", split, "--out", tmp_path / "m.safetensors"],
           message="--split")


# -------------------------------------------------------------------------------------- 3. tracebacks


def test_npy_renamed_npz(tmp_path):
    f = tmp_path / "x.npz"
    with open(f, "wb") as fh:
        np.save(fh, np.arange(10.0))
    _fails(["train", "--task", "npz", "--data", f, "--inputs", "a", "--targets", "c",
            "--out", tmp_path / "m.safetensors"], message="not an npz archive")


@pytest.mark.parametrize("wiring, wargs, message", [
    (None, '{"bogus": 1}', "no argument 'bogus'"),
    (None, '{"sparsity": 0.3}', "no argument 'sparsity'"),
    ("random", '{"sparsity": 0.3}', "no argument 'sparsity'"),
    ("random", '{"sparsity_level": "x"}', "sparsity_level"),
    ("random", '{"sparsity_level": 1.5}', "sparsity_level"),
    ("auto-ncp", '{"output_size": 0}', "output_size"),
    ("ncp", '[1, 2]', "JSON object"),
])
def test_bad_wiring_args(tmp_path, data, wiring, wargs, message):
    w = [] if wiring is None else ["--wiring", wiring]
    _fails(["train", *SERIES, "--data", data, "--model", "ltc", *w, "--wiring-args", wargs,
            "--out", tmp_path / "m.safetensors"], message=message)


def test_warnings_do_not_bury_the_error(tmp_path):
    """Values past float32 used to print dozens of RuntimeWarnings before the error line."""
    f = tmp_path / "w.csv"
    f.write_text("a,b,c\n" + "".join(f"{1e300 * (i + 1)},{i},{i}\n" for i in range(100)))
    _fails(["train", *SERIES[:2], "--inputs", "a", "--targets", "c", "--data", f,
            "--out", tmp_path / "m.safetensors"], message="float32")


def test_binary_csv_and_nul_bytes(tmp_path):
    f = tmp_path / "bin.csv"
    f.write_bytes(b"\xff\xfe\x00garbage\x00\n" * 10)
    _fails(["train", *SERIES, "--data", f, "--out", tmp_path / "m.safetensors"])
    f.write_bytes(b"t,a,b,c\n1,2,\x003,4\n")
    _fails(["train", *SERIES, "--data", f, "--out", tmp_path / "m.safetensors"])


# -------------------------------------------------------------------------------------- 4. silent acceptance


@pytest.mark.parametrize("flag, value", [
    ("--lr", "0"), ("--lr", "-0.1"), ("--lr", "nan"), ("--lr", "inf"), ("--lr", "1e39"),
    ("--batch-size", "0"), ("--batch-size", "-3"), ("--epochs", "0"), ("--grad-clip", "-1"),
    ("--grad-clip", "nan"), ("--seq-len", "0"), ("--stride", "0"), ("--units", "0"), ("--seed", "-1"),
])
def test_numeric_options_range_checked(tmp_path, data, flag, value):
    _fails(["train", *SERIES, "--data", data, flag, value, "--out", tmp_path / "m.safetensors"], message=flag)
    assert not (tmp_path / "m.safetensors").exists()


@pytest.mark.parametrize("flag, value", [("--dt", "0"), ("--dt", "-1"), ("--dt", "nan"), ("--dt", "1e39"),
                                         ("--episodes", "0"), ("--max-steps", "0"), ("--seed", "-1")])
def test_control_numbers_range_checked(tmp_path, flag, value):
    _fails(["control", tmp_path / "none.safetensors", flag, value], message=flag)


def test_npz_targets_longer_than_inputs(tmp_path):
    f = tmp_path / "d.npz"
    np.savez(f, a=np.arange(100.0), c=np.arange(150.0))
    _fails(["train", "--task", "npz", "--data", f, "--inputs", "a", "--targets", "c",
            "--out", tmp_path / "m.safetensors"], message="must match")


@pytest.mark.parametrize("arr", [np.arange(100) + 1j, np.arange(100) > 3, np.array(["x"] * 100)])
def test_npz_non_real_dtypes_refused(tmp_path, arr):
    f = tmp_path / "d.npz"
    np.savez(f, a=arr, c=np.arange(100.0))
    _fails(["train", "--task", "npz", "--data", f, "--inputs", "a", "--targets", "c",
            "--out", tmp_path / "m.safetensors"], message="dtype")


def test_npz_object_array_refused(tmp_path):
    f = _npz_with_header(tmp_path / "o.npz", (2,), descr="|O")
    _fails(["train", "--task", "npz", "--data", f, "--inputs", "a", "--targets", "c",
            "--out", tmp_path / "m.safetensors"], message="dtype")


def test_utf8_bom_csv_is_accepted(tmp_path):
    from ltc_edge.train.tasks import load_task

    f = _csv(tmp_path / "bom.csv", bom=True)
    task = load_task("csv", data=f, inputs="t,a", targets="c", seq_len=8)
    assert task.info["inputs"] == ["t", "a"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny trained model (2 epochs of a 4-unit GRU on a short series)."""
    d = tmp_path_factory.mktemp("trained")
    f = _csv(d / "d.csv")
    out = d / "m.safetensors"
    res = runner.invoke(app, ["train", *SERIES, "--data", str(f), "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_eval_nonfinite_metric_is_an_error(tmp_path, trained):
    f = tmp_path / "huge.csv"
    n = 120
    f.write_text("t,a,b,c\n" + "".join(f"{i * 0.1},{0.1},{0.2},{3e38}\n" for i in range(n)))
    line = _fails(["eval", trained, "--data", f, "--task", "csv", "--inputs", "a,b", "--targets", "c",
                   "--seq-len", "8"], message="not finite")
    assert "mse" in line


def test_eval_ok_and_json(trained):
    res = runner.invoke(app, ["eval", str(trained), "--json"])
    assert res.exit_code == 0, res.output
    assert np.isfinite(json.loads(res.output.strip().splitlines()[-1])["mse"])


@pytest.mark.parametrize("args", [["train", "--units", "abc"], ["frobnicate"], ["export"],
                                  ["export", "m.safetensors", "--format"]])
def test_usage_errors_are_one_line_exit_2(args, tmp_path):
    """typer's own parse errors (a bad value, an unknown command, a missing argument): one
    `error:` line naming the fix, exit status 2, no box, no traceback."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "ltc_edge.cli", *args], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--help" in lines[0], r.stderr
    assert "Traceback" not in r.stderr and "╭" not in r.stderr
