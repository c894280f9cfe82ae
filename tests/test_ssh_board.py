"""`ltc bench --target ssh://...`: a Linux board over SSH. The slow tests use a loopback sshd
(tests/sshd.py) as the board; the fast ones need only parsing or a refused connection."""

from __future__ import annotations

import json
import shutil

import pytest

import sshd
from ltc_edge.bench import ssh


@pytest.mark.parametrize("url, host, user, port", [
    ("ssh://pi@raspberrypi.local", "raspberrypi.local", "pi", None),
    ("ssh://root@127.0.0.1:2222", "127.0.0.1", "root", 2222),
    ("ssh://jetson", "jetson", None, None),            # an ~/.ssh/config alias
    ("ssh://u@[::1]:22/", "::1", "u", 22),
])
def test_parse(url, host, user, port):
    b = ssh.parse(url, "-i /k/id -o ConnectTimeout=3")
    assert (b.host, b.user, b.port) == (host, user, port)
    assert b.opts == ["-i", "/k/id", "-o", "ConnectTimeout=3"]
    assert b.ssh_argv()[-1] == (f"{user}@{host}" if user else host)


@pytest.mark.parametrize("url", ["ssh://", "ssh://a@b:0", "ssh://a@b:99999", "ssh://a b", "ssh://-oProxyCommand=x",
                                 "ssh://a@b:22/path"])
def test_parse_refuses(url):
    with pytest.raises(ValueError, match="ssh://USER@HOST"):
        ssh.parse(url)


def test_parse_refuses_bad_options():
    with pytest.raises(ValueError, match="--ssh-opts"):
        ssh.parse("ssh://a@b", "-i 'unclosed")
    with pytest.raises(ValueError, match="--board-python"):
        ssh.parse("ssh://a@b", "", "python3; rm -rf /")


@pytest.mark.skipif(shutil.which("ssh") is None, reason="no ssh client")
def test_unreachable_board_is_one_line():
    b = ssh.parse(f"ssh://root@127.0.0.1:{sshd.free_port()}")
    with pytest.raises(ssh.BoardError, match="Connection refused .is sshd running"):
        ssh.probe(b)


def test_missing_for_names_what_is_missing():
    facts = {"target": "ssh://b", "arch": "riscv64", "cc": "",
             "packages": {"numpy": True, "safetensors": False, "onnxruntime": False,
                          "ai_edge_litert": False, "tflite_runtime": True}}
    assert "no safetensors" in ssh.missing_for("numpy", facts)
    assert "no onnxruntime" in ssh.missing_for("onnxruntime", facts)
    assert ssh.missing_for("tflite", facts) is None
    assert "no C compiler for riscv64" in ssh.missing_for("c", facts)
    assert "does not run on SSH boards" in ssh.missing_for("torch", facts)


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    why = sshd.usable()
    if why:
        pytest.skip(why)
    proc, port, opts = sshd.start(tmp_path_factory.mktemp("sshd"))
    yield f"ssh://root@127.0.0.1:{port}", opts
    proc.terminate()
    proc.wait(10)


@pytest.mark.slow
def test_probe_and_wrong_key(board, tmp_path):
    url, opts = board
    facts = ssh.probe(ssh.parse(url, opts))
    assert facts["os"] == "Linux" and facts["arch"] and facts["packages"]["numpy"] and facts["python"]
    with pytest.raises(ssh.BoardError, match="cannot connect or log in: .*Permission denied"):
        ssh.probe(ssh.parse(url, f"-i {tmp_path}/nokey -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
                                 " -o IdentitiesOnly=yes -o IdentityAgent=none"))
    with pytest.raises(ssh.BoardError, match="no python9 on the board"):
        ssh.probe(ssh.parse(url, opts, "python9"))


@pytest.mark.slow
def test_bench_on_a_board_over_ssh(board, tmp_path, monkeypatch):
    """The board's rows come back into the same results.json as the host's, with the same windowed
    and streamed metric for the same export (the task's CSV went along), and the board's facts."""
    import sys

    from typer.testing import CliRunner

    from datagen import oscillator_csv
    from ltc_edge.cli import app
    from ltc_edge.nn import build_model, save

    url, opts = board
    csv = tmp_path / "log.csv"
    oscillator_csv(csv)
    model = save(build_model("ltc", 1, 1, wiring="auto-ncp", units=6, seed=0), tmp_path / "m.safetensors")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["bench", str(model), "--backend", "numpy,c", "--batch", "1", "--seconds", "0.05",
                                 "--target", f"cpu,{url}", "--ssh-opts", opts, "--board-python", sys.executable,
                                 "--task", "csv", "--data", str(csv), "--inputs", "force", "--targets", "position",
                                 "--out", "out"])
    assert r.exit_code == 0, r.output
    assert "on your Linux board (over SSH, measured there)" in r.output
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    rows = {(row["backend"], row["target"]): row for row in res["rows"]}
    assert len(rows) == 4 and not any(row["skipped"] for row in rows.values())
    for backend in ("numpy", "c"):
        host, there = rows[(backend, "cpu")], rows[(backend, url)]
        assert there["latency"]["1"]["p50_us"] > 0 and there["peak_rss_bytes"] > 0
        assert there["metric"] == pytest.approx(host["metric"], rel=1e-6)
        assert there["metric_streaming"] == pytest.approx(host["metric_streaming"], rel=1e-6)
    facts = res["boards"][url]
    assert facts["os"] == "Linux" and facts["python"] and facts["c_compiled_with"]
    assert "On your Linux boards over SSH" in (tmp_path / "out" / "report.md").read_text()


@pytest.mark.slow
def test_unreachable_board_writes_nothing(tmp_path, ltc_file, one_line_error):
    from typer.testing import CliRunner

    from ltc_edge.cli import app

    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["bench", ltc_file, "--target", f"ssh://root@127.0.0.1:{sshd.free_port()}",
                                 "--out", str(out)])
    one_line_error(r, "Connection refused")
    assert not out.exists()


@pytest.mark.qemu
def test_c_export_rebuilt_for_an_arm64_board(ltc_file, tmp_path):
    """A 64-bit Pi gets the library cross-compiled here, listed (with its sha256) in the shipped
    manifest; the host export is untouched."""
    if shutil.which("aarch64-linux-gnu-gcc") is None:
        pytest.skip("no aarch64-linux-gnu-gcc")
    from ltc_edge import artifact
    from ltc_edge.export import get_exporter
    from ltc_edge.nn import load

    host = tmp_path / "c"
    get_exporter("c")(load(ltc_file), host)
    facts = {"arch": "aarch64", "cc": ""}
    shipped = ssh.board_export(host, tmp_path / "board", facts)
    m, files = artifact.read_verified(shipped)
    lib = files["library"].read_bytes()
    assert lib[:4] == b"\x7fELF" and int.from_bytes(lib[18:20], "little") == 183  # EM_AARCH64
    assert facts["c_compiled_with"] == "aarch64-linux-gnu-gcc (here)"
    host_lib = artifact.read_verified(host)[1]["library"].read_bytes()
    assert host_lib != lib  # the host export keeps its own library
    assert ssh.missing_for("c", {**facts, "target": "b", "packages": {}}) is None
