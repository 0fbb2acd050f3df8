"""An execute that stops early (Kafka failing) warns only about the slots it
leaves undone, not about slots an earlier tick already claimed."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import psycopg

from campaigner import errors
from campaigner.embedded.common import free_port
from tests.conftest import TICK_TEXT, insert_campaign, insert_users, run_cli


def test_execute__stopped_by_kafka_warns_only_about_unclaimed_slots(
    db: psycopg.Connection[Any], database_url: str, kafka_bootstrap: str, topic: str
) -> None:
    insert_users(db, 10)
    # In id order, the order execute works in: the first fails on the broker.
    insert_campaign(db, name="first", topic=topic, schedule="5 9 * * *")
    for name in ("earlier-1", "earlier-2"):
        insert_campaign(
            db, name=name, topic=topic, schedule="0 9 * * *", grace=timedelta(hours=1)
        )
    insert_campaign(db, name="last", topic=topic, schedule="5 9 * * *")
    ran = run_cli(
        "execute", "--at", TICK_TEXT,
        database_url=database_url, kafka_bootstrap=kafka_bootstrap,
    )  # fmt: skip
    assert ran[0] == 0, ran[2]

    # 09:05: the 09:00 slots are still in their grace, but already ran.
    code, _, stderr = run_cli(
        "execute", "--at", "2025-06-02T09:05", "--kafka-timeout", "2",
        database_url=database_url, kafka_bootstrap=f"127.0.0.1:{free_port()}",
    )  # fmt: skip

    assert code == errors.EXIT_KAFKA, stderr
    warned = re.findall(r"campaign '([^']+)': slot \S+ not started because", stderr)
    assert warned == ["last"]
