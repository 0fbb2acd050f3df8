"""An execute that stops early: Kafka failing warns only about the slots it
leaves undone, not about slots an earlier tick already claimed; PostgreSQL lost
mid-run logs no counts it cannot know."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import psycopg

from campaigner import errors
from campaigner.embedded.common import free_port
from tests.conftest import (
    TICK_TEXT,
    insert_campaign,
    insert_users,
    run_checkpoint,
    run_cli,
    run_rows,
    start_cli,
    wait_for,
)


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


def test_execute__postgres_lost_mid_run_logs_no_false_zero_counts(
    db: psycopg.Connection[Any], database_url: str, kafka_bootstrap: str, topic: str
) -> None:
    insert_users(db, 20_000)
    insert_campaign(db, name="long", topic=topic, batch_size=500)
    # Slow enough to be stopped in the middle.
    db.execute("UPDATE campaigns SET rate_limit = 2000")
    process = start_cli(
        "execute", "--at", TICK_TEXT,
        database_url=database_url, kafka_bootstrap=kafka_bootstrap,
    )  # fmt: skip
    try:
        assert wait_for(lambda: run_checkpoint(database_url) > 0, timeout=60)
        # Every session of campaigner's database ends, as in a failover.
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
        process.wait(timeout=30)

    [row] = run_rows(db)
    assert process.returncode == errors.EXIT_DATABASE, stderr
    assert row["matched"] > 0
    final = stderr.strip().splitlines()[-1]
    assert f"run {row['id']}" in final
    assert "0 matched" not in final
    assert "counts unknown" in final
