"""The generated C's header, as a firmware engineer reads it: every PREFIX_ symbol a comment
names exists (fp32 and int8, LTC and LSTM, a custom prefix), and the documented integer-only
switch -DLTC_MODEL_INTEGER_ONLY selects the integer-only build whatever the prefix (issue 29,
items 5 and 9)."""

import re
import shutil
import subprocess

import numpy as np
import pytest

from ltc_edge.codegen import c as cgen
from ltc_edge.codegen import int8
from ltc_edge.nn import build_model

pytestmark = pytest.mark.skipif(cgen.find_cc() is None, reason="no host C compiler (cc/gcc)")

COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
MODELS = {"ltc": dict(wiring="auto-ncp", units=12, output_size=2), "lstm": dict(units=6, output_size=2)}


def _files(kind: str, precision: str, prefix: str) -> dict:
    m = build_model(kind, 4, seed=0, **MODELS[kind])
    raw = {k: v.detach().numpy().astype(np.float32) for k, v in m.state_dict().items()}
    if precision == "int8":
        x = np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32)
        return int8.generate(m.config, raw, prefix=prefix, calib_x=x)["files"]
    return cgen.generate(m.config, raw, prefix=prefix)["files"]


def _named_in_comments(text: str, prefix: str) -> set:
    names = set()
    for comment in COMMENT.findall(text):
        names |= set(re.findall(rf"\b{prefix}_\w+", comment, re.I))
    return names


def _declared(text: str) -> set:
    return set(re.findall(r"\b[A-Za-z_]\w*", COMMENT.sub(" ", text)))


@pytest.mark.parametrize("precision", ["fp32", "int8"])
@pytest.mark.parametrize("kind", ["ltc", "lstm"])
def test_every_symbol_a_comment_names_exists(kind, precision):
    prefix = "arm_ctl"
    files = _files(kind, precision, prefix)
    header, source = files[f"{prefix}.h"], files[f"{prefix}.c"]
    in_header = _named_in_comments(header, prefix)
    assert len(in_header) >= 5, in_header  # the usage comment names the API: the scan found it
    missing = in_header - _declared(header)
    assert not missing, f"the header's comments name symbols it does not define: {sorted(missing)}"
    missing = _named_in_comments(source, prefix) - _declared(header + source)
    assert not missing, f"the source's comments name symbols that do not exist: {sorted(missing)}"


def test_the_scan_catches_a_missing_symbol():
    text = "/* see ARM_CTL_STATE_LO/HI and arm_ctl_step */\nvoid arm_ctl_step(void);\n"
    assert _named_in_comments(text, "arm_ctl") - _declared(text) == {"ARM_CTL_STATE_LO"}


def _preprocessed(tmp_path, files, prefix, *defines) -> str:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    pre = subprocess.run([cgen.find_cc(), "-E", "-P", *defines, "-I", str(tmp_path), str(tmp_path / f"{prefix}.c")],
                         capture_output=True, text=True, check=True).stdout
    return pre[pre.index(f"{prefix}_state_t;"):]  # past the system headers


@pytest.mark.parametrize("kind", ["ltc", "lstm"])
def test_documented_integer_only_switch_works_with_any_prefix(tmp_path, kind):
    files = _files(kind, "int8", "arm_q")
    header = files["arm_q.h"]
    assert "-DLTC_MODEL_INTEGER_ONLY" in header and "-DARM_Q_INTEGER_ONLY" in header  # both stated
    for define in ("-DLTC_MODEL_INTEGER_ONLY", "-DARM_Q_INTEGER_ONLY"):
        body = _preprocessed(tmp_path, files, "arm_q", define)
        assert not re.search(r"\b(float|double)\b", body), define
        assert "arm_q_step_q" in body and not re.search(r"\barm_q_step\s*\(", body), define
    body = _preprocessed(tmp_path, files, "arm_q")  # neither: the float API is there
    assert re.search(r"\barm_q_step\s*\(", body) and re.search(r"\bfloat\b", body)


def test_default_prefix_header_has_no_self_alias():
    header = _files("ltc", "int8", "ltc_model")["ltc_model.h"]
    assert "-DLTC_MODEL_INTEGER_ONLY" in header
    assert "defined(LTC_MODEL_INTEGER_ONLY) && !defined(LTC_MODEL_INTEGER_ONLY)" not in header


@pytest.mark.qemu
def test_documented_integer_only_switch_builds_no_soft_float_for_cortex_m0(tmp_path):
    """The issue's case: --prefix arm_q built with -DLTC_MODEL_INTEGER_ONLY for a Cortex-M0 calls
    no soft-float helper (before: the float wrappers were built, soft float and all)."""
    from ltc_edge.bench.arm import cortex_m as CM

    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("arm-none-eabi-nm") is None:
        pytest.skip("arm-none-eabi tools missing")
    for name, text in _files("ltc", "int8", "arm_q").items():
        (tmp_path / name).write_text(text)
    obj = CM.step_object(tmp_path, "arm_q", "cortex-m0", ["-DLTC_MODEL_INTEGER_ONLY"])
    assert obj["float_helpers"] == [] and obj["flash_bytes"] > 0, obj["undefined"]
    soft = CM.step_object(tmp_path, "arm_q", "cortex-m0")  # without it: the float wrappers need soft float
    assert any(s.startswith("__aeabi_f") for s in soft["float_helpers"]), soft["undefined"]
