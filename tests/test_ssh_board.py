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
