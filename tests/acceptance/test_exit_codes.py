"""The installed `campaigner` in a subprocess: every exit code of DESIGN.md §8,
each with the one line an operator reads, and never a traceback unless asked."""

from __future__ import annotations

import json
import pathlib
import signal
import subprocess
import time
from typing import Any

import psycopg
import pytest

from campaigner.embedded import free_port
from tests.conftest import (
    TICK_TEXT,
    cli_command,
    cli_env,
    insert_campaign,
    insert_users,
    read_back,
    run_cli,
    run_rows,
    wait_for,
)

# Reaching a closed loopback port fails at once; this bounds what a slow failure may take.
UNREACHABLE_BOUND_S = 20.0


def closed_port_url() -> str:
    return f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"


def test_exit_0__nothing_due(
    db: psycopg.Connection[Any], database_url: str, kafka_bootstrap: str, topic: str
) -> None:
    insert_campaign(db, name="later", topic=topic, schedule="0 10 * * *")

    result = run_cli(
        "execute",
        "--at",
        TICK_TEXT,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
    )

    assert result == (0, "", "")


def test_exit_0__success_under_cron_prints_nothing(
    db: psycopg.Connection[Any], database_url: str, kafka_bootstrap: str, topic: str
) -> None:
    insert_users(db, 500)
    insert_campaign(db, name="welcome", topic=topic, batch_size=200)

    result = run_cli(
        "execute",
        "--at",
        TICK_TEXT,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
    )

    assert result == (0, "", "")
    assert len(read_back(kafka_bootstrap, topic, expected=500)) == 500


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["execute", "--bogus"], "No such option '--bogus'"),
        (["execute", "--at", "2025-13-01"], "'2025-13-01' is not an ISO time"),
        (["execute", "--at", "tomorrow"], "'tomorrow' is not an ISO time"),
        (["dry-run", "--at", "9 o'clock"], "is not an ISO time"),
        (["no-such-command"], "No such command 'no-such-command'"),
        (["execute", "--connect-timeout", "abc"], "'abc' is not a valid integer"),
        (["execute", "--force"], "--force only makes sense with --campaign"),
    ],
    ids=[
        "bad-flag",
        "bad-at",
        "bad-at-word",
        "dry-run-bad-at",
        "bad-command",
        "bad-flag-value",
        "force-alone",
    ],
)
def test_exit_2__usage(args: list[str], fragment: str) -> None:
    code, stdout, stderr = run_cli(*args, database_url=closed_port_url())

    assert (code, stdout) == (2, "")
    assert fragment in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("env", "args", "fragment"),
    [
        (
            {"CAMPAIGNER_CONNECT_TIMEOUT": "abc"},
            [],
            "connect_timeout must be a whole number, got 'abc' (check CAMPAIGNER_CONNECT_TIMEOUT",
        ),
        (
            {"CAMPAIGNER_KAFKA_TIMEOUT": "-1"},
            [],
            "kafka_timeout must be between 1 and 86400 seconds, got -1.0"
            " (set --kafka-timeout or CAMPAIGNER_KAFKA_TIMEOUT",
        ),
        (
            {"CAMPAIGNER_CUSTOMER_TABLE": "user data"},
            [],
            "customer_table must be a plain SQL identifier, got 'user data'"
            " (set CAMPAIGNER_CUSTOMER_TABLE, or customer_table in the config file)",
        ),
        (
            {},
            ["--config", "/nonexistent/campaigner.toml"],
            "cannot read config file /nonexistent/campaigner.toml: No such file or directory",
        ),
        (
            {"CAMPAIGNER_CONFIG": "/nonexistent/campaigner.toml"},
            [],
            "cannot read config file /nonexistent/campaigner.toml: No such file or directory",
        ),
    ],
    ids=[
        "timeout-not-a-number",
        "timeout-negative",
        "table-not-identifier",
        "config-flag-missing",
        "config-env-missing",
    ],
)
def test_exit_3__configuration(
    env: dict[str, str], args: list[str], fragment: str
) -> None:
    code, stdout, stderr = run_cli(
        "execute", *args, database_url=closed_port_url(), env=env
    )

    assert (code, stdout) == (3, "")
    assert stderr.startswith("error: ")
    assert fragment in stderr
    assert "Traceback" not in stderr


def test_exit_3__invalid_config_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "campaigner.toml"
    path.write_text('databse_url = "postgresql://localhost/crm"\n')
    path.chmod(0o600)

    code, stdout, stderr = run_cli(
        "list", "--config", str(path), database_url=closed_port_url()
    )

    assert (code, stdout, stderr) == (
        3,
        "",
        f"error: config file {path}: unknown setting(s) databse_url\n",
    )


def test_config_file__readable_by_others_is_warned_about(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "campaigner.toml"
    path.write_text("connect_timeout = 1\n")
    path.chmod(0o644)

    code, _, stderr = run_cli(
        "list", "--config", str(path), database_url=closed_port_url()
    )

    assert code == 4
    assert f"WARNING config file {path} can be read by other users" in stderr


def test_exit_3__unknown_kafka_property_with_a_due_campaign(
    db: psycopg.Connection[Any], database_url: str, kafka_bootstrap: str, topic: str
) -> None:
    insert_users(db, 10)
    insert_campaign(db, name="welcome", topic=topic)

    code, stdout, stderr = run_cli(
        "execute",
        "--at",
        TICK_TEXT,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        env={"CAMPAIGNER_KAFKA__NO_SUCH_PROPERTY": "1"},
    )

    assert "invalid Kafka configuration" in stderr
    assert "Traceback" not in stderr
    assert (code, stdout) == (3, "")


def unreachable_postgres(
    *verbosity: str, url: str | None = None
) -> tuple[tuple[int, str, str], float, str]:
    url = url or closed_port_url()
    started = time.monotonic()
    result = run_cli(
        "execute",
        "--connect-timeout",
        "2",
        *verbosity,
        database_url=url,
        timeout=UNREACHABLE_BOUND_S * 2,
    )
    return result, time.monotonic() - started, url


def test_exit_4__postgres_unreachable() -> None:
    (code, stdout, stderr), elapsed, url = unreachable_postgres()

    assert (code, stdout) == (4, "")
    assert elapsed < UNREACHABLE_BOUND_S
    assert stderr.startswith(f"error: cannot connect to PostgreSQL at {url}: ")
    assert "(set DATABASE_URL or CAMPAIGNER_DATABASE_URL" in stderr
    assert len(stderr.splitlines()) == 1
    assert "Traceback" not in stderr


def test_exit_4__traceback_with_vv() -> None:
    (code, _, stderr), _, _ = unreachable_postgres("-vv")

    assert code == 4
    assert "Traceback (most recent call last)" in stderr
    assert "psycopg.OperationalError" in stderr
    assert stderr.splitlines()[-1].startswith("error: cannot connect to PostgreSQL at ")


@pytest.mark.parametrize("verbosity", [[], ["-vv"]])
def test_exit_4__password_never_shown(verbosity: list[str]) -> None:
    url = f"postgresql://campaigner:s3cret-pw@127.0.0.1:{free_port()}/crm"

    (code, stdout, stderr), _, _ = unreachable_postgres(*verbosity, url=url)

    assert code == 4
    assert "s3cret-pw" not in stdout + stderr
    assert "postgresql://campaigner:***@127.0.0.1:" in stderr


def test_exit_4__database_without_campaigner_tables(empty_database_url: str) -> None:
    code, stdout, stderr = run_cli(
        "execute", "--at", TICK_TEXT, database_url=empty_database_url
    )

    assert (code, stdout) == (4, "")
    assert "run `campaigner db upgrade`" in stderr
    assert "Traceback" not in stderr


def test_exit_5__kafka_unreachable_with_a_due_campaign(
    db: psycopg.Connection[Any], database_url: str, topic: str
) -> None:
    insert_users(db, 10)
    insert_campaign(db, name="welcome", topic=topic)
    broker = f"127.0.0.1:{free_port()}"
    started = time.monotonic()

    code, stdout, stderr = run_cli(
        "execute",
        "--at",
        TICK_TEXT,
        "--kafka-timeout",
        "3",
        database_url=database_url,
        kafka_bootstrap=broker,
        timeout=UNREACHABLE_BOUND_S * 2,
    )

    assert (code, stdout) == (5, "")
    assert time.monotonic() - started < UNREACHABLE_BOUND_S
    assert f"cannot reach Kafka at {broker} within 3s" in stderr
    assert "KAFKA_BOOTSTRAP_SERVERS" in stderr
    assert "Traceback" not in stderr
    assert "succeeded" not in [row["status"] for row in run_rows(db)]


def test_exit_6__invalid_campaign(
    db: psycopg.Connection[Any], database_url: str, kafka_bootstrap: str, topic: str
) -> None:
    insert_campaign(db, name="far-away", topic=topic, timezone="Mars/Olympus_Mons")

    code, stdout, stderr = run_cli(
        "execute",
        "--at",
        TICK_TEXT,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
    )

    assert (code, stdout) == (6, "")
    assert "ERROR campaign 'far-away': unknown timezone 'Mars/Olympus_Mons'" in stderr
    assert len(stderr.splitlines()) == 1
    assert "Traceback" not in stderr


def test_exit_6__dry_run_with_an_invalid_campaign(
    db: psycopg.Connection[Any], database_url: str, topic: str
) -> None:
    insert_campaign(db, name="too-precise", topic=topic, schedule="0 0 9 * * *")

    code, stdout, stderr = run_cli(
        "dry-run", "--at", TICK_TEXT, "--json", database_url=database_url
    )

    assert code == 6
    assert "Traceback" not in stderr
    assert [(c["campaign"], c["state"]) for c in json.loads(stdout)["campaigns"]] == [
        ("too-precise", "invalid")
    ]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["term", "int"])
def test_exit_75__signal_saves_the_run(
    db: psycopg.Connection[Any],
    database_url: str,
    kafka_bootstrap: str,
    topic: str,
    stop: signal.Signals,
) -> None:
    insert_users(db, 60_000)
    insert_campaign(db, name="long-run", topic=topic, batch_size=500)
    env = cli_env(database_url=database_url, kafka_bootstrap=kafka_bootstrap)
    process = subprocess.Popen(
        cli_command("execute", "--at", TICK_TEXT),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first_flight_confirmed = wait_for(
            lambda: [r["checkpoint"] for r in run_rows(db)] not in ([], [None]),
            timeout=30,
        )
        process.send_signal(stop)
        stdout, stderr = process.communicate(timeout=UNREACHABLE_BOUND_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    [run] = run_rows(db)
    assert first_flight_confirmed
    assert (process.returncode, stdout) == (75, "")
    assert "Traceback" not in stderr
    assert (
        run["status"],
        run["checkpoint"] == run["produced"],
        run["produced"] < 60_000,
    ) == ("interrupted", True, True)
    delivered = {
        int(key)
        for key, _, _ in read_back(kafka_bootstrap, topic, expected=run["produced"])
    }
    assert set(range(1, run["checkpoint"] + 1)) - delivered == set()
