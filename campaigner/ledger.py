"""The run ledger: one `campaign_runs` row per (campaign, slot), claimed once.

The claiming process takes a session-level advisory lock on the run in the
same transaction as the INSERT, so no other process can see a claimed run
whose owner does not hold its lock. The connection must stay open (and, behind
a pooler, be in session mode) for the whole run. An unfinished run is taken
over only by a process that gets its lock, so a worker that is alive, however
slow or stopped, keeps its run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import class_row, dict_row

from campaigner import errors
from campaigner.campaigns import Campaign

# Namespace of campaigner's run locks in PostgreSQL's two-key advisory lock space.
RUN_LOCK_CLASS = 0x636D7072  # "cmpr"

# Serialises manual claims of one campaign (transaction-level lock).
MANUAL_LOCK_CLASS = 0x636D706D  # "cmpm"
# The second key of a two-key advisory lock is an int4.
LOCK_KEY_MODULUS = 2**31

# Whether some session holds run r's advisory lock, i.e. its worker is alive.
# Parameters: RUN_LOCK_CLASS, LOCK_KEY_MODULUS.
RUN_LOCK_HELD = """EXISTS (
    SELECT 1 FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.classid = %s::bigint::oid
      AND l.objid = (r.id %% %s)::oid
      AND l.objsubid = 2)"""

# Runs that reached the end of their cohort: their slot is never sent again.
DONE_STATUSES = ("succeeded", "completed_with_errors")


@dataclasses.dataclass(frozen=True)
class Run:
    id: int
    campaign_id: int
    scheduled_for: datetime
    manual: bool
    status: str
    checkpoint: int | None
    matched: int
    produced: int
    failed: int
    attempts: int
    cohort: str | None
    settings: dict[str, Any]


RUN_COLUMNS = (
    "id, campaign_id, scheduled_for, manual, status, checkpoint,"
    " matched, produced, failed, attempts, cohort, settings"
)


def run_settings(campaign: Campaign) -> dict[str, Any]:
    """What an unfinished run needs to resume exactly as it started."""
    return {
        "name": campaign.name,
        "channel": campaign.channel,
        "topic": campaign.topic,
        "template": campaign.template,
        "message_fields": list(campaign.message_fields),
        "batch_size": campaign.batch_size,
        "deadline_s": campaign.deadline.total_seconds(),
        # A gateway's quota does not grow because the run was resumed.
        "rate_limit": campaign.rate_limit,
    }


def as_started(campaign: Campaign, run: Run) -> Campaign:
    """The campaign as `run` started it: editing a campaign never changes what an
    unfinished run sends, to whom, or until when."""
    if run.cohort is None:
        return campaign  # a row written by hand, without its settings
    started = run.settings
    return dataclasses.replace(
        campaign,
        cohort=run.cohort,
        channel=started.get("channel", campaign.channel),
        topic=started.get("topic", campaign.topic),
        template=started.get("template", campaign.template),
        message_fields=started.get("message_fields", campaign.message_fields),
        batch_size=started.get("batch_size", campaign.batch_size),
        deadline=timedelta(
            seconds=started.get("deadline_s", campaign.deadline.total_seconds())
        ),
        rate_limit=started.get("rate_limit", campaign.rate_limit),
    )


def claim(
    conn: psycopg.Connection,
    campaign: Campaign,
    *,
    scheduled_for: datetime,
    manual: bool,
    sharding: Callable[[psycopg.Connection, int], None] | None = None,
) -> Run | None:
    """Claim the slot and lock its run, or None when another process already has.

    `sharding`, for a large run, records its shards and takes the run's lock in
    shared mode instead, in the same transaction."""
    with conn.transaction(), conn.cursor(row_factory=class_row(Run)) as cur:
        cur.execute(
            f"""
            INSERT INTO campaign_runs (
                campaign_id, scheduled_for, manual, status, cohort, settings,
                started_at, heartbeat_at, host, pid)
            VALUES (%s, %s, %s, 'running', %s, %s, now(), now(), %s, %s)
            ON CONFLICT (campaign_id, scheduled_for) DO NOTHING
            RETURNING {RUN_COLUMNS}
            """,
            [
                campaign.id,
                scheduled_for,
                manual,
                campaign.cohort,
                json.dumps(run_settings(campaign)),
                socket.gethostname(),
                os.getpid(),
            ],
        )
        run = cur.fetchone()
        if run is not None and sharding is not None:
            sharding(conn, run.id)
        elif run is not None:
            cur.execute("SELECT pg_advisory_lock(%s, %s)", lock_key(run.id))
    return run


def claim_manual(
    conn: psycopg.Connection,
    campaign: Campaign,
    *,
    scheduled_for: datetime,
    sharding: Callable[[psycopg.Connection, int], None] | None = None,
) -> Run:
    """Claim a manual slot, unless a run of the campaign is alive right now: two
    operators pressing the button together must not send the cohort twice."""
    with conn.transaction():
        conn.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)",
            [MANUAL_LOCK_CLASS, campaign.id % LOCK_KEY_MODULUS],
        )
        alive = conn.execute(
            f"""
            SELECT r.id FROM campaign_runs r
            WHERE r.campaign_id = %s AND r.status = 'running' AND {RUN_LOCK_HELD}
            """,
            [campaign.id, RUN_LOCK_CLASS, LOCK_KEY_MODULUS],
        ).fetchone()
        if alive is not None:
            raise errors.UsageError(
                f"campaign {campaign.name!r} is running right now (run {alive[0]});"
                " wait for it to finish"
            )
        run = claim(
            conn, campaign, scheduled_for=scheduled_for, manual=True, sharding=sharding
        )
    assert run is not None  # a manual slot is the exact instant: nobody else has it
    return run


def claim_backfill(
    conn: psycopg.Connection,
    campaign: Campaign,
    *,
    scheduled_for: datetime,
    sharding: Callable[[psycopg.Connection, int], None] | None = None,
) -> Run:
    """Claim a slot on purpose, taking over its run if an earlier attempt failed,
    was interrupted or lost its worker; the run resumes at its checkpoint.

    Raises UsageError when the slot already ran to the end or its run is
    alive in another process.
    """
    run = claim(
        conn, campaign, scheduled_for=scheduled_for, manual=False, sharding=sharding
    )
    if run is not None:
        return run
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT id, status, host, pid FROM campaign_runs"
            " WHERE campaign_id = %s AND scheduled_for = %s FOR UPDATE",
            [campaign.id, scheduled_for],
        )
        existing = cur.fetchone()
        assert existing is not None  # the claim above just conflicted with it
        if existing["status"] in DONE_STATUSES:
            raise errors.UsageError(
                f"campaign {campaign.name!r}: slot {scheduled_for.isoformat()} already"
                f" ran (run {existing['id']}, {existing['status']}); it is never sent twice"
            )
        cur.execute(
            "SELECT pg_try_advisory_lock(%s, %s) AS locked", lock_key(existing["id"])
        )
        if not cur.fetchone()["locked"]:  # type: ignore[index]
            raise errors.UsageError(
                f"campaign {campaign.name!r}: slot {scheduled_for.isoformat()} is being"
                f" run right now (run {existing['id']}, host {existing['host']},"
                f" pid {existing['pid']})"
            )
        return take_over(conn, existing["id"], starting=campaign)


def take_over(
    conn: psycopg.Connection, run_id: int, *, starting: Campaign | None = None
) -> Run:
    """Make the run ours (its lock already is): one more attempt, from this host
    and process. Counts, checkpoint, start time and the last error are kept.

    A run that never started (a slot recorded as missed, now back-filled) records
    what `starting` sends, as a claim does, so that its resumes send the same."""
    cohort, settings = None, None
    if starting is not None:
        cohort, settings = starting.cohort, json.dumps(run_settings(starting))
    with conn.cursor(row_factory=class_row(Run)) as cur:
        # In an UPDATE, `cohort` on the right-hand side is the row's old value.
        cur.execute(
            f"""
            UPDATE campaign_runs
            SET status = 'running', attempts = attempts + 1, retryable = false,
                finished_at = NULL, heartbeat_at = now(), host = %(host)s,
                pid = %(pid)s, started_at = coalesce(started_at, now()),
                cohort = coalesce(cohort, %(cohort)s),
                settings = CASE WHEN cohort IS NULL AND %(cohort)s IS NOT NULL
                                THEN %(settings)s::jsonb ELSE settings END
            WHERE id = %(id)s
            RETURNING {RUN_COLUMNS}
            """,
            {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "cohort": cohort,
                "settings": settings,
                "id": run_id,
            },
        )
        run = cur.fetchone()
    assert run is not None
    return run


# A run in one of these states has no worker, or a dead one once its lock is free.
UNFINISHED = """(r.status = 'interrupted'
         OR (r.status = 'failed' AND r.retryable)
         OR r.status = 'running')"""


def lock_if_abandoned(conn: psycopg.Connection, run_id: int) -> bool:
    """Take the run's lock if nobody holds it and the run is still unfinished.

    The lock, never the heartbeat's age, tells a dead worker from a slow or
    stopped one: a live worker's session holds it for the whole run. The status
    is read after the lock is taken, so a run that its worker finished (and
    unlocked) a moment ago is left alone.
    """
    row = conn.execute(
        "SELECT pg_try_advisory_lock(%s, %s)", lock_key(run_id)
    ).fetchone()
    if row is None or not row[0]:
        return False
    still = conn.execute(
        f"SELECT 1 FROM campaign_runs r WHERE r.id = %s AND {UNFINISHED}", [run_id]
    ).fetchone()
    if still is None:
        release(conn, run_id)
        return False
    return True


def take_over_abandoned(conn: psycopg.Connection, run_id: int) -> Run | None:
    """Take over an unfinished run whose worker is gone, or None when a live
    worker holds it or it is finished after all."""
    if not lock_if_abandoned(conn, run_id):
        return None
    with conn.transaction():
        return take_over(conn, run_id)


def expire_abandoned(
    conn: psycopg.Connection, run_id: int, *, error: str
) -> Run | None:
    """Mark an unfinished run past its deadline expired, keeping its counts; None
    when a live worker holds it (it expires the run itself at its next batch)."""
    if not lock_if_abandoned(conn, run_id):
        return None
    return finish(conn, run_id, status="expired", error=error)


def heartbeat(conn: psycopg.Connection, run_id: int) -> str | None:
    """Note that the run's worker is alive and return its campaign's status now
    (None once the campaign was deleted)."""
    row = conn.execute(
        """
        UPDATE campaign_runs r SET heartbeat_at = now()
        FROM campaigns c
        WHERE r.id = %s AND c.id = r.campaign_id
        RETURNING c.status
        """,
        [run_id],
    ).fetchone()
    return None if row is None else str(row[0])


def lock_key(run_id: int) -> tuple[int, int]:
    # The second key is an int4; run ids wrap into it after 2**31 runs, where a
    # collision only makes two runs wait for each other's lock.
    return RUN_LOCK_CLASS, run_id % LOCK_KEY_MODULUS


def release(conn: psycopg.Connection, run_id: int) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s, %s)", lock_key(run_id))


def record_progress(
    conn: psycopg.Connection,
    run_id: int,
    *,
    checkpoint: int,
    matched: int,
    produced: int,
    refused: list[tuple[int, str]],
) -> None:
    """Advance the checkpoint over a confirmed batch, in one short transaction."""
    with conn.transaction():
        conn.execute(
            """
            UPDATE campaign_runs
            SET checkpoint = %s, matched = matched + %s, produced = produced + %s,
                failed = failed + %s, heartbeat_at = now()
            WHERE id = %s
            """,
            [checkpoint, matched, produced, len(refused), run_id],
        )
        record_refused(conn, run_id, refused)


def record_refused(
    conn: psycopg.Connection, run_id: int, refused: list[tuple[int, str]]
) -> None:
    """Recipients refused for good, with the reason (in the caller's transaction)."""
    if refused:
        with conn.cursor() as cur:
            cur.executemany(
                """
                INSERT INTO campaign_run_failures (run_id, user_id, reason)
                VALUES (%s, %s, %s)
                ON CONFLICT (run_id, user_id) DO UPDATE SET reason = EXCLUDED.reason
                """,
                [(run_id, user_id, reason) for user_id, reason in refused],
            )


def finish(
    conn: psycopg.Connection,
    run_id: int,
    *,
    status: str,
    error: str | None = None,
    retryable: bool = False,
) -> Run:
    """Record how the run ended and release its lock."""
    with conn.transaction():
        run = record_ending(
            conn, run_id, status=status, error=error, retryable=retryable
        )
    release(conn, run_id)
    return run


def record_ending(
    conn: psycopg.Connection,
    run_id: int,
    *,
    status: str,
    error: str | None,
    retryable: bool,
) -> Run:
    """Write how the run ended, in the caller's transaction."""
    with conn.cursor(row_factory=class_row(Run)) as cur:
        cur.execute(
            f"""
            UPDATE campaign_runs
            SET status = %s, error = %s, retryable = %s,
                finished_at = now(), heartbeat_at = now()
            WHERE id = %s
            RETURNING {RUN_COLUMNS}
            """,
            [status, error, retryable, run_id],
        )
        run = cur.fetchone()
    assert run is not None
    return run


def find_run(
    conn: psycopg.Connection, campaign_id: int, scheduled_for: datetime
) -> Run | None:
    with conn.cursor(row_factory=class_row(Run)) as cur:
        cur.execute(
            f"SELECT {RUN_COLUMNS} FROM campaign_runs"
            " WHERE campaign_id = %s AND scheduled_for = %s",
            [campaign_id, scheduled_for],
        )
        return cur.fetchone()


def find_run_by_id(conn: psycopg.Connection, run_id: int) -> Run | None:
    with conn.cursor(row_factory=class_row(Run)) as cur:
        cur.execute(f"SELECT {RUN_COLUMNS} FROM campaign_runs WHERE id = %s", [run_id])
        return cur.fetchone()


@dataclasses.dataclass(frozen=True)
class LastRun:
    campaign_id: int
    id: int
    scheduled_for: datetime
    status: str
    matched: int
    produced: int
    failed: int
    finished_at: datetime | None
    error: str | None


def last_runs(conn: psycopg.Connection) -> dict[int, LastRun]:
    """Each campaign's latest run by slot."""
    with conn.cursor(row_factory=class_row(LastRun)) as cur:
        cur.execute(
            """
            SELECT DISTINCT ON (campaign_id)
                campaign_id, id, scheduled_for, status, matched, produced, failed,
                finished_at, error
            FROM campaign_runs
            ORDER BY campaign_id, scheduled_for DESC
            """
        )
        return {run.campaign_id: run for run in cur.fetchall()}


@dataclasses.dataclass(frozen=True)
class UnfinishedRun:
    """A run that stopped before the end of its cohort, with its campaign's state."""

    run: Run
    campaign_name: str
    campaign_status: str
    # Whether its deadline (slot + the deadline it started with) has passed.
    expired: bool
    expires_at: datetime


def unfinished_runs(conn: psycopg.Connection) -> list[UnfinishedRun]:
    """Runs that stopped before the end of their cohort: failed and retryable,
    interrupted, or marked running while nobody holds their advisory lock (their
    worker died); and sharded runs with a shard left to claim, whoever works on
    them. Oldest slot first."""
    from campaigner.shards import HAS_CLAIMABLE  # shards builds on this module

    columns = ", ".join(f"r.{name.strip()}" for name in RUN_COLUMNS.split(","))
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"""
            SELECT {columns}, c.name AS campaign_name, c.status AS campaign_status,
                   r.scheduled_for + coalesce(
                       make_interval(secs => (r.settings->>'deadline_s')::float),
                       c.deadline) AS expires_at,
                   now() AS now
            FROM campaign_runs r JOIN campaigns c ON c.id = r.campaign_id
            WHERE {UNFINISHED}
              AND (NOT (r.status = 'running' AND {RUN_LOCK_HELD}) OR {HAS_CLAIMABLE})
            ORDER BY r.scheduled_for, r.id
            """,
            [RUN_LOCK_CLASS, LOCK_KEY_MODULUS],
        )
        rows = cur.fetchall()
    names = [field.name for field in dataclasses.fields(Run)]
    return [
        UnfinishedRun(
            run=Run(**{name: row[name] for name in names}),
            campaign_name=row["campaign_name"],
            campaign_status=row["campaign_status"],
            expired=row["expires_at"] <= row["now"],
            expires_at=row["expires_at"],
        )
        for row in rows
    ]


# What a missed slot's run row says; `runs` and `list` show it.
MISSED_REASON = (
    "not sent: no execute claimed this slot within its grace (campaigner was not"
    " running, or the campaign was paused); back-fill it on purpose with"
    " `campaigner execute --campaign NAME --at SLOT`"
)


def missed_slot_bounds(
    conn: psycopg.Connection,
    campaign_ids: list[int],
    *,
    tick: datetime,
    tolerance: timedelta,
) -> dict[int, datetime]:
    """For each campaign, the instant after which its slots past their grace at
    `tick` have no run row yet: when it was created, or its latest scheduled
    run past that grace (slots after it cannot have rows: it is the latest)."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT c.id, greatest(c.created_at, max(r.scheduled_for))
            FROM campaigns c
            LEFT JOIN campaign_runs r
              ON r.campaign_id = c.id AND NOT r.manual
             AND r.scheduled_for < %(tick)s - greatest(c.grace, %(tolerance)s)
            WHERE c.id = ANY(%(ids)s)
            GROUP BY c.id
            """,
            {"tick": tick, "tolerance": tolerance, "ids": campaign_ids},
        )
        return {campaign_id: bound for campaign_id, bound in cur.fetchall()}


def record_missed(
    conn: psycopg.Connection, campaign_id: int, slots: list[datetime]
) -> list[datetime]:
    """Record slots nobody claimed as missed (never started: 0 attempts), and
    return those recorded; a slot claimed meanwhile keeps its run."""
    # The cohort and settings are recorded when the slot is back-filled
    # (take_over), from the campaign as it is then.
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO campaign_runs (
                campaign_id, scheduled_for, manual, status, attempts, finished_at,
                error)
            SELECT %s, slot, false, 'missed', 0, now(), %s
            FROM unnest(%s::timestamptz[]) AS slot
            ON CONFLICT (campaign_id, scheduled_for) DO NOTHING
            RETURNING scheduled_for
            """,
            [campaign_id, MISSED_REASON, slots],
        )
        return sorted(row[0] for row in cur.fetchall())
