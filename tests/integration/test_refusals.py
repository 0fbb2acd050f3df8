"""Mistakes a new user makes, refused up front with a short message naming what
to fix: an output file that cannot be written or whose suffix disagrees with
--format, an unwritable --metrics-file, an empty campaigns file under --prune,
YAML aliases and values too long to echo back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from click.testing import CliRunner, Result

from campaigner import cli
from tests.conftest import TICK_TEXT, insert_campaign, insert_users, run_cli


def campaigner(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(
        cli.cli, list(args), env={"DATABASE_URL": database_url}, catch_exceptions=False
    )


# -- export -o -------------------------------------------------------------------


def test_export__missing_folder_is_a_usage_error(
    db: psycopg.Connection[Any], database_url: str, tmp_path: Path
) -> None:
    insert_campaign(db, name="welcome", topic="campaigns.email")
    target = tmp_path / "absent" / "x.yaml"

    result = campaigner(database_url, "export", "-o", str(target))

    assert result.exit_code == 2
    assert result.stderr == (
        f"error: -o {target}: folder {target.parent} does not exist\n"
    )


def test_export__unwritable_file_is_a_usage_error(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    insert_campaign(db, name="welcome", topic="campaigns.email")

    # /proc exists but refuses new files, even to root.
    result = campaigner(database_url, "export", "-o", "/proc/x.yaml")

    assert result.exit_code == 2
    assert result.stderr.startswith("error: cannot write -o /proc/x.yaml: ")
    assert "unexpected" not in result.stderr


@pytest.mark.parametrize(
    ("name", "kind", "parse"),
    [
        ("out.yaml", "yaml", yaml.safe_load),
        ("out.yml", "yaml", yaml.safe_load),
        ("out.toml", "toml", None),
    ],
)
def test_export__format_from_the_suffix(
    db: psycopg.Connection[Any],
    database_url: str,
    tmp_path: Path,
    name: str,
    kind: str,
    parse: Any,
) -> None:
    import tomllib

    insert_campaign(db, name="welcome", topic="campaigns.email")
    target = tmp_path / name

    result = campaigner(database_url, "export", "-o", str(target))

    assert result.exit_code == 0, result.output
    text = target.read_text()
    document = tomllib.loads(text) if kind == "toml" else parse(text)
    assert [c["name"] for c in document["campaigns"]] == ["welcome"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["-o", "{dir}/out.json"],
            "-o {dir}/out.json: write campaigns to a .yaml, .yml or .toml file",
        ),
        (
            ["--format", "toml", "-o", "{dir}/x.yaml"],
            "-o {dir}/x.yaml is a yaml file but --format is toml:"
            " drop --format or change the suffix",
        ),
        (
            ["--format", "yaml", "-o", "{dir}/x.toml"],
            "-o {dir}/x.toml is a toml file but --format is yaml:"
            " drop --format or change the suffix",
        ),
    ],
)
def test_export__unknown_or_conflicting_suffix_refused(
    db: psycopg.Connection[Any],
    database_url: str,
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    insert_campaign(db, name="welcome", topic="campaigns.email")

    result = campaigner(database_url, "export", *(a.format(dir=tmp_path) for a in args))

    assert result.exit_code == 2
    assert result.stderr == f"error: {message.format(dir=tmp_path)}\n"
    assert list(tmp_path.iterdir()) == []


# -- execute --metrics-file --------------------------------------------------------


@pytest.mark.parametrize("path", ["/proc/x.prom", ""])
def test_metrics_file__unwritable_exits_3_before_sending(
    db: psycopg.Connection[Any],
    database_url: str,
    kafka_bootstrap: str,
    topic: str,
    path: str,
) -> None:
    insert_users(db, 10)
    insert_campaign(db, name="welcome", topic=topic)

    code, _, stderr = run_cli(
        "execute",
        "--at",
        TICK_TEXT,
        "--metrics-file",
        path,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
    )

    assert code == 3, stderr
    assert stderr.startswith("error: --metrics-file ")
    assert "\n" not in stderr.rstrip("\n")
    # Refused before any run was claimed, so nothing was sent.
    assert db.execute("SELECT count(*) FROM campaign_runs").fetchone() == (0,)


# -- apply of a file without campaigns ----------------------------------------------


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("empty.yaml", ""),
        ("blank.yaml", "# nothing yet\n"),
        ("none.yaml", "campaigns: []\n"),
        ("empty.toml", ""),
    ],
)
@pytest.mark.parametrize("prune", [True, False])
def test_apply__file_without_campaigns_refused(
    db: psycopg.Connection[Any],
    database_url: str,
    tmp_path: Path,
    name: str,
    text: str,
    prune: bool,
) -> None:
    insert_campaign(db, name="welcome", topic="campaigns.email")
    path = tmp_path / name
    path.write_text(text)

    result = campaigner(
        database_url, "apply", str(path), "--yes", *(["--prune"] if prune else [])
    )

    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path} holds no campaign; nothing")
    assert db.execute("SELECT name FROM campaigns").fetchall() == [("welcome",)]


def test_apply__folder_without_campaigns_refused(
    db: psycopg.Connection[Any], database_url: str, tmp_path: Path
) -> None:
    insert_campaign(db, name="welcome", topic="campaigns.email")
    (tmp_path / "a.yaml").write_text("")
    (tmp_path / "b.toml").write_text("campaigns = []\n")

    result = campaigner(database_url, "apply", str(tmp_path), "--prune", "--yes")

    assert result.exit_code == 2
    assert "holds no campaign" in result.stderr
    assert db.execute("SELECT name FROM campaigns").fetchall() == [("welcome",)]


# -- long values and YAML aliases ---------------------------------------------------


def test_apply__long_values_are_cut_in_messages(
    database_url: str, tmp_path: Path
) -> None:
    long_name = "n" * 5000
    path = tmp_path / "c.yaml"
    path.write_text(
        "campaigns:\n"
        f"  - name: {long_name}\n"
        "    schedule: '0 9 * * *'\n"
        "    cohort: 'true'\n"
        f"    channel: {'c' * 5000}\n"
        "    topic: campaigns.email\n"
        f"    batch_size: {'b' * 5000}\n"
    )

    result = campaigner(database_url, "apply", str(path), "--yes")

    assert result.exit_code == 2
    assert "n" * 79 + "…" not in result.stderr  # the repr starts with a quote
    assert "'" + "n" * 78 + "…" in result.stderr
    assert "b" * 100 not in result.stderr
    assert len(result.stderr) < 2_000


def test_apply__yaml_aliases_refused(database_url: str, tmp_path: Path) -> None:
    # A "billion laughs": each level repeats the one before ten times.
    levels = ["a0: &a0 " + "x" * 100]
    for n in range(1, 9):
        levels.append(f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text(
        "campaigns:\n"
        "  - name: bomb\n"
        "    schedule: '0 9 * * *'\n"
        "    cohort: 'true'\n"
        "    channel: email\n"
        "    topic: campaigns.email\n"
        "    template:\n" + "".join(f"      {line}\n" for line in levels)
    )

    result = campaigner(database_url, "apply", str(path), "--yes")

    assert result.exit_code == 2
    assert "anchors (&name) and aliases (*name) are not allowed" in result.stderr
    assert len(result.stderr) < 2_000
