import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")
SSHD = "/usr/sbin/sshd"


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def ltc_file(tmp_path):
    """A small NCP-wired LTC model file (3 inputs, 2 outputs, 8 units)."""
    from ltc_edge.nn import build_model, save

    return str(save(build_model("ltc", 3, 2, wiring="auto-ncp", units=8, seed=0), tmp_path / "m.safetensors"))


@pytest.fixture
def step_in_threads():
    """run(ctrl, x, steps, threads=4): step one controller from `threads` threads, `steps` steps
    of x (dt 0.1) each; returns what they raised (a thread's exception is otherwise lost)."""
    import threading

    def run(ctrl, x, steps, threads=4):
        errors = []

        def work():
            try:
                for _ in range(steps):
                    ctrl.step(x, 0.1)
            except Exception as e:
                errors.append(e)

        pool = [threading.Thread(target=work) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        return errors
    return run


@pytest.fixture
def one_line_error():
    """check(result, msg): a CliRunner result failed with one line that names msg, no traceback."""
    def check(r, msg):
        lines = [line for line in r.output.strip().splitlines() if line.strip()]
        assert r.exit_code != 0 and len(lines) == 1 and msg in lines[0] and "Traceback" not in r.output, r.output
    return check


@pytest.hookimpl(trylast=True)  # after -m has deselected: only act when qemu tests will run
def pytest_collection_modifyitems(config, items):
    """qemu tests need the ARM cross compilers and emulators, the SSH-board tests sshd. When they
    are selected and missing,
    install them with the project's own script (apt), if we may: root, apt-get present, and
    LTC_NO_APT unset. Otherwise the tests skip and say why."""
    if not any(item.get_closest_marker("qemu") or item.get_closest_marker("slow") for item in items):
        return
    from ltc_edge.bench import arm

    if not (arm.missing_tools("aarch64") or arm.missing_tools("m4") or not Path(SSHD).exists()):
        return
    if os.environ.get("LTC_NO_APT") or not shutil.which("apt-get") or os.geteuid() != 0:
        return
    script = Path(arm.__file__).with_name("setup.sh")
    print(f"\ninstalling the ARM toolchain for the qemu tests: bash {script}", flush=True)
    subprocess.run(["bash", str(script)], check=False, timeout=1800)
