"""`runs`, `check`, `config` and `list --json` against real servers."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from click.testing import CliRunner, Result

from campaigner import cli, migrations
from campaigner.config import Settings
from campaigner.embedded import free_port
from tests.conftest import TICK, insert_campaign, insert_users, invoke_cli


def campaigner(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli.cli, list(args), env=env, catch_exceptions=False)


def add_run(
    db: psycopg.Connection[Any],
    campaign_id: int,
    *,
    hours: int,
    status: str = "succeeded",
    manual: bool = False,
    attempts: int = 1,
    error: str | None = None,
) -> None:
    db.execute(
        "INSERT INTO campaign_runs (campaign_id, scheduled_for, status, manual,"
        " matched, produced, failed, checkpoint, attempts, error, started_at,"
        " finished_at) VALUES (%s, %s, %s, %s, 10, 9, 1, 42, %s, %s, %s,"
        " %s + interval '2.5s')",
        [
            campaign_id,
            TICK + timedelta(hours=hours),
            status,
            manual,
            attempts,
            error,
            TICK + timedelta(hours=hours),
            TICK + timedelta(hours=hours),
        ],
    )


@pytest.fixture
def with_runs(db: psycopg.Connection[Any]) -> None:
    first = insert_campaign(db, name="first", topic="t")
    second = insert_campaign(db, name="second", topic="t")
    add_run(db, first, hours=0)
    add_run(db, first, hours=1, status="failed", attempts=3, error="broker down")
    add_run(db, second, hours=2, manual=True)


def run_view(document: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["campaign"], r["scheduled_for"], r["status"]) for r in document]


@pytest.mark.usefixtures("with_runs")
@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (
            [],
            [
                ("second", "2025-06-02T11:00:00+00:00", "succeeded"),
                ("first", "2025-06-02T10:00:00+00:00", "failed"),
                ("first", "2025-06-02T09:00:00+00:00", "succeeded"),
            ],
        ),
        (
            ["--campaign", "first"],
            [
                ("first", "2025-06-02T10:00:00+00:00", "failed"),
                ("first", "2025-06-02T09:00:00+00:00", "succeeded"),
            ],
        ),
        (["--status", "failed"], [("first", "2025-06-02T10:00:00+00:00", "failed")]),
        (
            ["--since", "2025-06-02T10:00", "--until", "2025-06-02T11:00"],
            [("first", "2025-06-02T10:00:00+00:00", "failed")],
        ),
        (["--limit", "1"], [("second", "2025-06-02T11:00:00+00:00", "succeeded")]),
    ],
)
def test_runs__filters(
    database_url: str, filters: list[str], expected: list[Any]
) -> None:
    result = campaigner({"DATABASE_URL": database_url}, "runs", "--json", *filters)

    assert result.exit_code == 0, result.stderr
    assert run_view(json.loads(result.stdout)) == expected


@pytest.mark.usefixtures("with_runs")
def test_runs__table_shows_kind_attempts_and_error(database_url: str) -> None:
    result = campaigner({"DATABASE_URL": database_url}, "runs")

    lines = result.stdout.splitlines()
    failed = next(line for line in lines if "failed" in line and "│" in line)
    manual = next(line for line in lines if "second" in line)
    assert result.exit_code == 0
    assert [cell.strip() for cell in failed.split("│")[1:-1]] == [
        "2",
        "first",
        "2025-06-02 10:00 UTC",
        "scheduled",
        "failed",
        "10",
        "9",
        "1",
        "42",
        "3 (resumed)",
        "-",
        "2.5s",
        "broker down",
    ]
    assert " manual " in manual


def test_runs__an_unknown_status_is_a_usage_error(database_url: str) -> None:
    result = campaigner({"DATABASE_URL": database_url}, "runs", "--status", "great")

    assert result.exit_code == 2
    assert "'great' is not one of" in result.stderr


def test_check__everything_ok(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_campaign(db, name="welcome", topic=topic)

    result = invoke_cli("check", settings=settings)

    assert result.exit_code == 0, result.stdout
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [
        "ok   database",
        "ok   schema",
        "ok   customer table",
        "ok   campaigns",
        "ok   kafka",
        "ok   topics",
    ]


def test_check__missing_topic_exits_6(
    db: psycopg.Connection[Any], settings: Settings
) -> None:
    insert_campaign(db, name="welcome", topic="campaigner-test-absent")

    result = invoke_cli("check", settings=settings)

    assert result.exit_code == 6
    assert result.stdout.splitlines()[-1] == (
        "FAIL topics: topic(s) of active campaigns missing: campaigner-test-absent"
        " (create them; campaigner never creates topics)"
    )


def test_check__invalid_campaign_exits_6(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_campaign(db, name="broken", topic=topic, schedule="61 * * * *")

    result = invoke_cli("check", settings=settings)

    assert result.exit_code == 6
    assert "FAIL campaigns: invalid active campaign(s):" in result.stdout
    assert "campaign 'broken'" in result.stdout


def test_check__broker_unreachable_exits_5(settings: Settings) -> None:
    result = invoke_cli(
        "check",
        "--kafka-bootstrap-servers",
        f"127.0.0.1:{free_port()}",
        "--kafka-timeout",
        "2",
        settings=settings,
    )

    assert result.exit_code == 5
    assert result.stdout.splitlines()[-2:] == [
        result.stdout.splitlines()[-2],
        "skip topics: not checked",
    ]
    assert result.stdout.splitlines()[-2].startswith("FAIL kafka: cannot reach Kafka")


def test_check__database_unreachable_exits_4(kafka_bootstrap: str) -> None:
    env = {
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/none",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
    }

    result = campaigner(env, "check", "--connect-timeout", "2")

    assert result.exit_code == 4
    lines = result.stdout.splitlines()
    assert lines[0].startswith("FAIL database: cannot connect to PostgreSQL")
    # What needs the database is skipped, never ok: not even the topics,
    # since which topics to look for comes from the campaigns table.
    assert lines[1:4] == [
        "skip schema: not checked: no database",
        "skip customer table: not checked: no database",
        "skip campaigns: not checked: no database",
    ]
    assert lines[4].startswith("ok   kafka: broker reachable")
    assert lines[5:] == ["skip topics: not checked: campaigns not read"]

    as_json = json.loads(
        campaigner(env, "check", "--json", "--connect-timeout", "2").stdout
    )
    assert [(c["name"], c["ok"]) for c in as_json] == [
        ("database", False),
        ("schema", False),
        ("customer table", False),
        ("campaigns", False),
        ("kafka", True),
        ("topics", False),
    ]


def test_check__schema_not_upgraded_exits_4(
    empty_database_url: str, kafka_bootstrap: str
) -> None:
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute(migrations.reference_schema_sql())
    env = {
        "DATABASE_URL": empty_database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
    }

    shipped = migrations.available_migrations()

    result = campaigner(env, "check")

    names = ", ".join(f"{m.version:03d}_{m.name}" for m in shipped)
    assert result.exit_code == 4
    assert result.stdout.splitlines()[1].startswith(
        f"FAIL schema: {len(shipped)} migration(s) pending: 001_campaigns_and_runs,"
        " 002_rate_limit, "
    )
    assert result.stdout.splitlines()[1].endswith(
        f"pending: {names} (run `campaigner db upgrade`)"
    )


def test_config__secrets_masked(tmp_path: Any) -> None:
    env = {
        "DATABASE_URL": "postgresql://app:hunter2@db.internal/crm",
        "CAMPAIGNER_KAFKA__SASL_PASSWORD": "s3cret",
        "CAMPAIGNER_KAFKA__SASL_USERNAME": "campaigner",
        "PGPASSWORD": "pgsecret",
        "PGSSLMODE": "require",
    }

    result = campaigner(env, "config", "--json", "--kafka-timeout", "7")

    document = json.loads(result.stdout)
    assert result.exit_code == 0
    assert "hunter2" not in result.stdout and "s3cret" not in result.stdout
    assert "pgsecret" not in result.stdout
    assert document["database_url"] == "postgresql://app:***@db.internal/crm"
    assert document["kafka_timeout"] == 7.0
    assert document["kafka_properties"] == {
        "sasl.password": "***",
        "sasl.username": "campaigner",
    }
    assert document["libpq_environment"] == {
        "PGPASSWORD": "***",
        "PGSSLMODE": "require",
    }


def test_config__precedence_flag_over_env_over_file(tmp_path: Any) -> None:
    path = tmp_path / "c.toml"
    path.write_text('kafka_bootstrap_servers = "file:9092"\nconnect_timeout = 4\n')
    path.chmod(0o600)
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "standard:9092",
        "CAMPAIGNER_CONNECT_TIMEOUT": "5",
    }

    from_env = campaigner(env, "config", "--json", "--config", str(path))
    from_flag = campaigner(
        env, "config", "--json", "--config", str(path), "--connect-timeout", "6"
    )
    from_file = campaigner({}, "config", "--json", "--config", str(path))

    assert json.loads(from_env.stdout)["kafka_bootstrap_servers"] == "standard:9092"
    assert json.loads(from_env.stdout)["connect_timeout"] == 5
    assert json.loads(from_flag.stdout)["connect_timeout"] == 6
    assert json.loads(from_file.stdout)["kafka_bootstrap_servers"] == "file:9092"
    assert json.loads(from_file.stdout)["connect_timeout"] == 4


def test_list__json(db: psycopg.Connection[Any], settings: Settings) -> None:
    insert_users(db, 3)
    insert_campaign(db, name="welcome", topic="t")

    result = invoke_cli("list", "--json", settings=settings)

    document = json.loads(result.stdout)
    assert result.exit_code == 0
    assert [(c["name"], c["status"], c["last_run"]) for c in document] == [
        ("welcome", "active", None)
    ]


def test_libpq_variables__used_when_no_connection_string(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    insert_campaign(db, name="welcome", topic="t")
    parts = urlsplit(database_url)
    env = {
        "PGHOST": parts.hostname or "",
        "PGPORT": str(parts.port or 5432),
        "PGDATABASE": parts.path.lstrip("/"),
        "PGUSER": parts.username or "",
    }

    result = campaigner(env, "list", "--json")
    shown = campaigner(env, "config", "--json")

    assert result.exit_code == 0, result.stderr
    assert [c["name"] for c in json.loads(result.stdout)] == ["welcome"]
    assert json.loads(shown.stdout)["database_url"] == ""
    assert json.loads(shown.stdout)["libpq_environment"] == env
