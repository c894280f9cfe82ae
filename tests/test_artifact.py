"""The export artifact contract (ltc_edge.artifact): one manifest schema, every named file's
sha256 checked before anything reads or loads it, atomic folder replacement, and the C
folder checks that keep a crafted export from running code."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from ltc_edge import artifact
from ltc_edge.codegen import c as cgen
from ltc_edge.errors import ModelLoadError, UnsafeFileError
from ltc_edge.nn import build_model, save
from ltc_edge.runtime import load

needs_cc = pytest.mark.skipif(cgen.find_cc() is None, reason="no C compiler")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    m = build_model("ltc", 3, wiring="auto-ncp", units=8, output_size=2, seed=0)
    m.apply_constraints()
    return save(m, tmp_path_factory.mktemp("m") / "m.safetensors")


@pytest.fixture(scope="module")
def c_export(model_file, tmp_path_factory):
    if cgen.find_cc() is None:
        pytest.skip("no C compiler")
    from ltc_edge.export import get_exporter

    out = tmp_path_factory.mktemp("c") / "exp"
    man = get_exporter("c")(str(model_file), out)
    return out, man


@pytest.fixture(scope="module")
def onnx_export(model_file, tmp_path_factory):
    pytest.importorskip("onnxruntime")
    from ltc_edge.export import get_exporter

    out = tmp_path_factory.mktemp("o") / "exp"
    get_exporter("onnx")(str(model_file), out)
    return out


def _copy(src, tmp_path, name="copy"):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def _edit_manifest(folder, **changes):
    d = json.loads((folder / "manifest.json").read_text())
    d.update(changes)
    (folder / "manifest.json").write_text(json.dumps(d))


@needs_cc
def test_c_export_is_drift_checked_and_loads(c_export, model_file):
    out, man = c_export
    assert man["schema_version"] == artifact.SCHEMA_VERSION and man["format"] == "c"
    assert man["drift"]["steps"] >= 1000 and man["drift"]["max_abs"] <= 1e-4 and man["drift"]["within_budget"]
    assert set(man["files"]) == {"header", "source", "library", "card"}
    c, ref = load(out), load(model_file)
    x = np.linspace(-1, 1, 3)
    for _ in range(20):
        np.testing.assert_allclose(c.step(x, 0.1), ref.step(x, 0.1), atol=1e-5)


@needs_cc
def test_replaced_library_is_never_loaded(c_export, tmp_path):
    """A library swapped in beside an unchanged manifest (here one whose constructor would
    write a marker file) is refused before dlopen: the marker never appears."""
    out = _copy(c_export[0], tmp_path)
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.c"
    evil.write_text('#include <stdio.h>\n__attribute__((constructor)) static void run(void)'
                    f'{{ FILE *f = fopen("{marker}", "w"); if (f) fclose(f); }}\n'
                    "void ltc_model_step_batch(void) {}\nconst int ltc_model_sizes[3] = {3, 2, 8};\n")
    cgen.compile_library(evil, out / "libltc_model.so", flags=["-O0"])
    with pytest.raises(ModelLoadError, match="does not match its manifest"):
        load(out)
    assert not marker.exists()


@needs_cc
@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_library_is_refused(c_export, tmp_path, damage):
    out = _copy(c_export[0], tmp_path)
    lib = out / "libltc_model.so"
    data = bytearray(lib.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        data = data[: len(data) // 3]
    lib.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="does not match"):
        load(out)


@needs_cc
def test_manifest_cannot_name_functions_or_lie_about_sizes(c_export, tmp_path):
    out = _copy(c_export[0], tmp_path)
    functions = json.loads((out / "manifest.json").read_text())["functions"]
    for bad, message in (({**functions, "step_batch": "abort"}, "functions.step_batch must be ltc_model_step_batch"),
                         ({k: v for k, v in functions.items() if k != "step_batch"}, "functions lacks step_batch"),
                         ({**functions, "system": "ltc_model_system"}, "functions.system is not a function"),
                         (None, "functions must be an object")):
        _edit_manifest(out, functions=bad)  # the runtime derives the names from the prefix; the
        with pytest.raises(ModelLoadError, match=message):  # manifest may not name others
            load(out)
    _edit_manifest(out, functions=functions)
    assert load(out).step(np.zeros(3), 0.1).shape == (2,)
    _edit_manifest(out, prefix="abort")  # the functions must follow the prefix
    with pytest.raises(ModelLoadError, match="functions.reset must be abort_reset"):
        load(out)
    _edit_manifest(out, prefix="abort", functions={k: f"abort_{k}" for k in functions})
    with pytest.raises(ModelLoadError, match="lacks abort_step_batch"):
        load(out)
    _edit_manifest(out, prefix="ltc_model", functions=functions, input_size=2)  # smaller than the library's: would overflow
    with pytest.raises(ModelLoadError, match="input_size 2 disagrees with the config's 3"):
        load(out)
    two = build_model("ltc", 2, wiring="auto-ncp", units=8, output_size=2, seed=0).config  # a config that agrees
    _edit_manifest(out, config=json.loads(json.dumps(two)))
    with pytest.raises(ModelLoadError, match="the library's sizes"):
        load(out)
    _edit_manifest(out, prefix="x */ system", input_size=3)
    with pytest.raises(ModelLoadError, match="prefix must be a C identifier"):
        load(out)


def test_byte_flipped_onnx_is_refused(onnx_export, tmp_path):
    out = _copy(onnx_export, tmp_path)
    f = out / "model.onnx"
    data = bytearray(f.read_bytes())
    data[-20] ^= 0x01
    f.write_bytes(bytes(data))
    for path in (out, f):
        with pytest.raises(ModelLoadError, match="does not match"):
            load(path)


def test_manifest_schema_errors_are_one_line(onnx_export, tmp_path):
    cases = [
        ({"schema_version": 1}, "schema_version"),
        ({"files": {"model": {"name": "../m.safetensors", "sha256": "0" * 64, "size_bytes": 5}}}, "plain file name"),
        ({"format": "pickle"}, "unknown format"),
        ({"input_size": 10 ** 9}, "input_size"),
        ({"input_size": 8.0}, "input_size"),
        ({"uses_dt": "yes"}, "uses_dt"),
        ({"fixed_dt": float("nan")}, "fixed_dt"),
        ({"state_bounds": {"lo": [float("nan")] * 8, "hi": [1.0] * 8}}, "state_bounds"),
        ({"config": None}, "config is missing"),
        ({"config": {"format": "ltc-edge-model", "format_version": 1}}, "config: input_size is missing"),
        ({"kind": "gru"}, "kind 'gru' disagrees with the config's 'ltc'"),
        ({"model": None}, "model must be an object of the model's counts"),
        ({"model": {"neurons": -1}}, "model.neurons must be an integer >= 0, got -1"),
        ({"model": {"bogus": 1}}, "model.bogus is not a known count"),
        ({"model": {"state_size": 9}}, "model.state_size disagrees"),
        ({"sparse": "yes"}, "sparse must be true or false"),
    ]
    for change, message in cases:
        out = _copy(onnx_export, tmp_path, f"case{cases.index((change, message))}")
        _edit_manifest(out, **change)
        with pytest.raises(ModelLoadError, match=message) as e:
            load(out)
        assert "\n" not in str(e.value)
    out = _copy(onnx_export, tmp_path, "old")
    d = json.loads((out / "manifest.json").read_text())
    del d["schema_version"]
    (out / "manifest.json").write_text(json.dumps(d))
    with pytest.raises(ModelLoadError, match="re-export"):
        load(out)
    for key in ("model", "config"):  # an entry every export writes, dropped
        d = json.loads((onnx_export / "manifest.json").read_text())
        del d[key]
        (out / "manifest.json").write_text(json.dumps(d))
        with pytest.raises(ModelLoadError, match=rf"{key} (is missing|must be an object .* got nothing)"):
            load(out)
    (out / "manifest.json").write_text("[" * 100_000)
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        load(out)


def test_fifo_and_device_paths_do_not_hang(tmp_path):
    fifo = tmp_path / "m.safetensors"
    os.mkfifo(fifo)
    t = time.monotonic()
    with pytest.raises(ModelLoadError, match="not a regular file"):
        load(fifo)
    os.symlink("/dev/zero", tmp_path / "z.onnx")
    with pytest.raises(ModelLoadError, match="not a regular file"):
        load(tmp_path / "z.onnx")
    assert time.monotonic() - t < 5


def test_export_never_replaces_a_folder_of_other_files(model_file, tmp_path):
    pytest.importorskip("onnxruntime")
    from ltc_edge.export import get_exporter

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UnsafeFileError, match="not an ltc-edge export"):
        get_exporter("onnx")(str(model_file), tmp_path)
    with pytest.raises(UnsafeFileError, match="holds the input"):
        get_exporter("onnx")(str(model_file), model_file.parent)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_export_replaces_an_earlier_export_whole_and_honours_umask(model_file, tmp_path):
    pytest.importorskip("onnxruntime")
    from ltc_edge.export import get_exporter

    out = tmp_path / "e"
    get_exporter("onnx")(str(model_file), out, precision="fp16")
    old = os.umask(0o027)
    try:
        get_exporter("onnx")(str(model_file), out)
    finally:
        os.umask(old)
    assert sorted(p.name for p in out.iterdir()) == ["MODEL_CARD.md", "manifest.json", "model.onnx"]
    assert json.loads((out / "manifest.json").read_text())["precision"] == "fp32"
    assert (out / "model.onnx").stat().st_mode & 0o777 == 0o640
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ltc-")]


@needs_cc
def test_c_export_over_budget_writes_nothing(model_file, tmp_path, monkeypatch):
    from ltc_edge.export import drift as D
    from ltc_edge.export import get_exporter
    from ltc_edge.export.manifest import DriftError

    monkeypatch.setitem(D.BUDGETS, "fp32", {"max_abs": 0.0})
    with pytest.raises(DriftError, match="over its drift budget"):
        get_exporter("c")(str(model_file), tmp_path / "c")
    assert not (tmp_path / "c").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ltc-")]


def test_crafted_strings_never_reach_c_code():
    m = build_model("ltc", 3, wiring="auto-ncp", units=8, output_size=2, seed=0)
    raw = {k: v.detach().numpy() for k, v in m.state_dict().items()}
    cfg = json.loads(json.dumps(m.config))
    cfg["cell"]["wiring"]["kind"] = 'x */ __attribute__((constructor)) void p(void){system("id");} /*'
    with pytest.raises(cgen.CodegenError, match="not a plain name"):
        cgen.generate(cfg, raw)
    cfg = json.loads(json.dumps(m.config))
    cfg["cell"]["ode_unfolds"] = "6; system(1)"
    with pytest.raises(cgen.CodegenError, match="integer"):
        cgen.generate(cfg, raw)


@pytest.mark.slow
def test_kill_9_during_export_leaves_old_or_new(model_file, tmp_path):
    """kill -9 at spread-out moments of `ltc export` over an existing export: the folder
    always loads and verifies (old or new), and the next export removes the leftovers."""
    pytest.importorskip("onnxruntime")
    from ltc_edge.export import get_exporter

    out = tmp_path / "e"
    get_exporter("onnx")(str(model_file), out, precision="fp16")
    cmd = [sys.executable, "-m", "ltc_edge.cli", "export", str(model_file), "-f", "onnx", "-o", str(out)]
    for delay in (0.5, 1.5, 2.5, 3.5, 5.0):
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        m, _ = artifact.read_verified(out)
        assert m.precision in ("fp16", "fp32")
        assert load(out).step(np.zeros(3), 0.1).shape == (2,)
    get_exporter("onnx")(str(model_file), out)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ltc-")]


DROP = object()  # a fuzzed field removed instead of replaced


def _json_values():
    from hypothesis import strategies as st

    scalars = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 40, 2 ** 40),
                        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
                        st.sampled_from(["../x", "model.onnx", "*/", "c", "onnx", "fp32", "step", "a" * 64,
                                         "abort", "system", "ltc_model_step_batch", "ltc_model_reset", "ltc"]))
    return st.one_of(st.just(DROP), st.recursive(
        scalars, lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=8), kids, max_size=4)),
        max_leaves=8))


def _fuzz_manifest(folder, model_file, extra_keys=()):
    """One field of a real manifest (top level, its files, bounds, config, model counts or C
    functions) replaced by a random JSON value or removed: load + step either raise a
    RuntimeInputError (one line) or step exactly like the model."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from ltc_edge.errors import RuntimeInputError

    base = json.loads((folder / "manifest.json").read_text())
    ref = load(model_file).step(np.full(3, 0.2), 0.1).copy()
    keys = sorted(base) + [f"files.{role}.{k}" for role in base["files"] for k in base["files"][role]]
    keys += ["state_bounds.lo", "new", "config.cell", "config.input_size", "config.cell.units", "config.task",
             "model.state_size", "model.neurons", "model.new", *extra_keys]
    tmp = folder.parent / f"{folder.name}-fuzz"

    @settings(max_examples=int(os.environ.get("LTC_FUZZ_EXAMPLES", 120)), deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(key=st.sampled_from(keys), value=_json_values())
    def check(key, value):
        d = json.loads(json.dumps(base))
        *path, last = key.split(".")
        node = d
        for p in path:
            node = node[p]
        if value is DROP:
            node.pop(last, None)
        else:
            node[last] = value
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(folder, tmp)
        (tmp / "manifest.json").write_text(json.dumps(d))
        try:
            y = load(tmp).step(np.full(3, 0.2), 0.1)
        except RuntimeInputError as e:
            assert "\n" not in str(e)
            return
        np.testing.assert_allclose(y, ref, atol=1e-5)

    check()


def test_fuzzed_manifests_give_a_clean_error_or_the_right_step(onnx_export, model_file):
    _fuzz_manifest(onnx_export, model_file)


@needs_cc
def test_fuzzed_c_manifests_give_a_clean_error_or_the_right_step(c_export, model_file):
    functions = json.loads((c_export[0] / "manifest.json").read_text())["functions"]
    _fuzz_manifest(c_export[0], model_file, [f"functions.{k}" for k in functions] + ["functions.system"])
