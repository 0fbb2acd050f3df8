"""Side-by-side throughput benchmark on one machine.

Measures, on the same cohort of the same data set:
  - PostgreSQL's export ceiling: COPY of the cohort's columns, read and dropped;
  - the broker's intake ceiling: as many pre-built messages, from one producer
    configured like campaigner's (idempotent, acks=all, lz4), every delivery
    report counted;
  - a naive pipeline: named cursor, json.dumps per row, produce;
  - `campaigner execute` on the cohort, as a subprocess, with every guarantee on;
  - two `campaigner execute` started together, sharing the cohort's run in 8 shards;
then campaigner's peak RSS on a small and on the whole table, and a dry-run's
count against a bare count(*).

    ./dev.sh bench                   # 5,000,000 users, about 2 GB
    ./dev.sh bench --users 1000000   # where memory or disk is short

Uses DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS when set (a new database is created
and dropped), otherwise throwaway servers. Results go to stdout and to JSON.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import platform
import pstats
import resource
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import confluent_kafka
import psutil
import psycopg
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from rich.console import Console
from rich.table import Table

from benchmarks.shards import sharding
from campaigner import cohort, migrations
from campaigner.config import Settings
from campaigner.demo_servers import demo_database, demo_kafka
from campaigner.envelope import EnvelopeTemplate, Message
from campaigner.kafka_sink import producer_config

# Not relative to now(): rows would drift out of the cohort between repetitions.
DEFAULT_COHORT = (
    "email_consent AND last_active_at > '2026-10-01'"
    " AND country IN ('US', 'DE', 'FR', 'GB')"
)
MESSAGE_FIELDS = ("email", "first_name", "country", "language")
INSERT_CHUNK = 1_000_000
SMALL_COHORT_SIZE = 100_000
KAFKA_ADMIN_TIMEOUT_S = 30.0
FLUSH_TIMEOUT_S = 600.0
PARTITIONS = 3
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Each measured run: a daily slot long past whose deadline is not, run by
# `execute --at` as cron would at that minute.
RUN_SCHEDULE = "0 9 * * *"
RUN_DEADLINE = "3650 days"
RUN_SLOT = "2025-06-02T09:00:00+00:00"

# The data set, built by PostgreSQL itself. The activity and consent rates give
# DEFAULT_COHORT about one row in five.
BUILD_USERS = """
INSERT INTO user_data (
    id, email, phone, first_name, last_name, country, language, city,
    created_at, last_active_at, email_consent, sms_consent, whatsapp_consent,
    push_token, lifetime_value, attributes)
SELECT g,
       'user' || g || '@example.' || (ARRAY['com', 'net', 'org'])[1 + g %% 3],
       CASE WHEN random() < 0.85 THEN '+1555' || lpad((g %% 10000000)::text, 7, '0') END,
       (ARRAY['Alex', 'Sam', 'Kim', 'Noor', 'Lea', 'Ravi', 'Mia', 'Jon'])[1 + g %% 8],
       (ARRAY['Smith', 'Garcia', 'Müller', 'Rossi', 'Tanaka', 'Khan'])[1 + g %% 6],
       c.country,
       c.language,
       (ARRAY['North', 'South', 'East', 'West', 'Central'])[1 + g %% 5] || ' City',
       now() - random() * interval '730 days',
       timestamptz '2026-12-01' - random() * interval '90 days',
       random() < 0.6,
       random() < 0.3,
       random() < 0.25,
       CASE WHEN random() < 0.4 THEN md5(g::text) END,
       round((random() * 2000)::numeric, 2),
       jsonb_build_object(
           'plan', (ARRAY['free', 'plus', 'pro'])[1 + g %% 3],
           'interests', jsonb_build_array(
               (ARRAY['travel', 'fashion', 'sports', 'books'])[1 + g %% 4]),
           'score', g %% 100)
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
CROSS JOIN LATERAL (
    SELECT (ARRAY['US', 'US', 'IN', 'DE', 'GB', 'BR', 'FR', 'JP', 'ES', 'IT'])[
               1 + floor(random() * 10)::int] AS country,
           (ARRAY['en', 'en', 'hi', 'de', 'en', 'pt', 'fr', 'ja', 'es', 'it'])[
               1 + floor(random() * 10)::int] AS language
    WHERE g IS NOT NULL
) AS c
"""


@dataclasses.dataclass
class Sample:
    """One timed repetition of one measurement."""

    rows: int
    wall_s: float
    client_cpu_s: float | None = None
    postgres_cpu_s: float | None = None
    broker_cpu_s: float | None = None
    peak_rss_mb: float | None = None
    # campaigner's CPU seconds by kind of thread (the last reading before it ended).
    thread_cpu_s: dict[str, float] | None = None

    @property
    def rate(self) -> float:
        return self.rows / self.wall_s if self.wall_s > 0 else 0.0


@dataclasses.dataclass
class Servers:
    database_url: str
    kafka: dict[str, Any]
    broker_pids: list[int]
    # Empty where the server is not local: its CPU is then not measured.
    postgres_pids: list[int]

    @property
    def bootstrap(self) -> str:
        return str(self.kafka["bootstrap.servers"])

    def settings(self) -> Settings:
        properties = {
            k: str(v) for k, v in self.kafka.items() if k != "bootstrap.servers"
        }
        return Settings(
            database_url=self.database_url,
            kafka_bootstrap_servers=self.bootstrap,
            kafka_properties=properties,
        )


# -- process accounting ------------------------------------------------------


def tree_cpu(pids: list[int]) -> float | None:
    """CPU seconds so far of the processes `pids` and everything under them,
    those that already ended included (their parent has reaped their time)."""
    if not pids:
        return None
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            for each in (proc, *proc.children(recursive=True)):
                with contextlib.suppress(psutil.Error):
                    times = each.cpu_times()
                    total += (
                        times.user
                        + times.system
                        + times.children_user
                        + times.children_system
                    )
    return total


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def accounted(servers: Servers, sample: Sample) -> Iterator[None]:
    """Fill in the CPU each side spent while the block ran."""
    postgres_before = tree_cpu(servers.postgres_pids)
    broker_before = tree_cpu(servers.broker_pids)
    yield
    postgres_after = tree_cpu(servers.postgres_pids)
    if postgres_before is not None and postgres_after is not None:
        sample.postgres_cpu_s = postgres_after - postgres_before
    broker_after = tree_cpu(servers.broker_pids)
    if broker_before is not None and broker_after is not None:
        sample.broker_cpu_s = broker_after - broker_before


# -- servers and data ----------------------------------------------------------


@contextlib.contextmanager
def servers() -> Iterator[Servers]:
    suffix = uuid.uuid4().hex[:8]
    with demo_database(f"bench_{suffix}") as url, demo_kafka() as kafka:
        yield Servers(
            url,
            dict(kafka),
            broker_pids(str(kafka["bootstrap.servers"])),
            postmaster_pids(url),
        )


def postmaster_pids(url: str) -> list[int]:
    """The server behind `url` (its postmaster), if it runs on this machine: the
    parent of this connection's backend, when that is a local postgres."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    with contextlib.suppress(psutil.Error):
        backend = psutil.Process(int(row[0]))
        postmaster = backend.parent()
        if backend.name() == "postgres" and postmaster is not None:
            return [postmaster.pid]
    return []


def broker_pids(bootstrap: str) -> list[int]:
    """The local broker listening at `bootstrap`, if it is one of ours."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return []
    return [
        proc.pid
        for proc in psutil.process_iter(["cmdline"])
        if any(bootstrap in arg for arg in proc.info["cmdline"] or ())
    ]


def build_data_set(url: str, users: int, say: Callable[[str], None]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        migrations.upgrade(conn, reference_schema=True)
        if conn.execute("SELECT count(*) FROM user_data").fetchone() != (0,):
            raise click.ClickException("user_data is not empty: use a fresh database")
        conn.execute("SET synchronous_commit = off")
        conn.execute("SELECT setseed(0.42)")
        for first in range(1, users + 1, INSERT_CHUNK):
            last = min(first + INSERT_CHUNK - 1, users)
            began = time.monotonic()
            conn.execute(BUILD_USERS, {"first": first, "last": last})
            say(f"  users {first:,}-{last:,} in {time.monotonic() - began:.1f} s")
        began = time.monotonic()
        conn.execute("VACUUM (ANALYZE) user_data")
        say(f"  VACUUM ANALYZE in {time.monotonic() - began:.1f} s")


def cohort_size(url: str, where: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM user_data WHERE ({where})").fetchone()
    assert row is not None
    return int(row[0])


def create_topic(bootstrap: str, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)]
    )
    for future in futures.values():
        future.result(timeout=KAFKA_ADMIN_TIMEOUT_S)


def delete_topic(bootstrap: str, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics([name]).values():
        with contextlib.suppress(Exception):
            future.result(timeout=KAFKA_ADMIN_TIMEOUT_S)


@contextlib.contextmanager
def fresh_topic(servers: Servers) -> Iterator[str]:
    """A topic per repetition, deleted after, so the in-memory broker stays small."""
    name = f"bench-{uuid.uuid4().hex[:10]}"
    create_topic(servers.bootstrap, name)
    try:
        yield name
    finally:
        delete_topic(servers.bootstrap, name)


# -- the measurements --------------------------------------------------------------


def export_ceiling(servers: Servers, where: str) -> Sample:
    """COPY of the cohort's key and message columns to nowhere."""
    columns = ", ".join(("id", *MESSAGE_FIELDS))
    statement = f"COPY (SELECT {columns} FROM user_data WHERE ({where})) TO STDOUT"
    sample = Sample(rows=0, wall_s=0.0)
    with psycopg.connect(servers.database_url) as conn:
        cpu = self_cpu()
        with accounted(servers, sample):
            began = time.perf_counter()
            with conn.cursor() as cur, cur.copy(statement) as copy:
                for block in copy:
                    sample.rows += bytes(block).count(b"\n")
            sample.wall_s = time.perf_counter() - began
        sample.client_cpu_s = self_cpu() - cpu
    return sample


class Counter:
    """Delivery reports: confirmed and failed."""

    def __init__(self) -> None:
        self.confirmed = 0
        self.failed = 0

    def __call__(self, error: Any, _message: Any) -> None:
        if error is None:
            self.confirmed += 1
        else:
            self.failed += 1


def produce_all(
    producer: confluent_kafka.Producer,
    topic: str,
    key: str | bytes,
    value: str | bytes,
    on_delivery: Counter,
    *,
    headers: list[tuple[str, str | bytes | None]] | None = None,
) -> None:
    while True:
        try:
            producer.produce(
                topic, value, key, headers=headers, on_delivery=on_delivery
            )
            return
        except BufferError:
            producer.poll(0.05)


def finish(producer: confluent_kafka.Producer, counter: Counter, expected: int) -> None:
    deadline = time.monotonic() + FLUSH_TIMEOUT_S
    while counter.confirmed + counter.failed < expected and time.monotonic() < deadline:
        producer.flush(1.0)
    if counter.failed or counter.confirmed != expected:
        raise click.ClickException(
            f"broker confirmed {counter.confirmed:,} of {expected:,} messages"
            f" ({counter.failed:,} failed)"
        )


def prebuilt_messages(rows: int) -> list[Message]:
    """Messages as campaigner builds them (envelope, key and headers), rendered
    before the clock starts: what the broker takes in is all that is timed."""
    template = EnvelopeTemplate(
        campaign_id=1,
        campaign_name="bench",
        channel="email",
        template={"template_id": "bench-v1"},
        run_id=1,
        scheduled_for=datetime(2026, 11, 30, 9, tzinfo=UTC),
        manual=True,
        expires_at=datetime(2026, 12, 1, 9, tzinfo=UTC),
        fields=MESSAGE_FIELDS,
    )
    return template.render(
        [(i, f"user{i}@example.com", "Alex", "DE", "de") for i in range(1, rows + 1)],
        produced_at=datetime.now(UTC),
    )


def broker_ceiling(servers: Servers, rows: int) -> Sample:
    """`rows` pre-built messages produced and confirmed."""
    messages = prebuilt_messages(rows)
    settings = servers.settings()
    sample = Sample(rows=rows, wall_s=0.0)
    with fresh_topic(servers) as topic:
        producer = confluent_kafka.Producer(producer_config(settings))
        counter = Counter()
        cpu = self_cpu()
        with accounted(servers, sample):
            began = time.perf_counter()
            for key, value, headers in messages:
                produce_all(producer, topic, key, value, counter, headers=headers)
                producer.poll(0)
            finish(producer, counter, rows)
            sample.wall_s = time.perf_counter() - began
        sample.client_cpu_s = self_cpu() - cpu
    return sample


def naive_pipeline(servers: Servers, where: str, batch_size: int) -> Sample:
    """The pipeline a first version would write: one dict and json.dumps per row."""
    settings = servers.settings()
    columns = ", ".join(("id", *MESSAGE_FIELDS))
    sample = Sample(rows=0, wall_s=0.0)
    with fresh_topic(servers) as topic, psycopg.connect(servers.database_url) as conn:
        producer = confluent_kafka.Producer(producer_config(settings))
        counter = Counter()
        cpu = self_cpu()
        with accounted(servers, sample):
            began = time.perf_counter()
            with conn.cursor(name="naive") as cur:
                cur.itersize = batch_size
                cur.execute(
                    f"SELECT {columns} FROM user_data WHERE ({where}) ORDER BY id"
                )
                for row in cur:
                    value = json.dumps(
                        {
                            "user_id": row[0],
                            **dict(zip(MESSAGE_FIELDS, row[1:], strict=True)),
                            "produced_at": datetime.now(UTC).isoformat(),
                        }
                    ).encode()
                    produce_all(producer, topic, str(row[0]).encode(), value, counter)
                    producer.poll(0)
                    sample.rows += 1
            finish(producer, counter, sample.rows)
            sample.wall_s = time.perf_counter() - began
        sample.client_cpu_s = self_cpu() - cpu
    return sample


class ChildWatch:
    """The child's own peak RSS and each of its threads' CPU time, read from /proc
    while it runs. rusage's ru_maxrss is no use here: Linux keeps it across fork
    and exec, so a child started by a big parent reports the parent's size."""

    def __init__(self, pid: int) -> None:
        self.proc = Path(f"/proc/{pid}")
        self.pid = pid
        self.kib = 0
        self.thread_cpu: dict[int, tuple[str, float]] = {}  # tid: (kind, CPU s)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.watch, daemon=True)
        self.thread.start()

    def watch(self) -> None:
        while not self.done.wait(0.02):
            try:
                status = (self.proc / "status").read_text()
                tids = [int(tid) for tid in os.listdir(self.proc / "task")]
            except OSError:
                return
            for line in status.splitlines():
                if line.startswith("VmHWM:"):  # the process's high-water mark
                    self.kib = max(self.kib, int(line.split()[1]))
            for tid in tids:
                with contextlib.suppress(OSError, ValueError):
                    self.thread_cpu[tid] = self.thread_time(tid)

    def thread_time(self, tid: int) -> tuple[str, float]:
        stat = (self.proc / "task" / str(tid) / "stat").read_text()
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        # utime and stime, fields 14 and 15 of proc(5), in clock ticks.
        cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        if tid == self.pid:
            kind = "main thread"
        elif name.startswith("rdk:"):
            kind = "librdkafka threads"
        else:
            kind = "other Python threads (cohort reader)"
        return kind, cpu

    def cpu_by_thread(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for kind, cpu in self.thread_cpu.values():
            totals[kind] = totals.get(kind, 0.0) + cpu
        return totals

    def stop(self) -> None:
        self.done.set()
        self.thread.join()


def campaigner_execute(
    servers: Servers,
    where: str,
    batch_size: int,
    *,
    processes: int = 1,
    environment: dict[str, str] | None = None,
    profile: Path | None = None,
) -> Sample:
    """A new campaign's slot run by `processes` `campaigner execute --at SLOT`
    started together, as cron would start them, with `environment` added;
    under cProfile writing its statistics to `profile` when given."""
    name = f"bench-{uuid.uuid4().hex[:8]}"
    with fresh_topic(servers) as topic:
        with psycopg.connect(servers.database_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO campaigns (name, schedule, cohort, channel, topic, template,"
                " message_fields, batch_size, deadline)"
                " VALUES (%s, %s, %s, 'email', %s, '{\"template_id\": \"bench\"}',"
                " %s, %s, %s)",
                [
                    name,
                    RUN_SCHEDULE,
                    where,
                    topic,
                    list(MESSAGE_FIELDS),
                    batch_size,
                    RUN_DEADLINE,
                ],
            )
        env = {
            **os.environ,
            "DATABASE_URL": servers.database_url,
            "KAFKA_BOOTSTRAP_SERVERS": servers.bootstrap,
            **(environment or {}),
        }
        for key, value in servers.kafka.items():
            if key != "bootstrap.servers":
                env[f"CAMPAIGNER_KAFKA__{key.replace('.', '_').upper()}"] = str(value)
        command = [sys.executable, "-m", "campaigner", "execute", "--at", RUN_SLOT]
        if profile is not None:
            command[1:1] = ["-m", "cProfile", "-o", str(profile)]
        sample = Sample(rows=0, wall_s=0.0)
        with accounted(servers, sample):
            began = time.perf_counter()
            children = [
                subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)
                for _ in range(processes)
            ]
            watches = [ChildWatch(child.pid) for child in children]
            sample.client_cpu_s = 0.0
            codes = []
            for child, watch in zip(children, watches, strict=True):
                _, status, usage = os.wait4(child.pid, 0)
                watch.stop()
                codes.append(os.waitstatus_to_exitcode(status))
                sample.client_cpu_s += usage.ru_utime + usage.ru_stime
            sample.wall_s = time.perf_counter() - began
        if any(codes):
            raise click.ClickException(f"campaigner execute exited {codes}")
        sample.peak_rss_mb = max(watch.kib for watch in watches) / 1024
        sample.thread_cpu_s = {}
        for watch in watches:
            for kind, cpu in watch.cpu_by_thread().items():
                sample.thread_cpu_s[kind] = sample.thread_cpu_s.get(kind, 0.0) + cpu
        with psycopg.connect(servers.database_url) as conn:
            row = conn.execute(
                "SELECT r.status, r.produced FROM campaign_runs r"
                " JOIN campaigns c ON c.id = r.campaign_id WHERE c.name = %s",
                [name],
            ).fetchone()
            conn.execute(
                "UPDATE campaigns SET status = 'archived' WHERE name = %s", [name]
            )
            conn.commit()
        if row is None or row[0] != "succeeded":
            raise click.ClickException(f"run of {name} ended {row}")
        sample.rows = int(row[1])
    return sample


def memory_growth(
    servers: Servers, batch_size: int, repeat: int, say: Callable[[str], None]
) -> dict[str, Any]:
    """campaigner's peak RSS on a small cohort and on the whole table, `repeat`
    times each, taking turns. One run's peak is a matter of luck too: whether
    the broker paused while the window of batches in flight was full."""
    peaks: dict[str, list[float]] = {"small": [], "large": []}
    rows: dict[str, int] = {}
    rate: list[float] = []
    for index in range(repeat):
        for size, where in (("small", f"id <= {SMALL_COHORT_SIZE}"), ("large", "true")):
            sample = campaigner_execute(servers, where, batch_size)
            assert sample.peak_rss_mb is not None
            peaks[size].append(sample.peak_rss_mb)
            rows[size] = sample.rows
            if size == "large":
                rate.append(sample.rate)
            say(
                f"  memory {size} #{index + 1}: {sample.rows:,} rows,"
                f" peak RSS {sample.peak_rss_mb:.1f} MB"
            )
    small, large = statistics.median(peaks["small"]), statistics.median(peaks["large"])
    return {
        "small_rows": rows["small"],
        "small_rss_mb": small,
        "small_rss_mb_all": peaks["small"],
        "large_rows": rows["large"],
        "large_rss_mb": large,
        "large_rss_mb_all": peaks["large"],
        "large_rate": statistics.median(rate),
        "growth": large / small - 1,
        "growth_worst": max(peaks["large"]) / min(peaks["small"]) - 1,
    }


def profile_summary(path: Path, lines: int = 25) -> str:
    """The functions that took the most time of their own."""
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.sort_stats(pstats.SortKey.TIME).print_stats(lines)
    return out.getvalue()


def dry_run_count(servers: Servers, where: str) -> tuple[Sample, Sample]:
    """A dry-run's cohort count, and a bare count(*) with the same WHERE."""
    settings = servers.settings()
    with psycopg.connect(servers.database_url) as conn:
        began = time.perf_counter()
        row = conn.execute(f"SELECT count(*) FROM user_data WHERE ({where})").fetchone()
        bare = Sample(
            rows=int(row[0]) if row else 0, wall_s=time.perf_counter() - began
        )
        began = time.perf_counter()
        counted = cohort.count(conn, settings, campaign_name="bench", cohort=where)
        ours = Sample(rows=counted, wall_s=time.perf_counter() - began)
    return ours, bare


# -- reporting -------------------------------------------------------------------


def summary(samples: list[Sample]) -> dict[str, Any]:
    rates = [s.rate for s in samples]

    def median_of(field: str) -> float | None:
        values = [getattr(s, field) for s in samples if getattr(s, field) is not None]
        return statistics.median(values) if values else None

    return {
        "rows": samples[0].rows,
        "rate_median": statistics.median(rates),
        "rate_min": min(rates),
        "rate_max": max(rates),
        "wall_s_median": statistics.median(s.wall_s for s in samples),
        "client_cpu_s": median_of("client_cpu_s"),
        "postgres_cpu_s": median_of("postgres_cpu_s"),
        "broker_cpu_s": median_of("broker_cpu_s"),
        "peak_rss_mb": median_of("peak_rss_mb"),
        "thread_cpu_s": median_by_thread(samples),
        "samples": [dataclasses.asdict(s) | {"rate": s.rate} for s in samples],
    }


def median_by_thread(samples: list[Sample]) -> dict[str, float] | None:
    readings = [s.thread_cpu_s for s in samples if s.thread_cpu_s]
    if not readings:
        return None
    kinds = sorted({kind for reading in readings for kind in reading})
    return {
        kind: statistics.median(reading.get(kind, 0.0) for reading in readings)
        for kind in kinds
    }


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render(results: dict[str, Any], console: Console) -> None:
    table = Table(
        title=f"{results['cohort_rows']:,} recipients of {results['users']:,} users,"
        f" {results['repeat']} runs each"
    )
    for column in (
        "measurement",
        "rows/s median",
        "min-max",
        "x ceiling",
        "CPU s: client",
        "PostgreSQL",
        "broker",
        "peak RSS MB",
    ):
        table.add_column(column, justify="left" if column == "measurement" else "right")
    ceiling = results["ceiling_rate"]
    for label, key in (
        ("export ceiling (COPY)", "export"),
        ("broker ceiling", "broker"),
        ("naive pipeline", "naive"),
        ("campaigner execute", "campaigner"),
        ("campaigner, 2 processes", "campaigner_2"),
    ):
        if key not in results["measurements"]:
            continue
        m = results["measurements"][key]
        table.add_row(
            label,
            f"{m['rate_median']:,.0f}",
            f"{m['rate_min']:,.0f}-{m['rate_max']:,.0f}",
            f"{m['rate_median'] / ceiling:.2f}",
            seconds(m["client_cpu_s"]),
            seconds(m["postgres_cpu_s"]),
            seconds(m["broker_cpu_s"]),
            "-" if m["peak_rss_mb"] is None else f"{m['peak_rss_mb']:.0f}",
        )
    console.print(table)
    for line in results["verdicts"]:
        console.print(line)


def verdicts(results: dict[str, Any]) -> list[str]:
    m = results["measurements"]
    lines = []
    ours = m["campaigner"]["rate_median"]
    lines.append(
        f"campaigner / slower ceiling: {ours / results['ceiling_rate']:.2f} (goal >= 0.5)"
    )
    if "naive" in m:
        lines.append(
            f"campaigner / naive pipeline: {ours / m['naive']['rate_median']:.2f}"
            " (goal >= 2.5)"
        )
    if "campaigner_2" in m:
        shared = m["campaigner_2"]["rate_median"]
        against_naive = (
            f", / naive pipeline: {shared / m['naive']['rate_median']:.2f}"
            if "naive" in m
            else ""
        )
        lines.append(
            f"2 processes sharing the run / slower ceiling:"
            f" {shared / results['ceiling_rate']:.2f}{against_naive};"
            f" / one process: {shared / ours:.2f}"
        )
    if threads := m["campaigner"].get("thread_cpu_s"):
        per_message = ", ".join(
            f"{kind} {cpu / m['campaigner']['rows'] * 1e6:.1f} µs"
            for kind, cpu in sorted(threads.items(), key=lambda item: -item[1])
        )
        lines.append(f"campaigner's CPU per message by thread: {per_message}")
    if "memory" in results:
        mem = results["memory"]
        lines.append(
            f"peak RSS, median of {len(mem['large_rss_mb_all'])}:"
            f" {mem['small_rss_mb']:.0f} MB for {mem['small_rows']:,} recipients,"
            f" {mem['large_rss_mb']:.0f} MB for {mem['large_rows']:,}"
            f" ({mem['growth'] * 100:+.1f} %, goal within +-10 %;"
            f" largest against smallest {mem['growth_worst'] * 100:+.1f} %)"
        )
    if "dry_run" in results:
        dr = results["dry_run"]
        lines.append(f"dry-run count / bare count(*): {dr['ratio']:.2f} (goal <= 1.2)")
    return lines


@click.command()
@click.option(
    "--users", default=5_000_000, show_default=True, help="Rows in user_data."
)
@click.option("--cohort", "where", default=DEFAULT_COHORT, show_default=True)
@click.option(
    "--repeat", default=3, show_default=True, help="Runs of each measurement."
)
@click.option("--batch-size", default=5000, show_default=True)
@click.option("--skip-naive", is_flag=True, help="Leave out the naive pipeline.")
@click.option(
    "--skip-memory", is_flag=True, help="Leave out the small/whole-table RSS runs."
)
@click.option(
    "--profile",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also run campaigner once under cProfile and write its statistics here.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("benchmarks/results/latest.json"),
    show_default=True,
)
def main(
    users: int,
    where: str,
    repeat: int,
    batch_size: int,
    skip_naive: bool,
    skip_memory: bool,
    profile: Path | None,
    output: Path,
) -> None:
    """Measure PostgreSQL's and the broker's ceilings and campaigner on one cohort."""
    console = Console(stderr=True)
    say = console.print
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(),
        "users": users,
        "cohort": where,
        "repeat": repeat,
        "batch_size": batch_size,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "measurements": {},
    }
    with servers() as srv:
        say(f"building {users:,} users...")
        build_data_set(srv.database_url, users, say)
        rows = cohort_size(srv.database_url, where)
        results["cohort_rows"] = rows
        say(f"cohort: {rows:,} rows")
        runs: dict[str, Callable[[], Sample]] = {
            "export": lambda: export_ceiling(srv, where),
            "broker": lambda: broker_ceiling(srv, rows),
            "campaigner": lambda: campaigner_execute(srv, where, batch_size),
            "campaigner_2": lambda: campaigner_execute(
                srv, where, batch_size, processes=2, environment=sharding(rows)
            ),
        }
        if not skip_naive:
            runs["naive"] = lambda: naive_pipeline(srv, where, batch_size)
        for key, run in runs.items():
            samples = []
            for index in range(repeat):
                sample = run()
                say(
                    f"  {key} #{index + 1}: {sample.rows:,} rows in {sample.wall_s:.2f} s"
                    f" = {sample.rate:,.0f}/s"
                )
                samples.append(sample)
            if any(s.rows != rows for s in samples):
                raise click.ClickException(
                    f"{key} moved {[s.rows for s in samples]}, not {rows}"
                )
            results["measurements"][key] = summary(samples)
        measured = results["measurements"]
        results["ceiling_rate"] = min(
            measured["export"]["rate_median"], measured["broker"]["rate_median"]
        )
        if not skip_memory:
            results["memory"] = memory_growth(srv, batch_size, repeat, say)
        if profile is not None:
            campaigner_execute(srv, where, batch_size, profile=profile)
            results["profile_top"] = profile_summary(profile)
            say(results["profile_top"])
        counts = [dry_run_count(srv, where) for _ in range(repeat)]
        ours = statistics.median(c[0].wall_s for c in counts)
        bare = statistics.median(c[1].wall_s for c in counts)
        results["dry_run"] = {
            "count_s": ours,
            "bare_count_s": bare,
            "ratio": ours / bare,
        }
    results["verdicts"] = verdicts(results)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    render(results, Console(width=None if sys.stdout.isatty() else 132))
    say(f"results written to {output}")


if __name__ == "__main__":
    main()
