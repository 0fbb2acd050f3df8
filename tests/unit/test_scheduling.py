"""Schedule rules: parsing, the latest slot at a tick, and when a slot is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from campaigner import errors
from campaigner.scheduling import Schedule, due_slot, truncate_to_minute

NO_GRACE = timedelta(0)
GRACE = timedelta(minutes=15)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "timezone", "message"),
    [
        (
            "0 0 9 * * *",
            "UTC",
            "schedule '0 0 9 * * *' has 6 fields; cron expressions have exactly 5",
        ),
        ("0 9 * * * 2025", "UTC", "has 6 fields"),
        ("0 9 * *", "UTC", "has 4 fields"),
        ("@fortnightly", "UTC", "unknown schedule alias '@fortnightly'"),
        ("@reboot", "UTC", "unknown schedule alias '@reboot'"),
        ("0 9 * * *", "Europe/Atlantis", "unknown timezone 'Europe/Atlantis'"),
        ("0 9 * * *", "", "unknown timezone ''"),
        ("0 9 * * *", "localtime", "timezone 'localtime' is not a place's rules"),
        ("0 9 * * *", "posixrules", "timezone 'posixrules' is not a place's rules"),
        ("0 9 * * *", "Factory", "timezone 'Factory' is not a place's rules"),
        (
            "0 0 30 2 *",
            "UTC",
            "schedule '0 0 30 2 *' never fires: no day 30 in February",
        ),
        (
            "* * 31 2 *",
            "UTC",
            "schedule '* * 31 2 *' never fires: no day 31 in February",
        ),
        (
            "0 0 31 4,6,9,11 *",
            "UTC",
            "never fires: no day 31 in April, June, September, November",
        ),
        ("61 * * * *", "UTC", "minute field '61': 61 is out of range (0-59)"),
        ("0 24 * * *", "UTC", "hour field '24': 24 is out of range (0-23)"),
        ("0 9 0 * *", "UTC", "day-of-month field '0': 0 is out of range (1-31)"),
        ("0 9 * 13 *", "UTC", "month field '13': 13 is out of range (1-12)"),
        ("0 9 * * 8", "UTC", "day-of-week field '8': 8 is out of range (0-7)"),
        ("*/0 * * * *", "UTC", "minute field '*/0': a step of 0 never advances"),
        ("5-1 * * * *", "UTC", "the range 5-1 is reversed (write 1-5)"),
        ("0 9 * * fri-mon", "UTC", "the range 5-1 is reversed (write 1-5)"),
        ("5/15 * * * *", "UTC", "a step needs a range or '*' (write 5-59/15)"),
        ("0 9 ? * *", "UTC", "'?' is Quartz syntax, not cron; write '*'"),
        ("0 9 * * mon#2", "UTC", "'#' (the nth weekday of the month) is not cron"),
        (
            "0 9 15W * *",
            "UTC",
            "day-of-month field '15W': 'W' (the nearest weekday) is not cron",
        ),
        ("0 9 L * *", "UTC", "'L' (the last day) is not cron syntax"),
        ("0 9 LW * *", "UTC", "'LW' (the last weekday) is not cron syntax"),
        ("0 9 * * 5L", "UTC", "'L' (the last day) is not cron syntax"),
        ("H 9 * * *", "UTC", "'H' (a hashed value) is not cron syntax"),
        ("R 9 * * *", "UTC", "'R' (a random value) is not cron syntax"),
        ("0~30 9 * * *", "UTC", "'~' (a random value)"),
        ("0 9 * * monday", "UTC", "'monday' is not a number (names: sun, mon,"),
        ("0 9 jan * *", "UTC", "day-of-month field 'jan': 'jan' is not a number"),
        ("0 9,,10 * * *", "UTC", "hour field '': not a value, a range or a step"),
        ("0 9-*/2 * * *", "UTC", "not a value, a range or a step"),
        ("0 9 * * * 2025", "UTC", "a seconds or year field is not cron syntax"),
        ("0 0 9 * * * *", "UTC", "has 7 fields"),
        ("@Daily", "UTC", "unknown schedule alias '@Daily'"),
        ("every day", "UTC", "has 2 fields"),
        ("", "UTC", "has 0 fields"),
    ],
)
def test_schedule_parse__rejects(expression: str, timezone: str, message: str) -> None:
    with pytest.raises(errors.InvalidSchedule) as caught:
        Schedule.parse(expression, timezone)

    assert message in caught.value.message
    assert caught.value.exit_code == errors.EXIT_CAMPAIGN


@pytest.mark.parametrize(
    "expression",
    [
        "0 9 * * *",
        "*/5 * * * *",
        "0 9 1-7 * mon",
        "@daily",
        "@hourly",
        "@yearly",
        "30 2 * * 1-5",
        "@annually",
        "@midnight",
        "@weekly",
        "@monthly",
        "0 0 29 2 *",
        "0 0 30 2 mon",
        "0-59/20 */6 1-31/10 JAN-jun,Dec SUN-sat",
        "0 9 * * 0-7",
        "*/100 * * * *",
        "00 09 01 01 0",
    ],
)
def test_schedule_parse__accepts(expression: str) -> None:
    schedule = Schedule.parse(expression, "Europe/Paris")

    assert schedule.expression == expression


def test_schedule_parse__normalises_whitespace() -> None:
    schedule = Schedule.parse("  0   9 *  * *\t", "UTC")

    assert schedule.expression == "0 9 * * *"


# Rejections DESIGN.md §3 asks for that croniter itself does not make.
@pytest.mark.parametrize(
    "expression",
    ["0 9 ? * *", "0 9 * * mon#2", "0 9 15W * *", "0 9 L * *", "5-1 * * * *"],
)
def test_schedule_parse__rejects_what_system_cron_refuses(expression: str) -> None:
    with pytest.raises(errors.InvalidSchedule):
        Schedule.parse(expression, "UTC")


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (utc(2025, 6, 2, 9, 0), utc(2025, 6, 2, 9, 0)),
        (utc(2025, 6, 2, 9, 0, 59), utc(2025, 6, 2, 9, 0)),
        (utc(2025, 6, 2, 8, 59), utc(2025, 6, 1, 9, 0)),
        (utc(2025, 6, 2, 23, 59), utc(2025, 6, 2, 9, 0)),
    ],
)
def test_latest_slot__at_or_before_the_instant(
    at: datetime, expected: datetime
) -> None:
    schedule = Schedule.parse("0 9 * * *", "UTC")

    assert schedule.latest_slot(at) == expected


def test_latest_slot__never_after_the_instant() -> None:
    schedule = Schedule.parse("0 9 * * *", "UTC")

    slot = schedule.latest_slot(utc(2025, 6, 2, 8, 59, 59, 500_000))

    assert slot == utc(2025, 6, 1, 9, 0)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        # EST (UTC-5) the day before the switch, EDT (UTC-4) the day after.
        (utc(2025, 3, 8, 14, 0), utc(2025, 3, 8, 14, 0)),
        (utc(2025, 3, 10, 13, 0), utc(2025, 3, 10, 13, 0)),
        (utc(2025, 3, 10, 13, 59), utc(2025, 3, 10, 13, 0)),
    ],
)
def test_latest_slot__follows_the_campaign_timezone(
    at: datetime, expected: datetime
) -> None:
    schedule = Schedule.parse("0 9 * * *", "America/New_York")

    assert schedule.latest_slot(at) == expected


@pytest.mark.parametrize(
    ("tick", "expected"),
    [
        (utc(2025, 3, 8, 14, 0), utc(2025, 3, 8, 14, 0)),
        (utc(2025, 3, 8, 13, 0), None),
        (utc(2025, 3, 10, 13, 0), utc(2025, 3, 10, 13, 0)),
        (utc(2025, 3, 10, 14, 0), None),
    ],
)
def test_due_slot__nine_am_in_new_york_across_the_spring_switch(
    tick: datetime, expected: datetime | None
) -> None:
    schedule = Schedule.parse("0 9 * * *", "America/New_York")

    assert due_slot(schedule, tick=tick, grace=NO_GRACE) == expected


def test_next_slots__nine_am_in_new_york_across_the_spring_switch() -> None:
    schedule = Schedule.parse("0 9 * * *", "America/New_York")

    slots = schedule.next_slots(after=utc(2025, 3, 7, 15, 0), count=3)

    assert slots == [
        utc(2025, 3, 8, 14, 0),
        utc(2025, 3, 9, 13, 0),
        utc(2025, 3, 10, 13, 0),
    ]


def test_next_slots__fixed_time_in_a_skipped_hour_fires_once_after_the_jump() -> None:
    schedule = Schedule.parse("30 2 * * *", "Europe/Berlin")

    slots = schedule.next_slots(after=utc(2025, 3, 29, 12, 0), count=2)

    # 02:30 does not exist on 2025-03-30 in Berlin: cronie runs it at 03:00 CEST.
    assert slots == [utc(2025, 3, 30, 1, 0), utc(2025, 3, 31, 0, 30)]


def test_next_slots__fixed_time_in_a_repeated_hour_fires_once() -> None:
    schedule = Schedule.parse("30 2 * * *", "Europe/Berlin")

    slots = schedule.next_slots(after=utc(2025, 10, 25, 12, 0), count=2)

    # 02:30 happens twice on 2025-10-26 in Berlin; cronie runs the job once.
    assert slots == [utc(2025, 10, 26, 0, 30), utc(2025, 10, 27, 1, 30)]


def test_next_slots__interval_schedule_follows_real_time_in_a_repeated_hour() -> None:
    schedule = Schedule.parse("30 * * * *", "Europe/Berlin")

    slots = schedule.next_slots(after=utc(2025, 10, 25, 23, 0), count=4)

    assert slots == [
        utc(2025, 10, 25, 23, 30),
        utc(2025, 10, 26, 0, 30),
        utc(2025, 10, 26, 1, 30),
        utc(2025, 10, 26, 2, 30),
    ]


def test_due_slot__late_cron_wakeup_still_fires_the_minute_before_without_grace() -> (
    None
):
    schedule = Schedule.parse("0 9 * * *", "UTC")
    woke = utc(2025, 6, 2, 9, 1, 40)

    slot = due_slot(schedule, tick=truncate_to_minute(woke), grace=NO_GRACE)

    assert slot == utc(2025, 6, 2, 9, 0)


@pytest.mark.parametrize(
    ("tick", "grace", "expected"),
    [
        (utc(2025, 6, 2, 9, 0), NO_GRACE, utc(2025, 6, 2, 9, 0)),
        (utc(2025, 6, 2, 9, 2), NO_GRACE, None),
        (utc(2025, 6, 2, 9, 15), GRACE, utc(2025, 6, 2, 9, 0)),
        (utc(2025, 6, 2, 9, 16), GRACE, None),
        (utc(2025, 6, 2, 8, 59), GRACE, None),
        (utc(2025, 6, 2, 11, 0), timedelta(hours=2), utc(2025, 6, 2, 9, 0)),
    ],
)
def test_due_slot__grace_window(
    tick: datetime, grace: timedelta, expected: datetime | None
) -> None:
    schedule = Schedule.parse("0 9 * * *", "UTC")

    assert due_slot(schedule, tick=tick, grace=grace) == expected


@pytest.mark.parametrize(
    ("active_from", "active_until", "expected"),
    [
        (None, None, utc(2025, 6, 2, 9, 0)),
        (utc(2025, 6, 2, 9, 0), None, utc(2025, 6, 2, 9, 0)),
        (utc(2025, 6, 2, 9, 1), None, None),
        (None, utc(2025, 6, 2, 9, 1), utc(2025, 6, 2, 9, 0)),
        (None, utc(2025, 6, 2, 9, 0), None),
        (utc(2025, 6, 1), utc(2025, 6, 3), utc(2025, 6, 2, 9, 0)),
    ],
)
def test_due_slot__active_window(
    active_from: datetime | None,
    active_until: datetime | None,
    expected: datetime | None,
) -> None:
    schedule = Schedule.parse("0 9 * * *", "UTC")

    slot = due_slot(
        schedule,
        tick=utc(2025, 6, 2, 9, 5),
        grace=GRACE,
        active_from=active_from,
        active_until=active_until,
    )

    assert slot == expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (utc(2025, 6, 2, 9, 1, 40, 123), utc(2025, 6, 2, 9, 1)),
        (
            datetime.fromisoformat("2025-06-02T11:01:40+02:00"),
            utc(2025, 6, 2, 9, 1),
        ),
    ],
)
def test_truncate_to_minute__utc_minute(moment: datetime, expected: datetime) -> None:
    truncated = truncate_to_minute(moment)

    assert (truncated, truncated.tzinfo) == (expected, UTC)


@pytest.mark.parametrize(
    ("expression", "tick", "expected"),
    [
        # Both restricted: the 15th OR a Monday, as in cronie.
        ("0 9 15 * mon", utc(2025, 6, 2, 9, 0), utc(2025, 6, 2, 9, 0)),
        ("0 9 15 * mon", utc(2025, 6, 15, 9, 0), utc(2025, 6, 15, 9, 0)),
        ("0 9 15 * mon", utc(2025, 6, 3, 9, 0), None),
        # Only day-of-week restricted: Mondays only.
        ("0 9 * * mon", utc(2025, 6, 15, 9, 0), None),
        ("0 9 * * 1", utc(2025, 6, 9, 9, 0), utc(2025, 6, 9, 9, 0)),
        # 0 and 7 are both Sunday.
        ("0 9 * * 7", utc(2025, 6, 15, 9, 0), utc(2025, 6, 15, 9, 0)),
    ],
)
def test_due_slot__day_of_month_or_day_of_week(
    expression: str, tick: datetime, expected: datetime | None
) -> None:
    schedule = Schedule.parse(expression, "UTC")

    assert due_slot(schedule, tick=tick, grace=NO_GRACE) == expected
