"""docs/cli.md, made from every command's own `--help` (as simonw's llm makes its CLI reference), so
the reference can't drift from the commands: tests/test_settings.py fails when the file is stale.

    .venv/bin/python -m rag.cli_reference > docs/cli.md      (`make docs`)
"""

from __future__ import annotations

WIDTH = "100"  # columns the help is laid out in, whatever the terminal


def _help(args: list[str]) -> str:
    from typer.testing import CliRunner

    from .cli import app

    got = CliRunner().invoke(app, [*args, "--help"], prog_name="hearth",
                             env={"COLUMNS": WIDTH, "NO_COLOR": "1", "TERM": "dumb"})
    assert got.exit_code == 0, got.output
    return "\n".join(line.rstrip() for line in got.output.strip("\n").splitlines())


def commands() -> list[list[str]]:
    """Every command and subcommand, as the words typed after `hearth`."""
    from typer.main import get_command

    from .cli import app

    found = []
    for name, command in get_command(app).commands.items():
        found.append([name])
        found += [[name, sub] for sub in getattr(command, "commands", {})]
    return found


def reference() -> str:
    parts = ["# Command reference", "",
             "Made from each command's `--help` by `rag/cli_reference.py` (`make docs`); the README's",
             "\"Using the command line\" is the guide to them.", ""]
    for words in [[], *commands()]:
        parts += [f"## `hearth{''.join(' ' + w for w in words)}`", "", "```", _help(words), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    print(reference(), end="")
