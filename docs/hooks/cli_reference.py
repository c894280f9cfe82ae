"""MkDocs hook: the CLI reference page is `ltc COMMAND --help` for every command of the typer app,
rendered at build time, so it cannot go stale.

The page holds the marker below; the hook replaces it with one section per command (sub-commands
included). The help texts come from a child Python with TYPER_USE_RICH=0 (plain click help, no
box drawing; typer reads that variable once, on import) at a fixed width.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

MARKER = "<!-- cli-reference -->"
WIDTH = 100


def walk_commands():
    """(command path, help text) for `ltc` and every command under it, in the app's order."""
    import typer

    from ltc_edge.cli import app

    def walk(cmd, ctx):
        if getattr(cmd, "hidden", False):
            return
        yield ctx.command_path, cmd.get_help(ctx)
        for name in cmd.list_commands(ctx) if hasattr(cmd, "list_commands") else ():  # a group
            sub = cmd.get_command(ctx, name)
            yield from walk(sub, sub.context_class(sub, info_name=name, parent=ctx, terminal_width=WIDTH,
                                                   max_content_width=WIDTH))

    root = typer.main.get_command(app)  # typer ships its own click: use its classes, not click's
    yield from walk(root, root.context_class(root, info_name="ltc", terminal_width=WIDTH, max_content_width=WIDTH))


def help_texts() -> list[tuple[str, str]]:
    """walk_commands() run in a child Python (plain help whatever this process imported)."""
    env = dict(os.environ, TYPER_USE_RICH="0", COLUMNS=str(WIDTH), NO_COLOR="1")
    done = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"cannot render the CLI reference: {done.stderr.strip().splitlines()[-1:]}")
    return [tuple(pair) for pair in json.loads(done.stdout)]


def render() -> str:
    """The reference as markdown: a section per command, its help as a text block."""
    parts = []
    for path, text in help_texts():
        level = "###" if path.count(" ") > 1 else "##"  # `ltc analyze bounds` under `ltc analyze`
        parts.append(f"{level} `{path}`\n\n```text\n{text.rstrip()}\n```\n")
    return "\n".join(parts)


def on_page_markdown(markdown, page, config, files):
    if MARKER in markdown:
        return markdown.replace(MARKER, render())
    return markdown


if __name__ == "__main__":
    json.dump(list(walk_commands()), sys.stdout)
