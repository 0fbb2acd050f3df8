"""One `execute` against two on a sharded run, on one machine.

For each repetition, three runs of the same cohort (`true` over --users
generated customers), each into a fresh topic and a new slot: one `execute`
sending the run whole, one sending it in 8 shards, and two started together
on 8 shards. Prints the wall time of the processes, campaigner's CPU seconds,
how busy the machine was, and what a consumer read back (distinct recipients,
copies), then the medians.

    .venv/bin/python -m benchmarks.shards --users 200000 --repeat 5

Uses throwaway PostgreSQL and Tansu servers (DATABASE_URL and
KAFKA_BOOTSTRAP_SERVERS are ignored: the data set is built from scratch).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta

import click
import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from campaigner import migrations
from campaigner.embedded import EmbeddedKafka, EmbeddedPostgres

PARTITIONS = 6
SHARDS = 8
READ_BACK_TIMEOUT_S = 300
PROCESS_TIMEOUT_S = 1800
FIRST_SLOT = date(2025, 6, 1)

USERS_SQL = """
INSERT INTO user_data (
    id, email, phone, first_name, last_name, country, language, city,
    email_consent, sms_consent, whatsapp_consent, push_token, lifetime_value,
    attributes)
SELECT g, 'user' || g || '@example.test', '+1555' || lpad(g::text, 7, '0'),
       'first' || g, 'last' || g,
       (ARRAY['DE', 'FR', 'US', 'GB', 'ES', 'IT'])[1 + g %% 6], 'en',
       'city' || g %% 50, g %% 3 <> 0, g %% 2 = 0, g %% 5 = 0, 'push-' || g,
       (g %% 1000) / 10.0, jsonb_build_object('segment', g %% 4)
FROM generate_series(1, %s) AS g
"""
CAMPAIGN_SQL = """
INSERT INTO campaigns (
    name, schedule, cohort, channel, topic, message_fields, batch_size, deadline)
VALUES ('bench', '0 9 * * *', 'true', 'email', 'unset', '{email,country}', 5000,
        '3650 days')
"""


@dataclasses.dataclass(frozen=True)
class Mode:
    label: str
    environment: dict[str, str]
    processes: int


@dataclasses.dataclass(frozen=True)
class Measured:
    wall_s: float
    cpu_s: float
    busy: float
    exit_codes: list[int]
    distinct: int
    copies: int


def sharding(recipients: int, shards: int = SHARDS) -> dict[str, str]:
    """Settings that split a run of `recipients` into about `shards` shards."""
    return {
        "CAMPAIGNER_SHARD_THRESHOLD": str(recipients // 2),
        "CAMPAIGNER_SHARD_SIZE": str(max(1_000, recipients // shards)),
    }


def modes(users: int) -> list[Mode]:
    sharded = sharding(users)
    return [
        Mode("whole, 1 process", {"CAMPAIGNER_SHARD_THRESHOLD": "0"}, 1),
        Mode(f"{SHARDS} shards, 1 process", sharded, 1),
        Mode(f"{SHARDS} shards, 2 processes", sharded, 2),
    ]


def machine_busy() -> tuple[int, int]:
    """Busy and total jiffies of all CPUs so far (Linux)."""
    with open("/proc/stat", encoding="ascii") as stat:
        values = [int(value) for value in stat.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def execute(
    environment: dict[str, str], slot: str, processes: int
) -> tuple[float, float, float, list[int]]:
    """Start the executes together; wall time, their CPU, machine busy share."""
    command = [sys.executable, "-m", "campaigner", "execute", "--at", slot]
    before, busy_before = resource.getrusage(resource.RUSAGE_CHILDREN), machine_busy()
    started = time.monotonic()
    running = [
        subprocess.Popen(command, env=environment, stdin=subprocess.DEVNULL)
        for _ in range(processes)
    ]
    codes = [process.wait(timeout=PROCESS_TIMEOUT_S) for process in running]
    wall = time.monotonic() - started
    after, busy_after = resource.getrusage(resource.RUSAGE_CHILDREN), machine_busy()
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    busy = (busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1])
    return wall, cpu, busy, codes


def read_back(bootstrap: str, topic: str, expected: int) -> collections.Counter[int]:
    """Copies of each user id in the topic (until every partition's end)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    copies: collections.Counter[int] = collections.Counter()
    try:
        partitions = sorted(
            consumer.list_topics(topic, timeout=15).topics[topic].partitions
        )
        consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions]
        )
        at_end: set[int] = set()
        deadline = time.monotonic() + READ_BACK_TIMEOUT_S
        while time.monotonic() < deadline:
            for message in consumer.consume(num_messages=10_000, timeout=0.2):
                partition, key = message.partition(), message.key()
                if message.error() is not None:  # the end of a partition
                    at_end.add(partition if partition is not None else -1)
                    continue
                assert partition is not None and key is not None
                at_end.discard(partition)
                copies[int(key)] += 1
            if len(at_end) == len(partitions) and copies.total() >= expected:
                break
    finally:
        consumer.close()
    return copies


def measure(
    conn: psycopg.Connection,
    admin: AdminClient,
    base: dict[str, str],
    mode: Mode,
    *,
    slot: str,
    users: int,
) -> Measured:
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    admin.create_topics(
        [NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)]
    )[topic].result(15)
    conn.execute("UPDATE campaigns SET topic = %s", [topic])
    wall, cpu, busy, codes = execute({**base, **mode.environment}, slot, mode.processes)
    copies = read_back(base["KAFKA_BOOTSTRAP_SERVERS"], topic, users)
    return Measured(wall, cpu, busy, codes, len(copies), copies.total())


@click.command()
@click.option(
    "--users", type=click.IntRange(min=10_000), default=200_000, show_default=True
)
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True)
def main(users: int, repeat: int) -> None:
    """One execute against two on a sharded run; medians at the end."""
    results: dict[str, list[Measured]] = collections.defaultdict(list)
    with EmbeddedPostgres() as postgres, EmbeddedKafka() as kafka:
        base = {
            **os.environ,
            "DATABASE_URL": postgres.url,
            "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        }
        admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
        with psycopg.connect(postgres.url, autocommit=True) as conn:
            migrations.upgrade(conn, reference_schema=True)
            conn.execute(USERS_SQL, [users])
            conn.execute("ANALYZE user_data")
            conn.execute(CAMPAIGN_SQL)
            slots = (FIRST_SLOT + timedelta(days=day) for day in range(10_000))
            for _ in range(repeat):
                for mode in modes(users):
                    slot = f"{next(slots).isoformat()}T09:00"
                    measured = measure(conn, admin, base, mode, slot=slot, users=users)
                    results[mode.label].append(measured)
                    print(
                        json.dumps(
                            {"mode": mode.label, **dataclasses.asdict(measured)}
                        ),
                        flush=True,
                    )
    for label, runs in results.items():
        wall = statistics.median(run.wall_s for run in runs)
        cpu = statistics.median(run.cpu_s for run in runs)
        once = all(run.distinct == run.copies == users for run in runs)
        print(
            f"{label:22s} median {wall:6.2f}s ({users / wall:,.0f}/s), campaigner CPU"
            f" {cpu:.2f}s, min {min(r.wall_s for r in runs):.2f}s, max"
            f" {max(r.wall_s for r in runs):.2f}s, each recipient exactly once: {once}"
        )


if __name__ == "__main__":
    main()
