"""What happened: the run ledger read back for `runs` and `show`, newest slot first."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from campaigner.shards import ShardRecord, find_shards

RUN_STATUSES = (
    "running",
    "succeeded",
    "completed_with_errors",
    "failed",
    "interrupted",
    "missed",
    "expired",
)
DEFAULT_LIMIT = 50


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """One campaign_runs row as operators read it."""

    id: int
    campaign: str
    scheduled_for: datetime
    manual: bool
    status: str
    matched: int
    produced: int
    failed: int
    checkpoint: int | None
    # More than 1: the run was resumed (after a failure, a signal or a crash).
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    host: str | None
    error: str | None
    # A sharded run's shards (0 for a whole run), and those done.
    shards_total: int = 0
    shards_done: int = 0
    shards: list[ShardRecord] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class RunFilter:
    campaigns: Sequence[str] = ()
    statuses: Sequence[str] = ()
    # Slots at or after `since` and before `until`.
    since: datetime | None = None
    until: datetime | None = None
    limit: int = DEFAULT_LIMIT


RUNS_QUERY = """
SELECT r.id, c.name AS campaign, r.scheduled_for, r.manual, r.status,
       r.matched, r.produced, r.failed, r.checkpoint, r.attempts,
       r.started_at, r.finished_at,
       extract(epoch FROM coalesce(r.finished_at, r.heartbeat_at) - r.started_at)::float
           AS duration_s,
       r.host, r.error, s.total AS shards_total, s.done AS shards_done
FROM campaign_runs r JOIN campaigns c ON c.id = r.campaign_id
CROSS JOIN LATERAL (
    SELECT count(*) AS total, count(*) FILTER (WHERE status = 'done') AS done
    FROM campaign_run_shards WHERE run_id = r.id) s
WHERE {conditions}
ORDER BY r.scheduled_for DESC, r.id DESC
LIMIT {limit}
"""


def find_runs(conn: psycopg.Connection, where: RunFilter) -> list[RunRecord]:
    conditions: list[sql.Composable] = [sql.SQL("true")]
    params: list[object] = []
    if where.campaigns:
        conditions.append(sql.SQL("c.name = ANY(%s)"))
        params.append(list(where.campaigns))
    if where.statuses:
        conditions.append(sql.SQL("r.status = ANY(%s)"))
        params.append(list(where.statuses))
    if where.since is not None:
        conditions.append(sql.SQL("r.scheduled_for >= %s"))
        params.append(where.since)
    if where.until is not None:
        conditions.append(sql.SQL("r.scheduled_for < %s"))
        params.append(where.until)
    query = sql.SQL(RUNS_QUERY).format(
        conditions=sql.SQL(" AND ").join(conditions), limit=sql.Literal(where.limit)
    )
    with conn.cursor(row_factory=class_row(RunRecord)) as cur:
        cur.execute(query, params)
        found = cur.fetchall()
    return with_shards(conn, found)


def with_shards(conn: psycopg.Connection, runs: list[RunRecord]) -> list[RunRecord]:
    """The runs, each sharded one with its shards."""
    sharded = [run.id for run in runs if run.shards_total]
    if not sharded:
        return runs
    by_run: dict[int, list[ShardRecord]] = {}
    for shard in find_shards(conn, sharded):
        by_run.setdefault(shard.run_id, []).append(shard)
    return [dataclasses.replace(run, shards=by_run.get(run.id, [])) for run in runs]
