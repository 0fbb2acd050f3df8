"""The demo's servers, database and topics: throwaway, or borrowed and cleaned up after."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

import click
import confluent_kafka
import psycopg
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from psycopg import conninfo, sql

from campaigner import config, db, embedded, errors

logger = logging.getLogger(__name__)

KafkaConfig = dict[str, str | int | float | bool]
TOPIC_FAMILIES = ("email", "messaging", "push")
PARTITIONS = 3
KAFKA_ADMIN_TIMEOUT_S = 15.0


def step(text: str) -> None:
    click.echo(text, err=True)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so that every cleanup still runs."""

    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def demo_database(suffix: str) -> Iterator[str]:
    """A throwaway server, or a new database on DATABASE_URL's server, dropped after."""
    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        step("starting PostgreSQL…")
        with embedded.EmbeddedPostgres() as server:
            yield server.url
        return
    name = f"campaigner_demo_{suffix}"
    step(f"creating database {name} on the server of DATABASE_URL…")
    with connect(server_url) as admin:
        try:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.Error as exc:
            raise errors.DatabaseError(
                f"cannot create the demo database: {db.first_line(str(exc))}"
                " (the role of DATABASE_URL needs CREATEDB)"
            ) from exc
        try:
            yield conninfo.make_conninfo(server_url, dbname=name)
        finally:
            step(f"dropping database {name}…")
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            statement = drop.format(sql.Identifier(name))
            warn_on_failure("drop the demo database", lambda: admin.execute(statement))


@contextlib.contextmanager
def demo_kafka() -> Iterator[KafkaConfig]:
    """librdkafka settings for a throwaway broker, or for KAFKA_BOOTSTRAP_SERVERS."""
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if servers:
        step("using Kafka at KAFKA_BOOTSTRAP_SERVERS…")
        # CAMPAIGNER_KAFKA__* properties (SASL, TLS) apply to a real cluster.
        yield {
            "bootstrap.servers": servers,
            **config.kafka_properties_from_env(os.environ),
        }
        return
    step("starting Kafka (Tansu)…")
    with embedded.EmbeddedKafka() as broker:
        yield {"bootstrap.servers": broker.bootstrap_servers}


@contextlib.contextmanager
def demo_topics(kafka: KafkaConfig, suffix: str) -> Iterator[dict[str, str]]:
    """A topic per channel family, unique to this demo: campaigner never creates any."""
    topics = {family: f"campaigner-demo-{suffix}.{family}" for family in TOPIC_FAMILIES}
    admin = AdminClient(kafka, logger=logger)
    try:
        admin.list_topics(timeout=KAFKA_ADMIN_TIMEOUT_S)
    except confluent_kafka.KafkaException as exc:
        raise errors.KafkaError(
            f"cannot reach Kafka at {kafka['bootstrap.servers']}: {exc.args[0].str()}"
            " (check KAFKA_BOOTSTRAP_SERVERS, or unset it to use a throwaway broker)"
        ) from exc
    step(f"creating {len(topics)} topics with {PARTITIONS} partitions each…")
    try:
        new = [NewTopic(name, num_partitions=PARTITIONS) for name in topics.values()]
        wait_for(admin.create_topics(new, operation_timeout=KAFKA_ADMIN_TIMEOUT_S))
        yield topics
    finally:
        if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
            step("deleting the demo topics…")
            names = list(topics.values())
            delete = lambda: wait_for(admin.delete_topics(names))  # noqa: E731
            warn_on_failure("delete the demo topics", delete)


def wait_for(futures: dict[str, Any]) -> None:
    for topic, future in futures.items():
        try:
            future.result(timeout=KAFKA_ADMIN_TIMEOUT_S)
        except confluent_kafka.KafkaException as exc:
            raise errors.KafkaError(f"topic {topic}: {exc.args[0].str()}") from exc
        except TimeoutError as exc:
            raise errors.KafkaError(
                f"topic {topic}: no answer within {KAFKA_ADMIN_TIMEOUT_S:.0f} s"
            ) from exc


def warn_on_failure(what: str, action: Callable[[], object]) -> None:
    """Cleanup goes on past a failed step, which is reported rather than raised."""
    try:
        action()
    except Exception as exc:
        step(f"warning: could not {what}: {exc}")


def connect(database_url: str) -> psycopg.Connection:
    return db.connect(config.Settings(database_url=database_url), purpose="demo")
