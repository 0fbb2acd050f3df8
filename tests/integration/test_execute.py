"""`execute` against real PostgreSQL and a real broker: delivery, once per slot."""

from __future__ import annotations

import json
import logging
import subprocess
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import jsonschema
import psycopg
import pytest
from psycopg.types.json import Jsonb

from campaigner import envelope, ledger, runner
from campaigner.config import Settings
from tests.conftest import (
    TICK,
    TICK_TEXT,
    cli_command,
    cli_env,
    insert_campaign,
    insert_users,
    invoke_cli,
    read_back,
    run_rows,
    user_ids,
)

SUBPROCESS_TIMEOUT_S = 90


def envelope_schema() -> dict[str, Any]:
    text = resources.files("campaigner").joinpath("envelope.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def batch_events(caplog: pytest.LogCaptureFixture) -> list[int]:
    return [
        record.batch_no  # type: ignore[attr-defined]
        for record in caplog.records
        if getattr(record, "event", None) == "batch_confirmed"
    ]


def run_together(
    command: list[str], *, env: dict[str, str], count: int
) -> list[tuple[int, str, str]]:
    """Start `count` identical processes at once; (returncode, stdout, stderr) of each."""
    processes = [
        subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    try:
        outputs = [p.communicate(timeout=SUBPROCESS_TIMEOUT_S) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    return [
        (p.returncode, out, err)
        for p, (out, err) in zip(processes, outputs, strict=True)
    ]


def recent_slot(conn: psycopg.Connection[Any]) -> datetime:
    """A minute slot two minutes ago by the database's clock: within any deadline."""
    row = conn.execute("SELECT date_trunc('minute', now())").fetchone()
    assert row is not None
    return row[0].astimezone(UTC) - timedelta(minutes=2)  # type: ignore[no-any-return]


def insert_stranded_run(
    conn: psycopg.Connection[Any],
    campaign_id: int,
    *,
    checkpoint: int,
    slot: datetime = TICK,
) -> int:
    """What a worker killed after confirming ids up to `checkpoint` leaves behind:
    a running run at TICK, its counts, and no advisory lock held by anyone."""
    row = conn.execute(
        """
        INSERT INTO campaign_runs (campaign_id, scheduled_for, status, cohort,
            matched, produced, checkpoint, started_at, heartbeat_at, host, pid)
        VALUES (%(campaign)s, %(slot)s, 'running', 'true', %(checkpoint)s,
            %(checkpoint)s, %(checkpoint)s, %(slot)s, %(slot)s, 'gone.example.test', 1)
        RETURNING id
        """,
        {"campaign": campaign_id, "slot": slot, "checkpoint": checkpoint},
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.slow
def test_execute__large_cohort_streamed_in_batches_each_recipient_once(
    db: psycopg.Connection[Any],
    settings: Settings,
    topic: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    insert_users(db, 25_001)
    campaign_id = insert_campaign(
        db,
        name="large-cohort",
        topic=topic,
        cohort="true",
        message_fields=("email", "country", "lifetime_value", "attributes"),
        batch_size=5_000,
    )
    caplog.set_level(logging.DEBUG, logger="campaigner.streaming")
    validator = jsonschema.Draft202012Validator(envelope_schema())

    outcomes = runner.execute(settings, at=TICK)

    messages = read_back(settings.kafka_bootstrap_servers, topic, expected=25_001)
    assert [
        (o.campaign, o.status, o.matched, o.produced, o.exit_code) for o in outcomes
    ] == [("large-cohort", "succeeded", 25_001, 25_001, 0)]
    assert batch_events(caplog) == [1, 2, 3, 4, 5, 6]
    assert len(messages) == 25_001
    assert len({value["recipient"]["user_id"] for _, value, _ in messages}) == 25_001
    assert [
        key for key, value, _ in messages if key != str(value["recipient"]["user_id"])
    ] == []
    assert sorted(value["recipient"]["user_id"] for _, value, _ in messages) == list(
        range(1, 25_002)
    )
    assert [value for _, value, _ in messages if not validator.is_valid(value)] == []
    assert {tuple(value["recipient"]["fields"]) for _, value, _ in messages} == {
        ("email", "country", "lifetime_value", "attributes")
    }
    _, sample, headers = next(m for m in messages if m[0] == "12")
    assert sample["recipient"] == {
        "user_id": 12,
        "fields": {
            "email": "user12@example.test",
            "country": "DE",
            "lifetime_value": "1.20",
            "attributes": {"segment": 0},
        },
    }
    assert (
        sample["campaign"]["id"],
        sample["run"]["scheduled_for"],
        sample["run"]["manual"],
    ) == (
        campaign_id,
        "2025-06-02T09:00:00Z",
        False,
    )
    assert headers == {
        "campaign_id": str(campaign_id),
        "run_id": str(sample["run"]["id"]),
        "idempotency_key": f"{campaign_id}:2025-06-02T09:00:00Z:12",
    }
    [run] = run_rows(db)
    assert {
        k: run[k]
        for k in ("status", "matched", "produced", "failed", "checkpoint", "manual")
    } == {
        "status": "succeeded",
        "matched": 25_001,
        "produced": 25_001,
        "failed": 0,
        "checkpoint": 25_001,
        "manual": False,
    }


def test_execute__second_execute_at_the_same_tick_produces_nothing(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 1_200)
    insert_campaign(db, name="twice", topic=topic, batch_size=500)
    first = invoke_cli("execute", "--at", TICK_TEXT, settings=settings)
    delivered = read_back(settings.kafka_bootstrap_servers, topic, expected=1_200)

    second = invoke_cli("execute", "--at", TICK_TEXT, settings=settings)

    again = read_back(settings.kafka_bootstrap_servers, topic, expected=1_200)
    assert (first.exit_code, len(delivered)) == (0, 1_200)
    assert (second.exit_code, second.stdout, second.stderr) == (0, "", "")
    assert len(again) == 1_200
    assert [(r["status"], r["produced"]) for r in run_rows(db)] == [
        ("succeeded", 1_200)
    ]


def test_execute__json_output_after_the_slot_was_claimed(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 50)
    insert_campaign(db, name="claimed", topic=topic)
    invoke_cli("execute", "--at", TICK_TEXT, settings=settings)

    result = invoke_cli("execute", "--at", TICK_TEXT, "--json", settings=settings)

    [outcome] = json.loads(result.stdout)
    assert (result.exit_code, outcome["campaign"], outcome["status"]) == (
        0,
        "claimed",
        "already_claimed",
    )


@pytest.mark.slow
def test_execute__two_processes_at_the_same_tick_deliver_once(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 6_000)
    insert_campaign(db, name="raced", topic=topic, batch_size=1_000)
    env = cli_env(
        database_url=settings.database_url,
        kafka_bootstrap=settings.kafka_bootstrap_servers,
    )
    command = cli_command(
        "execute", "--at", TICK_TEXT, "--kafka-timeout", "10", "--json"
    )

    results = run_together(command, env=env, count=2)

    messages = read_back(settings.kafka_bootstrap_servers, topic, expected=6_000)
    assert [(code, stderr) for code, _, stderr in results] == [(0, ""), (0, "")]
    assert sorted(
        outcome["status"] for _, stdout, _ in results for outcome in json.loads(stdout)
    ) == ["already_claimed", "succeeded"]
    assert [(r["status"], r["matched"], r["produced"]) for r in run_rows(db)] == [
        ("succeeded", 6_000, 6_000)
    ]
    assert sorted(int(key) for key, _, _ in messages) == list(range(1, 6_001))


@pytest.mark.parametrize(
    "cohort",
    [
        "country = 'DE' OR country = 'FR'",
        "country = 'DE' OR country = 'FR' -- a comment",
        "email_consent AND (country = 'DE' OR country = 'FR')\n-- a comment\n",
        "country = 'DE' OR\ncountry = 'FR' /* both */",
    ],
)
def test_execute__cohort_with_or_and_comments_delivers_exactly_its_members(
    db: psycopg.Connection[Any], settings: Settings, topic: str, cohort: str
) -> None:
    insert_users(db, 3_000)
    expected = user_ids(db, cohort)
    insert_campaign(db, name="or-cohort", topic=topic, cohort=cohort, batch_size=97)

    outcomes = runner.execute(settings, at=TICK)

    messages = read_back(
        settings.kafka_bootstrap_servers, topic, expected=len(expected)
    )
    assert sorted(int(key) for key, _, _ in messages) == expected
    assert [(o.status, o.matched, o.produced) for o in outcomes] == [
        ("succeeded", len(expected), len(expected))
    ]
    assert len(expected) > 5 * 97


def test_execute__cohort_with_a_percent_sign(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 300)
    cohort = "email LIKE 'user1%' AND email LIKE '%@example.test'"
    expected = user_ids(db, cohort)
    insert_campaign(db, name="like-cohort", topic=topic, cohort=cohort, batch_size=50)

    outcomes = runner.execute(settings, at=TICK)

    assert [(o.status, o.error) for o in outcomes] == [("succeeded", None)]
    messages = read_back(
        settings.kafka_bootstrap_servers, topic, expected=len(expected)
    )
    assert sorted(int(key) for key, _, _ in messages) == expected


def test_execute__late_cron_wakeup_fires_the_slot_of_the_minute_before(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 10)
    insert_campaign(db, name="late", topic=topic, grace=timedelta(0))

    outcomes = runner.execute(settings, at=datetime(2025, 6, 2, 9, 1, 40, tzinfo=UTC))

    assert [(o.status, o.scheduled_for, o.produced) for o in outcomes] == [
        ("succeeded", TICK, 10)
    ]


def test_execute__nothing_due_outside_the_schedule(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 10)
    insert_campaign(db, name="not-now", topic=topic, schedule="0 10 * * *")
    insert_campaign(db, name="paused", topic=topic, status="paused")

    outcomes = runner.execute(settings, at=TICK)

    assert (outcomes, run_rows(db)) == ([], [])


def test_execute__manual_run_of_one_campaign(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 40)
    insert_campaign(
        db, name="manual", topic=topic, schedule="0 3 1 1 *", cohort="country = 'DE'"
    )
    expected = user_ids(db, "country = 'DE'")

    outcomes = runner.execute(settings, campaign_name="manual")

    messages = read_back(
        settings.kafka_bootstrap_servers, topic, expected=len(expected)
    )
    assert [(o.status, o.manual, o.produced) for o in outcomes] == [
        ("succeeded", True, len(expected))
    ]
    assert {value["run"]["manual"] for _, value, _ in messages} == {True}
    assert sorted(int(key) for key, _, _ in messages) == expected


def test_execute__run_of_a_paused_campaign_waits_until_it_is_active(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 500)
    slot = recent_slot(db)
    campaign_id = insert_campaign(
        db, name="on-hold", topic=topic, schedule="* * * * *", status="paused"
    )
    insert_stranded_run(db, campaign_id, checkpoint=400, slot=slot)

    paused = runner.execute(settings, at=slot)
    db.execute("UPDATE campaigns SET status = 'active'")
    active = runner.execute(settings, at=slot)

    assert paused == []
    assert [(o.status, o.produced) for o in active] == [("succeeded", 500)]
    messages = read_back(settings.kafka_bootstrap_servers, topic, expected=100)
    assert sorted(int(key) for key, _, _ in messages) == list(range(401, 501))
    assert [(r["status"], r["attempts"]) for r in run_rows(db)] == [("succeeded", 2)]


def test_execute__unfinished_run_past_its_deadline_is_expired_with_its_counts(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 500)
    campaign_id = insert_campaign(
        db, name="too-late", topic=topic, deadline=timedelta(hours=4)
    )
    insert_stranded_run(db, campaign_id, checkpoint=400)

    [outcome] = runner.execute(settings)

    [run] = run_rows(db)
    assert (outcome.status, outcome.produced, outcome.exit_code) == ("expired", 400, 6)
    assert (run["status"], run["produced"], run["checkpoint"]) == ("expired", 400, 400)
    assert "deadline 2025-06-02T13:00:00+00:00 passed" in run["error"]


def test_execute__run_holding_its_lock_is_left_to_its_worker(
    db: psycopg.Connection[Any],
    settings: Settings,
    topic: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    insert_users(db, 30)
    campaign_id = insert_campaign(db, name="busy", topic=topic)
    run_id = insert_stranded_run(db, campaign_id, checkpoint=10)
    db.execute("SELECT pg_advisory_lock(%s, %s)", ledger.lock_key(run_id))
    before = run_rows(db)
    caplog.set_level(logging.DEBUG, logger="campaigner")

    outcomes = runner.execute(settings, at=datetime(2025, 6, 2, 9, 5, tzinfo=UTC))

    events = {getattr(r, "event", None) for r in caplog.records}
    messages = read_back(settings.kafka_bootstrap_servers, topic, expected=0)
    assert [o.status for o in outcomes] == ["already_claimed"]
    assert run_rows(db) == before
    assert [
        (r["status"], r["attempts"], r["checkpoint"], r["host"]) for r in before
    ] == [("running", 1, 10, "gone.example.test")]
    assert events & {"run_resumed", "run_started", "batch_confirmed"} == set()
    assert messages == []


def test_execute__resumes_a_run_whose_worker_died_at_its_checkpoint(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 1_000)
    campaign_id = insert_campaign(db, name="crashed", topic=topic, batch_size=100)
    insert_stranded_run(db, campaign_id, checkpoint=400)

    runner.execute(settings, at=datetime(2025, 6, 2, 9, 5, tzinfo=UTC))

    assert [
        (r["status"], r["matched"], r["produced"], r["checkpoint"])
        for r in run_rows(db)
    ] == [("succeeded", 1_000, 1_000, 1_000)]
    messages = read_back(settings.kafka_bootstrap_servers, topic, expected=600)
    assert sorted(int(key) for key, _, _ in messages) == list(range(401, 1_001))


def test_execute__back_fills_a_past_slot_of_one_campaign(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 30)
    insert_campaign(db, name="missed", topic=topic, schedule="* * * * *")
    slot = recent_slot(db)

    outcomes = runner.execute(settings, campaign_name="missed", at=slot)

    messages = read_back(settings.kafka_bootstrap_servers, topic, expected=30)
    assert [(o.status, o.scheduled_for, o.manual, o.produced) for o in outcomes] == [
        ("succeeded", slot, False, 30)
    ]
    assert {value["run"]["scheduled_for"] for _, value, _ in messages} == {
        slot.strftime("%Y-%m-%dT%H:%M:%SZ")
    }


def test_execute__back_fill_resumes_an_unfinished_run_at_its_checkpoint(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 30)
    campaign_id = insert_campaign(db, name="resumed", topic=topic, schedule="* * * * *")
    slot = recent_slot(db)
    run_id = insert_stranded_run(db, campaign_id, checkpoint=10, slot=slot)

    outcomes = runner.execute(settings, campaign_name="resumed", at=slot)

    messages = read_back(settings.kafka_bootstrap_servers, topic, expected=20)
    [run] = run_rows(db)
    assert [(o.status, o.run_id, o.produced) for o in outcomes] == [
        ("succeeded", run_id, 30)
    ]
    assert (run["attempts"], run["checkpoint"]) == (2, 30)
    assert sorted(int(key) for key, _, _ in messages) == list(range(11, 31))
    assert {value["idempotency_key"] for _, value, _ in messages} == {
        envelope.idempotency_key(campaign_id, slot, n) for n in range(11, 31)
    }


def test_execute__back_fill_resumes_an_interrupted_manual_run(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 30)
    campaign_id = insert_campaign(db, name="by-hand", topic=topic)
    instant = recent_slot(db) + timedelta(seconds=7, microseconds=123_456)
    run_id = insert_stranded_run(db, campaign_id, checkpoint=25, slot=instant)
    db.execute("UPDATE campaign_runs SET status = 'interrupted', manual = true")

    outcomes = runner.execute(settings, campaign_name="by-hand", at=instant)

    messages = read_back(settings.kafka_bootstrap_servers, topic, expected=5)
    assert [(o.status, o.run_id, o.manual) for o in outcomes] == [
        ("succeeded", run_id, True)
    ]
    assert sorted(int(key) for key, _, _ in messages) == list(range(26, 31))


def test_execute__back_fill_refuses_an_instant_that_is_not_a_slot(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_campaign(db, name="mornings", topic=topic)

    result = invoke_cli(
        "execute",
        "--campaign",
        "mornings",
        "--at",
        "2025-06-01T09:30",
        settings=settings,
    )

    assert (result.exit_code, result.stderr) == (
        2,
        "error: campaign 'mornings': 2025-06-01T09:30:00+00:00 is not one of its slots"
        " (the next one after it is 2025-06-02T09:00:00+00:00)\n",
    )
    assert run_rows(db) == []


def test_execute__back_fill_refuses_a_slot_past_its_deadline(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_campaign(db, name="mornings", topic=topic, deadline=timedelta(hours=4))

    result = invoke_cli(
        "execute", "--campaign", "mornings", "--at", TICK_TEXT, settings=settings
    )

    assert (result.exit_code, result.stderr) == (
        2,
        "error: campaign 'mornings': slot 2025-06-02T09:00:00+00:00 is past its"
        " deadline (2025-06-02T13:00:00+00:00); its messages would arrive expired\n",
    )
    assert run_rows(db) == []


def test_execute__back_fill_never_repeats_a_slot_that_succeeded(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 30)
    insert_campaign(db, name="minutely", topic=topic, schedule="* * * * *")
    slot = recent_slot(db)
    runner.execute(settings, at=slot)

    outcomes = runner.execute(settings, campaign_name="minutely", at=slot)

    assert [(o.status, o.exit_code) for o in outcomes] == [("not_started", 2)]
    assert "already ran (run 1, succeeded)" in str(outcomes[0].error)
    assert len(read_back(settings.kafka_bootstrap_servers, topic, expected=30)) == 30


def test_execute_cli__refused_back_fill_exits_2(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 5)
    insert_campaign(db, name="minutely", topic=topic, schedule="* * * * *")
    slot = recent_slot(db)
    runner.execute(settings, at=slot)

    result = invoke_cli(
        "execute", "--campaign", "minutely", "--at", slot.isoformat(), settings=settings
    )

    assert result.exit_code == 2
    assert "already ran (run 1, succeeded); it is never sent twice" in result.stderr


def test_execute__replayed_tick_past_its_deadline_is_not_sent(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 5)
    insert_campaign(db, name="mornings", topic=topic, deadline=timedelta(hours=4))

    result = invoke_cli("execute", "--at", TICK_TEXT, settings=settings)

    assert result.exit_code == 0
    assert (
        "campaign 'mornings': slot 2025-06-02T09:00:00+00:00 is past its deadline"
        " (2025-06-02T13:00:00+00:00); not sent" in result.stderr
    )
    assert run_rows(db) == []


def test_execute__resumed_run_keeps_the_cohort_it_started_with(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 40)
    campaign_id = insert_campaign(db, name="edited", topic=topic, schedule="* * * * *")
    slot = recent_slot(db)
    insert_stranded_run(db, campaign_id, checkpoint=10, slot=slot)
    db.execute(
        "UPDATE campaign_runs SET cohort = 'id <= 20', settings = %s",
        [Jsonb({"topic": topic, "message_fields": ["email"], "batch_size": 3})],
    )
    db.execute("UPDATE campaigns SET cohort = 'id > 30', topic = 'elsewhere'")

    runner.execute(settings, campaign_name="edited", at=slot)

    messages = read_back(settings.kafka_bootstrap_servers, topic, expected=10)
    assert sorted(int(key) for key, _, _ in messages) == list(range(11, 21))
    assert {tuple(value["recipient"]["fields"]) for _, value, _ in messages} == {
        ("email",)
    }


def test_execute__resumed_run_remembers_recipients_refused_earlier(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 20)
    campaign_id = insert_campaign(
        db, name="refusals", topic=topic, schedule="* * * * *"
    )
    slot = recent_slot(db)
    insert_stranded_run(db, campaign_id, checkpoint=10, slot=slot)
    db.execute("UPDATE campaign_runs SET failed = 1, produced = 9")

    [outcome] = runner.execute(settings, campaign_name="refusals", at=slot)

    assert (outcome.status, outcome.failed, outcome.exit_code) == (
        "completed_with_errors",
        1,
        6,
    )


def test_execute__slot_beyond_the_grace_is_recorded_as_missed(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_campaign(db, name="mornings", topic=topic, grace=timedelta(minutes=5))
    # Slots from before a campaign existed are never recorded: it existed then.
    db.execute("UPDATE campaigns SET created_at = %s", [TICK - timedelta(hours=1)])

    runner.execute(settings, at=TICK + timedelta(minutes=30))

    assert [(r["status"], r["scheduled_for"]) for r in run_rows(db)] == [
        ("missed", TICK)
    ]


def test_execute__refuses_a_future_tick(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_campaign(db, name="mornings", topic=topic)

    result = invoke_cli("execute", "--at", "2999-01-01T09:00", settings=settings)

    assert result.exit_code == 2
    assert "--at 2999-01-01T09:00:00+00:00 is in the future" in result.stderr
    assert run_rows(db) == []


def test_execute__pausing_a_campaign_stops_its_run_at_the_next_flight(
    db: psycopg.Connection[Any],
    database_url: str,
    settings: Settings,
    topic: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    insert_users(db, 1_000)
    campaign_id = insert_campaign(db, name="pause-me", topic=topic, batch_size=100)
    record_progress = ledger.record_progress

    def record_then_pause(*args: Any, **kwargs: Any) -> None:
        record_progress(*args, **kwargs)
        # An operator pauses the campaign while its first flight is being recorded.
        with psycopg.connect(database_url, autocommit=True) as operator:
            operator.execute(
                "UPDATE campaigns SET status = 'paused' WHERE id = %s", [campaign_id]
            )

    monkeypatch.setattr(ledger, "record_progress", record_then_pause)

    runner.execute(settings, at=TICK)

    [run] = run_rows(db)
    # The flights already on their way when it was paused are confirmed and kept.
    assert (
        run["status"],
        run["checkpoint"] == run["produced"],
        100 <= run["produced"] <= 100 * settings.batches_in_flight,
    ) == ("interrupted", True, True)
    assert "campaign 'pause-me' is paused" in run["error"]
