"""dry-run and list: read-only views that write nothing and produce nothing."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import psycopg

from campaigner import reports, runner
from campaigner.config import Settings
from tests.conftest import (
    TICK,
    TICK_TEXT,
    insert_campaign,
    insert_users,
    invoke_cli,
    read_back,
    run_rows,
    user_ids,
)


def table_rows(text: str) -> list[list[str]]:
    """The body rows of a rich table, as stripped cells."""
    return [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in text.splitlines()
        if line.startswith("│")
    ]


def arrange_campaigns(conn: psycopg.Connection[Any], topic: str) -> None:
    insert_users(conn, 1_000)
    insert_campaign(conn, name="germany", topic=topic, cohort="country = 'DE'")
    insert_campaign(
        conn, name="consenting", topic=topic, cohort="email_consent AND country <> 'US'"
    )
    insert_campaign(conn, name="later", topic=topic, schedule="0 10 * * *")
    insert_campaign(conn, name="bad-cron", topic=topic, schedule="0 0 9 * * *")
    insert_campaign(conn, name="bad-column", topic=topic, cohort="no_such_column")
    insert_campaign(conn, name="resting", topic=topic, status="paused")


def catalog_counts(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM campaign_runs),"
        " (SELECT count(*) FROM campaign_run_failures),"
        " (SELECT count(*) FROM user_data),"
        " (SELECT max(updated_at) FROM campaigns)"
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_dry_run__due_campaigns_with_exact_cohort_sizes(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    arrange_campaigns(db, topic)
    before = catalog_counts(db)

    tick, previews = reports.dry_run(
        settings, at=datetime(2025, 6, 2, 9, 3, 20, tzinfo=UTC)
    )

    assert tick == datetime(2025, 6, 2, 9, 3, tzinfo=UTC)
    assert sorted(
        (p.campaign, p.state, p.scheduled_for, p.cohort_size) for p in previews
    ) == [
        ("bad-column", "invalid", TICK, None),
        ("bad-cron", "invalid", None, None),
        (
            "consenting",
            "due",
            TICK,
            len(user_ids(db, "email_consent AND country <> 'US'")),
        ),
        ("germany", "due", TICK, len(user_ids(db, "country = 'DE'"))),
    ]
    assert catalog_counts(db) == before
    assert (
        read_back(settings.kafka_bootstrap_servers, topic, expected=0, timeout=10) == []
    )


def test_dry_run__json_on_the_command_line(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    arrange_campaigns(db, topic)

    result = invoke_cli("dry-run", "--at", TICK_TEXT, "--json", settings=settings)

    sizes = {
        "germany": len(user_ids(db, "country = 'DE'")),
        "consenting": len(user_ids(db, "email_consent AND country <> 'US'")),
    }
    document = json.loads(result.stdout)
    campaigns = {c["campaign"]: c for c in document["campaigns"]}
    assert (result.exit_code, document["tick"]) == (6, "2025-06-02T09:00:00+00:00")
    assert {name: (c["state"], c["cohort_size"]) for name, c in campaigns.items()} == {
        "germany": ("due", sizes["germany"]),
        "consenting": ("due", sizes["consenting"]),
        "bad-cron": ("invalid", None),
        "bad-column": ("invalid", None),
    }
    assert "has 6 fields" in campaigns["bad-cron"]["error"]
    assert campaigns["bad-column"]["error"] == (
        "campaign 'bad-column': column no_such_column is not a column of"
        " 'user_data' (position 1)"
    )
    assert run_rows(db) == []


def test_dry_run__table_on_the_command_line(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 1_000)
    insert_campaign(db, name="germany", topic=topic, cohort="country = 'DE'")
    insert_campaign(db, name="bad-column", topic=topic, cohort="no_such_column")
    size = len(user_ids(db, "country = 'DE'"))

    result = invoke_cli("dry-run", "--at", TICK_TEXT, settings=settings)

    rows = table_rows(result.stdout)
    assert (result.exit_code, len(rows)) == (6, 2)
    assert rows[0][:4] == ["germany", "2025-06-02 09:00 UTC", "due", str(size)]
    assert re.fullmatch(r"cost \d+, ~\d+ rows", rows[0][4])
    assert rows[0][5] == ""
    assert rows[1][:5] == ["bad-column", "2025-06-02 09:00 UTC", "invalid", "-", "-"]
    assert rows[1][5].startswith("campaign 'bad-column': column no_such_column")
    assert run_rows(db) == []


def test_dry_run__shows_a_claimed_slot_as_claimed(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 20)
    insert_campaign(db, name="germany", topic=topic, cohort="country = 'DE'")
    runner.execute(settings, at=TICK)

    _, previews = reports.dry_run(settings, at=TICK)

    assert [(p.campaign, p.state) for p in previews] == [("germany", "already_claimed")]


def test_dry_run__nothing_due(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_campaign(db, name="later", topic=topic, schedule="0 10 * * *")

    result = invoke_cli("dry-run", "--at", TICK_TEXT, settings=settings)

    assert (result.exit_code, result.stdout) == (
        0,
        "tick 2025-06-02 09:00 UTC: nothing due\n",
    )


def test_list_campaigns__schedule_timezone_next_fires_and_last_run(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 50)
    insert_campaign(
        db,
        name="paris-morning",
        topic=topic,
        timezone="Europe/Paris",
        schedule="0 11 * * *",
    )
    insert_campaign(
        db, name="resting", topic=topic, status="paused", schedule="@weekly"
    )
    insert_campaign(db, name="gone", topic=topic, status="archived")
    insert_campaign(db, name="bad-zone", topic=topic, timezone="Europe/Atlantis")
    runner.execute(settings, at=TICK)

    listings = reports.list_campaigns(
        settings, now=datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
    )

    by_name = {listing.name: listing for listing in listings}
    paris = by_name["paris-morning"]
    assert sorted(by_name) == ["bad-zone", "paris-morning", "resting"]
    assert (paris.status, paris.schedule, paris.timezone, paris.error) == (
        "active",
        "0 11 * * *",
        "Europe/Paris",
        None,
    )
    assert [moment.isoformat() for moment in paris.next_fires] == [
        "2025-06-03T11:00:00+02:00",
        "2025-06-04T11:00:00+02:00",
        "2025-06-05T11:00:00+02:00",
    ]
    assert paris.last_run is not None
    assert (
        paris.last_run.status,
        paris.last_run.scheduled_for,
        paris.last_run.produced,
    ) == ("succeeded", TICK, 50)
    assert (by_name["resting"].status, by_name["resting"].last_run) == ("paused", None)
    assert by_name["bad-zone"].next_fires == []
    assert "unknown timezone 'Europe/Atlantis'" in (by_name["bad-zone"].error or "")


def test_list__json_on_the_command_line(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 5)
    insert_campaign(
        db,
        name="paris-morning",
        topic=topic,
        timezone="Europe/Paris",
        schedule="0 11 * * *",
    )
    runner.execute(settings, at=TICK)

    result = invoke_cli("list", "--json", settings=settings)

    [listing] = json.loads(result.stdout)
    next_fires = [datetime.fromisoformat(moment) for moment in listing["next_fires"]]
    assert result.exit_code == 0
    assert {
        k: listing[k] for k in ("name", "status", "schedule", "timezone", "error")
    } == {
        "name": "paris-morning",
        "status": "active",
        "schedule": "0 11 * * *",
        "timezone": "Europe/Paris",
        "error": None,
    }
    assert len(next_fires) == 3
    assert [(m.hour, m.minute, m.utcoffset() is not None) for m in next_fires] == [
        (11, 0, True)
    ] * 3
    assert (
        listing["last_run"]["status"],
        listing["last_run"]["scheduled_for"],
        listing["last_run"]["produced"],
    ) == ("succeeded", "2025-06-02T09:00:00+00:00", 5)


def test_list__table_on_the_command_line(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 5)
    insert_campaign(
        db,
        name="paris-morning",
        topic=topic,
        timezone="Europe/Paris",
        schedule="0 11 * * *",
    )
    insert_campaign(db, name="never-ran", topic=topic, schedule="0 8 * * 1")
    runner.execute(settings, at=TICK)

    result = invoke_cli("list", settings=settings)

    rows = table_rows(result.stdout)
    local_fire = re.compile(r"\d{4}-\d\d-\d\d 11:00 CES?T")
    monday_fire = re.compile(r"\d{4}-\d\d-\d\d 08:00 UTC")
    assert result.exit_code == 0
    assert [row[:4] + row[5:] for row in rows] == [
        [
            "paris-morning",
            "active",
            "0 11 * * *",
            "Europe/Paris",
            "succeeded 2025-06-02 09:00 UTC (5/5)",
        ],
        ["", "", "At 11:00", "", ""],
        ["", "", "", "", ""],
        ["never-ran", "active", "0 8 * * 1", "UTC", "never"],
        ["", "", "At 08:00, only on Monday", "", ""],
        ["", "", "", "", ""],
    ]
    assert [bool(local_fire.fullmatch(row[4])) for row in rows[:3]] == [True] * 3
    assert [bool(monday_fire.fullmatch(row[4])) for row in rows[3:]] == [True] * 3
