"""C literals and constant tables for the generated code (a small emitter, like emlearn's
cgen.py): float32 literals that round-trip (`flit`), initialisers (`c_array`, `str_array`),
`static const` tables with their flash size (`Consts`), CSR index lists, checked names and text
(`c_identifier`, `plain_name`, `c_text`, `word_text`), and the template loader.

Nothing from a model file reaches generated code as text except numbers formatted here and
names that pass `plain_name` (letters, digits, '_', '-', '.') or `c_text`.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

import numpy as np

from ltc_edge.errors import LtcEdgeError

TEMPLATES = Path(__file__).with_name("templates")


class CodegenError(LtcEdgeError):
    """A model or option the C generator cannot handle."""



def template(name: str) -> Template:
    """A template of ltc_edge/codegen/templates/ (string.Template: $NAME placeholders)."""
    return Template((TEMPLATES / name).read_text())


def resolve_ifs(text: str) -> str:
    """Drop the template's `#if 0|1 / #if !0|1 ... #else ... #endif` blocks decided at export
    time (nested), so the generated source carries no dead code; other lines pass through."""
    out, stack = [], []  # stack: [branch taken?, in #else?]
    for line in text.splitlines(keepends=True):
        m = re.fullmatch(r"#if (!?)([01])\s*", line)
        if m:
            stack.append([(m.group(2) == "1") != (m.group(1) == "!"), False])
        elif line.strip() == "#else" and stack:
            stack[-1][1] = True
        elif line.strip() == "#endif" and stack:
            stack.pop()
        elif all(taken != in_else for taken, in_else in stack):
            out.append(line)
    return "".join(out)

def plain_name(value) -> str:
    """A config string bound for a C comment or identifier: letters, digits, '_', '-', '.'
    only. Strings from a model file never reach generated code unchecked (a '*/' could
    close the comment and add code that runs when the library is loaded)."""
    s = str(value)
    if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", s):
        raise CodegenError(f"refusing to put {s[:40]!r} into C code: not a plain name")
    return s


def as_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise CodegenError(f"{what} must be an integer, got {value!r}")
    return int(value)


def flit(v) -> str:
    """A float32 as the shortest C literal that round-trips."""
    v = np.float32(v)
    if not np.isfinite(v):
        raise CodegenError(f"cannot export a non-finite constant ({v})")
    return np.format_float_scientific(v, unique=True, trim="0") + "f"


class Consts:
    """Collects `static const` arrays; tracks their size (flash)."""

    def __init__(self):
        self.lines: list[str] = []
        self.bytes = 0
        self.max_int = 0
        self.names: set[str] = set()
        self.n_ints = 0

    @property
    def idx_type(self) -> str:
        return "uint8_t" if self.max_int < 256 else "uint16_t" if self.max_int < 65536 else "uint32_t"

    @property
    def idx_size(self) -> int:
        return {"uint8_t": 1, "uint16_t": 2, "uint32_t": 4}[self.idx_type]

    def floats(self, name, values) -> str:
        a = np.asarray(values, dtype=np.float32).ravel()
        self._emit("float", name, [flit(v) for v in a], 4)
        return name

    def ints(self, name, values) -> str:
        a = np.asarray(values, dtype=np.int64).ravel()
        self.max_int = max(self.max_int, int(a.max()) if a.size else 0)
        self._emit("idx_t", name, [str(int(v)) for v in a], 0)  # size counted in text()
        self.n_ints += max(1, a.size)
        return name

    def u8(self, name, values) -> str:
        a = np.asarray(values, dtype=np.int64).ravel()
        if a.size and (a.min() < 0 or a.max() > 255):
            raise CodegenError(f"{name}: a value outside 0..255")
        self._emit("uint8_t", name, [str(int(v)) for v in a], 1)
        return name

    def merge_counts(self, other: "Consts") -> None:
        """Count another collection's arrays (emitted elsewhere, e.g. inside an #if) in this one."""
        self.bytes += other.bytes
        self.max_int = max(self.max_int, other.max_int)
        self.n_ints += other.n_ints

    def _emit(self, ctype, name, items, size):
        if name in self.names:
            raise CodegenError(f"duplicate C constant {name}")
        self.names.add(name)
        if not items:  # C99 has no zero-length arrays; never read
            items = ["0"]
        self.bytes += size * len(items)
        body = ",".join(items)
        # wrap long lines for readability
        chunks, line = [], ""
        for it in items:
            if len(line) + len(it) > 96:
                chunks.append(line)
                line = ""
            line += it + ","
        chunks.append(line)
        body = "\n    ".join(chunks).rstrip(",")
        self.lines.append(f"static const {ctype} {name}[{len(items)}] = {{\n    {body}}};")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    @property
    def total_bytes(self) -> int:
        return self.bytes + self.idx_size * self.n_ints


def csr(mask: np.ndarray):
    """CSR over rows of a [rows, cols] boolean mask: (row_ptr, col_idx, (r, c) pairs)."""
    rows, cols = np.nonzero(mask)
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    row_ptr = np.zeros(mask.shape[0] + 1, dtype=np.int64)
    np.add.at(row_ptr, rows + 1, 1)
    return np.cumsum(row_ptr), cols, rows

def c_identifier(prefix: str) -> str:
    """A symbol prefix: a C identifier of at most 63 characters, not a C keyword or reserved."""
    if not isinstance(prefix, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,62}", prefix) \
            or prefix in C_KEYWORDS:
        raise CodegenError(f"C prefix must be a C identifier (a letter, then letters, digits or '_'; at most "
                           f"63 characters; not a C keyword), got {str(prefix)[:40]!r}")
    return prefix


C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline int long "
    "register restrict return short signed sizeof static struct switch typedef union unsigned void volatile "
    "while".split())


def word_text(s: str) -> str:
    """A generated note for a C comment: plain characters only (never '*/')."""
    return re.sub(r"[^A-Za-z0-9_ .,:'()-]", "", s)[:120]


_C_TEXT = re.compile(r"[A-Za-z0-9 _.,:;+\-=()\[\]/#%@&<>|~^!]{1,160}")


def c_text(value) -> str | None:
    """A config string as a safe C string-literal body (and comment text): plain printable
    ASCII without quotes, backslashes, '?' (trigraphs), '*' ('*/') or '$', else None."""
    s = str(value).strip()
    return s if _C_TEXT.fullmatch(s) else None


def str_array(names) -> str:
    return "{" + ", ".join(f'"{a}"' for a in names) + "}"


def c_array(a) -> str:
    """A float array (1-D or 2-D) as a C initializer of float32 literals."""
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 1:
        return "{" + ",".join(flit(v) for v in a) + "}"
    return "{\n  " + ",\n  ".join(c_array(r) for r in a) + "}"

