import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.hookimpl(trylast=True)  # after -m has deselected: only act when qemu tests will run
def pytest_collection_modifyitems(config, items):
    """qemu tests need the ARM cross compilers and emulators. When they are selected and missing,
    install them with the project's own script (apt), if we may: root, apt-get present, and
    LTC_NO_APT unset. Otherwise the tests skip and say why."""
    if not any(item.get_closest_marker("qemu") for item in items):
        return
    from ltc_edge.bench import arm

    if not (arm.missing_tools("aarch64") or arm.missing_tools("m4")):
        return
    if os.environ.get("LTC_NO_APT") or not shutil.which("apt-get") or os.geteuid() != 0:
        return
    script = Path(arm.__file__).with_name("setup.sh")
    print(f"\ninstalling the ARM toolchain for the qemu tests: bash {script}", flush=True)
    subprocess.run(["bash", str(script)], check=False, timeout=1800)
