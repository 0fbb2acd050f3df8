"""Delivery failures: a recipient refused for good, and a broker that goes away."""

from __future__ import annotations

import dataclasses
from typing import Any

import psycopg
import pytest

from campaigner import errors, runner
from campaigner.config import Settings
from campaigner.embedded import EmbeddedKafka
from campaigner.kafka_sink import KafkaSink
from tests.conftest import (
    TICK,
    create_topic,
    insert_campaign,
    insert_users,
    read_back,
    run_rows,
)


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
