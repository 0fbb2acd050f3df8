"""One `execute`: the campaigns due at a tick, each claimed, streamed and recorded,
after the runs an earlier execute left unfinished are resumed (or expired).

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

from campaigner import cohort, db, errors, ledger, missed, planning, shards, streaming
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


# What an execute does: fire a due slot, or resume (or expire) an unfinished run.
Work = Due | ledger.UnfinishedRun


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of one campaign at this tick."""

    campaign: str
    status: str
    scheduled_for: datetime | None = None
    run_id: int | None = None
    manual: bool = False
    # None: unknown (PostgreSQL failed before the run's counts could be read
    # back; its row keeps the last progress recorded).
    matched: int | None = 0
    produced: int | None = 0
    failed: int | None = 0
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
    """Fire every slot due at the tick (or one campaign now) and return the outcomes.

    Without a campaign name (the cron form), runs that an earlier invocation left
    unfinished are first resumed at their checkpoint, or expired past their
    deadline; their slots are not claimed again.
    """
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
                unfinished = ledger.unfinished_runs(context.control)
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
                campaigns, unfinished = [], []
        outcomes = [invalid_outcome(problem) for problem in invalid]
        work: list[Work] = [
            *to_resume(unfinished, campaigns),
            *unclaimed(dues, unfinished),
        ]
        for index, item in enumerate(work):
            outcome = do(context, item, campaigns)
            if outcome is None:
                continue
            outcomes.append(outcome)
            if outcome.exit_code in STOPS_THE_INVOCATION:
                rest = still_owed(context, work[index + 1 :])
                outcomes.extend(skipped(rest, outcome))
                break
        return outcomes


def do(context: Context, item: Work, campaigns: list[Campaign]) -> Outcome | None:
    if isinstance(item, Due):
        return fire(context, item)
    if item.expired:
        return expire(context, item)
    [campaign] = [c for c in campaigns if c.id == item.run.campaign_id]
    return resume(context, campaign, item)


def to_resume(
    unfinished: list[ledger.UnfinishedRun], campaigns: list[Campaign]
) -> list[ledger.UnfinishedRun]:
    """The unfinished runs to resume (those of active campaigns) or to expire."""
    active = {campaign.id for campaign in campaigns}
    kept = []
    for stranded in unfinished:
        if stranded.expired or stranded.run.campaign_id in active:
            kept.append(stranded)
            continue
        logger.info(
            "campaign %r is %s: its run %d (slot %s) resumes when it is active again",
            stranded.campaign_name,
            stranded.campaign_status,
            stranded.run.id,
            stranded.run.scheduled_for.isoformat(),
            extra={"event": "run_waiting", "run_id": stranded.run.id},
        )
    return kept


def unclaimed(dues: list[Due], unfinished: list[ledger.UnfinishedRun]) -> list[Due]:
    """The dues whose slot has no unfinished run: those are resumed instead."""
    taken = {(u.run.campaign_id, u.run.scheduled_for) for u in unfinished}
    return [due for due in dues if (due.campaign.id, due.scheduled_for) not in taken]


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


def still_owed(context: Context, work: list[Work]) -> list[Work]:
    """The work that stopping now leaves undone: a due slot that already has a
    run (claimed at an earlier tick, perhaps finished long ago) is not, so it is
    not warned about. If the ledger cannot tell (PostgreSQL is what failed), all
    of it is kept."""
    try:
        with db.translated("looking up the slots not started"):
            return [item for item in work if not already_claimed(context, item)]
    except (errors.CampaignerError, psycopg.Error):
        return work


def already_claimed(context: Context, item: Work) -> bool:
    if not isinstance(item, Due):
        return False
    run = ledger.find_run(context.control, item.campaign.id, item.scheduled_for)
    return run is not None


def skipped(work: list[Work], cause: Outcome) -> Iterator[Outcome]:
    for item in work:
        name, slot, campaign_id = describe(item)
        logger.warning(
            "campaign %r: slot %s not started because of the error above",
            name,
            slot.isoformat(),
            extra={"event": "run_not_started", "campaign_id": campaign_id},
        )
        yield Outcome(
            name,
            "not_started",
            scheduled_for=slot,
            error=f"not started: {cause.error}",
            exit_code=cause.exit_code,
        )


def describe(item: Work) -> tuple[str, datetime, int]:
    """Campaign name, slot and campaign id of a piece of work."""
    if isinstance(item, Due):
        return item.campaign.name, item.scheduled_for, item.campaign.id
    return item.campaign_name, item.run.scheduled_for, item.run.campaign_id


def not_started(name: str, slot: datetime, exc: errors.CampaignerError) -> Outcome:
    logger.error("%s", exc.message, extra={"event": "run_not_started"})
    return Outcome(
        name, "not_started", slot, error=exc.message, exit_code=exc.exit_code
    )


def fire(context: Context, due: Due) -> Outcome:
    """Claim the slot, stream the cohort into Kafka and record how it ended."""
    started = time.monotonic()
    try:
        run, sharded = claim(context, due)
        # Another process claimed it: a sharded run can be joined.
        sharded_run = None if run is not None else find_sharded(context, due)
    except errors.CampaignerError as exc:
        return not_started(due.campaign.name, due.scheduled_for, exc)
    if sharded_run is not None:
        campaign = ledger.as_started(due.campaign, sharded_run)
        outcome = join(context, campaign, sharded_run, started=started)
        if outcome is not None:
            return outcome
        if due.backfill:
            return not_started(
                due.campaign.name, due.scheduled_for, not_joined(due, sharded_run)
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
    if sharded:
        return work_on_shards(context, campaign, run, started=started)
    ending = run_to_the_end(context, campaign, run)
    return close_run(context, campaign, run, ending, started=started)


def not_joined(due: Due, run: ledger.Run) -> errors.UsageError:
    """Why a back-fill of a sharded run's slot has nothing to do."""
    slot = due.scheduled_for.isoformat()
    if run.status in ledger.DONE_STATUSES:
        return errors.UsageError(
            f"campaign {due.campaign.name!r}: slot {slot} already ran (run {run.id},"
            f" {run.status}); it is never sent twice"
        )
    return errors.UsageError(
        f"campaign {due.campaign.name!r}: slot {slot} is being run right now (run"
        f" {run.id}): its other shards are all in live processes"
    )


def find_sharded(context: Context, due: Due) -> ledger.Run | None:
    with db.translated("reading a run"):
        run = ledger.find_run(context.control, due.campaign.id, due.scheduled_for)
        if run is None or not shards.is_sharded(context.control, run.id):
            return None
    return run


def resume(
    context: Context, campaign: Campaign, stranded: ledger.UnfinishedRun
) -> Outcome | None:
    """Take over a run whose worker is gone and resume it at its checkpoint; None
    when its worker turns out to be alive (it holds the run's lock)."""
    started = time.monotonic()
    campaign = ledger.as_started(campaign, stranded.run)
    try:
        context.check_stop("before resuming its run")
        check_campaign(context, campaign)
        with db.translated("taking over a run"):
            sharded = shards.is_sharded(context.control, stranded.run.id)
            run = (
                None
                if sharded
                else ledger.take_over_abandoned(context.control, stranded.run.id)
            )
    except errors.CampaignerError as exc:
        return not_started(campaign.name, stranded.run.scheduled_for, exc)
    if sharded:
        return join(context, campaign, stranded.run, started=started)
    if run is None:
        logger.info(
            "campaign %r: run %d is alive in another process",
            campaign.name,
            stranded.run.id,
            extra={"event": "run_alive", "run_id": stranded.run.id},
        )
        return None
    # A worker that died is news for the operator; a retry is routine.
    level = logging.WARNING if stranded.run.status == "running" else logging.INFO
    logger.log(
        level,
        "campaign %r: resuming run %d (slot %s, %s) after user id %s, attempt %d",
        campaign.name,
        run.id,
        run.scheduled_for.isoformat(),
        "its worker died" if stranded.run.status == "running" else stranded.run.status,
        run.checkpoint,
        run.attempts,
        extra={
            "event": "run_resumed",
            "campaign": campaign.name,
            "campaign_id": campaign.id,
            "run_id": run.id,
            "slot": run.scheduled_for.isoformat(),
            "attempt": run.attempts,
            "checkpoint": run.checkpoint,
        },
    )
    ending = run_to_the_end(context, campaign, run)
    return close_run(context, campaign, run, ending, started=started)


def join(
    context: Context, campaign: Campaign, run: ledger.Run, *, started: float
) -> Outcome | None:
    """Work on a sharded run's open shards, alongside whoever else does; None when
    none is left to claim (its other processes are finishing it)."""
    with db.translated("joining a sharded run"):
        joined = shards.join(context.control, run.id)
    if joined is None:
        return None
    run = joined.run
    # Processes that died are news for the operator; a retry is routine.
    died = joined.took_over and joined.previous_status == "running"
    if not joined.took_over:
        how = "joining"
    elif died:
        how = "resuming (its processes died)"
    else:
        how = f"resuming ({joined.previous_status})"
    logger.log(
        logging.WARNING if died else logging.INFO,
        "campaign %r: %s sharded run %d (slot %s), attempt %d",
        campaign.name,
        how,
        run.id,
        run.scheduled_for.isoformat(),
        run.attempts,
        extra={
            "event": "run_resumed" if joined.took_over else "run_joined",
            "campaign_id": campaign.id,
            "run_id": run.id,
            "attempt": run.attempts,
        },
    )
    return work_on_shards(context, campaign, run, started=started)


def work_on_shards(
    context: Context, campaign: Campaign, run: ledger.Run, *, started: float
) -> Outcome:
    """Claim and send the run's shards one after another until none is left or
    one does not end well, then leave the run (the last to leave ends it)."""
    log_run_started(campaign, run)
    ending, sent = Ending("succeeded"), 0
    while ending.status in ledger.DONE_STATUSES:
        try:
            context.check_stop("before its next shard")
            with db.translated("claiming a shard"):
                claimed = shards.claim_next(context.control, run.id)
        except errors.CampaignerError as exc:
            interrupted = isinstance(exc, errors.Interrupted)
            status = "interrupted" if interrupted else "failed"
            ending = Ending(status, exc.message, True, exc.exit_code)
            break
        if claimed is None:
            break
        log_shard_claimed(campaign, claimed)
        ending = run_to_the_end(context, campaign, run, claimed.shard)
        ending = finish_shard(context, claimed.shard, ending)
        sent += 1
    return leave_run(context, campaign, run, ending, shards_sent=sent, started=started)


def log_shard_claimed(campaign: Campaign, claimed: shards.Claimed) -> None:
    shard = claimed.shard
    died = claimed.previous_status == "running"
    logger.log(
        logging.WARNING if died else logging.DEBUG,
        "campaign %r: run %d shard %d %s after user id %s, attempt %d",
        campaign.name,
        shard.run_id,
        shard.shard_no,
        "taken over (its worker died)" if died else "claimed",
        shard.after,
        shard.attempts,
        extra={
            "event": "shard_claimed",
            "campaign_id": campaign.id,
            "run_id": shard.run_id,
            "shard_no": shard.shard_no,
            "checkpoint": shard.checkpoint,
            "attempt": shard.attempts,
        },
    )


def finish_shard(context: Context, shard: shards.Shard, ending: Ending) -> Ending:
    try:
        with db.translated("recording a shard's outcome"):
            shards.finish(
                context.control,
                shard,
                status=ending.status,
                error=ending.error,
                retryable=ending.retryable,
            )
    except errors.DatabaseError as exc:
        error = f"{ending.error or ending.status}; and {exc.message}"
        return Ending("failed", error, True, errors.EXIT_DATABASE)
    return ending


# Exit codes of a sharded run's ending recorded by a process whose own shards
# went well: it reports the run, as the process ending a whole run would.
FINAL_EXIT_CODES = {
    "completed_with_errors": errors.EXIT_CAMPAIGN,
    "expired": errors.EXIT_CAMPAIGN,
    "failed": errors.EXIT_CAMPAIGN,
}


def leave_run(
    context: Context,
    campaign: Campaign,
    run: ledger.Run,
    ending: Ending,
    *,
    shards_sent: int,
    started: float,
) -> Outcome:
    """Leave the sharded run; report how it ended when this process was the last
    on it, else how this process's part went (the run goes on elsewhere)."""
    error, exit_code = ending.error, ending.exit_code
    final, now = None, run
    try:
        with db.translated("leaving a sharded run"):
            final = shards.leave(context.control, run.id, campaign_name=campaign.name)
            now = (
                final.run
                if final is not None
                else ledger.find_run_by_id(context.control, run.id) or run
            )
    except errors.DatabaseError as exc:
        error = f"{error or ending.status}; and {exc.message}"
        exit_code = errors.EXIT_DATABASE
    if final is not None:
        status = final.run.status
        error = error or final.ending.error
        if exit_code == errors.EXIT_OK:
            exit_code = FINAL_EXIT_CODES.get(status, errors.EXIT_OK)
    else:
        status = "running" if ending.status in ledger.DONE_STATUSES else ending.status
    logger.info(
        "campaign %r: this process sent %d shard(s) of run %d%s",
        campaign.name,
        shards_sent,
        run.id,
        "" if final is not None else "; other processes finish it",
        extra={"event": "run_left", "run_id": run.id, "shards": shards_sent},
    )
    outcome = Outcome(
        campaign.name,
        status,
        now.scheduled_for,
        run_id=now.id,
        manual=now.manual,
        matched=now.matched,
        produced=now.produced,
        failed=now.failed,
        duration_s=round(time.monotonic() - started, 3),
        error=error,
        exit_code=exit_code,
    )
    log_outcome(campaign.id, campaign.name, outcome)
    return outcome


def expire(context: Context, stranded: ledger.UnfinishedRun) -> Outcome | None:
    """Mark an unfinished run past its deadline expired, with its counts."""
    started = time.monotonic()
    old = stranded.run
    error = (
        f"campaign {stranded.campaign_name!r}: deadline"
        f" {stranded.expires_at.isoformat()} passed before the end of the cohort"
        f" (stopped after user id {old.checkpoint}); the rest is not sent"
    )
    try:
        with db.translated("expiring a run"):
            run = ledger.expire_abandoned(context.control, old.id, error=error)
    except errors.CampaignerError as exc:
        return not_started(stranded.campaign_name, old.scheduled_for, exc)
    if run is None:
        return None
    outcome = Outcome(
        stranded.campaign_name,
        run.status,
        run.scheduled_for,
        run_id=run.id,
        manual=run.manual,
        matched=run.matched,
        produced=run.produced,
        failed=run.failed,
        duration_s=round(time.monotonic() - started, 3),
        error=error,
        exit_code=errors.EXIT_CAMPAIGN,
    )
    log_outcome(run.campaign_id, stranded.campaign_name, outcome)
    return outcome


def check_campaign(context: Context, campaign: Campaign) -> cohort.Estimate | None:
    """Everything about a campaign that can be fixed quickly (a missing topic, a
    typo in a field, the broker being down), checked before a run is claimed or
    taken over, so that it still runs once fixed. Returns the planner's estimate
    of the cohort when the cost guard asked for one."""
    with db.translated("reading the customer table's columns"):
        columns = context.customer_columns()
    estimated = cohort.check_campaign(
        campaign, columns, context.settings, conn=context.reader
    )
    context.sink.check_topic(campaign.name, campaign.topic)
    return estimated


def claim(context: Context, due: Due) -> tuple[ledger.Run | None, bool]:
    """Check the campaign, then claim its slot, split into shards when it is large:
    the run, or None, and whether it is sharded. A back-fill's campaign is already
    the one its earlier run started with; a sharded run is joined, not claimed."""
    context.check_stop("before claiming its slot")
    estimated = check_campaign(context, due.campaign)
    with db.translated("claiming a run"):
        if find_sharded(context, due) is not None:
            return None, True
        ranges = None
        # TODO: a slot recorded as missed and back-filled later already has a run
        # row, so it is sent whole however large; split it when it is taken over
        # once back-fills of large missed slots are asked for.
        if ledger.find_run(context.control, due.campaign.id, due.scheduled_for) is None:
            ranges = plan_shards(context, due.campaign, estimated)
        sharding = None if ranges is None else shards.recording(ranges)
        slot = due.scheduled_for
        run: ledger.Run | None
        if due.backfill:
            run = ledger.claim_backfill(
                context.control, due.campaign, scheduled_for=slot, sharding=sharding
            )
        elif due.manual:
            run = ledger.claim_manual(
                context.control, due.campaign, scheduled_for=slot, sharding=sharding
            )
        else:
            run = ledger.claim(
                context.control,
                due.campaign,
                scheduled_for=slot,
                manual=False,
                sharding=sharding,
            )
    return run, sharding is not None


def plan_shards(
    context: Context, campaign: Campaign, estimated: cohort.Estimate | None
) -> list[shards.Bounds] | None:
    """The shards of a new run, or None to send it whole. A cohort PostgreSQL
    rejects is left to the run, which records why it failed."""
    try:
        return shards.plan(
            context.reader, context.settings, campaign, estimated=estimated
        )
    except errors.InvalidCohort:
        return None


@dataclasses.dataclass(frozen=True)
class Ending:
    status: str
    error: str | None = None
    retryable: bool = False
    exit_code: int = errors.EXIT_OK


def log_run_started(campaign: Campaign, run: ledger.Run) -> None:
    logger.debug(
        "campaign %r: run %d started for slot %s (attempt %d)",
        campaign.name,
        run.id,
        run.scheduled_for.isoformat(),
        run.attempts,
        extra={
            "event": "run_started",
            "campaign": campaign.name,
            "campaign_id": campaign.id,
            "run_id": run.id,
            "slot": run.scheduled_for.isoformat(),
        },
    )


def run_to_the_end(
    context: Context,
    campaign: Campaign,
    run: ledger.Run,
    shard: shards.Shard | None = None,
) -> Ending:
    """Send the run's cohort (or one shard of it) and say how that ended."""
    if shard is None:
        log_run_started(campaign, run)
    try:
        refused = streaming.stream(context, campaign, run, shard)
    except errors.DeadlinePassed as exc:
        return Ending("expired", exc.message, exit_code=exc.exit_code)
    except streaming.CampaignPaused as exc:
        return Ending("interrupted", exc.message, True, exc.exit_code)
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
            record_crash(
                context,
                campaign,
                run,
                shard,
                status="interrupted" if interrupted else "failed",
                error="interrupted at once by a second signal"
                if interrupted
                else f"unexpected {type(exc).__name__}: {exc}",
            )
        raise
    # Earlier attempts of a resumed run (or shard) count too.
    refused += run.failed if shard is None else shard.failed
    if refused:
        message = f"campaign {campaign.name!r}: {refused} recipient(s) refused for good"
        return Ending("completed_with_errors", message, exit_code=errors.EXIT_CAMPAIGN)
    return Ending("succeeded")


def record_crash(
    context: Context,
    campaign: Campaign,
    run: ledger.Run,
    shard: shards.Shard | None,
    *,
    status: str,
    error: str,
) -> None:
    if shard is None:
        ledger.finish(
            context.control, run.id, status=status, error=error, retryable=True
        )
        return
    shards.finish(context.control, shard, status=status, error=error, retryable=True)
    shards.leave(context.control, run.id, campaign_name=campaign.name)


def close_run(
    context: Context,
    campaign: Campaign,
    run: ledger.Run,
    ending: Ending,
    *,
    started: float,
) -> Outcome:
    error, exit_code = ending.error, ending.exit_code
    counts: tuple[int | None, ...] = (None, None, None)
    try:
        with db.translated("recording the run's outcome"):
            run = ledger.finish(
                context.control,
                run.id,
                status=ending.status,
                error=error,
                retryable=ending.retryable,
            )
        counts = (run.matched, run.produced, run.failed)
    except errors.DatabaseError as exc:
        # `run` is still the row as claimed: its counts are not what was sent.
        error = f"{error or ending.status}; and {exc.message}"
        exit_code = errors.EXIT_DATABASE
    outcome = Outcome(
        campaign.name,
        ending.status,
        run.scheduled_for,
        run_id=run.id,
        manual=run.manual,
        matched=counts[0],
        produced=counts[1],
        failed=counts[2],
        duration_s=round(time.monotonic() - started, 3),
        error=error,
        exit_code=exit_code,
    )
    log_outcome(campaign.id, campaign.name, outcome)
    return outcome


def log_outcome(campaign_id: int, name: str, outcome: Outcome) -> None:
    counts = (
        f"{outcome.matched} matched, {outcome.produced} produced,"
        f" {outcome.failed} failed"
        if outcome.matched is not None
        else "counts unknown (see `campaigner runs`)"
    )
    facts = (
        f"run {outcome.run_id}, slot {format_slot(outcome)}: {counts}"
        f" in {outcome.duration_s:.1f}s"
    )
    extra = {
        "event": "run_finished",
        "campaign": name,
        "campaign_id": campaign_id,
        "run_id": outcome.run_id,
        "slot": format_slot(outcome),
        "status": outcome.status,
        "matched": outcome.matched,
        "produced": outcome.produced,
        "failed": outcome.failed,
        "duration_s": outcome.duration_s,
    }
    if outcome.error and outcome.exit_code == errors.EXIT_OK:
        logger.warning("%s (%s %s)", outcome.error, outcome.status, facts, extra=extra)
    elif outcome.error:
        logger.error("%s (%s %s)", outcome.error, outcome.status, facts, extra=extra)
    else:
        logger.info("campaign %r %s (%s)", name, outcome.status, facts, extra=extra)


def format_slot(outcome: Outcome) -> str:
    return outcome.scheduled_for.isoformat() if outcome.scheduled_for else "-"
