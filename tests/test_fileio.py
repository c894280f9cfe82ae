"""A re-export never deletes what it did not write; killed writers leave nothing for long."""

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from ltc_edge import fileio
from ltc_edge.cli import app
from ltc_edge.errors import UnsafeFileError


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _export(*args):
    return CliRunner().invoke(app, ["export", *map(str, args)])


def test_reexport_keeps_user_files(ltc_file, tmp_path):
    out = tmp_path / "m4_cmake"
    r = _export(ltc_file, "--format", "c", "--layout", "cmake", "--out", out)
    assert r.exit_code == 0, r.output
    (out / "build" / "CMakeFiles").mkdir(parents=True)  # what `cmake -B build` leaves
    (out / "build" / "CMakeCache.txt").write_text("cache")
    (out / "NOTES.txt").write_text("my notes")
    (out / "golden" / "mine.txt").write_text("beside a generated file")
    r = _export(ltc_file, "--format", "c", "--layout", "cmake", "--prefix", "other", "--out", out)
    assert r.exit_code == 0, r.output
    assert "kept what the export did not write: NOTES.txt, build, golden/mine.txt" in r.output
    assert (out / "build" / "CMakeCache.txt").read_text() == "cache"
    assert (out / "build" / "CMakeFiles").is_dir()
    assert (out / "NOTES.txt").read_text() == "my notes"
    assert (out / "golden" / "mine.txt").read_text() == "beside a generated file"
    assert (out / "other.c").exists() and not (out / "ltc_model.c").exists()  # the old export's own file went
    assert not list(tmp_path.glob(".ltc-*"))  # no temp folder, no journal left


def test_reexport_refuses_to_overwrite_a_user_file(ltc_file, tmp_path, one_line_error):
    out = tmp_path / "e"
    assert _export(ltc_file, "--format", "c", "--out", out).exit_code == 0
    (out / "model.onnx").write_text("the user's own file")
    r = _export(ltc_file, "--format", "onnx", "--out", out)
    one_line_error(r, "model.onnx, which the export did not write")
    assert (out / "model.onnx").read_text() == "the user's own file"
    assert (out / "ltc_model.c").exists()  # the old export is untouched
    assert not list(tmp_path.glob(".ltc-*"))


def test_non_export_folder_refused_naming_its_files(ltc_file, tmp_path, one_line_error):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "a.txt").write_text("x")
    one_line_error(_export(ltc_file, "--format", "c", "--out", out), "holds a.txt")
    assert (out / "a.txt").read_text() == "x"


def test_foreign_entries_topmost_only(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "m.c").write_text("")
    (tmp_path / "src" / "mine.c").write_text("")
    (tmp_path / "build" / "deep").mkdir(parents=True)
    (tmp_path / "m.h").write_text("")
    os.symlink("src", tmp_path / "link")
    owned = {"src/m.c", "m.h", "manifest.json"}
    assert fileio.foreign_entries(tmp_path, owned) == ["build", "link", "src/mine.c"]


def test_killed_carry_is_put_back(tmp_path):
    """An export killed after moving the user's build/ into its temp folder, before the swap:
    the next writer in that folder moves it back and only then removes the temp folder."""
    pid = _dead_pid()
    out, tmp = tmp_path / "out", tmp_path / f".ltc-export-{pid}-abc"
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    (tmp / "build").mkdir(parents=True)
    (tmp / "build" / "CMakeCache.txt").write_text("cache")
    (tmp / "manifest.json").write_text("{}")
    journal = tmp_path / f".ltc-carry-{pid}-{tmp.name}.json"
    journal.write_text(json.dumps({"from": tmp.name, "to": "out", "entries": ["build"]}))
    fileio.clean_leftovers(tmp_path)
    assert (out / "build" / "CMakeCache.txt").read_text() == "cache"
    assert not tmp.exists() and not journal.exists()


def test_killed_carry_kept_when_its_place_is_taken(tmp_path):
    pid = _dead_pid()
    out, tmp = tmp_path / "out", tmp_path / f".ltc-export-{pid}-abc"
    (out / "notes").mkdir(parents=True)
    (tmp / "notes").mkdir(parents=True)
    (tmp / "notes" / "a").write_text("only copy")
    journal = tmp_path / f".ltc-carry-{pid}-{tmp.name}.json"
    journal.write_text(json.dumps({"from": tmp.name, "to": "out", "entries": ["notes"]}))
    fileio.clean_leftovers(tmp_path)
    assert (tmp / "notes" / "a").read_text() == "only copy"  # never removed
    assert journal.exists()


def test_journal_outside_its_folder_is_ignored(tmp_path):
    pid = _dead_pid()
    (tmp_path / "victim").write_text("x")
    journal = tmp_path / f".ltc-carry-{pid}-x.json"
    journal.write_text(json.dumps({"from": "..", "to": "out", "entries": ["../victim"]}))
    fileio.clean_leftovers(tmp_path)
    assert (tmp_path / "victim").read_text() == "x"


def test_killed_writers_temp_files_removed(tmp_path):
    target = tmp_path / "m.safetensors"
    dead = tmp_path / f".m.safetensors.{_dead_pid()}.x1y2.tmp"
    alive = tmp_path / f".m.safetensors.{os.getppid()}.a1b2.tmp"  # a running writer's
    other = tmp_path / f".n.safetensors.{_dead_pid()}.x1y2.tmp"   # another target's
    for p in (dead, alive, other):
        p.write_bytes(b"partial")
    fileio.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert not dead.exists() and alive.exists() and other.exists()


def test_clash_check_happens_before_anything_moves(tmp_path):
    out, tmp = tmp_path / "out", tmp_path / "new"
    (out / "build").mkdir(parents=True)
    (out / "x").write_text("user")
    (tmp / "x").parent.mkdir(parents=True)
    (tmp / "x").write_text("export")
    with pytest.raises(UnsafeFileError, match="x, which the export did not write"):
        fileio.replace_dir(tmp, out, ["build", "x"])
    assert (out / "build").is_dir() and (out / "x").read_text() == "user"
