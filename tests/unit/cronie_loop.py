"""A minute-by-minute model of cronie's main loop, the arbiter of the
differential test when campaigner and cronsim disagree.

It follows cronie's cron.c: every real minute, the local minute `timeRunning`
is compared with the `virtualTime` cron has caught up to; a jump forward of up
to three hours runs the wildcard jobs once and the fixed-time jobs of every
skipped minute, a jump backwards runs only the wildcard jobs until virtual time
catches up, and a normal minute runs everything that matches. Fields are read
by cronsim's parser (not campaigner's), and days are matched with cronie's
DOM_STAR/DOW_STAR rule. Slow, and only meant for short windows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim.cronsim import Field

EPOCH = datetime(1970, 1, 1)
LARGE_JUMP_MINUTES = 3 * 60  # cronie: "time has changed a *lot*"
SMALL_JUMP_MINUTES = 5


class CronieJob:
    def __init__(self, expression: str) -> None:
        parts = expression.upper().split()
        self.minutes = Field.MINUTE.parse(parts[0])
        self.hours = Field.HOUR.parse(parts[1])
        self.days = Field.DAY.parse(parts[2])
        self.months = Field.MONTH.parse(parts[3])
        self.weekdays = {day % 7 for day in Field.DOW.parse(parts[4])}  # type: ignore[operator]
        self.days_and = parts[2].startswith("*") or parts[4].startswith("*")
        self.wildcard = parts[0].startswith("*") or parts[1].startswith("*")

    def matches(self, local_minute: int) -> bool:
        wall = EPOCH + timedelta(minutes=local_minute)
        if not (
            wall.minute in self.minutes
            and wall.hour in self.hours
            and wall.month in self.months
        ):
            return False
        weekday = wall.isoweekday() % 7
        if self.days_and:
            return wall.day in self.days and weekday in self.weekdays
        return wall.day in self.days or weekday in self.weekdays


def local_minute(moment: datetime, zone: ZoneInfo) -> int:
    wall = moment.astimezone(zone).replace(tzinfo=None)
    return int((wall - EPOCH).total_seconds()) // 60


def cronie_fires(
    expression: str, timezone: str, start: datetime, end: datetime
) -> list[datetime]:
    """The real minutes in (start, end] at which cronie, running in `timezone`
    since `start`, starts the job."""
    job, zone = CronieJob(expression), ZoneInfo(timezone)
    moment = start.astimezone(UTC).replace(second=0, microsecond=0)
    virtual = local_minute(moment, zone)
    fires = []
    while moment < end:
        moment += timedelta(minutes=1)
        running = local_minute(moment, zone)
        if runs_at(job, running=running, virtual=virtual):
            fires.append(moment)
        virtual = next_virtual(running=running, virtual=virtual)
    return fires


def runs_at(job: CronieJob, *, running: int, virtual: int) -> bool:
    difference = running - virtual
    if difference == 1 or abs(difference) > LARGE_JUMP_MINUTES:
        return job.matches(running)
    if difference <= 0:  # the clock went back: wildcard jobs only
        return job.wildcard and job.matches(running)
    # The clock jumped forward: wildcard jobs for this minute, fixed-time jobs
    # for every minute skipped up to this one (small jumps alike).
    if job.wildcard:
        return job.matches(running)
    return any(job.matches(minute) for minute in range(virtual + 1, running + 1))


def next_virtual(*, running: int, virtual: int) -> int:
    difference = running - virtual
    if difference <= 0 and abs(difference) <= LARGE_JUMP_MINUTES:
        return virtual  # virtual time waits until the clock catches up
    return running
