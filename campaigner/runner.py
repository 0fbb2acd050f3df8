"""One `execute`: the campaigns due at a tick, each claimed, streamed and recorded.

Campaigns run one after another. A campaign that fails for its own reason is
recorded and the others go on; PostgreSQL or Kafka failing stops the
invocation, since every later campaign would fail the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime

import psycopg

from campaigner import cohort, db, errors, ledger, missed, planning, streaming
from campaigner.campaigns import Campaign, load_campaign, load_campaigns
from campaigner.config import Settings
from campaigner.context import Context, stopping_on_signals
from campaigner.planning import Due
from campaigner.scheduling import truncate_to_minute

logger = logging.getLogger(__name__)

# Failures that every later campaign of this invocation would meet too.
STOPS_THE_INVOCATION = (
    errors.EXIT_CONFIG,
    errors.EXIT_DATABASE,
    errors.EXIT_KAFKA,
    errors.EXIT_INTERRUPTED,
)


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
        stack.enter_context(stopping_on_signals(context))
        with db.translated("loading campaigns"):
            now = context.database_now()
            if campaign_name is None:
                tick = truncate_to_minute(at or now)
                planning.check_not_future(tick, now=now)
                campaigns = load_campaigns(context.control, statuses=("active",))
                dues, invalid = planning.plan(campaigns, tick=tick)
                missed.record(context.control, campaigns, tick=tick)
                dues = drop_past_deadline(dues, now=now)
            else:
                campaign = load_campaign(context.control, campaign_name)
                earlier = (
                    ledger.find_run(context.control, campaign.id, at) if at else None
                )
                if earlier is not None:
                    campaign = ledger.as_started(campaign, earlier)
                dues, invalid = planning.plan_one(
                    campaign, at=at, now=now, force=force, has_run=earlier is not None
                )
            resuming = {(d.campaign.id, d.scheduled_for) for d in dues if d.backfill}
            warn_about_unfinished_runs(context.control, resuming=resuming)
        outcomes = [invalid_outcome(problem) for problem in invalid]
        for index, due in enumerate(dues):
            outcome = fire(context, due)
            outcomes.append(outcome)
            if outcome.exit_code in STOPS_THE_INVOCATION:
                outcomes.extend(skipped(dues[index + 1 :], outcome))
                break
        return outcomes


def drop_past_deadline(dues: list[Due], *, now: datetime) -> list[Due]:
    """The dues whose messages would not arrive expired; the others are warned about.

    Only a tick replayed with --at, or a deadline shorter than the grace, gets here.
    """
    kept = []
    for due in dues:
        if now < due.expires_at:
            kept.append(due)
            continue
        logger.warning(
            "campaign %r: slot %s is past its deadline (%s); not sent",
            due.campaign.name,
            due.scheduled_for.isoformat(),
            due.expires_at.isoformat(),
            extra={"event": "slot_past_deadline", "campaign_id": due.campaign.id},
        )
    return kept


def warn_about_unfinished_runs(
    conn: psycopg.Connection, *, resuming: set[tuple[int, datetime]]
) -> None:
    # TODO: unfinished runs (failed on delivery, interrupted, or left running by
    # a process that died) are not yet resumed automatically by the next execute;
    # operators see this warning at every execute until they resume the run by
    # hand or its deadline passes. Replace it with the automatic takeover once
    # resumable runs land.
    for run in ledger.unfinished_runs(conn):
        if (run.campaign_id, run.scheduled_for) in resuming:
            continue
        state = "lost its process" if run.status == "running" else run.status
        force = "" if run.campaign_status == "active" else " --force"
        logger.warning(
            "campaign %r: run %d (slot %s) %s after user id %s; resume it with"
            " `campaigner execute --campaign %s --at %s%s`",
            run.campaign,
            run.id,
            run.scheduled_for.isoformat(),
            state,
            run.checkpoint,
            run.campaign,
            run.scheduled_for.isoformat(),
            force,
            extra={"event": "run_unfinished", "run_id": run.id},
        )


def invalid_outcome(problem: planning.Invalid) -> Outcome:
    logger.error(
        "%s",
        problem.message,
        extra={"event": "campaign_invalid", "campaign_id": problem.campaign.id},
    )
    return Outcome(
        problem.campaign.name,
        "invalid",
        error=problem.message,
        exit_code=problem.error.exit_code,
    )


def skipped(dues: list[Due], cause: Outcome) -> Iterator[Outcome]:
    for due in dues:
        logger.warning(
            "campaign %r: slot %s not started because of the error above",
            due.campaign.name,
            due.scheduled_for.isoformat(),
            extra={"event": "run_not_started", "campaign_id": due.campaign.id},
        )
        yield Outcome(
            due.campaign.name,
            "not_started",
            scheduled_for=due.scheduled_for,
            error=f"not started: {cause.error}",
            exit_code=cause.exit_code,
        )


def fire(context: Context, due: Due) -> Outcome:
    """Claim the slot, stream the cohort into Kafka and record how it ended."""
    started = time.monotonic()
    try:
        run = claim(context, due)
    except errors.CampaignerError as exc:
        logger.error(
            "%s",
            exc.message,
            extra={"event": "run_not_started", "campaign_id": due.campaign.id},
        )
        return Outcome(
            due.campaign.name,
            "not_started",
            due.scheduled_for,
            error=exc.message,
            exit_code=exc.exit_code,
        )
    if run is None:
        logger.info(
            "campaign %r: slot %s already claimed",
            due.campaign.name,
            due.scheduled_for.isoformat(),
            extra={"event": "slot_already_claimed", "campaign_id": due.campaign.id},
        )
        return Outcome(due.campaign.name, "already_claimed", due.scheduled_for)
    campaign = ledger.as_started(due.campaign, run)
    ending = run_to_the_end(context, campaign, run)
    return close_run(context, campaign, run, ending, started=started)


def claim(context: Context, due: Due) -> ledger.Run | None:
    """Check the campaign, then claim its slot. What can be fixed quickly (a
    missing topic, a typo in a field, the broker being down) is checked before
    the claim, so that the slot still fires once fixed, within its grace. A
    back-fill's campaign is already the one its earlier run started with."""
    context.check_stop("before claiming its slot")
    campaign = due.campaign
    with db.translated("reading the customer table's columns"):
        columns = context.customer_columns()
    cohort.check_campaign(campaign, columns, context.settings)
    context.sink.check_topic(campaign.name, campaign.topic)
    with db.translated("claiming a run"):
        if due.backfill:
            return ledger.claim_backfill(
                context.control, due.campaign, scheduled_for=due.scheduled_for
            )
        if due.manual:
            return ledger.claim_manual(
                context.control, due.campaign, scheduled_for=due.scheduled_for
            )
        return ledger.claim(
            context.control, due.campaign, scheduled_for=due.scheduled_for, manual=False
        )


@dataclasses.dataclass(frozen=True)
class Ending:
    status: str
    error: str | None = None
    retryable: bool = False
    exit_code: int = errors.EXIT_OK


def run_to_the_end(context: Context, campaign: Campaign, run: ledger.Run) -> Ending:
    logger.debug(
        "campaign %r: run %d started for slot %s (attempt %d)",
        campaign.name,
        run.id,
        run.scheduled_for.isoformat(),
        run.attempts,
        extra={"event": "run_started", "campaign_id": campaign.id, "run_id": run.id},
    )
    try:
        refused = streaming.stream(context, campaign, run)
    except errors.DeadlinePassed as exc:
        return Ending("expired", exc.message, exit_code=exc.exit_code)
    except errors.Interrupted as exc:
        return Ending("interrupted", exc.message, True, exc.exit_code)
    except errors.CampaignerError as exc:
        retryable = isinstance(exc, errors.KafkaError | errors.DatabaseError)
        return Ending("failed", exc.message, retryable, exc.exit_code)
    except (Exception, KeyboardInterrupt) as exc:
        # A bug, or a second Ctrl-C: record it on the run so that it does not look
        # alive and can be resumed at its checkpoint, then let the CLI report it.
        interrupted = isinstance(exc, KeyboardInterrupt)
        with contextlib.suppress(psycopg.Error):
            ledger.finish(
                context.control,
                run.id,
                status="interrupted" if interrupted else "failed",
                error="interrupted at once by a second signal"
                if interrupted
                else f"unexpected {type(exc).__name__}: {exc}",
                retryable=True,
            )
        raise
    # Earlier attempts of a resumed run count too.
    refused += run.failed
    if refused:
        message = f"campaign {campaign.name!r}: {refused} recipient(s) refused for good"
        return Ending("completed_with_errors", message, exit_code=errors.EXIT_CAMPAIGN)
    return Ending("succeeded")


def close_run(
    context: Context,
    campaign: Campaign,
    run: ledger.Run,
    ending: Ending,
    *,
    started: float,
) -> Outcome:
    error, exit_code = ending.error, ending.exit_code
    try:
        with db.translated("recording the run's outcome"):
            run = ledger.finish(
                context.control,
                run.id,
                status=ending.status,
                error=error,
                retryable=ending.retryable,
            )
    except errors.DatabaseError as exc:
        error = f"{error or ending.status}; and {exc.message}"
        exit_code = errors.EXIT_DATABASE
    outcome = Outcome(
        campaign.name,
        ending.status,
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
    log_outcome(campaign, outcome)
    return outcome


def log_outcome(campaign: Campaign, outcome: Outcome) -> None:
    facts = (
        f"run {outcome.run_id}, slot {format_slot(outcome)}: {outcome.matched} matched,"
        f" {outcome.produced} produced, {outcome.failed} failed"
        f" in {outcome.duration_s:.1f}s"
    )
    extra = {
        "event": "run_finished",
        "campaign_id": campaign.id,
        "run_id": outcome.run_id,
        "status": outcome.status,
        "matched": outcome.matched,
        "produced": outcome.produced,
        "failed": outcome.failed,
        "duration_s": outcome.duration_s,
    }
    if outcome.error:
        logger.error("%s (%s %s)", outcome.error, outcome.status, facts, extra=extra)
    else:
        logger.info(
            "campaign %r %s (%s)", campaign.name, outcome.status, facts, extra=extra
        )


def format_slot(outcome: Outcome) -> str:
    return outcome.scheduled_for.isoformat() if outcome.scheduled_for else "-"
