"""What a figure was measured on (machine facts): the one function every record that carries
timings or training runs calls (bench results.json, sweep.json, robustness.json, a training
run's history). Standard library only: a loaded torch or numpy is read, never imported."""

from __future__ import annotations

import os
import platform
import sys

# the packages whose versions change the numbers: read from the loaded module, else the installed one
PACKAGES = ("numpy", "torch", "onnx", "onnxruntime", "ai_edge_litert", "tflite_runtime", "litert_torch", "ncps")


def machine_info() -> dict:
    """platform, machine, python, cpu_count, processor (the CPU's model name), versions of the
    packages that change the numbers (ltc_edge included) and, when torch is loaded, its threads."""
    info = {"platform": platform.platform(), "machine": platform.machine(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "processor": cpu_model(), "versions": package_versions()}
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_num_threads"):
        info["torch_threads"] = torch.get_num_threads()
    return info


def package_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    versions = {}
    for name in PACKAGES:
        mod = sys.modules.get(name)
        if mod is not None:
            versions[name] = getattr(mod, "__version__", "?")
            continue
        try:
            versions[name] = version(name.replace("_", "-"))
        except (PackageNotFoundError, ValueError):
            continue
    versions["ltc_edge"] = __version__
    return versions


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
