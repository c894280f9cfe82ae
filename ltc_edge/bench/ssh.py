"""`ltc bench --target ssh://USER@HOST[:PORT]`: measure on a Linux board over SSH.

The system `ssh` runs everything (the user's ~/.ssh/config, agent and keys work as usual;
`--ssh-opts` adds options). The board needs `python3` with numpy; each backend's own package
where it has one (onnxruntime, ai-edge-litert / tflite-runtime); for the C backend, either a
cross compiler for its arch here (aarch64-linux-gnu-gcc, arm-linux-gnueabihf-gcc, or this
machine's cc for the same arch) or a `cc` on the board.

A bundle is shipped once per board (tar over ssh): the runtime's Python files (no torch), the
host's exports of each model, one job file per row. Each row then runs
`python3 -m ltc_edge.bench.worker` there, as on the host, and comes back as JSON.
"""

from __future__ import annotations

import json
import platform
import re
import shlex
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LtcEdgeError

SCHEME = "ssh://"
CONNECT_TIMEOUT_S = 10
# board arch (uname -m) -> cross compilers that build for it here, first found wins
CROSS_CC = {"aarch64": ("aarch64-linux-gnu-gcc",), "armv7l": ("arm-linux-gnueabihf-gcc",),
            "armv6l": ("arm-linux-gnueabihf-gcc",), "x86_64": ("x86_64-linux-gnu-gcc",)}
BACKENDS = ("numpy", "onnxruntime", "tflite", "c")  # what runs on a board (torch does not: too heavy)
PACKAGES = ("numpy", "onnxruntime", "ai_edge_litert", "tflite_runtime", "safetensors")
BACKEND_NEEDS = {"numpy": ("safetensors",), "c": (), "onnxruntime": ("onnxruntime",),
                 "tflite": ("ai_edge_litert", "tflite_runtime")}  # tflite: either one


class BoardError(LtcEdgeError):
    """A board cannot be reached, logged into, or lacks what the benchmark needs."""


def is_ssh(target: str) -> bool:
    return str(target).startswith(SCHEME)


@dataclass
class Board:
    """One SSH board: where it is and how to reach it."""
    host: str
    user: str | None = None
    port: int | None = None
    opts: list = field(default_factory=list)
    python: str = "python3"

    @property
    def name(self) -> str:
        return f"{SCHEME}{self.user + '@' if self.user else ''}{self.host}{':' + str(self.port) if self.port else ''}"

    def ssh_argv(self) -> list:
        argv = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}", *self.opts]
        if self.port:
            argv += ["-p", str(self.port)]
        return argv + [f"{self.user}@{self.host}" if self.user else self.host]

    def run(self, command: str, *, timeout: float = 120, data: bytes | None = None) -> str:
        """Run a shell command on the board; its stdout. Connection and login failures (ssh's
        exit 255) and a failing command are one-line BoardErrors."""
        try:
            r = subprocess.run(self.ssh_argv() + ["--", command], input=data, capture_output=True, timeout=timeout)
        except FileNotFoundError:
            raise BoardError("ssh is not installed here (install openssh-client)") from None
        except subprocess.TimeoutExpired:
            raise BoardError(f"{self.name}: no answer within {timeout:.0f} s") from None
        err = r.stderr.decode(errors="replace").strip().splitlines()
        if r.returncode == 255:
            raise BoardError(f"{self.name}: cannot connect or log in: {_ssh_reason(err)}")
        if r.returncode != 0:
            raise BoardError(f"{self.name}: `{command.split()[0]}` failed (exit {r.returncode}): "
                             f"{err[-1] if err else 'no message'}")
        return r.stdout.decode(errors="replace")


def _ssh_reason(lines: list) -> str:
    """ssh's own last line, with the fix a user needs for the usual ones."""
    text = " ".join(lines[-3:]) if lines else "ssh exited 255"
    hints = (("Permission denied", "check the user and key (--ssh-opts \"-i KEY\")"),
             ("Host key verification failed", "add the host key (ssh once by hand) or pass "
                                              "--ssh-opts \"-o StrictHostKeyChecking=accept-new\""),
             ("Could not resolve", "check the host name"), ("Connection refused", "is sshd running on that port?"),
             ("timed out", "is the board on and reachable?"))
    for key, hint in hints:
        if key in text:
            return f"{lines[-1] if lines else key} ({hint})"
    return lines[-1] if lines else text


def parse(target: str, ssh_opts: str = "", python: str = "python3") -> Board:
    """ssh://[USER@]HOST[:PORT] (HOST may be an ~/.ssh/config alias) -> Board."""
    m = re.fullmatch(r"ssh://(?:([A-Za-z0-9._-]+)@)?([A-Za-z0-9._-]+|\[[0-9A-Fa-f:]+\])(?::(\d{1,5}))?/?", target)
    if not m or (m.group(3) and not 0 < int(m.group(3)) < 65536):
        raise ValueError(f"--target {target!r}: expected ssh://USER@HOST[:PORT] (port 1-65535)")
    try:
        opts = shlex.split(ssh_opts or "")
    except ValueError as e:
        raise ValueError(f"--ssh-opts: {e}") from None
    if not re.fullmatch(r"[A-Za-z0-9_./+-]+", python or ""):
        raise ValueError(f"--board-python {python!r}: give a command or path (letters, digits, ./_+-)")
    return Board(host=m.group(2).strip("[]"), user=m.group(1), port=int(m.group(3)) if m.group(3) else None,
                 opts=opts, python=python)


PROBE = r"""
echo "os=$(uname -s)"; echo "arch=$(uname -m)"; echo "kernel=$(uname -r)"
echo "cpu=$(grep -m1 -E '^(model name|Model|Hardware)' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')"
echo "cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null)"
echo "cc=$(command -v cc || command -v gcc || true)"
if command -v PYTHON >/dev/null; then
PYTHON - <<'EOF'
import importlib.util, platform
print("python=" + platform.python_version())
for name in %s:
    print("has_" + name + "=" + ("1" if importlib.util.find_spec(name) else ""))
EOF
fi
""" % (list(PACKAGES),)


def probe(board: Board) -> dict:
    """The board's facts: os, arch, kernel, cpu, cores, python, which packages it has, cc."""
    facts = {}
    for line in board.run(PROBE.replace("PYTHON", board.python), timeout=60).splitlines():
        key, _, value = line.partition("=")
        if key:
            facts[key.strip()] = value.strip()
    facts["packages"] = {p: bool(facts.pop(f"has_{p}", "")) for p in PACKAGES}
    facts["target"] = board.name
    if facts.get("os") != "Linux":
        raise BoardError(f"{board.name}: not a Linux board (uname -s says {facts.get('os') or 'nothing'})")
    if not facts.get("python"):
        raise BoardError(f"{board.name}: no {board.python} on the board (install Python 3 with numpy, "
                         "or name yours with --board-python)")
    if not facts["packages"]["numpy"]:
        raise BoardError(f"{board.name}: {board.python} there has no numpy (pip install numpy on the board)")
    return facts


def missing_for(backend: str, facts: dict) -> str | None:
    """Why `backend` cannot run on the board, or None."""
    needs = BACKEND_NEEDS.get(backend)
    if needs is None:
        return f"backend {backend} does not run on SSH boards (numpy, onnxruntime, tflite, c do)"
    if needs and not any(facts["packages"].get(p) for p in needs):
        return f"{facts['target']}: its Python has no {' or '.join(needs)} (pip install it on the board)"
    if backend == "c" and not (cross_compiler(facts["arch"]) or facts.get("cc")):
        return (f"no C compiler for {facts['arch']}: neither a cross compiler here "
                f"({', '.join(CROSS_CC.get(facts['arch'], ('none known',)))}) nor cc on the board")
    return None


def cross_compiler(arch: str) -> str | None:
    """A compiler here that builds for the board's arch: this machine's own cc for the same
    arch, else a cross compiler."""
    if arch == platform.machine():
        from ..codegen.c import find_cc

        return find_cc()
    return next((c for c in CROSS_CC.get(arch, ()) if shutil.which(c)), None)


def board_export(folder: Path, dest: Path, facts: dict) -> Path:
    """A copy of a host export for the board. C: the library rebuilt for the board's arch here
    (manifest updated), or left out so the board's cc builds it from the checked source."""
    shutil.copytree(folder, dest)
    from .. import artifact

    manifest = artifact.read(dest)
    if "library" not in manifest.files:
        return dest
    (dest / manifest.files["library"].name).unlink()
    del manifest.files["library"]
    cc = cross_compiler(facts["arch"])
    if cc:
        from ..codegen.c import compile_library

        lib = compile_library(dest / manifest.files["source"].name, cc=cc)
        manifest.files["library"] = artifact.FileEntry(lib.relative_to(dest).as_posix(), artifact.sha256_file(lib),
                                                        lib.stat().st_size)
        facts.setdefault("c_compiled_with", f"{cc} (here)")
    else:
        facts.setdefault("c_compiled_with", f"{facts['cc']} (on the board)")
    manifest.write(dest)
    return dest


RUNTIME_FILES = ("*.py", "data/*", "codegen/templates/*", "codegen/templates/int/*", "codegen/firmware/*.h",
                 "codegen/firmware/*.c")


def pack(bundle: Path) -> bytes:
    """The bundle as a tar: the ltc_edge files the runtime and the worker need (Python, C
    templates, the built-in tasks' data; nothing there imports torch) and what is in `bundle`."""
    import io

    pkg = Path(__file__).resolve().parents[1]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for pattern in RUNTIME_FILES:
            for p in sorted(pkg.rglob(pattern) if pattern == "*.py" else pkg.glob(pattern)):
                if p.is_file() and "__pycache__" not in p.parts:
                    tar.add(p, arcname=f"ltc_edge/{p.relative_to(pkg)}")
        for p in sorted(bundle.iterdir()):
            tar.add(p, arcname=p.name)
    return buf.getvalue()


def ship(board: Board, bundle: Path) -> str:
    """Copy the bundle to a fresh folder on the board; its path there."""
    remote = board.run("mktemp -d -t ltc-bench.XXXXXX").strip()
    if not remote.startswith("/"):
        raise BoardError(f"{board.name}: mktemp gave no folder ({remote!r})")
    board.run(f"tar -xzf - -C {shlex.quote(remote)}", data=pack(bundle), timeout=300)
    return remote


def run_job(board: Board, remote: str, name: str, timeout: float = 1800) -> dict:
    """One row on the board: the worker with the job file of part `name`; the row it wrote."""
    q, part = shlex.quote, shlex.quote(name)
    cmd = (f"cd {q(remote)} && PYTHONPATH={q(remote)} PYTHONDONTWRITEBYTECODE=1 {board.python} -m ltc_edge.bench.worker "
           f"{part}/job.json {part}/row.json >/dev/null 2>{part}/err; "
           f"s=$?; if [ $s -ne 0 ]; then tail -n 1 {part}/err >&2; exit $s; fi; cat {part}/row.json")
    try:
        return json.loads(board.run(cmd, timeout=timeout))
    except ValueError:
        raise BoardError(f"{board.name}: the worker's row is not JSON") from None


def cleanup(board: Board, remote: str) -> None:
    try:
        board.run(f"rm -rf {shlex.quote(remote)}", timeout=60)
    except BoardError:
        pass  # the folder is in the board's temp dir; losing the link is not worth failing a finished run


class BoardSession:
    """One board during one `ltc bench`: the runtime shipped once, then each row's export and
    job file, measured there by the same worker as on the host."""

    def __init__(self, board: Board, facts: dict):
        import tempfile

        self.board, self.facts = board, facts
        self.stage = Path(tempfile.mkdtemp(prefix="ltc-board-"))  # what is shipped, before it goes
        self.remote, self.count = None, 0

    def row(self, job: dict, artifact: Path) -> dict:
        """Measure one row there. job: backend, precision, batches, min_seconds, task, task_options
        (a csv/npz task's data file goes along)."""
        why = missing_for(job["backend"], self.facts)
        if why:
            return {"skipped": why}
        if self.remote is None:
            (self.stage / "runtime").mkdir()
            self.remote = ship(self.board, self.stage / "runtime")
        self.count += 1
        name = f"job{self.count:03d}"
        part = self.stage / name
        part.mkdir(parents=True)
        remote_job = {k: job.get(k) for k in ("backend", "precision", "batches", "min_seconds", "task")}
        remote_job.update(target="board", artifact=self._artifact(artifact, part),
                          task_options=self._task_options(job.get("task_options"), part))
        (part / "job.json").write_text(json.dumps(remote_job))
        self.board.run(f"tar -xzf - -C {shlex.quote(self.remote)}", data=_tar_of(part, name), timeout=300)
        row = run_job(self.board, self.remote, name)
        if job["backend"] == "c":
            row["compiled_with"] = self.facts.get("c_compiled_with")
        return row

    @staticmethod
    def _task_options(options, part: Path) -> dict:
        """The task's options with its data file shipped beside the job (paths relative to the bundle)."""
        options = dict(options or {})
        if options.get("data"):
            src = Path(options["data"])
            shutil.copy(src, part / src.name)
            options["data"] = f"{part.name}/{src.name}"
        return options

    def _artifact(self, artifact: Path, part: Path) -> str:
        """The artifact's path on the board (relative to the bundle)."""
        artifact = Path(artifact)
        if artifact.is_dir():
            board_export(artifact, part / "export", self.facts)
            return f"{part.name}/export"
        shutil.copy(artifact, part / artifact.name)
        return f"{part.name}/{artifact.name}"

    def close(self) -> None:
        shutil.rmtree(self.stage, ignore_errors=True)
        if self.remote is not None:
            cleanup(self.board, self.remote)


def _tar_of(folder: Path, arcname: str) -> bytes:
    import io

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname=arcname)
    return buf.getvalue()
