"""Every command and subcommand explains itself with an example, without any server."""

from __future__ import annotations

import click
import pytest

from campaigner import cli
from tests.conftest import run_cli


def command_paths(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    """Every command path of the CLI: (), ("execute",), ("db", "upgrade"), ..."""
    paths = [prefix]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            paths.extend(command_paths(command, (*prefix, name)))
        else:
            paths.append((*prefix, name))
    return paths


@pytest.mark.parametrize(
    "path", command_paths(cli.cli), ids=lambda path: " ".join(path) or "campaigner"
)
def test_help__exits_0_with_an_example(path: tuple[str, ...]) -> None:
    code, stdout, stderr = run_cli(
        *path, "--help", database_url="postgresql://127.0.0.1:1/none"
    )

    assert (code, stderr) == (0, "")
    assert "Example" in stdout, stdout


def test_help__lists_every_command() -> None:
    code, stdout, _ = run_cli("--help")

    section = stdout.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    listed = {line.split()[0] for line in section.splitlines()}
    assert (code, listed) == (0, set(cli.cli.commands))


def test_help__execute_documents_the_exit_codes() -> None:
    _, stdout, _ = run_cli("execute", "--help")

    assert [
        code
        for code in ("0", "1", "2", "3", "4", "5", "6", "75")
        if f"  {code} " not in stdout
    ] == []
