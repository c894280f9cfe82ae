"""Imports point down only. Walks every module of ltc_edge (module-level imports and those
inside functions) and fails on an import that points up or across:

  nn, errors, fileio, plots, machine -> nothing above them (plots: matplotlib only; machine: stdlib)
  precision               -> nothing of ltc_edge (the registry every layer reads: plain data)
  artifact, codegen       -> nn, errors, fileio (and each other: artifact never imports codegen)
  runtime                 -> never export, train, bench, analyze, demo, cli
  export                  -> never train, bench, analyze, demo, cli
  train                   -> never bench, analyze, demo, cli
  analyze                 -> never bench, demo, cli (bench --robustness and the demo call it)
  bench                   -> never demo, cli (it may run analyze: bench --robustness)
  demo                    -> never cli (the top command family: it runs bench and analyze)
Also: no import cycles between packages, no private name (_x) imported across packages.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import ltc_edge

ROOT = Path(ltc_edge.__file__).parent
LOWEST = {"errors", "fileio"}
COMMANDS = {"analyze", "bench", "demo", "cli"}  # the command families above train, and the CLI
ABOVE_NN = {"artifact", "codegen", "runtime", "export", "train"} | COMMANDS
FORBIDDEN = {
    "errors": {"nn", "fileio", "plots", "machine"} | ABOVE_NN,
    "fileio": {"nn", "plots", "machine"} | ABOVE_NN,
    "plots": {"nn", "errors", "fileio", "machine"} | ABOVE_NN,
    "machine": {"nn", "errors", "fileio", "plots"} | ABOVE_NN,
    "precision": {"nn", "errors", "fileio", "plots", "machine"} | ABOVE_NN,
    "nn": {"plots", "machine"} | ABOVE_NN,
    "artifact": ABOVE_NN - {"artifact"},
    "codegen": ABOVE_NN - {"codegen", "artifact"},
    "runtime": {"export", "train"} | COMMANDS,
    "export": {"train"} | COMMANDS,
    "train": COMMANDS,
    "analyze": {"bench", "demo", "cli"},
    "bench": {"demo", "cli"},
    "demo": {"cli"},
}


def _unit(module: str) -> str:
    """ltc_edge.runtime.meta -> runtime; ltc_edge.cli -> cli."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path):
    """(imported module, names) for every import in a file, relative ones resolved."""
    rel = path.relative_to(ROOT.parent).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    if rel.name == "__init__":
        package = list(rel.parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            yield mod, [a.name for a in node.names]


def _edges():
    for path in sorted(ROOT.rglob("*.py")):
        src = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        for mod, names in _imports(path):
            if mod == "ltc_edge" and names:  # from ltc_edge import artifact
                for n in names:
                    yield src, f"ltc_edge.{n}", []
            elif mod.startswith("ltc_edge."):
                yield src, mod, names


def test_imports_point_down_only():
    bad = []
    for src, dst, _ in _edges():
        a, b = _unit(src), _unit(dst)
        if a != b and b in FORBIDDEN.get(a, set()):
            bad.append(f"{src} imports {dst}")
    assert not bad, "imports pointing up:\n" + "\n".join(sorted(set(bad)))


def test_no_private_names_across_packages():
    bad = [f"{src} imports {n} from {dst}" for src, dst, names in _edges()
           for n in names if n.startswith("_") and _unit(src) != _unit(dst)]
    assert not bad, "\n".join(bad)


def _private_attribute_uses(source: str, src: str):
    """`alias._name` where alias is a module (or name) imported from another ltc_edge package."""
    tree = ast.parse(source)
    package = src.split(".")[:-1]
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else (node.module or "")
            for a in node.names:
                aliases[a.asname or a.name] = f"{base}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name] = a.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.attr.startswith("_") \
                and not node.attr.startswith("__"):
            target = aliases.get(node.value.id, "")
            if target.startswith("ltc_edge.") and _unit(target) != _unit(src):
                yield f"{src}:{node.lineno} uses {node.value.id}.{node.attr} ({target})"


def test_no_private_attributes_across_packages():
    """F._helper reached through a module imported from another package is a private name
    crossing packages too."""
    bad = [hit for path in sorted(ROOT.rglob("*.py"))
           for hit in _private_attribute_uses(path.read_text(),
                                              ".".join(path.relative_to(ROOT.parent).with_suffix("").parts))]
    assert not bad, "\n".join(bad)
    probe = "from ..nn import functional as F\nF._synaptic(1)\nfrom . import run\nrun._x\n"
    assert len(list(_private_attribute_uses(probe, "ltc_edge.analyze.bounds"))) == 1  # the check can fail


def test_no_cycles_between_modules():
    graph = defaultdict(set)
    for src, dst, names in _edges():
        graph[src].add(dst)
        for n in names:  # from pkg import module
            graph[src].add(f"{dst}.{n}")
    modules = {".".join(p.relative_to(ROOT.parent).with_suffix("").parts).removesuffix(".__init__")
               for p in ROOT.rglob("*.py")}
    seen, stack, cycles = set(), [], []

    def visit(m):
        if m in stack:
            cycles.append(stack[stack.index(m):] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        stack.append(m)
        for d in graph.get(m, ()):
            if d in modules and not m.startswith(d + "."):  # a module may import its own package
                visit(d)
        stack.pop()

    for m in sorted(modules):
        visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_upward_imports(tmp_path):
    """The walker really finds a function-level import pointing up (so the tests above can fail)."""
    src = ROOT / "runtime" / "c_backend.py"
    found = {dst for s, dst, _ in _edges() if s == "ltc_edge.runtime.c_backend"}
    assert "ltc_edge.codegen" in found or "ltc_edge.codegen.c" in found, found
    assert src.exists()


MAX_FUNCTION_LINES = 60


def test_functions_are_short_enough_to_read():
    """No function in ltc_edge is longer than MAX_FUNCTION_LINES (command bodies included)."""
    long = []
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT.parent)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, "\n".join(long)
