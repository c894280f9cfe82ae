"""Every `--option` an error message suggests is one the command that printed it accepts
(issue 29 item 11: `ltc export` after the training CSV was deleted said `pass --data FILE`,
an option export does not have). Two checks: the error paths that hint at data options, driven
through each command that reaches them; and a scan of every `raise` in the package for options
that no command has at all."""

import ast
import functools
import re
from pathlib import Path

import numpy as np
import pytest
from typer.main import get_command
from typer.testing import CliRunner

import ltc_edge
from ltc_edge.cli import app

runner = CliRunner()
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
SNIPPET = re.compile(r"`ltc ([a-z]+)([^`]*)`")  # `ltc export --calibration cheetah`: that command's options
OTHER_PROGRAM = re.compile(r"`(?!ltc )[a-z][\w.-]* [^`]*`")  # `ray start --head`: another program's options


def command_options() -> dict:
    """{command name: its --options} of the typer app (--help included)."""
    out = {}
    for name, cmd in get_command(app).commands.items():
        opts = {o for p in cmd.params for o in [*p.opts, *getattr(p, "secondary_opts", [])] if o.startswith("--")}
        out[name] = opts | {"--help"}
    return out


def foreign_hints(command: str, message: str) -> list:
    """The options `message` suggests that `command` (or the command a quoted `ltc CMD ...`
    snippet names) does not accept."""
    options = command_options()
    bad = [(cmd, o) for cmd, rest in SNIPPET.findall(message) for o in OPTION.findall(rest)
           if o not in options.get(cmd, ())]
    return bad + [(command, o) for o in OPTION.findall(SNIPPET.sub("", message)) if o not in options[command]]


def _error(args) -> str:
    """The one error line of a failing command (bench's progress lines aside)."""
    res = runner.invoke(app, [str(a) for a in args])
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert res.exit_code not in (0, None) and len(lines) == 1 and "Traceback" not in res.output, res.output
    return lines[0]


def test_the_check_catches_a_foreign_hint():
    assert foreign_hints("export", "error: x.csv is missing; pass --data FILE") == [("export", "--data")]
    assert foreign_hints("export", "pass --calibration FILE (see `ltc eval --data x`)") == []
    assert foreign_hints("eval", "see `ltc export --data x`") == [("export", "--data")]


@pytest.fixture(scope="module")
def csv_model(tmp_path_factory):
    """A model whose stored task is a csv file, and that file."""
    from ltc_edge.nn import build_model, save
    from ltc_edge.train.stored import file_record

    d = tmp_path_factory.mktemp("hints")
    t = np.arange(200) * 0.1
    data = d / "d.csv"
    data.write_text("t,a,b,c\n" + "".join(f"{v:.2f},{np.sin(v):.4f},{np.cos(v):.4f},{np.sin(2 * v):.4f}\n" for v in t))
    m = build_model("ltc", 2, 1, wiring="auto-ncp", units=6, seed=0)
    opts = {"data": str(data), "inputs": ["a", "b"], "targets": ["c"], "time": "t", "seq_len": 20}
    m.config["task"] = {"name": "csv", "options": opts, "type": "regression", "metric": "mse",
                        "data": file_record(data), "dt": {"median": 0.1, "min": 0.1, "max": 0.1}}
    return save(m, d / "m.safetensors"), data


# the commands that read a model's stored task, with the extra arguments each needs
STORED_TASK_COMMANDS = {
    "export": lambda m, out: ["export", m, "--format", "onnx", "--precision", "int8", "--out", out / "e"],
    "eval": lambda m, out: ["eval", m],
    "prune": lambda m, out: ["prune", m, "--sparsity", "0.5", "--out", out / "p.safetensors"],
    "analyze": lambda m, out: ["analyze", "bounds", m, "--out", out / "a"],
    "bench": lambda m, out: ["bench", m, "--backend", "numpy", "--out", out / "b"],
}


@pytest.mark.parametrize("command", sorted(STORED_TASK_COMMANDS))
@pytest.mark.parametrize("case", ["deleted", "changed"])
def test_stored_data_hints_name_the_commands_own_option(csv_model, tmp_path, command, case):
    model, data = csv_model
    saved = data.read_bytes()
    try:
        if case == "deleted":
            data.unlink()
        else:
            data.write_bytes(saved + b"0,0,0,0\n")
        line = _error(STORED_TASK_COMMANDS[command](model, tmp_path))
    finally:
        data.write_bytes(saved)
    assert ("missing" if case == "deleted" else "changed since training") in line, line
    assert OPTION.search(line), line  # it does suggest an option...
    assert foreign_hints(command, line) == [], line  # ...one this command has
    if command == "export":
        assert "--calibration" in line


# the same commands on another data file (export: --calibration FILE, the others: --data FILE)
OTHER_DATA = {
    "export": lambda m, out, f: ["export", m, "--format", "onnx", "--calibration", f, "--out", out / "e"],
    "eval": lambda m, out, f: ["eval", m, "--data", f],
    "prune": lambda m, out, f: ["prune", m, "--sparsity", "0.5", "--data", f, "--out", out / "p.safetensors"],
    "analyze": lambda m, out, f: ["analyze", "bounds", m, "--data", f, "--out", out / "a"],
    "bench": lambda m, out, f: ["bench", m, "--backend", "numpy", "--data", f, "--out", out / "b"],
}


@pytest.mark.parametrize("command", sorted(OTHER_DATA))
def test_short_data_file_hints(csv_model, tmp_path, command):
    """A file too short for the model's stored window: the hint names no option the command lacks
    (was: `use a shorter --seq-len or a different --split`, from export, bench, prune, analyze)."""
    short = tmp_path / "short.csv"
    short.write_text("\n".join(csv_model[1].read_text().splitlines()[:12]) + "\n")
    line = _error(OTHER_DATA[command](csv_model[0], tmp_path, short))
    assert "20-step window" in line and foreign_hints(command, line) == [], line


def test_export_calibration_hints(tmp_path, csv_model):
    from ltc_edge.nn import build_model, save

    bare = save(build_model("ltc", 2, 1, wiring="auto-ncp", units=6, seed=0), tmp_path / "bare.safetensors")
    cases = [["export", bare, "-f", "c", "--precision", "int8", "--out", tmp_path / "e1"],  # no task stored
             ["export", csv_model[0], "-f", "onnx", "--precision", "int8", "--calibration", "npz",
              "--out", tmp_path / "e2"]]  # a series task by name: its file and columns are not export options
    for args in cases:
        line = _error(args)
        assert "--calibration" in line and foreign_hints("export", line) == [], line


@functools.lru_cache(maxsize=1)
def _trees() -> dict:
    """{module name: (path, parsed source)} of the package, each file parsed once."""
    root = Path(ltc_edge.__file__).parent
    return {".".join(p.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__"):
            (p, ast.parse(p.read_text(encoding="utf-8"))) for p in root.rglob("*.py")}


def _reachable() -> dict:
    """{module: (path, tree)} of the files a command can run: imported (at any depth, lazily too,
    or named as "ltc_edge.x.y" / "ltc_edge.x.y:name" for a registry or a worker process) from the
    CLI and the packages' commands modules. A module no command reaches prints nothing to a user."""
    trees = _trees()
    todo, seen = ["ltc_edge.cli"] + [m for m in trees if m.endswith(".commands")], set()
    while todo:
        m = todo.pop()
        if m in seen or m not in trees:
            continue
        seen.add(m)
        parts = m.split(".")
        package = parts if trees[m][0].name == "__init__.py" else parts[:-1]
        todo += [".".join(parts[:i]) for i in range(2, len(parts))]  # its parent packages run too
        for node in ast.walk(trees[m][1]):
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("ltc_edge."):
                todo.append(node.value.split(":")[0])
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(package[: len(package) - node.level + 1] + [node.module or ""]).strip(".") \
                    if node.level else node.module or ""
                todo += [base] + [f"{base}.{a.name}" for a in node.names]
    return {m: trees[m] for m in seen}


def _raised_strings(modules: dict):
    """(file, line, text) of every string constant inside a `raise` in `modules`."""
    root = Path(ltc_edge.__file__).parent
    for path, tree in modules.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and node.exc is not None:
                for sub in ast.walk(node.exc):
                    if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                        yield path.relative_to(root), node.lineno, sub.value


def test_every_option_an_error_names_exists():
    """An option named in any error message a command can raise is an option of some command (a
    typo, or a hint left behind when an option was renamed, fails here)."""
    modules = _reachable()
    assert {"ltc_edge.cli", "ltc_edge.export.onnx", "ltc_edge.train.stored", "ltc_edge.runtime.meta"} <= set(modules)
    known = set().union(*command_options().values())
    found = [(f, n, o) for f, n, text in _raised_strings(modules) for o in OPTION.findall(OTHER_PROGRAM.sub("", text))]
    assert len(found) > 20  # the scan does see the messages
    unknown = [f"{f}:{n}: {o}" for f, n, o in found if o not in known]
    assert not unknown, unknown
