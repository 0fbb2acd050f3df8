"""Shared fixtures: real PostgreSQL and a real Kafka-protocol broker for the session,
a fresh database cloned from a migrated template for every test, a fresh topic.

`DATABASE_URL` / `KAFKA_BOOTSTRAP_SERVERS` point the suite at existing servers;
without them, throwaway ones are started on loopback for the session.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from click.testing import CliRunner, Result
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from campaigner import cli, migrations
from campaigner.config import Settings

# A developer's own settings must not leak into the tests.
for _name in [name for name in os.environ if name.startswith("CAMPAIGNER_")]:
    del os.environ[_name]

# Read once, then removed: code under test only ever sees the per-test database
# and broker that a test hands it explicitly.
SERVER_DATABASE_URL = os.environ.pop("DATABASE_URL", "")
SERVER_KAFKA_BOOTSTRAP = os.environ.pop("KAFKA_BOOTSTRAP_SERVERS", "")

ADMIN_TIMEOUT_S = 15
CLI_TIMEOUT_S = 60.0
TOPIC_PARTITIONS = 3
COUNTRIES = ("DE", "FR", "US", "GB", "ES", "IT")


# -- PostgreSQL ---------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """The server: DATABASE_URL when set, else a throwaway one for the session."""
    if SERVER_DATABASE_URL:
        yield SERVER_DATABASE_URL
        return
    from campaigner.embedded import EmbeddedPostgres

    with EmbeddedPostgres() as server:
        yield server.url


def url_for_database(server_url: str, name: str) -> str:
    """The server's URL (or keyword conninfo) with another database name."""
    if "://" in server_url:
        parts = urlsplit(server_url)
        return urlunsplit(parts._replace(path=f"/{name}"))
    return make_conninfo(server_url, dbname=name)


def create_database(server_url: str, name: str, *, template: str | None = None) -> None:
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(statement)


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def template_database(postgres_server_url: str) -> Iterator[str]:
    """A database migrated once per session, with the reference customer table."""
    name = unique_name("campaigner_test_template")
    create_database(postgres_server_url, name)
    try:
        url = url_for_database(postgres_server_url, name)
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            migrations.upgrade(conn, reference_schema=True)
        yield name
    finally:
        drop_database(postgres_server_url, name)


@pytest.fixture
def database_url(postgres_server_url: str, template_database: str) -> Iterator[str]:
    """A fresh migrated database for this test only."""
    name = unique_name("campaigner_test")
    create_database(postgres_server_url, name, template=template_database)
    try:
        yield url_for_database(postgres_server_url, name)
    finally:
        drop_database(postgres_server_url, name)


@pytest.fixture
def empty_database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh database without any of campaigner's tables."""
    name = unique_name("campaigner_test_empty")
    create_database(postgres_server_url, name)
    try:
        yield url_for_database(postgres_server_url, name)
    finally:
        drop_database(postgres_server_url, name)


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to the test's database, for arranging and checking."""
    with psycopg.connect(database_url, autocommit=True, connect_timeout=10) as conn:
        yield conn


def insert_users(
    conn: psycopg.Connection[Any], count: int, *, first_id: int = 1
) -> None:
    """Insert `count` generated customers with ids first_id, first_id + 1, ...

    Country is COUNTRIES[id % 6] (DE for ids divisible by 6, FR for id % 6 == 1, ...);
    email consent for id % 3 != 0, SMS consent for even ids.
    """
    conn.execute(
        """
        INSERT INTO user_data (
            id, email, phone, first_name, last_name, country, language, city,
            email_consent, sms_consent, whatsapp_consent, push_token,
            lifetime_value, attributes)
        SELECT
            g,
            'user' || g || '@example.test',
            '+1555' || lpad(g::text, 7, '0'),
            'first' || g,
            'last' || g,
            (%(countries)s::text[])[1 + g %% 6],
            (ARRAY['de', 'fr', 'en', 'en', 'es', 'it'])[1 + g %% 6],
            'city' || g %% 50,
            g %% 3 <> 0,
            g %% 2 = 0,
            g %% 5 = 0,
            'push-' || g,
            (g %% 1000) / 10.0,
            jsonb_build_object('segment', g %% 4)
        FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
        """,
        {"countries": list(COUNTRIES), "first": first_id, "last": first_id + count - 1},
    )


def user_ids(conn: psycopg.Connection[Any], cohort: str) -> list[int]:
    """The ids a cohort matches, computed independently of campaigner."""
    query = sql.SQL("SELECT id FROM user_data WHERE {} ORDER BY id").format(
        sql.SQL(cohort)
    )
    return [row[0] for row in conn.execute(query)]


# The tick most tests replay: 09:00 UTC on a Monday in the past, when the default
# schedule "0 9 * * *" is due.
TICK = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
TICK_TEXT = "2025-06-02T09:00"

# Most tests replay a fixed tick in the past; a deadline of years keeps its
# slots sendable. Tests of deadlines pass their own.
REPLAY_DEADLINE = timedelta(days=3650)


def insert_campaign(
    conn: psycopg.Connection[Any],
    *,
    name: str,
    topic: str,
    schedule: str = "0 9 * * *",
    timezone: str = "UTC",
    cohort: str = "true",
    channel: str = "email",
    message_fields: Sequence[str] = ("email", "country"),
    batch_size: int = 5000,
    status: str = "active",
    template: Any = None,
    grace: timedelta | None = None,
    active_from: datetime | None = None,
    active_until: datetime | None = None,
    deadline: timedelta = REPLAY_DEADLINE,
) -> int:
    """Insert a campaign row as an operator would, and return its id."""
    row = conn.execute(
        """
        INSERT INTO campaigns (
            name, schedule, timezone, cohort, channel, topic, template,
            message_fields, batch_size, status, grace, active_from, active_until,
            deadline)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                coalesce(%s, '15 minutes'::interval), %s, %s, %s)
        RETURNING id
        """,
        [
            name,
            schedule,
            timezone,
            cohort,
            channel,
            topic,
            Jsonb(template if template is not None else {"template_id": f"{name}-v1"}),
            list(message_fields),
            batch_size,
            status,
            grace,
            active_from,
            active_until,
            deadline,
        ],
    ).fetchone()
    assert row is not None
    return int(row[0])


def run_rows(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Every campaign_runs row, in id order, as dicts."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM campaign_runs ORDER BY id")
        return cur.fetchall()


# -- Kafka --------------------------------------------------------------------


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """The broker: KAFKA_BOOTSTRAP_SERVERS when set, else a throwaway one."""
    if SERVER_KAFKA_BOOTSTRAP:
        yield SERVER_KAFKA_BOOTSTRAP
        return
    from campaigner.embedded import EmbeddedKafka

    with EmbeddedKafka() as broker:
        yield broker.bootstrap_servers


def create_topic(
    bootstrap: str, name: str, *, partitions: int = TOPIC_PARTITIONS
) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1)],
        operation_timeout=ADMIN_TIMEOUT_S,
    )
    futures[name].result(timeout=ADMIN_TIMEOUT_S)


def delete_topic(bootstrap: str, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.delete_topics([name], operation_timeout=ADMIN_TIMEOUT_S)
    futures[name].result(timeout=ADMIN_TIMEOUT_S)


@pytest.fixture
def topic(kafka_bootstrap: str) -> Iterator[str]:
    """A fresh topic with 3 partitions, deleted after the test."""
    name = f"campaigner-test-{uuid.uuid4().hex[:12]}"
    create_topic(kafka_bootstrap, name)
    yield name
    delete_topic(kafka_bootstrap, name)


def read_back(
    bootstrap: str, topic: str, expected: int, timeout: float = 30
) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    """Every message of `topic` as (key, decoded JSON value, headers).

    Reads every partition from the beginning until each one reports EOF and at
    least `expected` messages arrived, or until `timeout`. Watermarks are not
    trusted: Tansu reports them wrong for batches of several records.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"campaigner-test-read-back-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    messages: list[tuple[str, dict[str, Any], dict[str, str]]] = []
    try:
        metadata = consumer.list_topics(topic, timeout=ADMIN_TIMEOUT_S)
        partitions = sorted(metadata.topics[topic].partitions)
        consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions]
        )
        at_eof: set[int] = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in consumer.consume(num_messages=10_000, timeout=0.2):
                error = message.error()
                if error is not None:
                    assert error.code() == KafkaError._PARTITION_EOF, error
                    at_eof.add(message.partition())
                    continue
                at_eof.discard(message.partition())
                messages.append(
                    (
                        message.key().decode(),
                        json.loads(message.value()),
                        {k: v.decode() for k, v in message.headers() or []},
                    )
                )
            if len(at_eof) == len(partitions) and len(messages) >= expected:
                break
    finally:
        consumer.close()
    return messages


# -- campaigner ---------------------------------------------------------------


@pytest.fixture
def settings(database_url: str, kafka_bootstrap: str) -> Settings:
    return Settings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_timeout=10,
        connect_timeout=3,
    )


def cli_env(
    *,
    database_url: str | None,
    kafka_bootstrap: str | None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a campaigner process: ours, plus the test's servers."""
    env = dict(os.environ)
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    if kafka_bootstrap is not None:
        env["KAFKA_BOOTSTRAP_SERVERS"] = kafka_bootstrap
    env.update(extra or {})
    return env


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "campaigner", *args]


def run_cli(
    *args: str,
    database_url: str | None = None,
    kafka_bootstrap: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = CLI_TIMEOUT_S,
) -> tuple[int, str, str]:
    """Run the installed campaigner in a subprocess: (returncode, stdout, stderr)."""
    done = subprocess.run(
        cli_command(*args),
        env=cli_env(
            database_url=database_url, kafka_bootstrap=kafka_bootstrap, extra=env
        ),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def invoke_cli(
    *args: str, settings: Settings, env: dict[str, str] | None = None
) -> Result:
    """The CLI in-process (click's CliRunner), pointed at the test's servers."""
    return CliRunner().invoke(
        cli.cli,
        list(args),
        env={
            "DATABASE_URL": settings.database_url,
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "CAMPAIGNER_KAFKA_TIMEOUT": str(settings.kafka_timeout),
            "CAMPAIGNER_CONNECT_TIMEOUT": str(settings.connect_timeout),
            **(env or {}),
        },
        catch_exceptions=False,
    )


@pytest.fixture(autouse=True)
def restore_campaigner_logging() -> Iterator[None]:
    """The CLI configures the "campaigner" logger; undo that after each test."""
    logger = logging.getLogger("campaigner")
    saved = (logger.level, list(logger.handlers), logger.propagate)
    yield
    logger.setLevel(saved[0])
    logger.handlers[:] = saved[1]
    logger.propagate = saved[2]


# -- crash and fault tests ----------------------------------------------------


def wait_for(condition: Any, *, timeout: float, interval: float = 0.02) -> bool:
    """Poll `condition()` until it is true or `timeout` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


def start_cli(
    *args: str,
    database_url: str,
    kafka_bootstrap: str,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    """Start the installed campaigner in a subprocess, without waiting for it."""
    return subprocess.Popen(
        cli_command(*args),
        env=cli_env(
            database_url=database_url, kafka_bootstrap=kafka_bootstrap, extra=env
        ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_checkpoint(database_url: str) -> int:
    """The only run's checkpoint (0 before any), read on a connection of its own."""
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute("SELECT max(checkpoint) FROM campaign_runs").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def finish(process: subprocess.Popen[str], *, timeout: float) -> tuple[str, str]:
    """Wait for the process to end (killing it if it does not); its output."""
    try:
        return process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def copies_by_user(
    messages: list[tuple[str, dict[str, Any], dict[str, str]]],
) -> dict[int, list[str]]:
    """Each user id read back, with the idempotency key of every copy."""
    copies: dict[int, list[str]] = collections.defaultdict(list)
    for _, value, _ in messages:
        copies[value["recipient"]["user_id"]].append(value["idempotency_key"])
    return copies
