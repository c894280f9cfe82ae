"""The documentation site: `mkdocs build --strict` passes (no broken link or anchor, every page in
the nav), fails on a broken link or a page left out of the nav, and the CLI reference has a
section for every command of the typer app. The README's own links point at files that exist."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

for _module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
    pytest.importorskip(_module, reason="the docs extra is not installed: pip install -e '.[docs]'")


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
                          cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    done = mkdocs_build(ROOT / "mkdocs.yml", out)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_site_builds_strict(site):
    for page in ("index.html", "getting-started/index.html", "reference/cli/index.html",
                 "reference/python-api/index.html", "reference/c-api/index.html", "results/index.html"):
        assert (site / page).stat().st_size > 5000, page
    # the recorded plots are in the site (docs/hooks/benchmark_plots.py), and the results page shows one
    assert (site / "benchmarks/results/demo/latency_vs_accuracy.png").stat().st_size > 10_000
    assert "benchmarks/results/demo/latency_vs_accuracy.png" in (site / "results/index.html").read_text()
    # mkdocstrings rendered the runtime's docstrings
    api = (site / "reference/python-api/index.html").read_text()
    assert "Load a model for stepping" in api and "Advance one step" in api


def test_strict_build_fails_on_broken_link_and_page_outside_nav(tmp_path):
    """The project's own validation settings (inherited), on a two-page copy: cheap to build."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\nSee [the missing page](nowhere.md) and [a page](page.md#no-such-anchor).\n")
    (docs / "page.md").write_text("# Page\n\n## A section\n")
    (docs / "orphan.md").write_text("# Not in the nav\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text(f"INHERIT: {ROOT / 'mkdocs.yml'}\ndocs_dir: {docs}\nhooks: []\nplugins: [search]\n"
                      "nav:\n  - index.md\n  - page.md\n")
    done = mkdocs_build(config, tmp_path / "site")
    assert done.returncode != 0
    assert "nowhere.md" in done.stderr
    assert "no-such-anchor" in done.stderr
    assert "orphan.md" in done.stderr
    # the same copy without the faults builds: the failure above is the faults, not the setup
    (docs / "index.md").write_text("# Home\n\nSee [a page](page.md#a-section).\n")
    (docs / "orphan.md").unlink()
    done = mkdocs_build(config, tmp_path / "site")
    assert done.returncode == 0, done.stderr[-2000:]


def test_cli_reference_has_every_command(site):
    import typer

    from ltc_edge.cli import app

    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name="ltc")
    commands = [name for name in root.list_commands(ctx) if not root.get_command(ctx, name).hidden]
    assert {"train", "export", "bench", "control", "demo"} <= set(commands)
    page = (site / "reference/cli/index.html").read_text()
    headings = re.findall(r"<h[23][^>]*><code>(ltc[^<]*)</code>", page)
    assert headings == ["ltc"] + [f"ltc {name}" for name in commands]
    for name in commands:
        assert f"Usage: ltc {name} [OPTIONS]" in page, name


def test_readme_links_exist():
    text = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link and not link.startswith("mailto:")]
    assert local, "the README links to the docs pages"
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, missing
