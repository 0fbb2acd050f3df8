"""Differential test: campaigner's schedules against cronsim, an independent
implementation that aims to match Debian cron, daylight saving included.

Thousands of generated valid expressions, in zones with daylight saving, each
iterated fire by fire (next-fire iteration, not a scan of every minute) through
a window around both clock changes of a year.

cronsim is not always right: with wildcard schedules it skips or invents fires
in zones that change by half an hour (Lord Howe) and on days whose midnight is
skipped (Santiago). Each disagreement is therefore replayed minute by minute
through a model of cronie's own main loop (cronie_loop.py): campaigner must
match cronie there, and those cases are counted as KNOWN_ORACLE_ERRORS, with
tests of their own in test_scheduling_dst.py.
"""

from __future__ import annotations

import collections
import itertools
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim, CronSimError

from campaigner import crontab
from campaigner.errors import InvalidSchedule
from campaigner.scheduling import Schedule
from tests.unit.cronie_loop import cronie_fires

SEED = 20250309
EXPRESSIONS = 2_000
ZONES = (
    "America/New_York",  # changes at 02:00 local
    "Europe/Berlin",  # changes at 02:00/03:00 local, other dates
    "Australia/Lord_Howe",  # changes by half an hour
    "America/Santiago",  # changes at midnight, southern hemisphere
)
YEAR = 2025
# Each window starts before a change and is compared fire by fire until it is
# past WINDOW after the change, with at least MIN_FIRES fires and at most MAX_FIRES.
BEFORE = timedelta(hours=3)
WINDOW = timedelta(hours=3)
MIN_FIRES = 4
MAX_FIRES = 400
MINUTE = timedelta(minutes=1)

# Where cronsim itself differs from cronie: campaigner follows cronie there.
KNOWN_ORACLE_ERRORS = {
    "Australia/Lord_Howe": "wildcard schedules after a half-hour change",
    "America/Santiago": "wildcard schedules on a day whose midnight is skipped",
}


def clock_changes(zone: ZoneInfo, year: int) -> list[datetime]:
    """The UTC instants the zone's offset changes in `year` (to the minute)."""
    changes = []
    moment = datetime(year, 1, 1, tzinfo=UTC)
    offset = moment.astimezone(zone).utcoffset()
    while moment.year == year:
        following = moment + timedelta(hours=1)
        if following.astimezone(zone).utcoffset() != offset:
            step = moment
            while step.astimezone(zone).utcoffset() == offset:
                step += timedelta(minutes=1)
            changes.append(step)
            offset = step.astimezone(zone).utcoffset()
        moment = following
    return changes


def generate_field(rng: random.Random, low: int, high: int, hot: list[int]) -> str:
    """A random valid cron field, often around the `hot` values (the hours
    clocks change at) so that daylight saving is exercised."""
    elements = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        kind = rng.random()
        pick = rng.choice(hot) if hot and rng.random() < 0.6 else rng.randint(low, high)
        if kind < 0.25:
            elements.append("*")
        elif kind < 0.4:
            elements.append(f"*/{rng.randint(1, max(2, (high - low) // 2))}")
        elif kind < 0.7:
            elements.append(str(pick))
        elif kind < 0.9:
            last = rng.randint(pick, min(high, pick + rng.randint(0, high - low)))
            elements.append(f"{pick}-{last}")
        else:
            last = rng.randint(pick, high)
            elements.append(f"{pick}-{last}/{rng.randint(1, 5)}")
    return ",".join(elements)


def generate_expressions(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    expressions: list[str] = []
    while len(expressions) < count:
        minute = generate_field(rng, 0, 59, [0, 15, 30, 45, 59])
        hour = generate_field(rng, 0, 23, [0, 1, 2, 3, 23])
        day = "*" if rng.random() < 0.6 else generate_field(rng, 1, 31, [])
        month = (
            "*" if rng.random() < 0.7 else generate_field(rng, 1, 12, [3, 4, 9, 10, 11])
        )
        weekday = "*" if rng.random() < 0.6 else generate_field(rng, 0, 7, [0, 6, 7])
        text = f"{minute} {hour} {day} {month} {weekday}"
        try:
            crontab.parse(text)
        except InvalidSchedule:
            continue  # a day that never comes: checked against cronsim below
        expressions.append(text)
    return expressions


def ours(schedule: Schedule, start: datetime, end: datetime) -> list[datetime]:
    return take_window(schedule.slots_after(start), end)


def oracle(
    expression: str, zone: ZoneInfo, start: datetime, end: datetime
) -> list[datetime]:
    fires = (
        moment.astimezone(UTC) for moment in CronSim(expression, start.astimezone(zone))
    )
    return take_window(fires, end)


def take_window(fires: Iterator[datetime], end: datetime) -> list[datetime]:
    taken: list[datetime] = []
    for moment in itertools.islice(fires, MAX_FIRES):
        if len(taken) >= MIN_FIRES and moment > end:
            break
        taken.append(moment)
    return taken


def windows() -> list[tuple[str, datetime]]:
    return [
        (name, change - BEFORE)
        for name in ZONES
        for change in clock_changes(ZoneInfo(name), YEAR)
    ]


def test_clock_changes__two_a_year_in_each_zone() -> None:
    assert [len(clock_changes(ZoneInfo(name), YEAR)) for name in ZONES] == [2, 2, 2, 2]


@pytest.mark.slow
def test_schedules__agree_with_cronsim_around_clock_changes() -> None:
    expressions = generate_expressions(EXPRESSIONS, SEED)
    compared, agreed, oracle_wrong, wrong = 0, 0, [], []

    for expression, (name, start) in itertools.product(expressions, windows()):
        end = start + BEFORE + WINDOW
        mine = ours(Schedule.parse(expression, name), start, end)
        theirs = oracle(expression, ZoneInfo(name), start, end)
        compared += 1
        if mine == theirs:
            agreed += 1
            continue
        cronie = cronie_fires(expression, name, start, max(mine[-1], theirs[-1]))
        if cronie[: len(mine)] == mine and name in KNOWN_ORACLE_ERRORS:
            oracle_wrong.append((expression, name))
        else:
            wrong.append((expression, name, start, mine[:6], theirs[:6], cronie[:6]))

    print(
        f"\ncronsim agreement: {agreed}/{compared} sequences ({agreed / compared:.3%});"
        f" {len(oracle_wrong)} disagreements where campaigner matches cronie's loop"
        f" and cronsim does not, by zone: {collections.Counter(z for _, z in oracle_wrong)}"
    )
    assert wrong[:3] == []
    assert compared == EXPRESSIONS * len(windows())
    # Most sequences must agree outright: the model only arbitrates the rest.
    assert agreed / compared > 0.95


@pytest.mark.slow
def test_latest_slot__walks_back_through_the_same_fires() -> None:
    """execute asks for the latest slot at a tick: walking backwards must meet
    the fires the forward walk found, on every change of every zone."""
    expressions = generate_expressions(EXPRESSIONS // 8, SEED + 3)
    mismatches = []

    for expression, (name, start) in itertools.product(expressions, windows()):
        schedule = Schedule.parse(expression, name)
        fires = ours(schedule, start, start + BEFORE + WINDOW)
        change = start + BEFORE
        # The fires nearest the change, where walking back is hardest.
        pairs = sorted(
            itertools.pairwise(fires), key=lambda pair: abs(pair[1] - change)
        )
        for previous, fire in pairs[:6]:
            found = (schedule.latest_slot(fire), schedule.latest_slot(fire - MINUTE))
            if found != (fire, previous):
                mismatches.append((expression, name, fire, found))

    assert mismatches[:3] == []


def test_cronie_loop__agrees_with_campaigner_on_a_sample() -> None:
    """The arbiter itself, checked on sequences where nobody disagrees."""
    expressions = generate_expressions(60, SEED + 2)

    for expression, (name, start) in itertools.product(expressions, windows()):
        end = start + BEFORE + WINDOW
        mine = [
            moment
            for moment in ours(Schedule.parse(expression, name), start, end)
            if moment <= end
        ]

        assert cronie_fires(expression, name, start, end) == mine, (expression, name)


def test_validity__agrees_with_cronsim_on_generated_expressions() -> None:
    rng = random.Random(SEED + 1)
    verdicts = []
    for _ in range(2_000):
        text = " ".join(
            (
                generate_field(rng, 0, 59, []),
                generate_field(rng, 0, 23, []),
                "*" if rng.random() < 0.5 else generate_field(rng, 28, 31, []),
                generate_field(rng, 1, 12, [2, 4]),
                "*" if rng.random() < 0.5 else generate_field(rng, 0, 7, []),
            )
        )
        try:
            crontab.parse(text)
            mine = True
        except InvalidSchedule:
            mine = False
        try:
            CronSim(text, datetime(2025, 1, 1, tzinfo=UTC))
            theirs = True
        except CronSimError:
            theirs = False
        verdicts.append((text, mine, theirs))

    assert [v for v in verdicts if v[1] != v[2]] == []
    assert {mine for _, mine, _ in verdicts} == {True, False}
