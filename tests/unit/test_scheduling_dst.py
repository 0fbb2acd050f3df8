"""Daylight saving and the day-of-month/day-of-week rule, as cronie runs them.

Each case replays an `execute` every minute across the local day of a clock
change (the product's own path: due_slot at each tick, one claim per slot) and
compares the fires with what cronie does on that day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from campaigner.scheduling import Schedule, due_slot

NEW_YORK = "America/New_York"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fires_on(expression: str, timezone: str, day: date) -> list[datetime]:
    """The slots an execute running every minute of the local `day` fires, in
    order, each at the tick it fired (which must be the slot itself)."""
    schedule = Schedule.parse(expression, timezone)
    zone = ZoneInfo(timezone)
    tick = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    claimed: list[datetime] = []
    while tick < end:
        slot = due_slot(schedule, tick=tick, grace=timedelta(0))
        if slot is not None and slot not in claimed:
            assert slot == tick, f"slot {slot} fired late, at {tick}"
            claimed.append(slot)
        tick += timedelta(minutes=1)
    return claimed


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2025, 3, 8), [utc(2025, 3, 8, 14, 0)]),
        (date(2025, 3, 9), [utc(2025, 3, 9, 13, 0)]),
        (date(2025, 3, 10), [utc(2025, 3, 10, 13, 0)]),
    ],
)
def test_fires__nine_am_in_new_york_around_the_spring_change(
    day: date, expected: list[datetime]
) -> None:
    assert fires_on("0 9 * * *", NEW_YORK, day) == expected


@pytest.mark.parametrize(
    ("expression", "day", "expected"),
    [
        # 02:30 does not exist on 2025-03-09: once, right after the jump, 03:00 EDT.
        ("30 2 * * *", date(2025, 3, 9), [utc(2025, 3, 9, 7, 0)]),
        # 02:00 and 03:00 both come at 03:00 EDT: one slot, one run.
        ("0 2,3 * * *", date(2025, 3, 9), [utc(2025, 3, 9, 7, 0)]),
        # A minute field starting with '*' follows real time: no 02:xx that day.
        ("*/10 2 * * *", date(2025, 3, 9), []),
        # The same minutes written as a range are fixed times: one slot at 03:00.
        ("0-59/10 2 * * *", date(2025, 3, 9), [utc(2025, 3, 9, 7, 0)]),
        (
            "15 2-4 * * *",
            date(2025, 3, 9),
            [utc(2025, 3, 9, 7, 0), utc(2025, 3, 9, 7, 15), utc(2025, 3, 9, 8, 15)],
        ),
        # 01:30 happens twice on 2025-11-02: a fixed time runs at the first, EDT.
        ("30 1 * * *", date(2025, 11, 2), [utc(2025, 11, 2, 5, 30)]),
        (
            "0,30 1 * * *",
            date(2025, 11, 2),
            [utc(2025, 11, 2, 5, 0), utc(2025, 11, 2, 5, 30)],
        ),
        # A wildcard minute follows real time: both 01:xx hours, 8 fires.
        (
            "*/15 1 * * *",
            date(2025, 11, 2),
            [utc(2025, 11, 2, 5, m) for m in (0, 15, 30, 45)]
            + [utc(2025, 11, 2, 6, m) for m in (0, 15, 30, 45)],
        ),
    ],
)
def test_fires__fixed_time_and_wildcard_across_new_york_changes(
    expression: str, day: date, expected: list[datetime]
) -> None:
    assert fires_on(expression, NEW_YORK, day) == expected


@pytest.mark.parametrize(
    ("expression", "day", "count"),
    [
        # Wildcard hour: real time, so the skipped hour has no fire...
        ("30 * * * *", date(2025, 3, 9), 23),
        # ...and the repeated one two.
        ("30 * * * *", date(2025, 11, 2), 25),
        ("@hourly", date(2025, 11, 2), 25),
        # The same times written as fixed times: once per local time; the
        # skipped 02:30 comes at 03:00 (one more fire than a wildcard hour).
        ("30 0-23 * * *", date(2025, 3, 9), 24),
        ("30 0-23 * * *", date(2025, 11, 2), 24),
        ("* * * * *", date(2025, 3, 9), 23 * 60),
        ("* * * * *", date(2025, 11, 2), 25 * 60),
        ("@daily", date(2025, 3, 9), 1),
        ("@daily", date(2025, 11, 2), 1),
    ],
)
def test_fires__count_on_the_change_days(
    expression: str, day: date, count: int
) -> None:
    assert len(fires_on(expression, NEW_YORK, day)) == count


def test_fires__thirty_past_every_hour_on_the_spring_day_skips_two_thirty() -> None:
    fires = fires_on("30 * * * *", NEW_YORK, date(2025, 3, 9))

    local = [f.astimezone(ZoneInfo(NEW_YORK)).strftime("%H:%M") for f in fires]
    assert local == ["00:30", "01:30"] + [f"{h:02}:30" for h in range(3, 24)]


@pytest.mark.parametrize(
    ("expression", "timezone", "day", "expected"),
    [
        # Berlin jumps from 02:00 to 03:00 CEST (01:00Z) and repeats 02:xx.
        ("30 2 * * *", "Europe/Berlin", date(2025, 3, 30), [utc(2025, 3, 30, 1, 0)]),
        ("30 2 * * *", "Europe/Berlin", date(2025, 10, 26), [utc(2025, 10, 26, 0, 30)]),
        # Lord Howe changes by half an hour, at 02:00 local.
        (
            "45 1 * * *",
            "Australia/Lord_Howe",
            date(2025, 4, 6),
            [utc(2025, 4, 5, 14, 45)],
        ),
        (
            "15 2 * * *",
            "Australia/Lord_Howe",
            date(2025, 10, 5),
            [utc(2025, 10, 4, 15, 30)],
        ),
        # Santiago skips midnight (00:00 becomes 01:00) on 2025-09-07.
        ("0 0 * * *", "America/Santiago", date(2025, 9, 7), [utc(2025, 9, 7, 4, 0)]),
    ],
)
def test_fires__other_zones(
    expression: str, timezone: str, day: date, expected: list[datetime]
) -> None:
    assert fires_on(expression, timezone, day) == expected


@pytest.mark.parametrize(
    ("expression", "days"),
    [
        # Both restricted: the 1st or the 15th OR any Monday.
        ("0 9 1,15 * mon", [1, 2, 9, 15, 16, 23, 30]),
        # Day-of-month starts with '*': AND, so odd days that are Mondays.
        ("0 9 */2 * mon", [9, 23]),
        # Day-of-week starts with '*': AND, so every other day from the 1st.
        ("0 9 1-31/2 * */1", [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29]),
        # A restricted field that happens to allow every day still ORs.
        ("0 9 1-31 * mon", list(range(1, 31))),
        ("0 9 15 * 0-7", list(range(1, 31))),
        # Only one restricted: that one alone.
        ("0 9 * * mon", [2, 9, 16, 23, 30]),
        ("0 9 1,15 * *", [1, 15]),
        ("0 9 * * 7", [1, 8, 15, 22, 29]),
    ],
)
def test_next_slots__day_of_month_and_day_of_week_as_cronie(
    expression: str, days: list[int]
) -> None:
    schedule = Schedule.parse(expression, "UTC")

    slots = schedule.next_slots(after=utc(2025, 5, 31), count=40)

    assert [s.day for s in slots if (s.year, s.month) == (2025, 6)] == days


def test_latest_slot__inside_the_repeated_hour() -> None:
    wildcard = Schedule.parse("*/20 * * * *", NEW_YORK)
    wildcard_minute = Schedule.parse("*/20 1 * * *", NEW_YORK)
    fixed_hour = Schedule.parse("0,20,40 1 * * *", NEW_YORK)
    # 01:10 EST, the second 01:10 of the day.
    at = utc(2025, 11, 2, 6, 10)

    assert wildcard.latest_slot(at) == utc(2025, 11, 2, 6, 0)
    assert wildcard_minute.latest_slot(at) == utc(2025, 11, 2, 6, 0)
    # A fixed time ran 01:40 EDT and never runs at the second 01:00 or 01:20.
    assert fixed_hour.latest_slot(at) == utc(2025, 11, 2, 5, 40)
    assert fixed_hour.next_slots(after=at, count=1) == [utc(2025, 11, 3, 6, 0)]


def test_next_slots__from_inside_the_first_repeated_hour() -> None:
    schedule = Schedule.parse("*/20 1 * * *", NEW_YORK)
    # 01:30 EDT, the first 01:30 of the day.
    after = utc(2025, 11, 2, 5, 30)

    slots = schedule.next_slots(after=after, count=4)

    assert slots == [
        utc(2025, 11, 2, 5, 40),
        utc(2025, 11, 2, 6, 0),
        utc(2025, 11, 2, 6, 20),
        utc(2025, 11, 2, 6, 40),
    ]


def test_slots_between__both_ends() -> None:
    schedule = Schedule.parse("0 * * * *", "UTC")

    slots = schedule.slots_between(utc(2025, 6, 2, 9, 0), utc(2025, 6, 2, 12, 0))

    assert slots == [
        utc(2025, 6, 2, 10, 0),
        utc(2025, 6, 2, 11, 0),
        utc(2025, 6, 2, 12, 0),
    ]


# Where cronsim, the differential test's oracle, is wrong and cronie's loop
# (and so campaigner) is not: wildcard schedules in a half-hour change, and on
# a day whose midnight is skipped.
def test_fires__wildcard_in_lord_howes_repeated_half_hour_runs_twice() -> None:
    fires = fires_on("45 * * * *", "Australia/Lord_Howe", date(2025, 4, 6))

    # 01:45 comes at +11:00 and again at +10:30 (cronsim skips the second).
    assert fires[:3] == [
        utc(2025, 4, 5, 13, 45),
        utc(2025, 4, 5, 14, 45),
        utc(2025, 4, 5, 15, 15),
    ]
    assert len(fires) == 25


def test_fires__wildcard_hour_zero_on_a_day_without_midnight() -> None:
    fires = fires_on("* 0 * * *", "America/Santiago", date(2025, 9, 7))

    # 00:xx never happens that day (cronsim fires at 01:00).
    assert fires == []


# A deliberate difference from cronie: a skipped interval longer than three
# hours (only historical changes, such as Samoa skipping 2011-12-30) makes
# cronie's loop jump and drop the fixed-time jobs of the lost hours; campaigner
# still fires each such slot once, right after the jump, as for daylight saving.
def test_fires__fixed_time_on_a_skipped_day_fires_after_the_jump() -> None:
    schedule = Schedule.parse("0 9 * * *", "Pacific/Apia")

    slots = schedule.next_slots(after=utc(2011, 12, 29, 12, 0), count=2)

    # 2011-12-29 09:00 -10:00, then the lost 30th at 2011-12-31 00:00 +14:00.
    assert slots == [utc(2011, 12, 29, 19, 0), utc(2011, 12, 30, 10, 0)]
