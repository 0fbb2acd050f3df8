"""Which slots an execute records as missed: pure planning over instants."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from campaigner.campaigns import Campaign
from campaigner.planning import MISSED_LOOKBACK, missed_slots
from campaigner.scheduling import Schedule

HOURLY = Schedule.parse("0 * * * *", "UTC")
CAMPAIGN = Campaign(
    id=1,
    name="hourly",
    status="active",
    schedule="0 * * * *",
    timezone="UTC",
    cohort="true",
    channel="email",
    topic="t",
    template={},
    message_fields=[],
    batch_size=100,
    active_from=None,
    active_until=None,
    grace=timedelta(minutes=15),
    deadline=timedelta(hours=4),
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("tick", "since", "expected"),
    [
        # 09:00 is within its grace at 09:15: due, not missed.
        (utc(2025, 6, 2, 9, 15), utc(2025, 6, 2, 6, 30), [7, 8]),
        (utc(2025, 6, 2, 9, 16), utc(2025, 6, 2, 6, 30), [7, 8, 9]),
        # The bound itself (the latest run, or the creation) is excluded.
        (utc(2025, 6, 2, 9, 16), utc(2025, 6, 2, 8, 0), [9]),
        (utc(2025, 6, 2, 9, 16), utc(2025, 6, 2, 9, 0), []),
    ],
)
def test_missed_slots__past_the_grace_after_the_bound(
    tick: datetime, since: datetime, expected: list[int]
) -> None:
    slots = missed_slots(CAMPAIGN, HOURLY, tick=tick, since=since)

    assert [slot.hour for slot in slots] == expected


def test_missed_slots__bounded_look_back() -> None:
    tick = utc(2025, 6, 2, 9, 30)

    slots = missed_slots(CAMPAIGN, HOURLY, tick=tick, since=utc(2025, 1, 1))

    assert (len(slots), slots[0], slots[-1]) == (
        24,
        tick - MISSED_LOOKBACK + timedelta(minutes=30),
        utc(2025, 6, 2, 9, 0),
    )


def test_missed_slots__only_inside_the_active_window() -> None:
    campaign = dataclasses.replace(
        CAMPAIGN,
        active_from=utc(2025, 6, 2, 7, 0),
        active_until=utc(2025, 6, 2, 9, 0),
    )

    slots = missed_slots(
        campaign, HOURLY, tick=utc(2025, 6, 2, 10, 30), since=utc(2025, 6, 2, 5, 30)
    )

    assert [slot.hour for slot in slots] == [7, 8]


def test_missed_slots__a_skipped_hour_is_one_slot() -> None:
    schedule = Schedule.parse("0,30 2 * * *", "America/New_York")

    slots = missed_slots(
        CAMPAIGN, schedule, tick=utc(2025, 3, 9, 12), since=utc(2025, 3, 9, 0)
    )

    assert slots == [utc(2025, 3, 9, 7, 0)]
