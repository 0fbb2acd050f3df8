"""Schedules as operators read them in `list`, and rows system cron would refuse."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from campaigner import reports
from campaigner.config import Settings
from tests.conftest import TICK_TEXT, insert_campaign, invoke_cli, run_rows


def test_list_campaigns__words_and_next_fires_across_a_clock_change(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_campaign(
        db,
        name="night",
        topic=topic,
        schedule="30 2 * * *",
        timezone="America/New_York",
    )
    insert_campaign(db, name="odd-mondays", topic=topic, schedule="0 9 */2 * mon")

    listings = reports.list_campaigns(
        settings, now=datetime(2025, 3, 8, 12, 0, tzinfo=UTC)
    )

    by_name = {listing.name: listing for listing in listings}
    night = by_name["night"]
    # 02:30 does not exist on 2025-03-09 in New York: it fires at 03:00 EDT.
    assert [moment.isoformat() for moment in night.next_fires] == [
        "2025-03-09T03:00:00-04:00",
        "2025-03-10T02:30:00-04:00",
        "2025-03-11T02:30:00-04:00",
    ]
    assert night.description == "At 02:30"
    # cron ANDs the days when one field starts with '*'.
    assert (
        by_name["odd-mondays"].description == "At 09:00, every 2 days, only on Monday"
    )
    assert [m.day for m in by_name["odd-mondays"].next_fires] == [17, 31, 7]


def test_list__json_has_the_description(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_campaign(db, name="weekdays", topic=topic, schedule="*/15 9-17 * * mon-fri")

    result = invoke_cli("list", "--json", settings=settings)

    [listing] = json.loads(result.stdout)
    assert (result.exit_code, listing["description"]) == (
        0,
        "Every 15 minutes, between 09:00 and 17:59, Monday through Friday",
    )


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        ("0 9 L * *", "day-of-month field 'L': 'L' (the last day) is not cron syntax"),
        ("0 0 30 2 *", "schedule '0 0 30 2 *' never fires: no day 30 in February"),
        ("0 9 * * mon#2", "'#' (the nth weekday of the month) is not cron syntax"),
        ("5-1 9 * * *", "the range 5-1 is reversed (write 1-5)"),
    ],
)
def test_list_and_execute__report_a_row_system_cron_would_refuse(
    db: psycopg.Connection[Any],
    settings: Settings,
    topic: str,
    schedule: str,
    problem: str,
) -> None:
    insert_campaign(db, name="refused", topic=topic, schedule=schedule)

    listed = invoke_cli("list", "--json", settings=settings)
    executed = invoke_cli("execute", "--at", TICK_TEXT, settings=settings)

    [listing] = json.loads(listed.stdout)
    assert (listed.exit_code, listing["next_fires"], listing["description"]) == (
        0,
        [],
        None,
    )
    assert problem in listing["error"]
    assert executed.exit_code == 6
    assert f"campaign 'refused': schedule {schedule!r}" in executed.stderr
    assert problem in executed.stderr
    assert "Traceback" not in executed.stderr
    assert run_rows(db) == []
