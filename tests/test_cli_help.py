"""Help texts and CLI conventions: docstrings printed unwrapped (no line broken where the
source was), no `<bool>` beside on/off flags, `--json` the same flag on every command that has
it, `ltc info --json`, the training log's labelled figures, and --compile only when asked."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from typer.main import get_command
from typer.testing import CliRunner

from ltc_edge.cli import app, unwrap

runner = CliRunner()


def _commands():
    return get_command(app).commands


def _help(args):
    res = runner.invoke(app, args + ["--help"], env={"COLUMNS": "3000", "TERMINAL_WIDTH": "3000"})
    assert res.exit_code == 0, res.output
    return res.output


def test_unwrap_keeps_paragraphs_and_joins_hard_wraps():
    doc = """First line
    goes on here.

    Second paragraph,
      indented oddly.
    """
    assert unwrap(doc) == "First line goes on here.\n\nSecond paragraph, indented oddly."


@pytest.mark.parametrize("name", sorted(get_command(app).commands))
def test_help_is_unwrapped_and_flags_show_no_type(name):
    cmd = _commands()[name]
    text = _help([name])
    assert "<bool>" not in text
    # at a very wide terminal every paragraph of the docstring and every option's help is one
    # line: a line break the source had would split it
    for para in unwrap(cmd.callback.__doc__).split("\n\n"):
        assert para in text, (name, para)
    for p in cmd.params:
        if p.help:
            assert p.help in text, (name, p.help)
    listing = _help([])
    assert unwrap(cmd.callback.__doc__).split("\n\n")[0] in listing and "<bool>" not in listing


def test_json_is_the_same_flag_everywhere():
    for name in ("eval", "control", "info"):
        opt = {o: p for p in _commands()[name].params for o in p.opts}["--json"]
        assert opt.is_flag and opt.default is False, name
    out = {o: p for p in _commands()["control"].params for o in p.opts}["--json-out"]
    assert not out.is_flag


def test_info_json_and_table_show_the_stored_task(tmp_path):
    from ltc_edge.nn import build_model, save

    m = build_model("ltc", 2, wiring="auto-ncp", units=6, output_size=1, seed=0)
    m.config["task"] = {"name": "csv", "options": {"data": "/d/f.csv", "inputs": "u,v", "targets": "w", "time": "t"},
                        "dt": {"median": 0.25, "min": 0.1, "max": 0.5},
                        "data": {"path": "/d/f.csv", "sha256": "ab" * 32}}
    path = save(m, tmp_path / "m.safetensors")
    res = runner.invoke(app, ["info", str(path), "--json"])
    assert res.exit_code == 0, res.output
    facts = json.loads(res.stdout)
    assert facts["cell"] == "ltc" and facts["wiring"] == "auto-ncp" and facts["neurons"] == 6
    assert facts["parameters"] == sum(int(np.prod(p.shape)) for p in m.parameters())
    assert facts["synapses"] == int(np.abs(np.asarray(m.config["cell"]["wiring"]["adjacency"])).sum())
    assert (facts["inputs"], facts["outputs"]) == (2, 1) and facts["file_size_bytes"] == path.stat().st_size
    assert facts["task"] == "csv" and facts["input_columns"] == "u,v" and facts["target_columns"] == "w"
    assert facts["time_column"] == "t" and facts["data_file"] == "/d/f.csv" and facts["data_sha256"] == "ab" * 32
    assert facts["dt"]["median"] == 0.25
    table = runner.invoke(app, ["info", str(path)], env={"COLUMNS": "200"}).output
    for shown in ("data file", "/d/f.csv", "time column", "median=0.25", "input columns", "u,v"):
        assert shown in table, shown


def test_info_of_an_export_folder(tmp_path):
    from ltc_edge.codegen import c as cgen

    if cgen.find_cc() is None:
        pytest.skip("no C compiler")
    from ltc_edge.export import get_exporter
    from ltc_edge.nn import build_model, save

    path = save(build_model("gru", 2, units=4, output_size=1, seed=0), tmp_path / "g.safetensors")
    man = get_exporter("c")(str(path), tmp_path / "c", build=False)
    for target in (tmp_path / "c", tmp_path / "c" / "manifest.json", tmp_path / "c" / "ltc_model.c"):
        facts = json.loads(runner.invoke(app, ["info", str(target), "--json"]).stdout)
        assert facts["format"] == "c" and facts["cell"] == "gru" and facts["prefix"] == "ltc_model"
        assert facts["files"]["source"]["sha256"] == man["files"]["source"]["sha256"]
        assert facts["size_bytes"] == sum(e["size_bytes"] for e in man["files"].values())


# -------------------------------------------------------------------------------------- training


def test_compile_only_when_asked():
    pytest.importorskip("torch")
    from ltc_edge.train.commands import _train_options
    from ltc_edge.train.options import use_compile

    assert use_compile(None) is False and use_compile(False) is False and use_compile(True) is True
    td = SimpleNamespace(defaults={"epochs": 200})  # what _train_options reads of a task
    for epochs in (None, 20, 500):  # it used to switch itself on from 20 epochs
        opts = _train_options(td, "lstm", epochs, 0.01, 16, 0, None, None)
        assert opts.compile is False
    assert _train_options(td, "lstm", 3, 0.01, 16, 0, None, True).compile is True


def test_training_log_labels_its_figures_and_announces_compile(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from ltc_edge.train import loop, tasks
    from ltc_edge.train.options import COMPILE_NOTICE

    f = tmp_path / "s.csv"
    t = np.cumsum(np.random.default_rng(0).uniform(0.05, 0.3, 200))
    f.write_text("t,a,c\n" + "\n".join(f"{v:.5f},{np.sin(v):.5f},{100 + 20 * np.cos(v):.5f}" for v in t))
    task = tasks.load_task("csv", data=f, inputs="a", targets="c", time="t", seq_len=10, stride=10)
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: fn)  # the policy, not the compiler, is under test
    for compile in (True, False):
        logs = []
        loop.train(task, loop.build_task_model(task, "gru", units=4, seed=0), tmp_path / f"m{compile}.safetensors",
                   loop.TrainOptions(epochs=1, batch_size=4, compile=compile), progress=False, log=logs.append)
        assert any(ln.startswith(COMPILE_NOTICE) for ln in logs) == compile
        epoch = [ln for ln in logs if ln.startswith("epoch")][0]
        assert "train loss" in epoch and "(MSE, normalised units)" in epoch and "valid mse" in epoch
        assert epoch.index("(data units)") > epoch.index("valid mse")
