"""MkDocs hook: the recorded plots under benchmarks/results/ become part of the site at the same
relative path (docs/ pages link `benchmarks/results/...png` as the README does), so the site shows
the recorded figures without a second copy of them in docs/."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def on_files(files, config):
    for png in sorted(RESULTS.rglob("*.png")):
        uri = png.relative_to(RESULTS.parents[1]).as_posix()
        files.append(File.generated(config, uri, abs_src_path=str(png)))
    return files
