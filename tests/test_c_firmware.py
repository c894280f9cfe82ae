"""Firmware-ready C export: --prefix (two models linked into one program), the header's facts
(training dt, I/O names, normalisation, state bounds, precision, model sha256, version), the
step's stack use in the manifest, and the cmake / arduino layouts (every file in the manifest,
verified; the CMake project builds and passes its golden test on the host and, marked qemu,
on a Cortex-M4 under qemu; the Arduino src/ compiles for a Cortex-M4F)."""

import ctypes
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ltc_edge import artifact
from ltc_edge.cli import app
from ltc_edge.codegen import c as cgen
from ltc_edge.errors import ModelLoadError
from ltc_edge.export import c_layout as L
from ltc_edge.export import get_exporter
from ltc_edge.nn import build_model, save
from ltc_edge.nn.modelfile import read
from ltc_edge.runtime import load

pytestmark = pytest.mark.skipif(cgen.find_cc() is None, reason="no host C compiler (cc/gcc)")
runner = CliRunner()
STRICT = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-Wconversion", "-Wdouble-promotion"]
M4F = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-O2"]
NORM = {"input_mean": [0.1, -0.2, 0.3, 0.0, 0.5], "input_std": [1.5, 0.5, 2.0, 1.0, 0.8],
        "output_mean": [0.5, -1.0], "output_std": [2.0, 0.5]}
TASK = {"name": "csv", "options": {"inputs": "pos,vel,angle,rate,u_prev", "targets": ["torque", "brake"]},
        "dt": {"median": 0.05}}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("fw-models")
    ltc = build_model("ltc", 5, wiring="auto-ncp", units=12, output_size=2, seed=0, normalization=NORM)
    ltc.apply_constraints()
    ltc.config["task"] = TASK
    lstm = build_model("lstm", 5, units=6, output_size=3, seed=1)
    return {"ltc": (ltc, save(ltc, d / "ltc.safetensors")), "lstm": (lstm, save(lstm, d / "lstm.safetensors"))}


@pytest.fixture(scope="module")
def exported(models, tmp_path_factory):
    """The NCP model exported once per layout (and precision) with prefix pend (tests that change
    files copy it); int8: calibrated on a raw-unit npz, 300 drift steps (a short export)."""
    cache = {}

    def get(layout, precision="fp32"):
        if (layout, precision) not in cache:
            d = tmp_path_factory.mktemp("fw-exports")
            kw = {}
            if precision == "int8":
                x = np.random.default_rng(0).standard_normal((4, 300, 5)) * NORM["input_std"] + NORM["input_mean"]
                np.savez(d / "ref.npz", x=x.astype(np.float32))
                kw = dict(precision="int8", calibration=str(d / "ref.npz"), drift_steps=300)
            out = d / layout
            cache[layout, precision] = (get_exporter("c")(models["ltc"][0], out, prefix="pend", layout=layout, **kw),
                                        out)
        return cache[layout, precision]

    return get


def _copy(folder, tmp_path):
    return Path(shutil.copytree(folder, tmp_path / folder.name, symlinks=True))


def _cli(*args):
    res = runner.invoke(app, [str(a) for a in args])
    return res.exit_code, [ln for ln in res.output.splitlines() if ln.strip()], res.output


MAIN = r"""#include <stdio.h>
#include "ctl_a.h"
#include "ctl_b.h"
int main(void)
{
    ctl_a_state_t a;
    ctl_b_state_t b;
    float xa[CTL_A_INPUTS], xb[CTL_B_INPUTS], ya[CTL_A_OUTPUTS], yb[CTL_B_OUTPUTS];
    int t, i;
    ctl_a_reset(&a);
    ctl_b_reset(&b);
    for (t = 0; t < 200; ++t) {
        for (i = 0; i < CTL_A_INPUTS; ++i) xa[i] = (float)((t * 7 + i * 3) % 11) * 0.2f - 1.0f;
        for (i = 0; i < CTL_B_INPUTS; ++i) xb[i] = (float)((t * 5 + i) % 9) * 0.25f - 1.0f;
        ctl_a_step(&a, xa, 0.1f, ya);
        ctl_b_step(&b, xb, CTL_B_DEFAULT_DT, yb);
        for (i = 0; i < CTL_A_OUTPUTS; ++i) printf("%.9g ", (double)ya[i]);
        for (i = 0; i < CTL_B_OUTPUTS; ++i) printf("%.9g ", (double)yb[i]);
        printf("\n");
    }
    return 0;
}
"""


def test_two_prefixes_link_into_one_program(models, tmp_path):
    """Two models exported with --prefix ctl_a / ctl_b compile and link into one program that
    steps both; each matches its own model's numpy runtime."""
    (ltc, ltc_file), (lstm, lstm_file) = models["ltc"], models["lstm"]
    for fmt_prefix, path in (("ctl_a", ltc_file), ("ctl_b", lstm_file)):
        code, lines, out = _cli("export", path, "--format", "c", "--out", tmp_path / fmt_prefix, "--prefix", fmt_prefix)
        assert code == 0, out
    (tmp_path / "main.c").write_text(MAIN)
    objs = []
    for p in ("ctl_a", "ctl_b"):
        obj = tmp_path / f"{p}.o"
        subprocess.run([cgen.find_cc(), *cgen.CFLAGS, "-c", "-o", str(obj), str(tmp_path / p / f"{p}.c")], check=True)
        objs.append(str(obj))
    exe = tmp_path / "both"
    r = subprocess.run([cgen.find_cc(), *STRICT, "-O2", "-I", str(tmp_path / "ctl_a"), "-I", str(tmp_path / "ctl_b"),
                        "-o", str(exe), str(tmp_path / "main.c"), *objs, "-lm"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = np.array([[float(v) for v in line.split()] for line in
                    subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.splitlines()])
    ra, rb = load(ltc_file), load(lstm_file)
    want = []
    for t in range(200):
        xa = np.array([((t * 7 + i * 3) % 11) * 0.2 - 1.0 for i in range(5)], np.float32)
        xb = np.array([((t * 5 + i) % 9) * 0.25 - 1.0 for i in range(5)], np.float32)
        want.append(np.concatenate([ra.step(xa, 0.1), rb.step(xb, 1.0)]))
    want = np.array(want)
    assert got.shape == want.shape == (200, 5)
    assert np.abs(got - want).max() <= 1e-5, np.abs(got - want).max()
    assert np.abs(want[:, :2]).max() > 1e-2 and np.abs(want[:, 2:]).max() > 1e-2


def test_header_states_the_model_facts(models, exported, tmp_path):
    _, path = models["ltc"]
    m, folder = exported("flat")
    hdr = (folder / "pend.h").read_text()
    config, raw = read(path)
    sha = artifact.model_sha256(config, raw)
    assert m["model_sha256"] == sha and f'#define PEND_MODEL_SHA256 "{sha}"' in hdr
    assert "#define PEND_DEFAULT_DT 5.0e-02f" in hdr and m["default_dt"] == pytest.approx(0.05)
    assert "#define PEND_NORMALISATION_FOLDED 1" in hdr and '#define PEND_PRECISION "fp32"' in hdr
    assert "inputs  x[5]: pos, vel, angle, rate, u_prev" in hdr and "outputs y[2]: torque, brake" in hdr
    lib = ctypes.CDLL(str(folder / m["files"]["library"]["name"]))
    assert "#define PEND_NAME_SIZE 7" in hdr  # "u_prev" + NUL
    names = (ctypes.c_char * 7 * 5).in_dll(lib, "pend_input_names")
    assert [n.value.decode() for n in names] == ["pos", "vel", "angle", "rate", "u_prev"]
    assert [n.value.decode() for n in (ctypes.c_char * 7 * 2).in_dll(lib, "pend_output_names")] == ["torque", "brake"]
    for side in ("lo", "hi"):
        arr = np.array((ctypes.c_float * 12).in_dll(lib, f"pend_state_{side}"))
        np.testing.assert_allclose(arr, np.float32(m["state_bounds"][side]), rtol=0, atol=0)
    # the header alone is clean under the strict flags, in C and with both headers together
    (tmp_path / "h.c").write_text('#include "pend.h"\nint main(void) { return PEND_INPUTS - 5; }\n')
    r = subprocess.run([cgen.find_cc(), *STRICT, "-I", str(folder), "-c", "-o", str(tmp_path / "h.o"),
                        str(tmp_path / "h.c")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # a different weight: a different sha256
    raw2 = dict(raw)
    k = next(iter(raw2))
    raw2[k] = raw2[k] + np.float32(1e-3)
    assert artifact.model_sha256(config, raw2) != sha


def test_names_that_could_break_c_fall_back_to_indices(models):
    ltc, _ = models["ltc"]
    raw = {k: v.detach().numpy() for k, v in ltc.state_dict().items()}
    cfg = json.loads(json.dumps(ltc.config))
    cfg["task"]["options"]["inputs"] = ['a"', "b */ int x; /*", "c??/", "d\\", "e"]
    cfg["task"]["options"]["targets"] = "only_one"
    gen = cgen.generate(cfg, raw, prefix="m")
    assert '{"x0", "x1", "x2", "x3", "x4"}' in gen["files"]["m.c"] and '{"y0", "y1"}' in gen["files"]["m.c"]
    assert "*/ int" not in gen["files"]["m.h"]


def test_stack_use_is_measured(exported, tmp_path):
    """The manifest's stack figure is gcc's: bigger models need more stack for their step."""
    m, _ = exported("flat")
    sb = m["stack_bytes"]
    assert {"pend_step", "pend_reset", "pend_step_batch"} <= set(sb) and m["stack_bytes_note"].startswith("host ")
    small = sb["pend_step"]
    big = build_model("ltc", 40, units=64, output_size=2, seed=0)
    big.apply_constraints()
    gen = cgen.generate(big.config, {k: v.detach().numpy() for k, v in big.state_dict().items()}, prefix="big")
    (tmp_path / "big.c").write_text(gen["files"]["big.c"])
    (tmp_path / "big.h").write_text(gen["files"]["big.h"])
    large = L.stack_usage(tmp_path / "big.c", "big", cgen.find_cc())["big_step"]
    assert 0 < small < large < 64 * 1024, (small, large)
    assert large >= 4 * (40 + 64)  # at least its input and state scratch


def test_cli_prefix_and_layout_errors(models, tmp_path):
    _, path = models["lstm"]
    for args, message in (((("--prefix", "9lives"),), "C identifier"), ((("--prefix", "a b"),), "C identifier"),
                          ((("--prefix", "x" * 70),), "C identifier"), ((("--layout", "zip"),), "layout"),
                          ((("--prefix", "ok"), ("--format", "onnx")), "--format c only")):
        flat = [a for pair in args for a in pair]
        fmt = [] if "--format" in flat else ["--format", "c"]
        code, lines, out = _cli("export", path, *fmt, "--out", tmp_path / "o", *flat)
        assert code not in (0, None) and len(lines) == 1 and lines[0].startswith("error:"), out
        assert message in lines[0], lines[0]
        assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("layout", ["cmake", "arduino"])
def test_layout_files_are_all_in_the_manifest_and_verified(models, tmp_path, layout):
    ltc, path = models["ltc"]
    out = tmp_path / layout
    code, lines, text = _cli("export", path, "--format", "c", "--out", out, "--layout", layout, "--prefix", "pend")
    assert code == 0, text
    m, files = artifact.read_verified(out)
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} - {"manifest.json"}
    assert {e.name for e in m.files.values()} == on_disk and set(files) == set(L.FILE_ROLES[layout]) | {"card"}
    assert m.details["layout"] == layout and "library" not in m.files
    # the runtime builds it from its (sub-folder) sources and steps it like the numpy runtime
    c, ref = load(out), load(path)
    rng = np.random.default_rng(1)
    for _ in range(50):
        x = rng.standard_normal(5).astype(np.float32)
        np.testing.assert_allclose(c.step(x, 0.1), ref.step(x, 0.1), atol=1e-5)
    # any file changed: refused
    victim = out / m.files["cmake" if layout == "cmake" else "arduino_example"].name
    victim.write_text(victim.read_text() + "\n")
    with pytest.raises(ModelLoadError, match="does not match"):
        artifact.read_verified(out)


def test_sub_folder_symlink_is_refused(exported, tmp_path):
    out = _copy(exported("arduino")[1], tmp_path)
    artifact.read_verified(out)
    shutil.move(str(out / "src"), str(tmp_path / "elsewhere"))
    (out / "src").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ModelLoadError, match="symbolic link"):
        artifact.read_verified(out)


def _cmake():
    exe = shutil.which("cmake")
    if exe is None:
        pytest.skip("cmake not installed")
    return exe


def _build_cmake(folder, build, *extra):
    cm = _cmake()
    for cmd in ([cm, "-S", str(folder), "-B", str(build), *extra], [cm, "--build", str(build)]):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    ctest = shutil.which("ctest") or str(_cmake()).replace("cmake", "ctest")
    return subprocess.run([ctest, "--output-on-failure", "-V"], cwd=build, capture_output=True, text=True, timeout=300)


def test_cmake_layout_builds_and_passes_its_golden_test_on_the_host(exported, tmp_path):
    cm = _copy(exported("cmake")[1], tmp_path)
    r = _build_cmake(cm, tmp_path / "build")
    assert r.returncode == 0 and "GOLDEN PASS" in r.stdout, r.stdout[-2000:]
    assert "100% tests passed" in r.stdout
    assert (tmp_path / "build" / "libpend.a").exists()
    # a hosted build has neither a counter nor a stack probe: it says so (no unlabelled 0s)
    assert "step_stack_bytes=n/a (hosted build" in r.stdout and "instructions: n/a (hosted build" in r.stdout
    assert "step_stack_bytes=0" not in r.stdout and "count_n" not in r.stdout
    # the golden test can fail: a wrong reference output makes it fail
    gd = cm / "golden" / "golden_data.h"
    text = gd.read_text()
    i = text.index("golden_y")
    j = text.index("{", text.index("{", i) + 1) + 1
    gd.write_text(text[:j] + "1.0e+03f+" + text[j:])
    r = _build_cmake(cm, tmp_path / "build")
    assert r.returncode != 0 and "GOLDEN FAIL" in r.stdout


@pytest.mark.qemu
def test_cmake_layout_cross_builds_for_cortex_m4_and_runs_under_qemu(exported, tmp_path):
    from ltc_edge.bench import arm as A

    if A.missing_tools("m4"):
        pytest.skip(f"ARM tools missing: {', '.join(A.missing_tools('m4'))}")
    cm = _copy(exported("cmake")[1], tmp_path)
    r = _build_cmake(cm, tmp_path / "build-m4", "-DCMAKE_TOOLCHAIN_FILE=cmake/arm-none-eabi.cmake")
    assert r.returncode == 0 and "GOLDEN PASS" in r.stdout, r.stdout[-2000:]
    # ran on the emulated Cortex-M4: labelled instruction counts (SysTick x 40), the painted stack
    counts = re.search(r"timing_steps=(\d+) instructions_n=(\d+) instructions_2n=(\d+) \(instructions over", r.stdout)
    assert counts and 0 < int(counts[2]) < int(counts[3]), r.stdout[-2000:]
    assert 0 < int(re.search(r"step_stack_bytes=(\d+) state_bytes=", r.stdout)[1]) < 8192
    head = subprocess.run(["arm-none-eabi-readelf", "-h", str(tmp_path / "build-m4" / "pend_golden")],
                          capture_output=True, text=True).stdout
    assert "ARM" in head


def _golden_int_failing_copy(folder, tmp_path):
    """A copy of an int8 cmake export whose first reference output is one LSB off."""
    cm = _copy(folder, tmp_path)
    gd = cm / "golden" / "golden_int_data.h"
    text = gd.read_text()
    i = text.index("{", text.index("{", text.index("golden_yq")) + 1) + 1
    j = text.index(",", i)
    gd.write_text(text[:i] + str(int(text[i:j]) + 1) + text[j:])
    return cm


def test_int8_cmake_layout_is_verified_and_its_golden_test_is_bit_exact_on_the_host(exported, tmp_path):
    m, out = exported("cmake", "int8")
    man, files = artifact.read_verified(out)
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(files) == set(L.paths("cmake", "pend", "int8")) | {"card"}
    assert {e.name for e in man.files.values()} == on_disk and "golden/golden_int_main.c" in on_disk
    assert "golden/golden_main.c" not in on_disk  # the integer harness, not the float one
    # the documented switch, as a cmake option, selects the integer-only build whatever the prefix
    r = _build_cmake(_copy(out, tmp_path / "ok"), tmp_path / "build", "-DLTC_MODEL_INTEGER_ONLY=ON")
    assert r.returncode == 0 and "max_lsb_err=0 mismatches=0" in r.stdout and "GOLDEN PASS" in r.stdout, r.stdout[-2000:]
    assert "golden_steps=64" in r.stdout
    assert "PEND_INTEGER_ONLY:BOOL=ON" in (tmp_path / "build" / "CMakeCache.txt").read_text()
    symbols = subprocess.run(["nm", str(tmp_path / "build" / "libpend.a")], capture_output=True, text=True).stdout
    assert " T pend_step_q" in symbols and " T pend_step\n" not in symbols, symbols
    r = _build_cmake(_golden_int_failing_copy(out, tmp_path / "bad"), tmp_path / "build-bad")
    assert r.returncode != 0 and "max_lsb_err=1 mismatches=1" in r.stdout and "GOLDEN FAIL" in r.stdout


def test_int8_cmake_layout_needs_a_host_compiler(models, tmp_path, monkeypatch):
    np.savez(tmp_path / "ref.npz", x=np.random.default_rng(0).standard_normal((2, 50, 5)).astype(np.float32))
    monkeypatch.setattr(cgen, "find_cc", lambda: None)
    with pytest.raises(cgen.CodegenError, match="host build"):
        get_exporter("c")(models["ltc"][0], tmp_path / "o", precision="int8", layout="cmake",
                          calibration=str(tmp_path / "ref.npz"))
    assert not (tmp_path / "o").exists()


@pytest.mark.qemu
@pytest.mark.parametrize("core,unit", [("cortex-m0", "systick_ticks"), ("cortex-m3", "instructions")])
def test_int8_cmake_layout_cross_builds_for_m0_m3_bit_exact_under_qemu(exported, tmp_path, core, unit):
    """The int8 cmake project, cross-built with cmake/<core>.cmake (integer-only by default on a
    core without an FPU), runs its golden test under qemu: every output equal to the host build's."""
    from ltc_edge.bench.arm import cortex_m as CM

    if CM.missing_tools():
        pytest.skip(f"ARM tools missing: {', '.join(CM.missing_tools())}")
    out = exported("cmake", "int8")[1]
    r = _build_cmake(_copy(out, tmp_path / "ok"), tmp_path / "build", f"-DCMAKE_TOOLCHAIN_FILE=cmake/{core}.cmake")
    assert r.returncode == 0 and "GOLDEN PASS" in r.stdout, r.stdout[-2000:]
    assert "golden_steps=64 max_lsb_err=0 mismatches=0" in r.stdout and f"-M {CM.TARGETS[core]['machine']}" in \
        r.stdout.replace('"', "")
    assert re.search(rf"timing_steps=\d+ {unit}_n=\d+ {unit}_2n=\d+ \({unit} over", r.stdout), r.stdout[-1500:]
    nm = subprocess.run(["arm-none-eabi-nm", "-u", str(tmp_path / "build" / "libpend.a")], capture_output=True,
                        text=True, check=True).stdout.split()
    assert "pend_step_q" not in nm and not [s for s in nm if s.startswith(("__aeabi_f", "__aeabi_d"))], nm
    r = _build_cmake(_golden_int_failing_copy(out, tmp_path / "bad"), tmp_path / "build-bad",
                     f"-DCMAKE_TOOLCHAIN_FILE=cmake/{core}.cmake")
    assert r.returncode != 0 and "GOLDEN FAIL" in r.stdout


@pytest.mark.qemu
@pytest.mark.parametrize("core", ["cortex-m0", "cortex-m3"])
def test_fp32_cmake_layout_cross_builds_for_m0_m3_under_qemu(exported, tmp_path, core):
    """The fp32 project's other toolchain files: soft float, the golden test within its tolerance."""
    from ltc_edge.bench.arm import cortex_m as CM

    if CM.missing_tools():
        pytest.skip(f"ARM tools missing: {', '.join(CM.missing_tools())}")
    r = _build_cmake(_copy(exported("cmake")[1], tmp_path), tmp_path / "build", f"-DCMAKE_TOOLCHAIN_FILE=cmake/{core}.cmake")
    assert r.returncode == 0 and "GOLDEN PASS" in r.stdout, r.stdout[-2000:]
    assert int(re.search(r"max_abs_err=(\d+)e-9", r.stdout)[1]) <= 1e5  # 1e-4, the golden tolerance
    assert re.search(r"step_stack_bytes=\d+ state_bytes=\d+", r.stdout)


@pytest.mark.qemu
@pytest.mark.parametrize("core", ["cortex-m0", "cortex-m3", "cortex-m4"])
def test_shipped_cortex_m_startup_and_platform_are_clean_under_strict_flags(tmp_path, core):
    from ltc_edge.bench.arm import cortex_m as CM

    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc missing")
    for name, extra in (("startup_cm.c", []), ("platform_cm.c", []), ("platform_cm.c", ["-DPLATFORM_COUNT_SCALE=40u"])):
        r = subprocess.run(["arm-none-eabi-gcc", *CM.TARGETS[core]["cflags"], "-O2", "-std=c99", "-pedantic", "-Wall",
                            "-Wextra", "-Werror", *extra, "-c", "-o", str(tmp_path / "x.o"),
                            str(cgen.FIRMWARE / "cortex_m" / name)], capture_output=True, text=True)
        assert r.returncode == 0, f"{name}: {r.stderr}"


def test_info_says_what_the_exported_step_does_with_dt(exported, models, tmp_path):
    int8_out, fp32_out = exported("cmake", "int8")[1], exported("cmake")[1]
    code, lines, text = _cli("info", int8_out)
    assert code == 0 and "uses dt" not in text and "fixed at export: 0.05" in text, text
    facts = artifact.describe(int8_out)
    assert facts["fixed_dt"] == 0.05 and facts["step_dt"].startswith("fixed at export: 0.05 (a dt passed to the C step")
    assert artifact.describe(fp32_out)["step_dt"] == "an input of every step (default 0.05)"
    lstm = tmp_path / "lstm"
    get_exporter("c")(models["lstm"][0], lstm, build=False)
    assert artifact.describe(lstm)["step_dt"] == "unused (a lstm step ignores dt)"


ARDUINO_STUB = """#pragma once
struct SerialStub { void begin(long) {} void print(const char *) {} void print(char) {}
                    void println(float, int) {} };
static SerialStub Serial;
static inline void delay(unsigned long) {}
"""


@pytest.mark.qemu
def test_arduino_library_compiles_for_cortex_m4f(exported, tmp_path):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc missing")
    out = exported("arduino")[1]
    props = dict(line.split("=", 1) for line in (out / "library.properties").read_text().splitlines() if line)
    assert props["name"] == "pend" and props["includes"] == "pend.h" and props["architectures"] == "*"
    r = subprocess.run(["arm-none-eabi-gcc", *M4F, "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror",
                        "-Wdouble-promotion", "-c", "-o", str(tmp_path / "pend.o"), str(out / "src" / "pend.c")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "pend.o").stat().st_size > 0
    if shutil.which("arm-none-eabi-g++"):  # the example sketch, as C++ against a stub Arduino core
        (tmp_path / "Arduino.h").write_text(ARDUINO_STUB)
        r = subprocess.run(["arm-none-eabi-g++", *M4F, "-Wall", "-Werror", "-x", "c++", "-include", "Arduino.h",
                            "-I", str(tmp_path), "-I", str(out / "src"), "-c", "-o", str(tmp_path / "demo.o"),
                            str(out / "examples" / "pend_demo" / "pend_demo.ino")], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
