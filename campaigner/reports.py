"""Read-only views for operators: what `execute` would do (dry-run) and the campaign list."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import psycopg

from campaigner import cohort, crontab, db, errors, ledger
from campaigner.campaigns import Campaign, load_campaigns
from campaigner.config import Settings
from campaigner.planning import Due, plan
from campaigner.scheduling import Schedule, truncate_to_minute

NEXT_FIRES_SHOWN = 3


@dataclasses.dataclass(frozen=True)
class Preview:
    """What `execute` would do for one campaign at a tick."""

    campaign: str
    state: str  # due, already_claimed, past_deadline, invalid
    scheduled_for: datetime | None = None
    cohort_size: int | None = None
    error: str | None = None
    # The planner's estimate for reading the whole cohort once (EXPLAIN).
    estimate: cohort.Estimate | None = None


def dry_run(
    settings: Settings, *, at: datetime | None = None
) -> tuple[datetime, list[Preview]]:
    """The tick and, for each campaign due at it or invalid, what would happen.

    Runs in a READ ONLY session: nothing is claimed, written or produced.
    """
    with db.connect(settings, purpose="dry-run", autocommit=False) as conn:
        conn.read_only = True
        with db.translated("loading campaigns"):
            now = db.database_now(conn)
            tick = truncate_to_minute(at or now)
            campaigns = load_campaigns(conn, statuses=("active",))
            columns = cohort.customer_columns(conn, settings) if campaigns else {}
            conn.commit()
        dues, invalid = plan(campaigns, tick=tick)
        previews = [
            Preview(i.campaign.name, "invalid", error=i.message) for i in invalid
        ]
        for due in dues:
            if now >= due.expires_at:
                previews.append(
                    Preview(due.campaign.name, "past_deadline", due.scheduled_for)
                )
                continue
            previews.append(preview_due(conn, settings, due, columns))
    return tick, previews


def preview_due(
    conn: psycopg.Connection, settings: Settings, due: Due, columns: dict[str, str]
) -> Preview:
    campaign, slot = due.campaign, due.scheduled_for
    with db.translated("checking the run ledger"):
        claimed = ledger.find_run(conn, campaign.id, slot) is not None
        conn.commit()
    if claimed:
        return Preview(campaign.name, "already_claimed", slot)
    estimate = None
    try:
        cohort.check_campaign(campaign, columns, settings)
        estimate = cohort.estimate(
            conn, settings, campaign_name=campaign.name, cohort=campaign.cohort
        )
        cohort.check_cost(campaign.name, estimate, settings)
        size = cohort.count(
            conn, settings, campaign_name=campaign.name, cohort=campaign.cohort
        )
    except errors.CampaignFailed as exc:
        return Preview(
            campaign.name, "invalid", slot, error=exc.message, estimate=estimate
        )
    return Preview(campaign.name, "due", slot, cohort_size=size, estimate=estimate)


@dataclasses.dataclass(frozen=True)
class Listing:
    """One campaign as `list` shows it."""

    name: str
    status: str
    schedule: str
    timezone: str
    channel: str
    topic: str
    next_fires: list[datetime]
    last_run: ledger.LastRun | None
    error: str | None = None
    # The schedule in words, with cron's rules for days applied.
    description: str | None = None


def list_campaigns(settings: Settings, *, now: datetime | None = None) -> list[Listing]:
    """Every campaign but the archived ones, with its next fire times and last run."""
    with (
        db.connect(settings, purpose="list") as conn,
        db.translated("listing campaigns"),
    ):
        moment = now or db.database_now(conn)
        campaigns = load_campaigns(conn, statuses=("active", "paused"))
        last = ledger.last_runs(conn)
    return [describe(campaign, moment, last.get(campaign.id)) for campaign in campaigns]


def describe(
    campaign: Campaign, now: datetime, last_run: ledger.LastRun | None
) -> Listing:
    next_fires: list[datetime] = []
    error = description = None
    try:
        schedule = Schedule.parse(campaign.schedule, campaign.timezone)
        description = crontab.describe(schedule.cron)
        next_fires = [
            moment.astimezone(schedule.timezone)
            for moment in schedule.next_slots(after=now, count=NEXT_FIRES_SHOWN)
        ]
        cohort.check_cohort_shape(campaign.name, campaign.cohort)
    except errors.CampaignFailed as exc:
        error = exc.message
    return Listing(
        name=campaign.name,
        status=campaign.status,
        schedule=campaign.schedule,
        timezone=campaign.timezone,
        channel=campaign.channel,
        topic=campaign.topic,
        next_fires=next_fires,
        last_run=last_run,
        error=error,
        description=description,
    )
