"""Pure schedule evaluation: which slot, if any, a campaign owes at a tick.

croniter lists the candidate local wall-clock times; the rules around it are
cronie's. A slot is identified by its UTC instant. Daylight saving:

- a *fixed-time* schedule (neither minute nor hour starts with `*`) runs each
  local time once: a time in a skipped interval runs right after the jump (at
  the first minute that exists), a time in a repeated interval runs at its
  first occurrence only;
- any other schedule follows real time: it runs at every instant whose local
  time matches, so never in a skipped interval and twice in a repeated one.

Two local times sent to one instant (02:00 and 03:00 on a spring-forward day)
are one slot. Nothing here reads the clock.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

from campaigner import crontab
from campaigner.errors import InvalidSchedule

ALIASES = frozenset(crontab.ALIASES)
# A cron daemon can wake a little after the minute it serves (load, clock skew):
# the slot of the minute before the tick still counts, whatever the grace.
LATE_WAKEUP_TOLERANCE = timedelta(minutes=1)
MINUTE = timedelta(minutes=1)
# Longer than any skipped or repeated interval in the tz database (Samoa skipped
# a whole day in 2011): walking minute by minute never goes further.
LONGEST_CLOCK_CHANGE = timedelta(days=2)


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A validated cron expression evaluated in an IANA timezone."""

    expression: str
    timezone: ZoneInfo
    cron: crontab.CronExpression = dataclasses.field(repr=False, compare=False)

    @classmethod
    def parse(cls, expression: str, timezone: str) -> Schedule:
        """Validate both parts, or raise InvalidSchedule saying what is wrong."""
        zone = parse_timezone(timezone)
        cron = crontab.parse(expression)
        return cls(cron.text, zone, cron)

    @property
    def fixed_time(self) -> bool:
        return self.cron.fixed_time

    def latest_slot(self, at: datetime) -> datetime:
        """The UTC instant of the latest slot at or before `at`."""
        at = at.astimezone(UTC)
        # A repeated interval just behind `at` holds local times later than its own.
        behind = max(
            timedelta(0), self.offset(at - timedelta(days=1)) - self.offset(at)
        )
        start = self.local(at) + behind
        for slot in self.instants(start, backwards=True):
            if slot <= at:
                return slot
        raise AssertionError("unreachable: instants() is endless")

    def next_slots(self, *, after: datetime, count: int) -> list[datetime]:
        """The next `count` slots strictly after `after`, as UTC instants."""
        return list(itertools.islice(self.slots_after(after), max(count, 0)))

    def slots_after(self, after: datetime) -> Iterator[datetime]:
        """Every slot strictly after `after`, in time order, endlessly."""
        after = after.astimezone(UTC)
        # A repeated interval just ahead of `after` holds local times earlier
        # than its own whose second occurrence is still to come.
        ahead = self.offset(after) - self.offset(after + timedelta(days=1))
        previous = after
        for slot in self.instants(
            self.local(after) - max(ahead, timedelta(0)), backwards=False
        ):
            if slot > previous:
                yield slot
                previous = slot

    def slots_between(self, start: datetime, end: datetime) -> list[datetime]:
        """Every slot after `start` and at or before `end`, oldest first."""
        return list(itertools.takewhile(lambda s: s <= end, self.slots_after(start)))

    def offset(self, moment: datetime) -> timedelta:
        offset = moment.astimezone(self.timezone).utcoffset()
        assert offset is not None  # a ZoneInfo always has one
        return offset

    def local(self, moment: datetime) -> datetime:
        """The naive local wall-clock minute of a UTC instant."""
        wall = moment.astimezone(self.timezone).replace(tzinfo=None)
        return wall.replace(second=0, microsecond=0)

    def instants(self, start: datetime, *, backwards: bool) -> Iterator[datetime]:
        """Slot instants from the local minute `start` on (inclusive), in order,
        a fixed-time schedule's possibly repeated (the caller drops repeats)."""
        candidates = self.candidates(start, backwards=backwards)
        held: datetime | None = None
        while True:
            wall = held if held is not None else next(candidates)
            held = None
            found = self.occurrences(wall)
            if self.fixed_time:
                yield found[0] if found else self.after_jump(wall)
            elif len(found) < 2:
                yield from found
            else:
                repeated, held = self.repeated_interval(wall, candidates, backwards)
                yield from self.real_time_order(repeated, backwards)

    @functools.cached_property
    def engine(self) -> croniter:
        """croniter over naive local times, where no clock ever changes."""
        text, day_or = self.cron.croniter_form()
        return croniter(text, datetime(2000, 1, 1), day_or=day_or)

    def candidates(self, start: datetime, *, backwards: bool) -> Iterator[datetime]:
        """Local wall-clock minutes matching the fields, from `start` inclusive."""
        try:
            # One engine per schedule (building one costs more than a walk),
            # told where to start at every step so that walks never mix.
            current = start + (MINUTE if backwards else -MINUTE)
            step = self.engine.get_prev if backwards else self.engine.get_next
            while True:
                current = step(datetime, start_time=current)
                yield current
        except CroniterBadDateError:
            raise InvalidSchedule(
                f"schedule {self.expression!r} never fires (no such date)"
            ) from None
        except (CroniterError, ValueError, KeyError) as exc:
            raise InvalidSchedule(
                f"schedule {self.expression!r} cannot be evaluated: {exc}"
            ) from exc

    def occurrences(self, wall: datetime) -> list[datetime]:
        """The UTC instants a local time happens at: none in a skipped interval,
        two in a repeated one."""
        found = []
        for fold in (0, 1):
            instant = wall.replace(tzinfo=self.timezone, fold=fold).astimezone(UTC)
            if self.local(instant) == wall and instant not in found:
                found.append(instant)
        return sorted(found)

    def after_jump(self, wall: datetime) -> datetime:
        """The instant of the first local minute that exists after `wall`, which
        falls in a skipped interval: where cronie runs fixed-time jobs."""
        moment = wall
        while moment - wall < LONGEST_CLOCK_CHANGE:
            moment += MINUTE
            found = self.occurrences(moment)
            if found:
                return found[0]
        raise InvalidSchedule(
            f"timezone {self.timezone.key!r} skips more than"
            f" {LONGEST_CLOCK_CHANGE} after {wall.isoformat()}"
        )

    def repeated_interval(
        self, wall: datetime, candidates: Iterator[datetime], backwards: bool
    ) -> tuple[list[datetime], datetime]:
        """The candidates inside the repeated interval `wall` opens (in the
        walk's direction), and the first candidate past it."""
        edge = wall
        while len(self.occurrences(edge)) == 2:
            edge += -MINUTE if backwards else MINUTE
        inside = [wall]
        for candidate in candidates:
            if (candidate <= edge) if backwards else (candidate >= edge):
                return inside, candidate
            inside.append(candidate)
        raise AssertionError("unreachable: candidates() is endless")

    def real_time_order(
        self, walls: list[datetime], backwards: bool
    ) -> Iterator[datetime]:
        """Each local time of a repeated interval at both its instants, in time
        order: all first occurrences come before all second ones."""
        first = [self.occurrences(wall)[0] for wall in walls]
        second = [self.occurrences(wall)[1] for wall in walls]
        yield from (second + first) if backwards else (first + second)


# Names the tz database holds that are not a place's rules: `localtime` is each
# host's own setting (hosts would disagree), the others are not meant for use.
NOT_A_PLACE = frozenset({"localtime", "posixrules", "Factory"})


def parse_timezone(name: str) -> ZoneInfo:
    if name in NOT_A_PLACE or name.startswith(("posix/", "right/")):
        raise InvalidSchedule(
            f"timezone {name!r} is not a place's rules (use an IANA name such as"
            " 'Europe/Paris')"
        )
    try:
        return ZoneInfo(name)
    # A directory ("Europe") or an overlong name fails as an OSError.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidSchedule(
            f"unknown timezone {name!r} (use an IANA name such as 'Europe/Paris')"
        ) from None


def truncate_to_minute(moment: datetime) -> datetime:
    """The tick a moment belongs to, in UTC."""
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def due_slot(
    schedule: Schedule,
    *,
    tick: datetime,
    grace: timedelta,
    active_from: datetime | None = None,
    active_until: datetime | None = None,
) -> datetime | None:
    """The slot a campaign owes at `tick`, or None when nothing is due."""
    slot = schedule.latest_slot(tick)
    if tick - slot > max(grace, LATE_WAKEUP_TOLERANCE):
        return None
    if not in_active_window(slot, active_from, active_until):
        return None
    return slot


def in_active_window(
    slot: datetime, active_from: datetime | None, active_until: datetime | None
) -> bool:
    if active_from is not None and slot < active_from:
        return False
    return active_until is None or slot < active_until
