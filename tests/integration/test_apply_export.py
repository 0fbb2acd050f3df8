"""Campaigns as code on a real PostgreSQL: the plan, applying it, refusing an
invalid file as a whole, and export then apply changing nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result

from campaigner import cli, ledger
from tests.conftest import TICK, insert_campaign

CHANNELS = ("email", "sms", "whatsapp", "push")


def campaigner(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(
        cli.cli, list(args), env={"DATABASE_URL": database_url}, catch_exceptions=False
    )


def campaigns_yaml(count: int) -> str:
    """`count` campaigns using every kind of field, each a little different."""
    entries = []
    for n in range(count):
        entries.append(
            f"""
  - name: campaign-{n:02d}
    schedule: "{n} {n % 24} * * {n % 7}"
    timezone: {("UTC", "Europe/Berlin", "Asia/Tokyo")[n % 3]}
    cohort: |
      country = '{("DE", "FR", "US")[n % 3]}'
      AND lifetime_value > {n}  -- regulars only
    channel: {CHANNELS[n % 4]}
    topic: campaigns.{CHANNELS[n % 4]}
    status: {("active", "paused", "archived")[n % 3]}
    template: {{id: tpl-{n}, tags: [a, b], weight: {n}.5}}
    message_fields: [email, first_name]
    batch_size: {100 + n}
    grace: {n + 1}m
    deadline: {n + 1}h30m
    rate_limit: {n + 10}
    active_from: 2026-0{1 + n % 9}-01T00:00:00Z
    active_until: 2027-01-01T08:30:00+01:00"""
        )
    return "campaigns:" + "".join(entries) + "\n"


def names(db: psycopg.Connection[Any]) -> list[str]:
    return [row[0] for row in db.execute("SELECT name FROM campaigns ORDER BY name")]


def table_state(db: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT name, status, schedule, timezone, cohort, channel, topic, template,"
        " message_fields, batch_size, active_from, active_until, grace, deadline,"
        " rate_limit, updated_at FROM campaigns ORDER BY name"
    ).fetchall()


@pytest.mark.parametrize("kind", ["yaml", "toml"])
def test_export_then_apply__is_a_no_op(
    db: psycopg.Connection[Any], database_url: str, tmp_path: Path, kind: str
) -> None:
    source = tmp_path / "source.yaml"
    source.write_text(campaigns_yaml(12))
    created = campaigner(database_url, "apply", str(source), "--yes")
    before = table_state(db)
    exported = tmp_path / f"exported.{kind}"

    export = campaigner(database_url, "export", "-o", str(exported))
    result = campaigner(database_url, "apply", str(exported), "--prune", "--yes")

    assert (created.exit_code, created.stdout.splitlines()[-2:]) == (
        0,
        ["plan: 12 to create, 0 to change, 0 unchanged, 0 to delete", "applied"],
    ), created.stderr
    assert export.exit_code == 0, export.stderr
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == [
        "plan: 0 to create, 0 to change, 12 unchanged, 0 to delete",
        "nothing to apply",
    ]
    assert table_state(db) == before
    assert len(before) == 12


def test_export__stdout_as_toml_reads_back(database_url: str, tmp_path: Path) -> None:
    source = tmp_path / "source.yaml"
    source.write_text(campaigns_yaml(10))
    campaigner(database_url, "apply", str(source), "--yes")

    export = campaigner(database_url, "export", "--format", "toml")
    path = tmp_path / "out.toml"
    path.write_text(export.stdout)
    result = campaigner(database_url, "apply", str(path))

    assert export.stdout.startswith('[[campaigns]]\nname = "campaign-00"\n')
    assert (result.exit_code, result.stdout.splitlines()[-1]) == (0, "nothing to apply")


def test_plan__changed_cohort_and_schedule_field_by_field(
    db: psycopg.Connection[Any], database_url: str, tmp_path: Path
) -> None:
    insert_campaign(
        db,
        name="winback",
        topic="campaigns.email",
        cohort="country = 'DE'",
        schedule="0 10 * * *",
    )
    insert_campaign(db, name="digest", topic="campaigns.email")
    insert_campaign(db, name="stale", topic="campaigns.email")
    path = tmp_path / "campaigns.yaml"
    export = campaigner(database_url, "export", "-o", str(path))
    text = path.read_text()
    text = text.replace("cohort: country = 'DE'", "cohort: country = 'AT'", 1)
    text = text.replace("schedule: 0 10 * * *", "schedule: 30 9 * * 1-5", 1)
    path.write_text(text.replace("- name: stale", "- name: fresh", 1))

    result = campaigner(database_url, "apply", str(path), "--prune")

    assert export.exit_code == 0
    assert (result.exit_code, result.stderr) == (
        2,
        "error: no terminal to confirm on; nothing was changed (add --yes to go"
        " ahead without asking)\n",
    )
    assert result.stdout == (
        "= digest: unchanged\n"
        "+ fresh: create\n"
        "~ winback: change\n"
        '    schedule: "0 10 * * *" -> "30 9 * * 1-5"\n'
        "    cohort: \"country = 'DE'\" -> \"country = 'AT'\"\n"
        "- stale: delete\n"
        "plan: 1 to create, 1 to change, 1 unchanged, 1 to delete\n"
    )
    assert names(db) == ["digest", "stale", "winback"]


def test_apply__without_prune_keeps_what_the_file_does_not_name(
    db: psycopg.Connection[Any], database_url: str, tmp_path: Path
) -> None:
    insert_campaign(db, name="legacy", topic="t")
    path = tmp_path / "c.yaml"
    path.write_text(campaigns_yaml(1))

    result = campaigner(database_url, "apply", str(path), "--yes")

    assert result.exit_code == 0, result.stderr
    assert "? legacy: not in the file (kept; --prune deletes it)" in result.stdout
    assert names(db) == ["campaign-00", "legacy"]


def insert_run(db: psycopg.Connection[Any], campaign_id: int, status: str) -> int:
    row = db.execute(
        "INSERT INTO campaign_runs (campaign_id, scheduled_for, status, started_at)"
        " VALUES (%s, %s, %s, now()) RETURNING id",
        [campaign_id, TICK, status],
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_apply__prune_deletes_what_the_file_does_not_name_with_its_runs(
    db: psycopg.Connection[Any], database_url: str, tmp_path: Path
) -> None:
    legacy = insert_campaign(db, name="legacy", topic="t")
    insert_run(db, legacy, "succeeded")
    insert_campaign(db, name="older", topic="t")
    path = tmp_path / "c.yaml"
    path.write_text(campaigns_yaml(1))

    result = campaigner(database_url, "apply", str(path), "--prune", "--yes")

    assert (result.exit_code, result.stdout) == (
        0,
        "+ campaign-00: create\n"
        "- legacy: delete\n"
        "- older: delete\n"
        "plan: 1 to create, 0 to change, 0 unchanged, 2 to delete\n"
        "applied\n",
    )
    assert names(db) == ["campaign-00"]
    assert db.execute("SELECT count(*) FROM campaign_runs").fetchone() == (0,)


def test_apply__prune_of_a_campaign_whose_run_is_alive_applies_nothing(
    db: psycopg.Connection[Any], database_url: str, tmp_path: Path
) -> None:
    busy = insert_campaign(db, name="busy", topic="t")
    run_id = insert_run(db, busy, "running")
    path = tmp_path / "c.yaml"
    path.write_text(campaigns_yaml(1))

    with psycopg.connect(database_url, autocommit=True) as worker:
        worker.execute("SELECT pg_advisory_lock(%s, %s)", ledger.lock_key(run_id))
        result = campaigner(database_url, "apply", str(path), "--prune", "--yes")

    assert result.exit_code == 2
    assert result.stderr == (
        f"error: campaign 'busy' is running right now (run {run_id}); pause it,"
        " wait for the run to stop, then delete it\n"
    )
    assert names(db) == ["busy"]


def test_apply__one_invalid_campaign_refuses_the_whole_file(
    db: psycopg.Connection[Any], database_url: str, tmp_path: Path
) -> None:
    text = campaigns_yaml(3)
    text = text.replace("channel: sms", "channel: pigeon")
    text = text.replace(
        "cohort: |\n      country = 'US'", "cohort: |\n      shoe_size = 'US'"
    )
    path = tmp_path / "c.yaml"
    path.write_text(text)

    result = campaigner(database_url, "apply", str(path), "--yes")

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines()[0] == "error: 2 problems, nothing was written:"
    assert "campaign 'campaign-01': channel must be one of" in result.stderr
    assert (
        "campaign 'campaign-02': column shoe_size is not a column of 'user_data'"
        in result.stderr
    )
    assert names(db) == []


def test_apply__the_same_name_twice_is_refused(
    db: psycopg.Connection[Any], database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "a.yaml").write_text(campaigns_yaml(1))
    (tmp_path / "b.yaml").write_text(campaigns_yaml(1))

    result = campaigner(database_url, "apply", str(tmp_path), "--yes")

    assert (result.exit_code, result.stderr) == (
        2,
        "error: campaign 'campaign-00' is defined more than once (nothing was"
        " written)\n",
    )
    assert names(db) == []


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("campaigns: [\n", "is not valid"),
        (
            "campaigns:\n  - name: x\n    schedule: */5 * * * *\n",
            "quote a schedule that starts with '*'",
        ),
        ("jobs: []\n", "the file must hold one key, `campaigns`"),
        ("campaigns:\n  - name: x\n    colour: red\n", "unknown key(s) colour"),
    ],
)
def test_apply__a_malformed_file_exits_2(
    database_url: str, tmp_path: Path, content: str, fragment: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(content)

    result = campaigner(database_url, "apply", str(path), "--yes")

    assert result.exit_code == 2
    assert fragment in result.stderr


def test_apply__a_missing_file_exits_2(database_url: str, tmp_path: Path) -> None:
    result = campaigner(database_url, "apply", str(tmp_path / "none.yaml"))

    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {tmp_path / 'none.yaml'} does not exist\n",
    )
