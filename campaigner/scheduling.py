"""Pure schedule evaluation: which slot, if any, a campaign owes at a tick.

croniter computes candidate times in the campaign's own timezone; slots are
identified by their UTC instant. Nothing here reads the clock.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

from campaigner.errors import InvalidSchedule

ALIASES = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
# A cron daemon can wake a little after the minute it serves (load, clock skew):
# the slot of the minute before the tick still counts, whatever the grace.
LATE_WAKEUP_TOLERANCE = timedelta(minutes=1)


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A validated cron expression evaluated in an IANA timezone."""

    expression: str
    timezone: ZoneInfo

    @classmethod
    def parse(cls, expression: str, timezone: str) -> Schedule:
        """Validate both parts, or raise InvalidSchedule saying what is wrong."""
        zone = parse_timezone(timezone)
        text = " ".join(expression.split())
        check_expression(text)
        schedule = cls(text, zone)
        # An expression such as "0 0 30 2 *" parses but never fires.
        schedule.next_slots(after=datetime(2000, 1, 1, tzinfo=UTC), count=1)
        return schedule

    def latest_slot(self, at: datetime) -> datetime:
        """The UTC instant of the latest slot at or before `at`."""
        # Slots fall on whole minutes; croniter's get_prev excludes its start.
        after_minute = truncate_to_minute(at) + timedelta(minutes=1)
        return self.walk(
            after_minute.astimezone(self.timezone), backwards=True, count=1
        )[0]

    def next_slots(self, *, after: datetime, count: int) -> list[datetime]:
        """The next `count` slots strictly after `after`, as UTC instants."""
        return self.walk(after.astimezone(self.timezone), backwards=False, count=count)

    def walk(self, start: datetime, *, backwards: bool, count: int) -> list[datetime]:
        try:
            iterator = croniter(self.expression, start)
            step = iterator.get_prev if backwards else iterator.get_next
            return [step(datetime).astimezone(UTC) for _ in range(count)]
        except CroniterBadDateError:
            raise InvalidSchedule(
                f"schedule {self.expression!r} never fires (no such date)"
            ) from None
        except (CroniterError, ValueError, KeyError) as exc:
            raise InvalidSchedule(
                f"schedule {self.expression!r} cannot be evaluated: {exc}"
            ) from exc


def parse_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    # A directory ("Europe") or an overlong name fails as an OSError.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidSchedule(
            f"unknown timezone {name!r} (use an IANA name such as 'Europe/Paris')"
        ) from None


def check_expression(text: str) -> None:
    # TODO: cronie's full rules (rejecting ?, #, W, reversed ranges, step 0,
    # daylight-saving handling of fixed-time slots) are not enforced yet: croniter
    # accepts some expressions system cron refuses. Remove once the strict
    # validator lands.
    if text.startswith("@"):
        if text not in ALIASES:
            raise InvalidSchedule(f"unknown schedule alias {text!r}")
        return
    fields = text.split(" ")
    if len(fields) != 5:
        raise InvalidSchedule(
            f"schedule {text!r} has {len(fields)} fields; cron expressions have exactly 5"
            " (minute hour day-of-month month day-of-week)"
        )
    if not croniter.is_valid(text):
        raise InvalidSchedule(f"schedule {text!r} is not a valid cron expression")


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
    if active_from is not None and slot < active_from:
        return None
    if active_until is not None and slot >= active_until:
        return None
    return slot
