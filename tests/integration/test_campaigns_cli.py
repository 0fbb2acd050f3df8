"""`campaigner campaigns ...` and `show` on a real PostgreSQL: every field checked
before anything is written, exit codes, and what each command prints."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result

from campaigner import cli, ledger
from tests.conftest import TICK, insert_campaign

CREATE = [
    "campaigns",
    "create",
    "welcome",
    "--schedule",
    "0 9 * * *",
    "--cohort",
    "country = 'DE' AND email_consent",
    "--channel",
    "email",
    "--topic",
    "campaigns.email",
    "--fields",
    "email,first_name",
]


def campaigner(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(
        cli.cli, list(args), env={"DATABASE_URL": database_url}, catch_exceptions=False
    )


def campaign_row(db: psycopg.Connection[Any], name: str) -> tuple[Any, ...] | None:
    return db.execute(
        "SELECT status, schedule, cohort, message_fields, batch_size, rate_limit,"
        " grace, template FROM campaigns WHERE name = %s",
        [name],
    ).fetchone()


def test_create__writes_the_row(db: psycopg.Connection[Any], database_url: str) -> None:
    result = campaigner(database_url, *CREATE, "--template", '"welcome-v1"')

    assert (result.exit_code, result.stdout) == (
        0,
        "created campaign 'welcome' (active)\n",
    )
    row = campaign_row(db, "welcome")
    assert row is not None
    assert row[:6] == (
        "active",
        "0 9 * * *",
        "country = 'DE' AND email_consent",
        ["email", "first_name"],
        5000,
        None,
    )
    assert row[7] == "welcome-v1"


def test_create__every_problem_listed_nothing_written(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    result = campaigner(
        database_url,
        "campaigns",
        "create",
        "bad",
        "--schedule",
        "0 9 * *",
        "--cohort",
        "country = 'DE'",
        "--channel",
        "sms",
        "--topic",
        "no spaces allowed",
        "--batch-size",
        "0",
    )

    assert result.exit_code == 2
    assert result.stderr == (
        "error: 3 problems, nothing was written:\n"
        "  - campaign 'bad': schedule '0 9 * *' has 4 fields; cron expressions have"
        " exactly 5 (minute hour day-of-month month day-of-week)\n"
        "  - campaign 'bad': topic 'no spaces allowed' is not a Kafka topic name (1 to"
        " 249 letters, digits, '.', '_' or '-', and not '.' or '..')\n"
        "  - campaign 'bad': batch_size must be 1 to 100,000, not 0\n"
    )
    assert campaign_row(db, "bad") is None


@pytest.mark.parametrize(
    ("cohort", "fields", "fragment"),
    [
        (
            "no_such_column > 1",
            "email",
            "no_such_column is not a column of 'user_data'",
        ),
        (
            "country = 'DE'",
            "email,shoe_size",
            "shoe_size are not columns of 'user_data'",
        ),
        ("country = 1", "email", "operator does not exist: text = integer"),
        ("true) OR (true", "email", "cohort is not valid SQL"),
    ],
)
def test_create__cohort_checked_against_the_live_table(
    db: psycopg.Connection[Any],
    database_url: str,
    cohort: str,
    fields: str,
    fragment: str,
) -> None:
    args = [*CREATE[:6], cohort, *CREATE[7:-1], fields]

    result = campaigner(database_url, *args)

    assert result.exit_code == 2, result.stderr
    assert fragment in result.stderr
    assert result.stderr.startswith("error: campaign 'welcome': ")
    assert campaign_row(db, "welcome") is None


def test_create__an_existing_name_is_refused(database_url: str) -> None:
    campaigner(database_url, *CREATE)

    result = campaigner(database_url, *CREATE)

    assert (result.exit_code, result.stderr) == (
        2,
        "error: campaign 'welcome' exists; change it with `campaigner campaigns"
        " update`\n",
    )


def test_update__prints_the_changed_fields(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    campaigner(database_url, *CREATE)

    result = campaigner(
        database_url,
        "campaigns",
        "update",
        "welcome",
        "--rate-limit",
        "50",
        "--grace",
        "30m",
        "--cohort",
        "country = 'AT'",
    )

    assert (result.exit_code, result.stdout) == (
        0,
        "updated campaign 'welcome':\n"
        "  cohort: \"country = 'DE' AND email_consent\" -> \"country = 'AT'\"\n"
        '  grace: (default) -> "30m"\n'
        "  rate_limit: (default) -> 50\n",
    )
    row = campaign_row(db, "welcome")
    assert row is not None and (row[2], row[5]) == ("country = 'AT'", 50)


def test_update__rate_limit_none_clears_it(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    campaigner(database_url, *CREATE, "--rate-limit", "10")

    result = campaigner(
        database_url, "campaigns", "update", "welcome", "--rate-limit", "none"
    )

    assert result.exit_code == 0, result.stderr
    row = campaign_row(db, "welcome")
    assert row is not None and row[5] is None


def test_update__an_invalid_result_changes_nothing(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    campaigner(database_url, *CREATE)

    result = campaigner(
        database_url, "campaigns", "update", "welcome", "--timezone", "Mars/Base"
    )

    assert (result.exit_code, result.stderr) == (
        2,
        "error: campaign 'welcome': unknown timezone 'Mars/Base' (use an IANA name"
        " such as 'Europe/Paris') (nothing was written)\n",
    )
    row = campaign_row(db, "welcome")
    assert row is not None and row[1] == "0 9 * * *"


def test_update__unknown_campaign_exits_2(database_url: str) -> None:
    result = campaigner(database_url, "campaigns", "update", "ghost", "--grace", "1m")

    assert (result.exit_code, result.stderr) == (
        2,
        "error: no campaign named 'ghost' (see `campaigner list`)\n",
    )


@pytest.mark.parametrize(
    ("verb", "status"),
    [("pause", "paused"), ("archive", "archived"), ("resume", "active")],
)
def test_status_commands__change_the_status(
    db: psycopg.Connection[Any], database_url: str, verb: str, status: str
) -> None:
    insert_campaign(
        db, name="welcome", topic="t", status="paused" if verb == "resume" else "active"
    )
    before = "paused" if verb == "resume" else "active"

    result = campaigner(database_url, "campaigns", verb, "welcome")

    assert (result.exit_code, result.stdout) == (
        0,
        f"campaign 'welcome': {before} -> {status}\n",
    )
    row = campaign_row(db, "welcome")
    assert row is not None and row[0] == status


def test_resume__an_invalid_campaign_stays_paused(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    insert_campaign(
        db, name="broken", topic="t", status="paused", cohort="no_such_column"
    )

    result = campaigner(database_url, "campaigns", "resume", "broken")

    assert result.exit_code == 2
    assert "no_such_column is not a column of 'user_data'" in result.stderr
    row = campaign_row(db, "broken")
    assert row is not None and row[0] == "paused"


def test_delete__without_a_terminal_needs_yes(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    insert_campaign(db, name="old", topic="t")

    refused = campaigner(database_url, "campaigns", "delete", "old")
    deleted = campaigner(database_url, "campaigns", "delete", "old", "--yes")

    assert (refused.exit_code, refused.stderr) == (
        2,
        "error: no terminal to confirm on; nothing was changed (add --yes to go"
        " ahead without asking)\n",
    )
    assert (deleted.exit_code, deleted.stdout) == (0, "deleted campaign 'old'\n")
    assert campaign_row(db, "old") is None


def insert_running_run(db: psycopg.Connection[Any], campaign_id: int) -> int:
    row = db.execute(
        "INSERT INTO campaign_runs (campaign_id, scheduled_for, status, started_at)"
        " VALUES (%s, %s, 'running', now()) RETURNING id",
        [campaign_id, TICK],
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_delete__refused_while_a_run_of_the_campaign_is_alive(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    campaign_id = insert_campaign(db, name="busy", topic="t")
    run_id = insert_running_run(db, campaign_id)
    # A live worker holds its run's advisory lock on its session, as the ledger takes it.
    with psycopg.connect(database_url, autocommit=True) as worker:
        worker.execute("SELECT pg_advisory_lock(%s, %s)", ledger.lock_key(run_id))
        refused = campaigner(database_url, "campaigns", "delete", "busy", "--yes")
        kept = campaign_row(db, "busy")
    deleted = campaigner(database_url, "campaigns", "delete", "busy", "--yes")

    assert (refused.exit_code, refused.stderr) == (
        2,
        f"error: campaign 'busy' is running right now (run {run_id}); pause it,"
        " wait for the run to stop, then delete it\n",
    )
    assert kept is not None
    assert (deleted.exit_code, deleted.stdout) == (0, "deleted campaign 'busy'\n")
    assert campaign_row(db, "busy") is None
    assert db.execute("SELECT count(*) FROM campaign_runs").fetchone() == (0,)


def test_show__fields_and_latest_runs(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    campaign_id = insert_campaign(db, name="welcome", topic="campaigns.email")
    db.execute(
        "INSERT INTO campaign_runs (campaign_id, scheduled_for, status, matched,"
        " produced, failed, checkpoint, attempts, started_at, finished_at)"
        " VALUES (%s, %s, 'succeeded', 12, 12, 0, 99, 2, %s, %s + interval '3s')",
        [campaign_id, TICK, TICK, TICK],
    )

    table = campaigner(database_url, "show", "welcome")
    as_json = campaigner(database_url, "campaigns", "show", "welcome", "--json")

    assert table.exit_code == 0
    assert "│ topic          │ campaigns.email" in table.stdout
    assert "2 (resumed)" in table.stdout
    document = json.loads(as_json.stdout)
    assert document["campaign"]["deadline"] == "3650d"
    assert [
        (run["status"], run["attempts"], run["checkpoint"], run["duration_s"])
        for run in document["runs"]
    ] == [("succeeded", 2, 99, 3.0)]
