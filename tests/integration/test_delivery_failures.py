"""Delivery failures: a recipient refused for good, and a broker that goes away."""

from __future__ import annotations

import collections
import dataclasses
import json
from typing import Any

import psycopg
import pytest

from campaigner import errors, runner
from campaigner.config import Settings
from campaigner.embedded import EmbeddedKafka
from campaigner.embedded.common import free_port
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

PROCESS_TIMEOUT_S = 120


def test_execute__recipient_too_large_is_recorded_and_the_run_goes_on(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 300)
    db.execute(
        "UPDATE user_data SET attributes = jsonb_build_object('notes', repeat('x', 5000))"
        " WHERE id IN (7, 150)"
    )
    insert_campaign(
        db,
        name="newsletter",
        topic=topic,
        batch_size=100,
        message_fields=("email", "attributes"),
    )
    # librdkafka refuses a message above message.max.bytes before it is sent.
    small = dataclasses.replace(
        settings, kafka_properties={"message.max.bytes": "2000"}
    )

    outcomes = runner.execute(small, at=TICK)

    messages = read_back(settings.kafka_bootstrap_servers, topic, expected=298)
    assert [
        (o.status, o.matched, o.produced, o.failed, o.exit_code) for o in outcomes
    ] == [("completed_with_errors", 300, 298, 2, errors.EXIT_CAMPAIGN)]
    assert sorted(int(key) for key, _, _ in messages) == [
        n for n in range(1, 301) if n not in (7, 150)
    ]
    failures = db.execute(
        "SELECT user_id FROM campaign_run_failures ORDER BY user_id"
    ).fetchall()
    assert failures == [(7,), (150,)]
    assert [(r["status"], r["checkpoint"]) for r in run_rows(db)] == [
        ("completed_with_errors", 300)
    ]


@pytest.mark.slow
def test_execute__broker_gone_after_the_topic_check_fails_the_run_as_retryable(
    db: psycopg.Connection[Any], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    insert_users(db, 200)
    broker = EmbeddedKafka()
    broker.start()
    try:
        create_topic(broker.bootstrap_servers, "short-lived")
        insert_campaign(db, name="short-lived", topic="short-lived", batch_size=50)
        check_topic = KafkaSink.check_topic

        def check_then_lose_the_broker(
            self: KafkaSink, campaign_name: str, topic: str
        ) -> None:
            check_topic(self, campaign_name, topic)
            broker.stop()

        monkeypatch.setattr(KafkaSink, "check_topic", check_then_lose_the_broker)
        settings = Settings(
            database_url=database_url,
            kafka_bootstrap_servers=broker.bootstrap_servers,
            kafka_timeout=2,
            connect_timeout=3,
        )

        outcomes = runner.execute(settings, at=TICK)
    finally:
        broker.stop()

    assert [(o.status, o.produced, o.exit_code) for o in outcomes] == [
        ("failed", 0, errors.EXIT_KAFKA)
    ]
    assert "campaign 'short-lived': delivery to topic 'short-lived' failed" in (
        outcomes[0].error or ""
    )
    assert [(r["status"], r["retryable"], r["checkpoint"]) for r in run_rows(db)] == [
        ("failed", True, None)
    ]


def kill(broker: EmbeddedKafka) -> None:
    """Kill the broker at once (SIGKILL): a graceful stop would go on serving its
    connected clients for seconds."""
    process = broker._proc
    assert process is not None
    process.kill()
    process.wait(timeout=10)
    broker.stop()


def log_events(stderr: str, event: str) -> list[dict[str, Any]]:
    lines = (json.loads(line) for line in stderr.splitlines() if line.startswith("{"))
    return [line for line in lines if line.get("event") == event]


@pytest.mark.slow
def test_execute__broker_lost_in_the_middle_keeps_the_last_confirmed_checkpoint(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    users, batch = 20_000, 1_000
    insert_users(db, users)
    insert_campaign(db, name="cut-off", topic="cut-off", batch_size=batch)
    # About ten seconds of sending: the broker goes away in the middle of it.
    db.execute("UPDATE campaigns SET rate_limit = 2000")
    broker = EmbeddedKafka(port=free_port())
    bootstrap = broker.bootstrap_servers
    with broker:
        create_topic(bootstrap, "cut-off")
        worker = start_cli(
            "execute", "--at", TICK_TEXT, "--kafka-timeout", "3", "-vv",
            "--log-format", "json", database_url=database_url,
            kafka_bootstrap=bootstrap,
        )  # fmt: skip
        try:
            confirmed = wait_for(
                lambda: run_checkpoint(database_url) >= 3 * batch, timeout=60
            )
            before_the_loss = run_checkpoint(database_url)
            kill(broker)
            _, stderr = worker.communicate(timeout=PROCESS_TIMEOUT_S)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    [failed] = run_rows(db)
    with broker:  # it starts empty: the topic is created again
        create_topic(bootstrap, "cut-off")
        resumed = run_cli(
            "execute", "--at", TICK_TEXT, database_url=database_url,
            kafka_bootstrap=bootstrap, timeout=PROCESS_TIMEOUT_S,
        )  # fmt: skip
        messages = read_back(
            bootstrap, "cut-off", expected=users - failed["checkpoint"]
        )

    checkpoint = failed["checkpoint"]
    saved = log_events(stderr, "batch_confirmed")
    produced = log_events(stderr, "batch_produced")
    counts = collections.Counter(int(key) for key, _, _ in messages)
    assert (confirmed, worker.returncode) == (True, errors.EXIT_KAFKA)
    assert (failed["status"], failed["retryable"]) == ("failed", True)
    assert "campaign 'cut-off': delivery to topic 'cut-off' failed" in failed["error"]
    # The checkpoint is the last id of the last batch the broker confirmed in full;
    # the batches produced after it, whose reports failed, did not move it.
    assert (before_the_loss <= checkpoint < users, checkpoint % batch) == (True, 0)
    assert (failed["matched"], failed["produced"]) == (checkpoint, checkpoint)
    assert saved[-1]["checkpoint"] == checkpoint
    assert produced[-1]["batch_no"] > saved[-1]["batch_no"]
    assert resumed[0] == 0, resumed[2]
    assert sorted(counts.elements()) == list(range(checkpoint + 1, users + 1))
    assert [(r["status"], r["produced"], r["attempts"]) for r in run_rows(db)] == [
        ("succeeded", users, 2)
    ]
