"""`campaigner demo`: the real job end to end, on throwaway or borrowed servers.

Loads seeded fake customers and a few campaigns into a fresh database, runs
`campaigner execute` in a subprocess at a fixed tick, reads every topic back and
checks that each due campaign reached every member of its cohort exactly once.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import confluent_kafka
import psycopg
from psycopg import sql
from rich.table import Table

from campaigner import config, demo_customers, embedded, errors, migrations
from campaigner.demo_servers import (
    PARTITIONS,
    KafkaConfig,
    connect,
    demo_database,
    demo_kafka,
    demo_topics,
    sigterm_as_interrupt,
    step,
)
from campaigner.output import console

# Message keys (user ids) read back, by campaign id.
Received = dict[int, list[bytes]]

# A Monday 09:00 UTC: 09:00 UTC, 10:00 in Berlin and 18:00 in Tokyo are slots of
# the campaigns below; 07:30 in New York and midnight UTC are not.
TICK = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
# Worked out by hand from TICK, independently of campaigner's scheduler.
DUE_AT_TICK = frozenset(
    {"cart-recovery-push", "weekday-digest-dach", "vip-evening-sms"}
)
CAMPAIGNS_SQL = """
INSERT INTO campaigns (name, schedule, timezone, channel, topic, batch_size,
                       message_fields, cohort, template, created_at, updated_at,
                       deadline)
SELECT name, schedule, timezone, channel, topic, batch_size, message_fields, cohort,
       jsonb_build_object('id', name || '-v1'), %(created)s, %(created)s,
       -- The demo replays a fixed tick in the past: a deadline of years keeps
       -- its slots sendable (the default, 4 hours, would expire them).
       interval '10 years'
FROM (VALUES
  ('cart-recovery-push', '*/15 * * * *', 'UTC', 'push', %(push)s, 2000,
   '{push_token,first_name,language}'::text[], $$push_token IS NOT NULL
AND last_active_at > now() - interval '30 days'
AND attributes->>'plan' IN ('plus', 'pro')$$),
  ('weekday-digest-dach', '0 10 * * 1-5', 'Europe/Berlin', 'email', %(email)s, 5000,
   '{email,first_name,language,city}', $$email_consent
AND country IN ('DE', 'AT', 'CH')$$),
  ('vip-evening-sms', '0 18 * * *', 'Asia/Tokyo', 'sms', %(messaging)s, 1000,
   '{phone,first_name,language}', $$sms_consent AND country IN ('JP', 'IN')
AND (lifetime_value BETWEEN 200 AND 5000 OR attributes->'interests' ? 'travel')$$),
  ('morning-deals-whatsapp', '30 7 * * *', 'America/New_York', 'whatsapp',
   %(messaging)s, 500, '{phone,first_name}', $$whatsapp_consent
AND country IN ('US', 'MX', 'BR') AND attributes->'interests' ? 'deals'$$),
  ('pro-renewal-reminder', '@daily', 'UTC', 'email', %(email)s, 10000,
   '{email,first_name}', $$email_consent AND attributes @> '{"plan": "pro"}'
AND created_at < now() - interval '330 days'$$)
) AS demo (name, schedule, timezone, channel, topic, batch_size, message_fields, cohort)
"""
COUNT_QUERY = "SELECT count(*) FROM user_data WHERE (\n{}\n)"
CAMPAIGNS_QUERY = (
    "SELECT id, name, schedule, timezone, cohort FROM campaigns ORDER BY id"
)
RUNS_QUERY = """
SELECT c.name, r.status, r.produced, r.matched
FROM campaign_runs r JOIN campaigns c ON c.id = r.campaign_id
ORDER BY r.id
"""
TABLE_COLUMNS = ("campaign", "schedule", "timezone", "due", "cohort", "messages",
                 "recipients", "ok")  # fmt: skip
READ_BACK_TIMEOUT_S = 60.0


def run(*, users: int) -> int:
    """Run the demo; 0 when every due campaign reached its whole cohort exactly once."""
    started = time.monotonic()
    suffix = secrets.token_hex(4)
    try:
        with sigterm_as_interrupt(), contextlib.ExitStack() as stack:
            database_url = stack.enter_context(demo_database(suffix))
            kafka = stack.enter_context(demo_kafka())
            topics = stack.enter_context(demo_topics(kafka, suffix))
            prepare_database(database_url, users=users, topics=topics)
            code = execute_job(database_url, kafka)
            if code != errors.EXIT_OK:
                return code
            step("reading every topic back…")
            received = read_back(kafka, suffix, topics)
            return report(database_url, received, started=started)
    except embedded.EmbeddedServerError as exc:
        raise errors.CampaignerError(str(exc)) from exc
    except KeyboardInterrupt:
        step("interrupted: the demo's servers, database and topics are gone")
        return errors.EXIT_INTERRUPTED


def prepare_database(database_url: str, *, users: int, topics: dict[str, str]) -> None:
    with connect(database_url) as conn:
        step("applying the schema…")
        migrations.upgrade(conn, reference_schema=True)
        step(f"loading {users:,} customers…")
        demo_customers.load_customers(conn, users=users)
        step("inserting 5 campaigns…")
        # Created a minute before the tick: no earlier slot may count as missed.
        conn.execute(CAMPAIGNS_SQL, {**topics, "created": TICK - timedelta(minutes=1)})


def execute_job(database_url: str, kafka: KafkaConfig) -> int:
    """The real cron entry point, in its own process, at the demo's tick."""
    step(f"running `campaigner execute --at {TICK:%Y-%m-%dT%H:%MZ}`…")
    # The caller's own CAMPAIGNER_* settings would win over this demo's servers...
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPAIGNER_")}
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        # ...except the librdkafka properties a real cluster needs.
        prefix = config.KAFKA_PROPERTY_ENV_PREFIX
        env |= {k: v for k, v in os.environ.items() if k.startswith(prefix)}
    env |= {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": str(kafka["bootstrap.servers"]),
    }
    command = [sys.executable, "-m", "campaigner", "execute", "--at", TICK.isoformat()]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != errors.EXIT_OK:
        sys.stderr.write(done.stderr)
        step(f"demo failed: campaigner execute exited with code {done.returncode}")
    return done.returncode


def read_back(kafka: KafkaConfig, suffix: str, topics: dict[str, str]) -> Received:
    """Each message's key (the user id) by the campaign id in its headers."""
    reader = {"group.id": f"demo-{suffix}", "enable.partition.eof": True}
    # No Python logger here: Ctrl-C inside its callback surfaces as a SystemError.
    consumer = confluent_kafka.Consumer(kafka | reader | {"enable.auto.commit": False})
    received: Received = {}
    try:
        for message in messages_to_end(consumer, list(topics.values())):
            campaign_id = int(dict(message.headers() or []).get("campaign_id") or 0)
            received.setdefault(campaign_id, []).append(message.key() or b"")
    finally:
        consumer.close()
    return received


def messages_to_end(consumer: Any, topics: list[str]) -> Iterator[Any]:
    """Every message of every partition, until each has reported its end: by
    end-of-partition events, not watermarks, which some brokers get wrong."""
    start = confluent_kafka.OFFSET_BEGINNING
    assigned = [
        confluent_kafka.TopicPartition(topic, partition, start)
        for topic in topics
        for partition in range(PARTITIONS)
    ]
    unread: set[tuple[str | None, int | None]]
    unread = {(p.topic, p.partition) for p in assigned}
    consumer.assign(assigned)
    deadline = time.monotonic() + READ_BACK_TIMEOUT_S
    while unread and time.monotonic() < deadline:
        for message in consumer.consume(num_messages=10_000, timeout=0.5):
            where, error = (message.topic(), message.partition()), message.error()
            if error is None:
                unread.add(where)
                yield message
            elif error.code() == confluent_kafka.KafkaError._PARTITION_EOF:
                unread.discard(where)
            else:
                raise errors.KafkaError(f"reading {where[0]} back: {error.str()}")
    if unread:
        step(f"warning: {len(unread)} partition(s) not read to their end in time")


class Outcome(NamedTuple):
    """One campaign at the tick: its cohort next to what was read back."""

    name: str
    schedule: str
    timezone: str
    due: bool
    cohort: int | None
    messages: int
    recipients: int

    @property
    def ok(self) -> bool:
        if not self.due:
            return self.messages == 0
        return 0 < self.messages == self.recipients == self.cohort


def report(database_url: str, received: Received, *, started: float) -> int:
    """Print each campaign's outcome and the run ledger; 0 when every outcome is ok."""
    with connect(database_url) as conn:
        campaigns = conn.execute(CAMPAIGNS_QUERY).fetchall()
        outcomes = [compare(conn, row, received) for row in campaigns]
        runs = conn.execute(RUNS_QUERY).fetchall()
    print_outcomes(outcomes)
    ledger = ", ".join(
        f"{name} {status} {produced:,}/{matched:,}"
        for name, status, produced, matched in runs
    )
    elapsed = time.monotonic() - started
    console().print(
        f"done in {elapsed:.1f} s; campaign_runs (produced/matched): {ledger or 'none'}"
    )
    failed = [outcome.name for outcome in outcomes if not outcome.ok]
    if failed:
        step(f"demo failed: what was read back does not match {', '.join(failed)}")
        return errors.EXIT_BUG
    return errors.EXIT_OK


def compare(conn: psycopg.Connection, campaign: Any, received: Received) -> Outcome:
    campaign_id, name, schedule, timezone, cohort = campaign
    keys = received.get(campaign_id, [])
    due = name in DUE_AT_TICK
    size = cohort_size(conn, cohort) if due else None
    return Outcome(name, schedule, timezone, due, size, len(keys), len(set(keys)))


def cohort_size(conn: psycopg.Connection, cohort: str) -> int:
    """Counted here, independently of campaigner's own cohort code."""
    query = sql.SQL(COUNT_QUERY).format(sql.SQL(cohort))
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def print_outcomes(outcomes: list[Outcome]) -> None:
    out = console()
    marks = ("✓", "✗") if out.encoding.lower().startswith("utf") else ("ok", "FAIL")
    table = Table(
        *TABLE_COLUMNS, title=f"campaigner demo: tick {TICK:%Y-%m-%d %H:%M} UTC"
    )
    for outcome in outcomes:
        local = TICK.astimezone(ZoneInfo(outcome.timezone))
        table.add_row(
            *outcome[:3],
            f"yes, {local:%a %H:%M %Z}" if outcome.due else "no",
            "-" if outcome.cohort is None else f"{outcome.cohort:,}",
            f"{outcome.messages:,}",
            f"{outcome.recipients:,}",
            marks[0] if outcome.ok else marks[1],
        )
    out.print(table)
