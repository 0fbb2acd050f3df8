"""One `execute`: the campaigns due at a tick, each claimed, streamed and recorded.

Campaigns run one after another. A campaign that fails for its own reason is
recorded and the others go on; PostgreSQL or Kafka failing stops the
invocation, since every later campaign would fail the same way.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime

import psycopg

from campaigner import cohort, db, errors, ledger
from campaigner.campaigns import Campaign, load_campaign, load_campaigns
from campaigner.config import Settings
from campaigner.envelope import EnvelopeTemplate
from campaigner.kafka_sink import KafkaSink
from campaigner.scheduling import Schedule, due_slot, truncate_to_minute

logger = logging.getLogger(__name__)

# Failures that every later campaign of this invocation would meet too.
STOPS_THE_INVOCATION = (errors.EXIT_CONFIG, errors.EXIT_DATABASE, errors.EXIT_KAFKA)
# Reading starts below every possible key of a bigint column.
FIRST_KEY = -(2**63)


@dataclasses.dataclass(frozen=True)
class Due:
    """A slot a campaign owes now."""

    campaign: Campaign
    scheduled_for: datetime
    manual: bool = False


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of one campaign at this tick."""

    campaign: str
    status: str
    scheduled_for: datetime | None = None
    run_id: int | None = None
    manual: bool = False
    matched: int = 0
    produced: int = 0
    failed: int = 0
    duration_s: float = 0.0
    error: str | None = None
    exit_code: int = errors.EXIT_OK


class Context:
    """Connections shared by the runs of one invocation, opened when first needed."""

    def __init__(self, settings: Settings, stack: ExitStack) -> None:
        self.settings = settings
        self.stack = stack
        self.control = stack.enter_context(db.connect(settings, purpose="control"))
        self._reader: psycopg.Connection | None = None
        self._sink: KafkaSink | None = None

    @property
    def reader(self) -> psycopg.Connection:
        if self._reader is None:
            self._reader = self.stack.enter_context(
                db.connect(self.settings, purpose="cohort", autocommit=False)
            )
            self._reader.read_only = True
        return self._reader

    @property
    def sink(self) -> KafkaSink:
        if self._sink is None:
            sink = KafkaSink(self.settings)
            sink.connect()
            self._sink = sink
            self.stack.callback(sink.close)
        return self._sink

    def database_now(self) -> datetime:
        with db.translated("reading the clock"):
            row = self.control.execute("SELECT now()").fetchone()
        assert row is not None
        return row[0].astimezone(UTC)  # type: ignore[no-any-return]


def execute(
    settings: Settings,
    *,
    at: datetime | None = None,
    campaign_name: str | None = None,
    force: bool = False,
) -> list[Outcome]:
    """Fire every slot due at the tick (or one campaign now) and return the outcomes."""
    with ExitStack() as stack:
        context = Context(settings, stack)
        with db.translated("loading campaigns"):
            if campaign_name is None:
                tick = truncate_to_minute(at or context.database_now())
                campaigns = load_campaigns(context.control, statuses=("active",))
                dues, outcomes = plan(campaigns, tick=tick)
            else:
                campaign = load_campaign(context.control, campaign_name)
                dues, outcomes = plan_one(
                    campaign, at=at, now=context.database_now(), force=force
                )
            warn_about_stranded_runs(context.control)
        for due in dues:
            outcome = fire(context, due)
            outcomes.append(outcome)
            if outcome.exit_code in STOPS_THE_INVOCATION:
                outcomes.extend(skipped(dues[dues.index(due) + 1 :], outcome))
                break
        return outcomes


def warn_about_stranded_runs(conn: psycopg.Connection) -> None:
    # TODO: runs whose process died (crash, kill, lost connection) are not yet
    # taken over and resumed from their checkpoint; operators see this warning
    # at every execute until they re-run the campaign by hand. Replace it with
    # the takeover once resumable runs land.
    for run in ledger.stranded_runs(conn):
        logger.warning(
            "campaign %r: run %d (slot %s) was left running by a process that is"
            " gone; it stopped after user id %s and is not resumed automatically yet",
            run.campaign,
            run.id,
            run.scheduled_for.isoformat(),
            run.checkpoint,
            extra={"event": "run_stranded", "run_id": run.id},
        )


def plan(
    campaigns: list[Campaign], *, tick: datetime
) -> tuple[list[Due], list[Outcome]]:
    """The slots due at `tick`, and the campaigns whose schedule cannot be evaluated."""
    dues: list[Due] = []
    invalid: list[Outcome] = []
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
            invalid.append(report_invalid(campaign, exc))
            continue
        if slot is not None:
            dues.append(Due(campaign, slot))
    return dues, invalid


def plan_one(
    campaign: Campaign, *, at: datetime | None, now: datetime, force: bool
) -> tuple[list[Due], list[Outcome]]:
    """A manual run now, or the back-fill of the scheduled slot `at`."""
    if campaign.status != "active" and not force:
        raise errors.CampaignFailed(
            f"campaign {campaign.name!r} is {campaign.status}; add --force to run it anyway"
        )
    if at is None:
        return [Due(campaign, now, manual=True)], []
    try:
        schedule = Schedule.parse(campaign.schedule, campaign.timezone)
    except errors.InvalidSchedule as exc:
        return [], [report_invalid(campaign, exc)]
    if schedule.latest_slot(at) != at:
        raise errors.CampaignFailed(
            f"campaign {campaign.name!r}: {at.isoformat()} is not one of its slots"
            f" (next after it: {schedule.next_slots(after=at, count=1)[0].isoformat()})"
        )
    return [Due(campaign, at, manual=True)], []


def report_invalid(campaign: Campaign, exc: errors.CampaignerError) -> Outcome:
    message = f"campaign {campaign.name!r}: {exc.message}"
    logger.error(
        message, extra={"event": "campaign_invalid", "campaign_id": campaign.id}
    )
    return Outcome(campaign.name, "invalid", error=message, exit_code=exc.exit_code)


def skipped(dues: list[Due], cause: Outcome) -> Iterator[Outcome]:
    for due in dues:
        yield Outcome(
            due.campaign.name,
            "not_started",
            scheduled_for=due.scheduled_for,
            error=f"not started: {cause.error}",
            exit_code=cause.exit_code,
        )


def fire(context: Context, due: Due) -> Outcome:
    """Claim the slot, stream the cohort into Kafka and record how it ended."""
    campaign = due.campaign
    started = time.monotonic()
    try:
        sink = context.sink  # reaching Kafka comes before claiming anything
        with db.translated("claiming a run"):
            run = ledger.claim(
                context.control,
                campaign,
                scheduled_for=due.scheduled_for,
                manual=due.manual,
            )
    except errors.CampaignerError as exc:
        logger.error(
            "%s",
            exc.message,
            extra={"event": "run_not_started", "campaign_id": campaign.id},
        )
        return Outcome(
            campaign.name,
            "not_started",
            due.scheduled_for,
            error=exc.message,
            exit_code=exc.exit_code,
        )
    if run is None:
        logger.info(
            "campaign %r: slot %s already claimed",
            campaign.name,
            due.scheduled_for.isoformat(),
            extra={"event": "slot_already_claimed", "campaign_id": campaign.id},
        )
        return Outcome(campaign.name, "already_claimed", due.scheduled_for)

    logger.info(
        "campaign %r: run %d started for slot %s",
        campaign.name,
        run.id,
        due.scheduled_for.isoformat(),
        extra={"event": "run_started", "campaign_id": campaign.id, "run_id": run.id},
    )
    status, error, exit_code, retryable = "succeeded", None, errors.EXIT_OK, False
    try:
        refused = stream(context, sink, campaign, run)
        if refused:
            status, exit_code = "completed_with_errors", errors.EXIT_CAMPAIGN
            error = f"campaign {campaign.name!r}: {refused} recipient(s) refused by the broker"
    except errors.CampaignerError as exc:
        status, error, exit_code = "failed", exc.message, exc.exit_code
        retryable = isinstance(
            exc, errors.KafkaError | errors.DatabaseError | errors.MissingTopic
        )
    except Exception as exc:
        # A bug: record it on the run so it does not stay "running", then let the
        # CLI report it with its traceback.
        close_run(
            context,
            campaign,
            run,
            status="failed",
            error=f"campaign {campaign.name!r}: unexpected {type(exc).__name__}: {exc}",
            retryable=False,
            exit_code=errors.EXIT_BUG,
            started=started,
        )
        raise
    return close_run(
        context,
        campaign,
        run,
        status=status,
        error=error,
        retryable=retryable,
        exit_code=exit_code,
        started=started,
    )


def close_run(
    context: Context,
    campaign: Campaign,
    run: ledger.Run,
    *,
    status: str,
    error: str | None,
    retryable: bool,
    exit_code: int,
    started: float,
) -> Outcome:
    try:
        with db.translated("recording the run's outcome"):
            run = ledger.finish(
                context.control, run.id, status=status, error=error, retryable=retryable
            )
    except errors.DatabaseError as exc:
        error, exit_code = f"{error or status}; and {exc.message}", errors.EXIT_DATABASE
    outcome = Outcome(
        campaign.name,
        status,
        run.scheduled_for,
        run_id=run.id,
        manual=run.manual,
        matched=run.matched,
        produced=run.produced,
        failed=run.failed,
        duration_s=round(time.monotonic() - started, 3),
        error=error,
        exit_code=exit_code,
    )
    facts = (
        f"run {run.id}, slot {run.scheduled_for.isoformat()}: {run.matched} matched,"
        f" {run.produced} produced, {run.failed} failed in {outcome.duration_s:.1f}s"
    )
    extra = {
        "event": "run_finished",
        "campaign_id": campaign.id,
        "run_id": run.id,
        "status": status,
        "matched": run.matched,
        "produced": run.produced,
        "failed": run.failed,
        "duration_s": outcome.duration_s,
    }
    if error:
        logger.error("%s (%s %s)", error, status, facts, extra=extra)
    else:
        logger.info("campaign %r %s (%s)", campaign.name, status, facts, extra=extra)
    return outcome


def stream(
    context: Context, sink: KafkaSink, campaign: Campaign, run: ledger.Run
) -> int:
    """Produce one message per cohort row, batch by batch, each confirmed before the
    checkpoint moves past it. Returns how many recipients were refused for good."""
    cohort.check_cohort_shape(campaign.name, campaign.cohort)
    cohort.check_fields(campaign.name, campaign.message_fields)
    sink.check_topic(campaign.name, campaign.topic)
    template = EnvelopeTemplate(
        campaign_id=campaign.id,
        campaign_name=campaign.name,
        channel=campaign.channel,
        template=campaign.template,
        run_id=run.id,
        scheduled_for=run.scheduled_for,
        manual=run.manual,
        expires_at=run.scheduled_for + campaign.deadline,
        fields=campaign.message_fields,
    )
    refused = 0
    batches = cohort.read_batches(
        context.reader,
        context.settings,
        campaign_name=campaign.name,
        cohort=campaign.cohort,
        fields=campaign.message_fields,
        after=FIRST_KEY if run.checkpoint is None else run.checkpoint,
        batch_size=campaign.batch_size,
    )
    for batch_no, rows in enumerate(batches, start=1):
        flight = sink.send(
            campaign.topic, template.render(rows, produced_at=datetime.now(UTC))
        )
        sink.wait(flight, campaign_name=campaign.name, topic=campaign.topic)
        with db.translated("saving the checkpoint"):
            ledger.record_progress(
                context.control,
                run.id,
                checkpoint=rows[-1][0],
                matched=len(rows),
                produced=flight.confirmed,
                refused=flight.refused,
            )
        refused += len(flight.refused)
        logger.debug(
            "campaign %r: batch %d confirmed (%d rows)",
            campaign.name,
            batch_no,
            len(rows),
            extra={
                "event": "batch_confirmed",
                "run_id": run.id,
                "batch_no": batch_no,
                "rows": len(rows),
            },
        )
    return refused
