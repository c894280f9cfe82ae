"""Byte-level fuzzer for model files: mutate valid .safetensors models and check that
ltc_edge.nn.modelfile.read() either accepts the result or raises ModelFileError, never
another exception and never a hang; and that every backend takes what read accepts: `ltc info`'s
describe(), the numpy runtime (its folded constants finite, one step a result or a clean
RuntimeInputError) and the C generator (no constant it cannot write).

    python scripts/fuzz_modelfile.py --cases 5000 [--seed 0] [--timeout 10]

Prints one line (cases, accepted, rejected, other exceptions) and exits 1 when any case
raised something other than ModelFileError or ran past --timeout. tests/test_fuzz_modelfile.py
drives the same mutations (`apply`) from hypothesis.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import struct
import sys
import tempfile
import time
import traceback
from pathlib import Path

# Mutations are lists of ops, applied in order; each op is a tuple of plain values so that
# hypothesis (the test) and random.Random (this script) can both produce them.
#   ("flip", pos, mask)          xor one byte (pos taken modulo the length)
#   ("insert", pos, data)        insert bytes
#   ("delete", pos, n)           delete n bytes
#   ("truncate", n)              keep the first n bytes (modulo the length + 1)
#   ("length", value)            overwrite the 8-byte header length
#   ("json", where, path, value) rewrite the header JSON ("header") or the config inside it
#                                ("config"): set the value at path (a list of keys/indices,
#                                taken modulo a list's length), or delete it when value is DROP
#   ("deep", where, depth)       replace the header or the config by JSON nested depth deep
#   ("tensor", index, elem, x)   set element elem (None: every element) of the index-th tensor
#                                (names sorted, index modulo their count) to the float32 x
DROP = "<drop>"
# parameter values around the one magnitude limit (schema.MAX_PARAM_ABS = 1e6) and float32's own
HUGE = [3e38, -3e38, 3.4028234663852886e38, 1e30, 1e12, -1e7, 2e6, 1000000.0625, 1e6, -1e6, 999999.9,
        1e-45, 0.0, float("inf"), float("nan")]


def split(data: bytes):
    """(header dict, body bytes) of a valid safetensors file."""
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def join(header: dict, body: bytes) -> bytes:
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # safetensors pads the header so the data is 8-byte aligned
    return struct.pack("<Q", len(text)) + text + body


def _set(obj, path, value):
    """obj with the value at path set (or dropped); paths that do not fit are cut short."""
    for i, key in enumerate(path):
        if isinstance(obj, list) and obj and isinstance(key, int):
            key = key % len(obj)
        elif not (isinstance(obj, dict) and key in obj):
            break
        if i == len(path) - 1 or not isinstance(obj[key], (dict, list)):
            if value == DROP:
                del obj[key]
            else:
                obj[key] = value
            return
        obj = obj[key]


def _rewrite(data: bytes, where: str, path, value) -> bytes:
    try:
        header, body = split(data)
        if where == "config":
            config = json.loads(header["__metadata__"]["ltc_edge"])
            _set(config, path, value)
            header["__metadata__"]["ltc_edge"] = json.dumps(config)
        else:
            _set(header, path, value)
        return join(header, body)
    except (ValueError, KeyError, TypeError, struct.error, RecursionError):
        return data  # an earlier op broke the header: nothing to rewrite


def apply(data: bytes, ops) -> bytes:
    for op in ops:
        kind, args = op[0], op[1:]
        n = len(data)
        if kind == "flip" and n:
            pos = args[0] % n
            data = data[:pos] + bytes([data[pos] ^ (args[1] or 1)]) + data[pos + 1:]
        elif kind == "insert":
            pos = args[0] % (n + 1)
            data = data[:pos] + args[1] + data[pos:]
        elif kind == "delete" and n:
            pos = args[0] % n
            data = data[:pos] + data[pos + args[1]:]
        elif kind == "truncate":
            data = data[:args[0] % (n + 1)]
        elif kind == "length" and n >= 8:
            data = struct.pack("<Q", args[0] % (1 << 64)) + data[8:]
        elif kind == "json":
            data = _rewrite(data, *args)
        elif kind == "deep":
            data = _deep(data, *args)
        elif kind == "tensor":
            data = _tensor(data, *args)
    return data


def _tensor(data: bytes, index: int, elem, value: float) -> bytes:
    """Overwrite float32 values inside one tensor's data (an F32 tensor of a parseable file)."""
    try:
        header, body = split(data)
        names = sorted(k for k in header if k != "__metadata__")
        t = header[names[index % len(names)]]
        lo, hi = t["data_offsets"]
        if t["dtype"] != "F32" or not 0 <= lo < hi <= len(body):
            return data
        n = (hi - lo) // 4
        word = struct.pack("<f", value)
        span = range(n) if elem is None else [elem % n]
        out = bytearray(body)
        for i in span:
            out[lo + 4 * i:lo + 4 * i + 4] = word
        return data[:len(data) - len(body)] + bytes(out)
    except (ValueError, KeyError, TypeError, IndexError, ZeroDivisionError, struct.error, RecursionError):
        return data


def _deep(data: bytes, where: str, depth: int) -> bytes:
    text = "[" * depth + "]" * depth
    if where == "header":
        return struct.pack("<Q", len(text)) + text.encode() + data[8:]
    try:
        header, body = split(data)
        header["__metadata__"]["ltc_edge"] = text
        return join(header, body)
    except (ValueError, KeyError, TypeError, struct.error, RecursionError):
        return data


# --------------------------------------------------------------------------------------
# random mutations (this script's driver; the test draws the same ops with hypothesis)

VALUES = [DROP, None, True, False, 0, 1, -1, 2, 6, 8.0, 256, 257, 10 ** 5, 10 ** 9, 2 ** 64, -(2 ** 63), 10 ** 400,
          1e-300, 1e308, float("nan"), float("inf"), "", "*/", "x */ int main(){}/*", "a\nb", "default",
          "bogus", "rk4", "euler", "semi_implicit", "full", "custom", "none", "pure", "F32", "F64", "I64",
          [], {}, [0], [[1]], [1.0, 2.0], {"kind": "full"}, "ltc-edge-model"]


def config_paths(config, prefix=(), depth=4):
    """Key paths into a config, lists sampled at their first and last entry."""
    out = [list(prefix)]
    if depth and isinstance(config, dict):
        for k, v in config.items():
            out += config_paths(v, prefix + (k,), depth - 1)
    elif depth and isinstance(config, list) and config:
        for i in {0, len(config) - 1}:
            out += config_paths(config[i], prefix + (i,), depth - 1)
    return out


def header_paths(header):
    out = [["__metadata__"], ["__metadata__", "ltc_edge"], ["__metadata__", "format"]]
    for name in header:
        if name != "__metadata__":
            out += [[name], [name, "dtype"], [name, "shape"], [name, "shape", 0], [name, "data_offsets", 0],
                    [name, "data_offsets", 1]]
    return out


def random_ops(rng: random.Random, data: bytes):
    header, _ = split(data)
    cpaths = config_paths(json.loads(header["__metadata__"]["ltc_edge"]))
    hpaths = header_paths(header)
    head_end = 8 + struct.unpack("<Q", data[:8])[0]
    ops = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        pos = rng.randrange(head_end) if rng.random() < 0.7 else rng.randrange(len(data))
        r = rng.random()
        if r < 0.12:  # one value or a whole tensor of huge / tiny / non-finite parameters
            ops.append(("tensor", rng.randrange(64), rng.choice([None, rng.randrange(1 << 16)]), rng.choice(HUGE)))
        elif r < 0.35:
            ops.append(("json", "config", rng.choice(cpaths), rng.choice(VALUES)))
        elif r < 0.45:
            ops.append(("json", "header", rng.choice(hpaths), rng.choice(VALUES)))
        elif r < 0.6:
            ops.append(("flip", pos, rng.randrange(256)))
        elif r < 0.7:
            ops.append(("insert", pos, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))))
        elif r < 0.8:
            ops.append(("delete", pos, rng.randrange(1, 17)))
        elif r < 0.88:
            ops.append(("truncate", rng.randrange(len(data) + 1)))
        elif r < 0.95:
            lengths = [0, 7, head_end - 9, head_end - 7, len(data), 1 << 40, rng.randrange(1 << 64)]
            ops.append(("length", rng.choice(lengths)))
        else:
            ops.append(("deep", rng.choice(["header", "config"]), rng.choice([50, 5000, 100_000])))
    return ops


# --------------------------------------------------------------------------------------
# valid base files and the check


def base_models(folder: Path) -> list[Path]:
    """Small valid model files: every cell kind, a wired LTC with normalisation, a wired CfC."""
    from ltc_edge.nn import build_model, save

    models = {kind: build_model(kind, 3, 2, units=6, seed=1) for kind in ("ltc", "cfc", "ctrnn", "node", "lstm", "gru")}
    models["ltc_ncp"] = build_model("ltc", 3, 2, units=8, wiring="auto-ncp", seed=2,
                                    normalization={"input_mean": [0.0] * 3, "input_std": [2.0] * 3,
                                                   "output_mean": [1.0] * 2, "output_std": [0.5] * 2})
    models["cfc_ncp"] = build_model("cfc", 3, 2, units=8, wiring="auto-ncp", seed=3)
    return [save(m, folder / f"{name}.safetensors") for name, m in models.items()]


class CaseTimeout(Exception):
    pass


def check(path: Path):
    """'accepted' or 'rejected'; any other exception propagates (a finding)."""
    from ltc_edge.nn.modelfile import ModelFileError, describe, read

    try:
        config, raw = read(path)
    except ModelFileError as e:
        if "\n" in str(e):
            raise AssertionError(f"multi-line ModelFileError: {str(e)[:200]!r}") from None
        return "rejected"
    describe(path)  # `ltc info` shows exactly the files read() accepts
    backends_agree(path, config, raw)
    return "accepted"


def backends_agree(path: Path, config: dict, raw: dict) -> None:
    """What read() accepts, every backend takes (the finding of issue 29: sigma = 3e38 loaded
    and stepped on numpy while the C export refused it): the numpy runtime's folded constants
    (also the ONNX/TFLite graphs') are finite and one step gives a result or a clean
    RuntimeInputError; the C generator writes every constant (any error is a finding)."""
    import numpy as np

    from ltc_edge.codegen.c import generate
    from ltc_edge.errors import RuntimeInputError
    from ltc_edge.runtime import load

    ctrl = load(path, backend="numpy")
    P = ctrl.backend.P
    consts = [v for part in P.values() for v in (part.values() if isinstance(part, dict) else [part])]
    if not all(np.isfinite(v).all() for v in consts if isinstance(v, np.ndarray)):
        raise AssertionError("the numpy runtime folded a non-finite constant from an accepted file")
    try:
        y = ctrl.step(np.full(config["input_size"], 0.5, np.float32), 0.1)
    except RuntimeInputError as e:  # e.g. a state that left its bounds: a clean refusal
        if "\n" in str(e):
            raise AssertionError(f"multi-line {type(e).__name__}: {str(e)[:200]!r}") from None
    else:
        if not np.isfinite(y).all():
            raise AssertionError("a committed step returned NaN/inf")
    generate(config, raw)


def run_case(path: Path, timeout_s: float) -> str:
    """check() under a SIGALRM deadline: a hang is a finding too."""
    def on_alarm(signum, frame):
        raise CaseTimeout(f"no answer within {timeout_s} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        return check(path)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds one case may take")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    counts = {"accepted": 0, "rejected": 0, "other": 0}
    slowest = (0.0, None)
    with tempfile.TemporaryDirectory() as tmp:
        bases = [(p, p.read_bytes()) for p in base_models(Path(tmp))]
        target = Path(tmp) / "case.safetensors"
        for case in range(args.cases):
            base, data = bases[case % len(bases)]
            ops = random_ops(rng, data)
            target.write_bytes(apply(data, ops))
            t0 = time.perf_counter()
            try:
                counts[run_case(target, args.timeout)] += 1
            except Exception as e:  # a finding: anything but ModelFileError, or a timeout
                counts["other"] += 1
                if counts["other"] <= 5:
                    print(f"case {case} ({base.name}, ops {ops!r:.300}): {type(e).__name__}: {str(e)[:300]}",
                          file=sys.stderr)
                    traceback.print_exc(limit=3, file=sys.stderr)
            elapsed = time.perf_counter() - t0
            if elapsed > slowest[0]:
                slowest = (elapsed, case)
    print(f"fuzz_modelfile: cases {args.cases}, accepted {counts['accepted']}, rejected {counts['rejected']}, "
          f"other exceptions {counts['other']} (seed {args.seed}, slowest case {slowest[0]:.2f} s)")
    return 1 if counts["other"] else 0


if __name__ == "__main__":
    sys.exit(main())
