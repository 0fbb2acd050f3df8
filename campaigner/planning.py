"""Which slots an `execute` owes: the campaigns due at a tick, or the one slot
an operator asked for. Pure logic over campaign values and instants."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from campaigner import errors
from campaigner.campaigns import Campaign
from campaigner.scheduling import (
    LATE_WAKEUP_TOLERANCE,
    Schedule,
    due_slot,
    in_active_window,
    truncate_to_minute,
)

# How far back an execute looks for slots nobody claimed, to record them as
# missed: bounds the rows one execute writes after a long outage (a minute
# schedule: 1,440) while covering a night or a weekend day without execute.
MISSED_LOOKBACK = timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class Due:
    """A slot a campaign owes now."""

    campaign: Campaign
    scheduled_for: datetime
    manual: bool = False
    # Asked for with --campaign --at: may take over an unfinished run of the slot.
    backfill: bool = False

    @property
    def expires_at(self) -> datetime:
        return expires_at(self.campaign, self.scheduled_for)


def expires_at(campaign: Campaign, slot: datetime) -> datetime:
    """When a slot's messages expire: the campaign may not produce them after it."""
    return slot + campaign.deadline


@dataclasses.dataclass(frozen=True)
class Invalid:
    """A campaign whose schedule cannot be evaluated, and why."""

    campaign: Campaign
    error: errors.CampaignerError

    @property
    def message(self) -> str:
        return f"campaign {self.campaign.name!r}: {self.error.message}"


def check_not_future(tick: datetime, *, now: datetime) -> None:
    if tick > truncate_to_minute(now):
        raise errors.UsageError(
            f"--at {tick.isoformat()} is in the future (the database's clock reads"
            f" {now.isoformat(timespec='seconds')}): executing it would claim slots"
            " before their time; use dry-run to preview a future tick"
        )


def plan(
    campaigns: list[Campaign], *, tick: datetime
) -> tuple[list[Due], list[Invalid]]:
    """The slots due at `tick`, and the campaigns whose schedule cannot be evaluated."""
    dues: list[Due] = []
    invalid: list[Invalid] = []
    for campaign in campaigns:
        try:
            schedule = Schedule.parse(campaign.schedule, campaign.timezone)
            slot = due_slot(
                schedule,
                tick=tick,
                grace=campaign.grace,
                active_from=campaign.active_from,
                active_until=campaign.active_until,
            )
        except errors.InvalidSchedule as exc:
            invalid.append(Invalid(campaign, exc))
            continue
        if slot is not None:
            dues.append(Due(campaign, slot))
    return dues, invalid


def missed_slots(
    campaign: Campaign, schedule: Schedule, *, tick: datetime, since: datetime
) -> list[datetime]:
    """The campaign's slots after `since` (and within the look-back) that are past
    their grace at `tick`: nobody claimed them and nobody will. Only the latest
    slot within the grace fires; older ones are recorded, never replayed."""
    cutoff = tick - max(campaign.grace, LATE_WAKEUP_TOLERANCE)
    start = max(since, tick - MISSED_LOOKBACK)
    return [
        slot
        for slot in schedule.slots_between(start, cutoff)
        if slot < cutoff
        and in_active_window(slot, campaign.active_from, campaign.active_until)
    ]


def plan_one(
    campaign: Campaign,
    *,
    at: datetime | None,
    now: datetime,
    force: bool,
    has_run: bool = False,
) -> tuple[list[Due], list[Invalid]]:
    """A manual run now, or the back-fill of the slot `at`: one of the schedule's,
    or any instant that already has a run (a manual run to resume, say)."""
    if campaign.status != "active" and not force:
        raise errors.UsageError(
            f"campaign {campaign.name!r} is {campaign.status};"
            " add --force to run it anyway"
        )
    if at is None:
        return [Due(campaign, now, manual=True)], []
    if not has_run:
        check_is_slot(campaign, at)
    if at > now:
        raise errors.UsageError(
            f"campaign {campaign.name!r}: slot {at.isoformat()} has not come yet"
        )
    if now >= expires_at(campaign, at):
        raise errors.UsageError(
            f"campaign {campaign.name!r}: slot {at.isoformat()} is past its deadline"
            f" ({expires_at(campaign, at).isoformat()}); its messages would arrive"
            " expired"
        )
    return [Due(campaign, at, backfill=True)], []


def check_is_slot(campaign: Campaign, at: datetime) -> None:
    try:
        schedule = Schedule.parse(campaign.schedule, campaign.timezone)
    except errors.InvalidSchedule as exc:
        raise errors.CampaignFailed(
            f"campaign {campaign.name!r}: {exc.message}"
        ) from None
    if schedule.latest_slot(at) != at:
        following = schedule.next_slots(after=at, count=1)[0]
        raise errors.UsageError(
            f"campaign {campaign.name!r}: {at.isoformat()} is not one of its slots"
            f" (the next one after it is {following.isoformat()})"
        )
