"""`execute --metrics-file` parsed back with the Prometheus client's own parser, and
`--log-format json` logs of a full execute: stable events, no personal data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
from prometheus_client.parser import text_string_to_metric_families

from campaigner.embedded import free_port
from tests.acceptance.test_logs_privacy import personal_data
from tests.conftest import TICK, TICK_TEXT, insert_campaign, insert_users, run_cli


def samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the file: (name, sorted labels) -> value."""
    families = text_string_to_metric_families(path.read_text())
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families
        for sample in family.samples
    }


def test_metrics_file__parsed_back(
    db: psycopg.Connection[Any],
    database_url: str,
    kafka_bootstrap: str,
    topic: str,
    tmp_path: Path,
) -> None:
    insert_users(db, 300)
    insert_campaign(db, name="welcome", topic=topic, batch_size=100)
    # A type error only PostgreSQL finds: the run is claimed, then fails.
    insert_campaign(db, name="broken", topic=topic, cohort="country > 1")
    path = tmp_path / "campaigner.prom"

    code, stdout, stderr = run_cli(
        "execute",
        "--at",
        TICK_TEXT,
        "--metrics-file",
        str(path),
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
    )

    found = samples(path)
    assert (code, stdout) == (6, ""), stderr
    assert found[("campaigner_execute_exit_code", ())] == 6
    assert found[("campaigner_execute_runs", (("status", "succeeded"),))] == 1
    assert found[("campaigner_execute_runs", (("status", "failed"),))] == 1
    assert (
        found[
            (
                "campaigner_runs_total",
                (("campaign", "welcome"), ("status", "succeeded")),
            )
        ]
        == 1
    )
    assert (
        found[("campaigner_recipients_produced_total", (("campaign", "welcome"),))]
        == 300
    )
    assert (
        found[("campaigner_recipients_failed_total", (("campaign", "welcome"),))] == 0
    )
    assert (
        found[("campaigner_last_success_timestamp_seconds", (("campaign", "welcome"),))]
        > TICK.timestamp()
    )
    assert (
        found[("campaigner_last_run_duration_seconds", (("campaign", "welcome"),))] >= 0
    )
    assert (
        "campaigner_execute_run_duration_seconds",
        (("campaign", "welcome"),),
    ) in found
    assert not any(name.endswith("_created") for name, _ in found)
    assert [p.name for p in tmp_path.iterdir()] == ["campaigner.prom"]


def test_metrics_file__written_when_postgres_is_down(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    path = tmp_path / "campaigner.prom"

    code, _, stderr = run_cli(
        "execute",
        "--metrics-file",
        str(path),
        "--connect-timeout",
        "2",
        database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/none",
        kafka_bootstrap=kafka_bootstrap,
    )

    found = samples(path)
    assert code == 4, stderr
    assert found[("campaigner_execute_exit_code", ())] == 4
    assert not any(name.startswith("campaigner_runs") for name, _ in found)


def test_metrics_file__missing_folder_exits_3_before_running(
    db: psycopg.Connection[Any],
    database_url: str,
    kafka_bootstrap: str,
    topic: str,
    tmp_path: Path,
) -> None:
    insert_campaign(db, name="welcome", topic=topic)
    path = tmp_path / "absent" / "campaigner.prom"

    code, _, stderr = run_cli(
        "execute",
        "--at",
        TICK_TEXT,
        "--metrics-file",
        str(path),
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
    )

    assert (code, stderr) == (
        3,
        f"error: --metrics-file {path}: folder {path.parent} does not exist\n",
    )
    assert db.execute("SELECT count(*) FROM campaign_runs").fetchone() == (0,)


def test_json_logs__stable_events_and_no_personal_data(
    db: psycopg.Connection[Any], database_url: str, kafka_bootstrap: str, topic: str
) -> None:
    insert_users(db, 1_500)
    insert_campaign(
        db,
        name="contacts",
        topic=topic,
        channel="sms",
        batch_size=500,
        message_fields=("email", "phone", "first_name", "last_name"),
    )
    insert_campaign(db, name="cast-fails", topic=topic, cohort="phone::int > 0")

    code, stdout, stderr = run_cli(
        "execute",
        "--at",
        TICK_TEXT,
        "-vv",
        "--log-format",
        "json",
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
    )

    entries = [json.loads(line) for line in stderr.splitlines()]
    finished = [e for e in entries if e["event"] == "run_finished"]
    assert code == 6
    assert personal_data(stdout + stderr) == []
    assert {"time", "level", "logger", "event", "message"} <= set(entries[0])
    assert [
        {k: e[k] for k in ("level", "status", "matched", "produced", "failed")}
        for e in finished
    ] == [
        {
            "level": "info",
            "status": "succeeded",
            "matched": 1500,
            "produced": 1500,
            "failed": 0,
        },
        {
            "level": "error",
            "status": "failed",
            "matched": 0,
            "produced": 0,
            "failed": 0,
        },
    ]
    assert all({"campaign_id", "run_id", "duration_s"} <= set(e) for e in finished)
    assert [(e["campaign"], e["slot"]) for e in finished] == [
        ("contacts", "2025-06-02T09:00:00+00:00"),
        ("cast-fails", "2025-06-02T09:00:00+00:00"),
    ]
    started = [e for e in entries if e["event"] == "run_started"]
    assert [e["campaign"] for e in started] == ["contacts", "cast-fails"]
    assert sum(e["event"] == "batch_confirmed" for e in entries) == 3


def test_log_level_setting__info_without_flags(
    db: psycopg.Connection[Any], database_url: str, kafka_bootstrap: str, topic: str
) -> None:
    insert_users(db, 10)
    insert_campaign(db, name="welcome", topic=topic)

    quiet = run_cli(
        "execute",
        "--at",
        TICK_TEXT,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
    )
    db.execute("DELETE FROM campaign_runs")
    told = run_cli(
        "execute",
        "--at",
        TICK_TEXT,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        env={"CAMPAIGNER_LOG_LEVEL": "info"},
    )

    assert quiet == (0, "", "")
    assert told[0] == 0
    assert len(told[2].splitlines()) == 1
    assert "INFO campaign 'welcome' succeeded" in told[2]


def test_log_format__bad_setting_exits_3() -> None:
    code, _, stderr = run_cli("list", env={"CAMPAIGNER_LOG_FORMAT": "xml"})

    assert (code, stderr) == (
        3,
        "error: CAMPAIGNER_LOG_FORMAT must be text or json, got 'xml'\n",
    )
