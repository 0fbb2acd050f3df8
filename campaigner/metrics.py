"""`execute --metrics-file PATH`: Prometheus text format for node_exporter's
textfile collector, written atomically at the end of every execute.

Two kinds of series:
- this execute: when it ended, its exit code, its duration, its runs by outcome;
- per campaign, read from the run ledger (so every host reports the same
  totals, and a restart loses nothing): runs by status, recipients produced
  and failed, the last success time and the last run's duration.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from prometheus_client import CollectorRegistry, Gauge, write_to_textfile
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from campaigner import db, errors
from campaigner.config import Settings

if TYPE_CHECKING:
    from campaigner.runner import Outcome

logger = logging.getLogger(__name__)

LEDGER_QUERY = """
SELECT c.name, r.status, count(*), sum(r.produced), sum(r.failed)
FROM campaign_runs r JOIN campaigns c ON c.id = r.campaign_id
GROUP BY c.name, r.status
"""
LATEST_QUERY = """
SELECT c.name,
       extract(epoch FROM max(r.finished_at) FILTER (WHERE r.status = 'succeeded')),
       (array_agg(extract(epoch FROM r.finished_at - r.started_at)
                  ORDER BY r.finished_at DESC)
            FILTER (WHERE r.finished_at IS NOT NULL))[1]
FROM campaign_runs r JOIN campaigns c ON c.id = r.campaign_id
GROUP BY c.name
"""
# With PostgreSQL unreachable or misconfigured there is no ledger to read.
NO_LEDGER = (errors.EXIT_CONFIG, errors.EXIT_DATABASE)


@dataclasses.dataclass
class Execution:
    """What the CLI learns during one execute."""

    started: float = dataclasses.field(default_factory=time.monotonic)
    outcomes: Sequence[Outcome] = ()
    exit_code: int = errors.EXIT_BUG


def check_writable(path: Path) -> None:
    """Refuse before anything runs, rather than after the runs."""
    if not str(path) or not path.name or path.is_dir():
        raise errors.ConfigurationError(
            f"--metrics-file {str(path)!r} is a folder or empty; give a file's path"
        )
    if not path.parent.is_dir():
        raise errors.ConfigurationError(
            f"--metrics-file {path}: folder {path.parent} does not exist"
        )
    # Create and remove a file where the metrics will be written: permissions
    # alone do not tell (root passes them, /proc refuses files anyway).
    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".campaigner-"):
            pass
    except OSError as exc:
        raise errors.ConfigurationError(
            f"--metrics-file {path}: cannot write in folder {path.parent}"
            f" ({exc.strerror})"
        ) from None


@contextlib.contextmanager
def recording(path: Path | None, settings: Settings) -> Iterator[Execution]:
    """Write the metrics when the block ends, however it ends."""
    execution = Execution()
    if path is not None:
        check_writable(path)
    try:
        yield execution
    except errors.CampaignerError as exc:
        execution.exit_code = exc.exit_code
        raise
    except KeyboardInterrupt:
        execution.exit_code = errors.EXIT_INTERRUPTED
        raise
    finally:
        if path is not None:
            write(path, settings, execution)


def write(path: Path, settings: Settings, execution: Execution) -> None:
    registry = CollectorRegistry()
    describe_execution(registry, execution)
    if execution.exit_code not in NO_LEDGER:
        describe_ledger(registry, settings)
    try:
        # Writes a temporary file next to `path`, then renames it over `path`.
        write_to_textfile(str(path), registry)
    except OSError as exc:
        raise errors.ConfigurationError(
            f"cannot write --metrics-file {path}: {exc.strerror}"
        ) from exc


def describe_execution(registry: CollectorRegistry, execution: Execution) -> None:
    Gauge(
        "campaigner_execute_last_timestamp_seconds",
        "When the last execute ended (Unix time).",
        registry=registry,
    ).set(time.time())
    Gauge(
        "campaigner_execute_exit_code",
        "The last execute's exit code (0 ok, 4 PostgreSQL, 5 Kafka, 6 a campaign...).",
        registry=registry,
    ).set(execution.exit_code)
    Gauge(
        "campaigner_execute_duration_seconds",
        "How long the last execute took.",
        registry=registry,
    ).set(time.monotonic() - execution.started)
    runs = Gauge(
        "campaigner_execute_runs",
        "Runs of the last execute, by outcome.",
        ["status"],
        registry=registry,
    )
    durations = Gauge(
        "campaigner_execute_run_duration_seconds",
        "How long each campaign's run of the last execute took.",
        ["campaign"],
        registry=registry,
    )
    for outcome in execution.outcomes:
        runs.labels(status=outcome.status).inc()
        if outcome.run_id is not None:
            durations.labels(campaign=outcome.campaign).set(outcome.duration_s)


def describe_ledger(registry: CollectorRegistry, settings: Settings) -> None:
    try:
        with db.connect(settings, purpose="metrics") as conn:
            totals = conn.execute(LEDGER_QUERY).fetchall()
            latest = conn.execute(LATEST_QUERY).fetchall()
    except (errors.CampaignerError, psycopg.Error) as exc:
        message = exc.message if isinstance(exc, errors.CampaignerError) else str(exc)
        logger.warning(
            "metrics: the run ledger could not be read, only this execute's"
            " metrics were written: %s",
            db.first_line(message),
            extra={"event": "metrics_ledger_unread"},
        )
        return
    registry.register(LedgerTotals(totals))
    describe_latest(registry, latest)


class LedgerTotals(Collector):
    """Totals read from the ledger, as counters without `_created` series: their
    start is the ledger's, not this process's."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    def collect(self) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "campaigner_runs",
            "Runs recorded in the ledger, by campaign and status.",
            labels=["campaign", "status"],
        )
        produced = CounterMetricFamily(
            "campaigner_recipients_produced",
            "Recipients whose message the broker confirmed, by campaign.",
            labels=["campaign"],
        )
        failed = CounterMetricFamily(
            "campaigner_recipients_failed",
            "Recipients refused for good, by campaign.",
            labels=["campaign"],
        )
        sent: dict[str, float] = {}
        refused: dict[str, float] = {}
        for name, status, count, produced_count, failed_count in self.rows:
            runs.add_metric([name, status], count)
            sent[name] = sent.get(name, 0) + float(produced_count or 0)
            refused[name] = refused.get(name, 0) + float(failed_count or 0)
        for name in sorted(sent):
            produced.add_metric([name], sent[name])
            failed.add_metric([name], refused[name])
        yield from (runs, produced, failed)


def describe_latest(
    registry: CollectorRegistry, latest: list[tuple[object, ...]]
) -> None:
    success = Gauge(
        "campaigner_last_success_timestamp_seconds",
        "When the campaign's last successful run finished (Unix time).",
        ["campaign"],
        registry=registry,
    )
    duration = Gauge(
        "campaigner_last_run_duration_seconds",
        "How long the campaign's last finished run took, from start to finish.",
        ["campaign"],
        registry=registry,
    )
    for name, succeeded_at, seconds in latest:
        if succeeded_at is not None:
            success.labels(campaign=name).set(float(succeeded_at))  # type: ignore[arg-type]
        if seconds is not None:
            duration.labels(campaign=name).set(float(seconds))  # type: ignore[arg-type]
