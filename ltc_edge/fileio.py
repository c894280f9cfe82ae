"""Safe file I/O shared by every package (numpy-free, imports nothing above it).

* `read_bytes` reads regular files only (no FIFO, device or /dev/zero link: checked on the
  open descriptor, so nothing blocks or streams forever) and only up to a stated size.
* `atomic_write_bytes` writes a temp file beside the target, fsyncs, then renames: all or
  nothing, with the user's umask (not mkstemp's 0600); it refuses to replace a non-regular file.
* `check_output` refuses an output path that is one of the command's inputs.
* `replace_dir` swaps a finished temp folder into place, so a folder is the old one or the
  new one, never a mix; entries the caller names as not its own (a user's `build/`, notes)
  are carried into the new folder, never deleted, even if the process is killed midway
  (a journal beside the folder lets the next writer put them back).
* Temp files and folders left by a killed writer (its pid no longer runs) are removed by the
  next writer of the same target.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

from .errors import UnsafeFileError

MiB = 1 << 20
LIMITS = {"model": 512 * MiB, "manifest": 16 * MiB, "data": 4096 * MiB, "library": 64 * MiB,
          "artifact": 512 * MiB}


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def open_regular(path, what: str = "file", max_bytes: int | None = None) -> int:
    """An O_RDONLY descriptor of a regular file no larger than max_bytes; UnsafeFileError /
    FileNotFoundError otherwise. O_NONBLOCK so that opening a FIFO cannot hang."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise UnsafeFileError(f"{path}: is a folder, not a {what}") from None
    except PermissionError:
        raise UnsafeFileError(f"{path}: permission denied") from None
    st = os.fstat(fd)
    problem = None
    if stat.S_ISDIR(st.st_mode):
        problem = f"is a folder, not a {what}"
    elif not stat.S_ISREG(st.st_mode):
        problem = f"is not a regular file (a FIFO, device or socket): refusing to read it as a {what}"
    elif max_bytes is not None and st.st_size > max_bytes:
        problem = f"is {st.st_size / MiB:.1f} MiB, more than the {max_bytes / MiB:.0f} MiB a {what} may be"
    if problem:
        os.close(fd)
        raise UnsafeFileError(f"{path}: {problem}")
    return fd


def read_bytes(path, what: str = "file", max_bytes: int | None = None) -> bytes:
    fd = open_regular(path, what, max_bytes)
    with os.fdopen(fd, "rb") as f:
        data = f.read(max_bytes + 1 if max_bytes is not None else -1)
    if max_bytes is not None and len(data) > max_bytes:  # grew while reading
        raise UnsafeFileError(f"{path}: larger than the {max_bytes / MiB:.0f} MiB a {what} may be")
    return data


def check_writable_target(path) -> None:
    """A file output may replace a regular file, never a device, FIFO, socket or folder."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        st = os.stat(path) if path.exists() else os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            raise UnsafeFileError(f"{path}: is a folder; give a file name")
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFileError(f"{path}: is not a regular file (a device, FIFO or socket): refusing to replace it")


def atomic_write_bytes(path, data: bytes) -> None:
    """Write to a temp file beside `path`, fsync, then rename over it: all or nothing,
    honouring the umask."""
    path = Path(path)
    check_writable_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clean_temp_files(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _clean_temp_files(path: Path) -> None:
    """Remove `.{name}.{pid}.*.tmp` files that a killed writer of `path` left (pid not running)."""
    prefix = f".{path.name}."
    for p in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = p.name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)) and p.is_file() and not p.is_symlink():
            with contextlib.suppress(OSError):
                p.unlink()


def same_file(a, b) -> bool:
    a, b = Path(a), Path(b)
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(out, *inputs, what: str = "--out") -> None:
    """Refuse an output that is one of the inputs (export folders are checked by
    export.manifest.check_out_dir, which also refuses a folder holding the input)."""
    out = Path(out)
    for src in inputs:
        if src is None:
            continue
        src = Path(src)
        if same_file(out, src):
            raise UnsafeFileError(f"{what} {out} is the input {src}: refusing to overwrite it")


def set_umask_mode(path) -> None:
    """chmod a file or folder made by mkstemp/mkdtemp (0600/0700) to what the umask allows."""
    mode = (0o777 if Path(path).is_dir() else 0o666) & ~_umask()
    os.chmod(path, mode)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where the
    system has no such call."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    return False


def foreign_entries(folder, owned) -> list:
    """The topmost entries under folder (relative paths, '/'-separated) that hold no path in
    `owned` (the files an earlier export wrote): what a user or a tool put there."""
    owned = set(owned)
    found = []

    def walk(d: Path, rel: str) -> None:
        for p in sorted(d.iterdir()):
            r = rel + p.name
            if p.is_dir() and not p.is_symlink() and any(o.startswith(r + "/") for o in owned):
                walk(p, r + "/")
            elif r not in owned or (p.is_dir() and not p.is_symlink()):
                found.append(r)

    walk(Path(folder), "")
    return found


def replace_dir(tmp_dir, out_dir, carry=()) -> None:
    """Move a finished temp folder to out_dir. An existing out_dir is swapped with it in one
    atomic step where the system allows (else renamed aside first): a reader sees the old
    folder or the new one, never a half-written mix. The entries named in `carry` (relative
    to out_dir; see foreign_entries) move into the new folder first; the old one is then
    removed."""
    tmp_dir, out_dir = Path(tmp_dir), Path(os.path.abspath(out_dir))
    set_umask_mode(tmp_dir)
    if not out_dir.exists():
        os.replace(tmp_dir, out_dir)
        return
    journal = _carry_over(out_dir, tmp_dir, list(carry)) if carry else None
    if _exchange(tmp_dir, out_dir):
        shutil.rmtree(tmp_dir, ignore_errors=True)  # now holds the old export
    else:
        old = Path(tempfile.mkdtemp(prefix=".ltc-old-", dir=out_dir.parent))
        os.rmdir(old)
        os.replace(out_dir, old)
        os.replace(tmp_dir, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    if journal is not None:
        journal.unlink()


def _carry_over(out_dir: Path, tmp_dir: Path, carry: list) -> Path:
    """Move the carried entries from out_dir into tmp_dir, after writing a journal that lets
    clean_leftovers move them back if this process dies before the swap."""
    clash = [r for r in carry if os.path.lexists(tmp_dir / r)]
    if clash:
        raise UnsafeFileError(f"--out {out_dir} holds {', '.join(clash[:5])}, which the export did not write and "
                              "would now overwrite: move them out of the folder or choose another --out")
    journal = out_dir.parent / f"{JOURNAL_PREFIX}{os.getpid()}-{tmp_dir.name}.json"
    atomic_write_bytes(journal, json.dumps({"from": tmp_dir.name, "to": out_dir.name, "entries": carry}).encode())
    _move_entries(out_dir, tmp_dir, carry)
    return journal


def _move_entries(src: Path, dst: Path, entries) -> list:
    """Rename each entry from src to dst (same file system) where dst has none; the ones left."""
    left = []
    for r in entries:
        a, b = src / r, dst / r
        if not os.path.lexists(a):
            continue
        if os.path.lexists(b):
            left.append(r)
            continue
        b.parent.mkdir(parents=True, exist_ok=True)
        os.replace(a, b)
    return left


JOURNAL_PREFIX = ".ltc-carry-"


def clean_leftovers(parent, prefixes=(".ltc-export-", ".ltc-old-")) -> None:
    """Put back the user's entries a killed export was carrying (see replace_dir), then remove
    the temp folders killed exports left (their pid no longer runs)."""
    parent = Path(parent)
    if not parent.is_dir():
        return
    keep = _recover_carried(parent)
    for p in parent.iterdir():
        if not (p.is_dir() and p.name.startswith(prefixes)) or p.name in keep:
            continue
        pid = p.name.split("-")[-2] if p.name.startswith(".ltc-export-") else ""
        if pid.isdigit() and _alive(int(pid)):
            continue
        shutil.rmtree(p, ignore_errors=True)


def _recover_carried(parent: Path) -> set:
    """Replay the journals of dead exports: move each carried entry back to its folder. A temp
    folder that still holds some (their place is taken) is kept, never removed."""
    keep = set()
    for j in parent.glob(f"{JOURNAL_PREFIX}*.json"):
        pid = j.name[len(JOURNAL_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        try:
            rec = json.loads(read_bytes(j, "journal", 1 << 20))
            src, dst, entries = parent / rec["from"], parent / rec["to"], [str(e) for e in rec["entries"]]
        except (OSError, ValueError, KeyError, TypeError, UnsafeFileError):
            continue
        if Path(rec["from"]).name != rec["from"] or Path(rec["to"]).name != rec["to"] or \
                any(".." in Path(e).parts or Path(e).is_absolute() for e in entries):
            continue  # a journal names sibling folders and relative entries only
        left = _move_entries(src, dst, entries) if src.is_dir() else []
        if left:
            keep.add(src.name)
        else:
            j.unlink()
    return keep


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
