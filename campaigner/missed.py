"""Slots nobody claimed within their grace: recorded as missed, never replayed.

An `execute` fires at most each campaign's latest slot within its grace; the
older ones it finds unclaimed (after the campaign was created, within a
bounded look-back) get a `missed` run row, so that `runs` and `list` show
them and an operator can back-fill one on purpose with `execute --at`.
"""

from __future__ import annotations

import logging
from datetime import datetime

import psycopg

from campaigner import errors, ledger, planning
from campaigner.campaigns import Campaign
from campaigner.scheduling import LATE_WAKEUP_TOLERANCE, Schedule

logger = logging.getLogger(__name__)


def record(
    conn: psycopg.Connection, campaigns: list[Campaign], *, tick: datetime
) -> dict[int, list[datetime]]:
    """Record the missed slots of `campaigns` at `tick`; the slots recorded, by
    campaign id. Campaigns whose schedule is invalid are left to the planner,
    which reports them."""
    if not campaigns:
        return {}
    bounds = ledger.missed_slot_bounds(
        conn,
        [campaign.id for campaign in campaigns],
        tick=tick,
        tolerance=LATE_WAKEUP_TOLERANCE,
    )
    recorded: dict[int, list[datetime]] = {}
    for campaign in campaigns:
        try:
            schedule = Schedule.parse(campaign.schedule, campaign.timezone)
        except errors.InvalidSchedule:
            continue
        slots = planning.missed_slots(
            campaign, schedule, tick=tick, since=bounds[campaign.id]
        )
        if slots:
            recorded[campaign.id] = ledger.record_missed(conn, campaign.id, slots)
            warn(campaign, recorded[campaign.id])
    return recorded


def warn(campaign: Campaign, slots: list[datetime]) -> None:
    if not slots:
        return
    logger.warning(
        "campaign %r: %d slot(s) missed, the latest %s: no execute claimed them"
        " within their grace; recorded as missed, not sent (back-fill one with"
        " `campaigner execute --campaign %s --at SLOT`)",
        campaign.name,
        len(slots),
        slots[-1].isoformat(),
        campaign.name,
        extra={
            "event": "slots_missed",
            "campaign_id": campaign.id,
            "slots": len(slots),
            "scheduled_for": slots[-1].isoformat(),
        },
    )
