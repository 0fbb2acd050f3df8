"""Shards of a large run: id ranges of its cohort that any number of `execute`
processes, on one host or several, claim and send, each with its own checkpoint.

Locks are session advisory locks on the control connection, as for whole runs:
- every process working on a sharded run holds the run's lock in shared mode,
  so the run is alive while any of them is;
- the process sending a shard holds the shard's lock; a shard marked running
  whose lock nobody holds lost its worker and is taken over at its checkpoint.
  The heartbeat's age never decides: a slow or stopped worker keeps its shard.

A shard is claimed in one short transaction (its row FOR UPDATE SKIP LOCKED,
its lock taken, marked running with host and pid, committed), so no transaction
stays open while Kafka is waited for. The process that leaves a run last
records how it ended, from its shards: it gives up its own lock inside the
transaction that looks for other holders, with the run's row locked, so two
processes leaving together cannot both think the other one stays.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
from collections.abc import Callable, Sequence

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from campaigner import cohort, ledger
from campaigner.campaigns import Campaign
from campaigner.config import Settings

logger = logging.getLogger(__name__)

# Namespace of the shard locks in PostgreSQL's two-key advisory lock space.
SHARD_LOCK_CLASS = 0x636D7073  # "cmps"
# Each shard is a row and a claim; more than this gains no balance worth having
# and only makes the table and the claims grow. Larger runs get larger shards.
MAX_SHARDS = 64
# Reading starts below every possible key of a bigint column.
FIRST_KEY = -(2**63)

# A range of keys: after the first (exclusive), up to the second (inclusive;
# None: no upper bound).
Bounds = tuple[int, int | None]

# Whether some session holds shard s's advisory lock, i.e. its worker is alive
# (for queries with parameters: `%%` is the modulo).
SHARD_LOCK_HELD = f"""EXISTS (
    SELECT 1 FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.classid = {SHARD_LOCK_CLASS}::bigint::oid
      AND l.objid = (s.id %% {ledger.LOCK_KEY_MODULUS})::oid
      AND l.objsubid = 2)"""
# Shards that may be claimed, apart from a running one whose worker is alive.
OPEN = """(s.status IN ('pending', 'interrupted', 'running')
         OR (s.status = 'failed' AND s.retryable))"""
CLAIMABLE = f"({OPEN} AND NOT (s.status = 'running' AND {SHARD_LOCK_HELD}))"
# Whether run r has a shard to claim (another execute can help).
HAS_CLAIMABLE = f"""EXISTS (
    SELECT 1 FROM campaign_run_shards s WHERE s.run_id = r.id AND {CLAIMABLE})"""


@dataclasses.dataclass(frozen=True)
class Shard:
    id: int
    run_id: int
    shard_no: int
    lower_key: int
    upper_key: int | None
    status: str
    checkpoint: int | None
    matched: int
    produced: int
    failed: int
    attempts: int

    @property
    def after(self) -> int | None:
        """Where reading starts: after the checkpoint, or after the lower bound;
        None for the first shard, which starts at the smallest key there is."""
        if self.checkpoint is not None:
            return self.checkpoint
        return None if self.lower_key == FIRST_KEY else self.lower_key


SHARD_COLUMNS = (
    "id, run_id, shard_no, lower_key, upper_key, status, checkpoint,"
    " matched, produced, failed, attempts"
)


def split(lowest: int, highest: int, count: int) -> list[Bounds]:
    """`count` ranges of (nearly) equal width over lowest..highest, the first open
    downwards and the last upwards, so together they cover every key."""
    span = highest - lowest + 1
    count = max(1, min(count, span))
    ranges: list[Bounds] = []
    lower = FIRST_KEY
    for index in range(1, count):
        upper = lowest - 1 + index * span // count
        if upper > lower:
            ranges.append((lower, upper))
            lower = upper
    ranges.append((lower, None))
    return ranges


def shard_count(estimated_rows: int, settings: Settings) -> int:
    """How many shards a cohort of about `estimated_rows` gets, or 1 (whole)."""
    threshold = settings.shard_threshold
    if threshold == 0 or estimated_rows <= threshold:
        return 1
    wanted = -(-estimated_rows // settings.shard_size)
    return max(2, min(wanted, MAX_SHARDS))


def plan(
    conn: psycopg.Connection,
    settings: Settings,
    campaign: Campaign,
    *,
    estimated: cohort.Estimate | None = None,
) -> list[Bounds] | None:
    """The shards of a new run of `campaign`, or None when it stays whole.

    The size is the planner's estimate (EXPLAIN, as for max_cohort_cost, whose
    `estimated` is used when given): it costs nothing next to counting. The
    ranges split the cohort's smallest to largest key into equal widths, which
    are even for keys handed out in order.
    """
    if settings.shard_threshold == 0:
        return None
    if estimated is None:
        estimated = cohort.estimate(
            conn, settings, campaign_name=campaign.name, cohort=campaign.cohort
        )
    count = shard_count(estimated.rows, settings)
    if count == 1:
        return None
    lowest, highest = key_range(conn, settings, campaign)
    if lowest is None or highest is None:
        return None
    ranges = split(lowest, highest, count)
    return ranges if len(ranges) > 1 else None


def key_range(
    conn: psycopg.Connection, settings: Settings, campaign: Campaign
) -> tuple[int | None, int | None]:
    """The cohort's smallest and largest key now (PostgreSQL walks the key's
    index from each end when that is cheaper than a scan)."""
    with cohort.reading(
        conn, settings, campaign_name=campaign.name, cohort=campaign.cohort
    ) as table:
        # The cohort on lines of its own inside parentheses, as in cohort.py.
        row = conn.execute(
            sql.SQL(
                "SELECT min({key}), max({key}) FROM {table}\nWHERE (\n{cohort}\n)"
            ).format(
                key=sql.Identifier(settings.customer_key),
                table=table,
                cohort=sql.SQL(campaign.cohort),
            )
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def recording(ranges: Sequence[Bounds]) -> Callable[[psycopg.Connection, int], None]:
    """What ledger.claim runs in its transaction for a sharded run: the shards'
    rows, and the run's lock in shared mode, so that others can join at once."""

    def record(conn: psycopg.Connection, run_id: int) -> None:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO campaign_run_shards (run_id, shard_no, lower_key,"
                " upper_key) VALUES (%s, %s, %s, %s)",
                [
                    (run_id, number, lower, upper)
                    for number, (lower, upper) in enumerate(ranges, start=1)
                ],
            )
            cur.execute(
                "SELECT pg_advisory_lock_shared(%s, %s)", ledger.lock_key(run_id)
            )

    return record


def is_sharded(conn: psycopg.Connection, run_id: int) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM campaign_run_shards WHERE run_id = %s)",
        [run_id],
    ).fetchone()
    return bool(row and row[0])


@dataclasses.dataclass(frozen=True)
class Joined:
    run: ledger.Run
    # Nobody else was working on it: one more attempt of the run, from here.
    took_over: bool
    # Its status before: "running" with nobody on it means its processes died.
    previous_status: str


# Run states a process may join; a run failed for good is not retried.
JOINABLE = """(r.status IN ('running', 'interrupted')
         OR (r.status = 'failed' AND r.retryable))"""


def join(conn: psycopg.Connection, run_id: int) -> Joined | None:
    """Work on a sharded run alongside whoever else does, holding its lock in
    shared mode; None when it has no shard left to claim or is finished.

    Taking the lock exclusively first tells whether anyone else is alive on the
    run: if nobody is, the run is taken over (one more attempt, status running).
    """
    with conn.transaction():
        found = conn.execute(
            f"SELECT r.status FROM campaign_runs r WHERE r.id = %s AND {JOINABLE}"
            " FOR UPDATE",
            [run_id],
        ).fetchone()
        if found is None or not has_claimable(conn, run_id):
            return None
        previous = str(found[0])
        key = ledger.lock_key(run_id)
        if locked(conn, "SELECT pg_try_advisory_lock(%s, %s)", key):
            conn.execute("SELECT pg_advisory_lock_shared(%s, %s)", key)
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)
            return Joined(ledger.take_over(conn, run_id), True, previous)
        # Held exclusively: a whole run's worker, or one taking it over right now.
        if not locked(conn, "SELECT pg_try_advisory_lock_shared(%s, %s)", key):
            return None
        run = ledger.find_run_by_id(conn, run_id)
    assert run is not None
    return Joined(run, took_over=False, previous_status=previous)


def locked(conn: psycopg.Connection, query: str, key: tuple[int, int]) -> bool:
    row = conn.execute(query, key).fetchone()
    return bool(row and row[0])


def has_claimable(conn: psycopg.Connection, run_id: int) -> bool:
    row = conn.execute(
        f"SELECT EXISTS (SELECT 1 FROM campaign_run_shards s"
        f" WHERE s.run_id = %s AND {CLAIMABLE})",
        [run_id],
    ).fetchone()
    return bool(row and row[0])


def shard_lock_key(shard_id: int) -> tuple[int, int]:
    return SHARD_LOCK_CLASS, shard_id % ledger.LOCK_KEY_MODULUS


@dataclasses.dataclass(frozen=True)
class Claimed:
    shard: Shard
    # Its status before: "running" means its worker died.
    previous_status: str


def claim_next(conn: psycopg.Connection, run_id: int) -> Claimed | None:
    """Claim the run's next open shard and lock it, or None when none is left.

    One row at a time FOR UPDATE SKIP LOCKED: a shard another process is
    claiming right now is skipped, not waited for, and one running in a live
    worker (its lock held) is passed over.
    """
    passed: list[int] = []
    with conn.transaction(), conn.cursor(row_factory=class_row(Shard)) as cur:
        while True:
            cur.execute(
                f"SELECT {SHARD_COLUMNS} FROM campaign_run_shards s"
                f" WHERE s.run_id = %s AND {OPEN} AND s.id <> ALL(%s::bigint[])"
                " ORDER BY s.shard_no LIMIT 1 FOR UPDATE SKIP LOCKED",
                [run_id, passed],
            )
            shard = cur.fetchone()
            if shard is None:
                return None
            if locked(
                conn, "SELECT pg_try_advisory_lock(%s, %s)", shard_lock_key(shard.id)
            ):
                return Claimed(start(cur, shard.id), previous_status=shard.status)
            passed.append(shard.id)


def start(cur: psycopg.Cursor[Shard], shard_id: int) -> Shard:
    cur.execute(
        f"""
        UPDATE campaign_run_shards
        SET status = 'running', attempts = attempts + 1, retryable = false,
            finished_at = NULL, started_at = coalesce(started_at, now()),
            heartbeat_at = now(), host = %s, pid = %s
        WHERE id = %s
        RETURNING {SHARD_COLUMNS}
        """,
        [socket.gethostname(), os.getpid(), shard_id],
    )
    shard = cur.fetchone()
    assert shard is not None
    return shard


def record_progress(
    conn: psycopg.Connection,
    shard: Shard,
    *,
    checkpoint: int,
    matched: int,
    produced: int,
    refused: list[tuple[int, str]],
) -> None:
    """Advance the shard's checkpoint over a confirmed batch and add its counts to
    the shard and the run, in one short transaction (the run's row first, as
    everywhere, so that writers never wait for each other in a circle)."""
    with conn.transaction():
        conn.execute(
            """
            UPDATE campaign_runs
            SET matched = matched + %s, produced = produced + %s,
                failed = failed + %s, heartbeat_at = now()
            WHERE id = %s
            """,
            [matched, produced, len(refused), shard.run_id],
        )
        conn.execute(
            """
            UPDATE campaign_run_shards
            SET checkpoint = %s, matched = matched + %s, produced = produced + %s,
                failed = failed + %s, heartbeat_at = now()
            WHERE id = %s
            """,
            [checkpoint, matched, produced, len(refused), shard.id],
        )
        ledger.record_refused(conn, shard.run_id, refused)


# What a shard's run ending becomes in its own row.
SHARD_STATUS = {
    "succeeded": "done",
    "completed_with_errors": "done",
    "failed": "failed",
    "interrupted": "interrupted",
    "expired": "expired",
}


def finish(
    conn: psycopg.Connection,
    shard: Shard,
    *,
    status: str,
    error: str | None = None,
    retryable: bool = False,
) -> None:
    """Record how the shard's turn ended (`status` as for a run) and unlock it."""
    with conn.transaction():
        conn.execute(
            """
            UPDATE campaign_run_shards
            SET status = %s, error = %s, retryable = %s, finished_at = now(),
                heartbeat_at = now()
            WHERE id = %s
            """,
            [SHARD_STATUS[status], error, retryable, shard.id],
        )
    conn.execute("SELECT pg_advisory_unlock(%s, %s)", shard_lock_key(shard.id))


@dataclasses.dataclass(frozen=True)
class RunEnding:
    status: str
    error: str | None
    retryable: bool


def run_ending(
    shards: Sequence[tuple[str, bool, str | None]], *, campaign_name: str, failed: int
) -> RunEnding:
    """How a sharded run ended, from its shards' (status, retryable, error), once
    nobody works on it: done when every shard is; otherwise the gravest shard
    decides (expired, failed for good, failed and retryable, interrupted)."""
    if all(status == "done" for status, _, _ in shards):
        if failed:
            return RunEnding(
                "completed_with_errors",
                f"campaign {campaign_name!r}: {failed} recipient(s) refused for good",
                False,
            )
        return RunEnding("succeeded", None, False)
    for status, retryable, ending in (
        ("expired", False, "expired"),
        ("failed", False, "failed"),
        ("failed", True, "failed"),
        ("interrupted", True, "interrupted"),
    ):
        for shard_status, shard_retryable, error in shards:
            if shard_status == status and shard_retryable == retryable:
                return RunEnding(ending, error, retryable)
    # Only pending shards, or shards whose worker died, are left.
    return RunEnding(
        "interrupted",
        f"campaign {campaign_name!r}: shards were left unfinished; the next"
        " execute resumes them",
        True,
    )


@dataclasses.dataclass(frozen=True)
class Ended:
    run: ledger.Run
    ending: RunEnding


def leave(conn: psycopg.Connection, run_id: int, *, campaign_name: str) -> Ended | None:
    """Stop working on the run. The last process to leave records how it ended
    and gets the run back; the others get None (the run goes on)."""
    with conn.transaction():
        conn.execute("SELECT 1 FROM campaign_runs WHERE id = %s FOR UPDATE", [run_id])
        conn.execute(
            "SELECT pg_advisory_unlock_shared(%s, %s)", ledger.lock_key(run_id)
        )
        row = conn.execute(
            f"SELECT r.status, r.failed, {ledger.RUN_LOCK_HELD}"
            " FROM campaign_runs r WHERE r.id = %s",
            [ledger.RUN_LOCK_CLASS, ledger.LOCK_KEY_MODULUS, run_id],
        ).fetchone()
        assert row is not None
        status, failed, others = row
        if others or status != "running":
            return None
        shards = conn.execute(
            "SELECT status, retryable, error FROM campaign_run_shards"
            " WHERE run_id = %s ORDER BY finished_at DESC NULLS LAST, shard_no",
            [run_id],
        ).fetchall()
        ending = run_ending(shards, campaign_name=campaign_name, failed=failed)
        run = ledger.record_ending(
            conn,
            run_id,
            status=ending.status,
            error=ending.error,
            retryable=ending.retryable,
        )
    return Ended(run, ending)


def workers(conn: psycopg.Connection, run_id: int) -> int:
    """How many processes work on the run now (hold its lock)."""
    row = conn.execute(
        """
        SELECT count(*) FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.granted
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid = %s::bigint::oid AND l.objid = %s::oid AND l.objsubid = 2
        """,
        ledger.lock_key(run_id),
    ).fetchone()
    return int(row[0]) if row else 0


def rate_share(conn: psycopg.Connection, run_id: int, rate_limit: int) -> int:
    """This process's share of the campaign's rate limit: split evenly between
    the processes working on the run, rounded down so that together they stay
    under it (at least 1 message per second each)."""
    return max(1, rate_limit // max(1, workers(conn, run_id)))


@dataclasses.dataclass(frozen=True)
class ShardRecord:
    """One shard as `runs --json` shows it."""

    run_id: int
    shard_no: int
    lower_key: int
    upper_key: int | None
    status: str
    checkpoint: int | None
    matched: int
    produced: int
    failed: int
    attempts: int
    host: str | None
    pid: int | None
    error: str | None


def find_shards(conn: psycopg.Connection, run_ids: Sequence[int]) -> list[ShardRecord]:
    with conn.cursor(row_factory=class_row(ShardRecord)) as cur:
        cur.execute(
            "SELECT run_id, shard_no, lower_key, upper_key, status, checkpoint,"
            " matched, produced, failed, attempts, host, pid, error"
            " FROM campaign_run_shards WHERE run_id = ANY(%s)"
            " ORDER BY run_id, shard_no",
            [list(run_ids)],
        )
        return cur.fetchall()
