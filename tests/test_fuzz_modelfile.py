"""Byte-level fuzzing of model files: whatever the bytes, read() accepts the file or raises
ModelFileError (one line), never another exception and never a hang. The mutations are
scripts/fuzz_modelfile.py's (`apply`), drawn here by hypothesis; the script runs thousands."""

import importlib.util
import json
import signal
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ltc_edge.nn import ModelFileError, read

_spec = importlib.util.spec_from_file_location(
    "fuzz_modelfile", Path(__file__).resolve().parents[1] / "scripts" / "fuzz_modelfile.py")
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    return [p.read_bytes() for p in fuzz.base_models(tmp_path_factory.mktemp("bases"))]


POS = st.integers(0, 1 << 20)
BYTE_OPS = st.one_of(
    st.tuples(st.just("flip"), POS, st.integers(1, 255)),
    st.tuples(st.just("insert"), POS, st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), POS, st.integers(1, 16)),
    st.tuples(st.just("truncate"), POS),
    st.tuples(st.just("length"), st.integers(0, (1 << 64) - 1)),
    st.tuples(st.just("deep"), st.sampled_from(["header", "config"]), st.sampled_from([100, 100_000])),
    st.tuples(st.just("tensor"), st.integers(0, 63), st.one_of(st.none(), POS), st.sampled_from(fuzz.HUGE)))
JSON_VALUES = st.one_of(st.sampled_from(fuzz.VALUES), st.integers(), st.text(max_size=6),
                        st.floats(allow_nan=True, allow_infinity=True))


def _json_op(draw, data: bytes):
    header, _ = fuzz.split(data)
    if draw(st.booleans()):
        path = draw(st.sampled_from(fuzz.config_paths(json.loads(header["__metadata__"]["ltc_edge"]))))
        return ("json", "config", path, draw(JSON_VALUES))
    return ("json", "header", draw(st.sampled_from(fuzz.header_paths(header))), draw(JSON_VALUES))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_read_accepts_or_raises_model_file_error(tmp_path, bases, data):
    base = data.draw(st.sampled_from(bases))
    ops = [data.draw(BYTE_OPS) if data.draw(st.booleans()) else _json_op(data.draw, base)
           for _ in range(data.draw(st.integers(1, 3)))]
    path = tmp_path / "case.safetensors"
    path.write_bytes(fuzz.apply(base, ops))
    event(fuzz.run_case(path, timeout_s=10.0))  # anything but ModelFileError (or a hang) fails here


def test_mutations_change_the_file_and_round_trip(bases):
    """The fuzzer really mutates (an identity `apply` would make the test above vacuous)."""
    base = bases[0]
    assert fuzz.apply(base, []) == base
    assert fuzz.apply(base, [("flip", 0, 1)])[0] == base[0] ^ 1
    assert len(fuzz.apply(base, [("truncate", 10)])) == 10
    header, body = fuzz.split(base)
    assert fuzz.split(fuzz.join(header, body)) == (header, body)
    assert read_bytes_ok(fuzz.join(header, body))
    changed = fuzz.apply(base, [("json", "config", ["cell", "units"], 7)])
    assert json.loads(fuzz.split(changed)[0]["__metadata__"]["ltc_edge"])["cell"]["units"] == 7


def read_bytes_ok(data: bytes) -> bool:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.safetensors"
        path.write_bytes(data)
        read(path)  # a re-serialised header is still a valid model file
    return True


def test_fuzzer_reports_non_model_file_errors(tmp_path, monkeypatch):
    """The script counts anything but ModelFileError as a finding and exits 1."""
    def boom(path):
        raise KeyError("cell")

    monkeypatch.setattr(fuzz, "check", boom)
    assert fuzz.main(["--cases", "3"]) == 1


def test_fuzzer_times_out_a_hang(tmp_path, monkeypatch):
    def hang(path):
        signal.pause()  # woken only by the alarm

    monkeypatch.setattr(fuzz, "check", hang)
    with pytest.raises(fuzz.CaseTimeout):
        fuzz.run_case(tmp_path / "x", timeout_s=0.2)


def test_deep_and_huge_json_are_model_file_errors(tmp_path, bases):
    for ops in ([("deep", "header", 100_000)], [("deep", "config", 100_000)],
                [("json", "config", ["cell", "units"], 10 ** 4000)], [("length", 1 << 63)]):
        path = tmp_path / "case.safetensors"
        path.write_bytes(fuzz.apply(bases[0], ops))
        with pytest.raises(ModelFileError):
            read(path)
    assert struct.unpack("<Q", fuzz.apply(bases[0], [("length", 5)])[:8]) == (5,)


def test_huge_parameters_are_refused_and_the_limit_runs_everywhere(tmp_path, bases):
    """The tensor op writes floats into the data; beyond MAX_PARAM_ABS a file is rejected, at it
    every backend takes it (check() runs describe, the numpy runtime and the C generator)."""
    for value, verdict in ((3e38, "rejected"), (1000000.0625, "rejected"), (float("nan"), "rejected"),
                           (1e6, "accepted"), (-1e6, "accepted"), (1e-45, "accepted")):
        for index in range(12):  # several tensors of the wired LTC (sigma, mu, w, erev, ...)
            path = tmp_path / "case.safetensors"
            path.write_bytes(fuzz.apply(bases[6], [("tensor", index, None, value)]))
            assert fuzz.check(path) == verdict, (value, index)
    header, body = fuzz.split(fuzz.apply(bases[6], [("tensor", 0, 1, 2.5)]))
    name = sorted(k for k in header if k != "__metadata__")[0]
    lo = header[name]["data_offsets"][0]
    assert struct.unpack("<f", body[lo + 4:lo + 8]) == (2.5,)


def test_backend_disagreement_is_a_finding(tmp_path, bases, monkeypatch):
    """Without the magnitude limit, sigma = 3e38 loads but the C generator cannot write its gate
    constant: check() reports that as a finding (the issue-29 fuzz case), not as accepted."""
    from ltc_edge.codegen.c import CodegenError
    from ltc_edge.nn import modelfile

    names = sorted(k for k in fuzz.split(bases[6])[0] if k != "__metadata__")
    path = tmp_path / "sigma.safetensors"
    path.write_bytes(fuzz.apply(bases[6], [("tensor", names.index("cell.sigma"), None, 3e38)]))
    assert fuzz.check(path) == "rejected"
    monkeypatch.setattr(modelfile, "MAX_PARAM_ABS", float("inf"))
    with pytest.raises(CodegenError, match="non-finite constant"):
        fuzz.check(path)
