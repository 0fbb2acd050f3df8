"""Missed ticks against real PostgreSQL and a real broker: the latest slot within
its grace fires once, older unclaimed ones are recorded as missed, and an
operator can back-fill one of them on purpose."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from campaigner import runner
from campaigner.config import Settings
from tests.conftest import TICK, insert_campaign, insert_users, invoke_cli, run_rows

HOUR = timedelta(hours=1)


def created(db: psycopg.Connection[Any], at: datetime) -> None:
    db.execute("UPDATE campaigns SET created_at = %s", [at])


def statuses(db: psycopg.Connection[Any]) -> list[tuple[str, datetime, int]]:
    return sorted(
        (r["status"], r["scheduled_for"], r["attempts"]) for r in run_rows(db)
    )


def test_execute__after_downtime_fires_the_latest_slot_and_records_the_older(
    db: psycopg.Connection[Any],
    settings: Settings,
    topic: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    insert_users(db, 5)
    insert_campaign(db, name="hourly", topic=topic, schedule="0 * * * *")
    created(db, TICK - 4 * HOUR - timedelta(minutes=30))
    caplog.set_level(logging.WARNING, logger="campaigner.missed")

    outcomes = runner.execute(settings, at=TICK + timedelta(minutes=10))

    assert [(o.status, o.scheduled_for, o.produced) for o in outcomes] == [
        ("succeeded", TICK, 5)
    ]
    assert statuses(db) == [
        ("missed", TICK - 4 * HOUR, 0),
        ("missed", TICK - 3 * HOUR, 0),
        ("missed", TICK - 2 * HOUR, 0),
        ("missed", TICK - HOUR, 0),
        ("succeeded", TICK, 1),
    ]
    [warning] = [r for r in caplog.records if r.event == "slots_missed"]  # type: ignore[attr-defined]
    assert warning.getMessage() == (
        "campaign 'hourly': 4 slot(s) missed, the latest 2025-06-02T08:00:00+00:00:"
        " no execute claimed them within their grace; recorded as missed, not sent"
        " (back-fill one with `campaigner execute --campaign hourly --at SLOT`)"
    )


def test_execute__records_missed_slots_once(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_campaign(db, name="hourly", topic=topic, schedule="0 * * * *")
    created(db, TICK - 150 * timedelta(minutes=1))

    runner.execute(settings, at=TICK - timedelta(minutes=30))
    runner.execute(settings, at=TICK - timedelta(minutes=29))

    assert statuses(db) == [
        ("missed", TICK - 2 * HOUR, 0),
        ("missed", TICK - HOUR, 0),
    ]


def test_execute__never_records_a_slot_from_before_the_campaign_existed(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_campaign(
        db, name="hourly", topic=topic, schedule="0 * * * *", grace=timedelta(0)
    )
    created(db, TICK - 90 * timedelta(minutes=1))

    runner.execute(settings, at=TICK + timedelta(minutes=30))

    assert statuses(db) == [("missed", TICK - HOUR, 0), ("missed", TICK, 0)]


def test_execute__looks_back_one_day_at_most(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_campaign(
        db, name="hourly", topic=topic, schedule="0 * * * *", grace=timedelta(0)
    )
    created(db, TICK - timedelta(days=10))

    runner.execute(settings, at=TICK + timedelta(minutes=30))

    slots = [slot for _, slot, _ in statuses(db)]
    assert (len(slots), slots[0], slots[-1]) == (24, TICK - 23 * HOUR, TICK)


def test_execute__late_cron_fires_its_slot_once_and_records_nothing(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 3)
    insert_campaign(db, name="mornings", topic=topic, grace=timedelta(0))
    created(db, TICK - timedelta(days=1, hours=1))
    runner.execute(settings, at=TICK - timedelta(days=1))

    # The cron of 09:00 woke at 09:01:40, and the next one on time at 09:02.
    late = runner.execute(settings, at=TICK + timedelta(minutes=1, seconds=40))
    after = runner.execute(settings, at=TICK + timedelta(minutes=2))

    assert [(o.status, o.scheduled_for) for o in late] == [("succeeded", TICK)]
    assert after == []
    assert statuses(db) == [
        ("succeeded", TICK - timedelta(days=1), 1),
        ("succeeded", TICK, 1),
    ]


def test_execute__superseded_slot_within_grace_is_recorded_once_past_it(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    minutes = timedelta(minutes=1)
    insert_campaign(db, name="fives", topic=topic, schedule="*/5 * * * *")
    created(db, TICK - 2 * minutes)
    db.execute(
        "INSERT INTO campaign_runs (campaign_id, scheduled_for, status)"
        " SELECT id, %s, 'succeeded' FROM campaigns",
        [TICK + 15 * minutes],
    )

    # At 09:16 (grace 15 minutes) 09:00 is past its grace; 09:05 and 09:10 are
    # not, though 09:15 ran after them: they wait until they are.
    runner.execute(settings, at=TICK + 16 * minutes)
    first = statuses(db)
    runner.execute(settings, at=TICK + 29 * minutes)

    assert first == [("missed", TICK, 0), ("succeeded", TICK + 15 * minutes, 1)]
    assert statuses(db) == [
        ("missed", TICK, 0),
        ("missed", TICK + 5 * minutes, 0),
        ("missed", TICK + 10 * minutes, 0),
        ("succeeded", TICK + 15 * minutes, 1),
        ("succeeded", TICK + 25 * minutes, 1),
    ]


def test_execute__back_fills_a_missed_slot_on_purpose(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 4)
    insert_campaign(db, name="mornings", topic=topic, grace=timedelta(minutes=5))
    created(db, TICK - HOUR)
    runner.execute(settings, at=TICK + timedelta(minutes=30))

    outcomes = runner.execute(settings, campaign_name="mornings", at=TICK)
    result = invoke_cli(
        "execute", "--campaign", "mornings", "--at", TICK.isoformat(), settings=settings
    )

    assert [(o.status, o.scheduled_for, o.produced) for o in outcomes] == [
        ("succeeded", TICK, 4)
    ]
    assert statuses(db) == [("succeeded", TICK, 1)]
    assert result.exit_code == 2
    assert "already ran" in result.stderr


def test_execute__back_fill_of_a_missed_slot_records_what_it_started_with(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 2)
    insert_campaign(db, name="mornings", topic=topic, grace=timedelta(minutes=5))
    created(db, TICK - HOUR)
    runner.execute(settings, at=TICK + timedelta(minutes=30))

    runner.execute(settings, campaign_name="mornings", at=TICK)

    [row] = run_rows(db)
    assert (row["cohort"], row["settings"].get("topic")) == ("true", topic)
