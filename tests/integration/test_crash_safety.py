"""Runs that survive their process: SIGKILL, SIGSTOP and SIGTERM in the middle of a
run of `campaigner execute`, then another `execute`; what arrived is read back."""

from __future__ import annotations

import json
import signal
import time
from typing import Any

import psycopg
import pytest

from campaigner import envelope, runner
from campaigner.config import Settings
from campaigner.embedded import EmbeddedKafka
from campaigner.embedded.common import free_port
from tests.conftest import (
    TICK,
    TICK_TEXT,
    copies_by_user,
    create_topic,
    finish,
    insert_campaign,
    insert_users,
    read_back,
    run_checkpoint,
    run_cli,
    run_rows,
    start_cli,
    wait_for,
)

COHORT = 25_001
BATCH = 5_000
# Messages per second: the run lasts about ten seconds, long enough to be hit in
# the middle, and no test hook is needed in the product.
RATE_LIMIT = 2_500
# Batches on their way at once in these runs (the default).
IN_FLIGHT = Settings().batches_in_flight
PROCESS_TIMEOUT_S = 120
# The Kafka timeout of a worker whose broker stops answering: long next to how
# soon a second signal must end it.
PATIENT_KAFKA_TIMEOUT_S = 60
# A bound, not a speed: the shortest wait a second signal must skip is 10 s.
STOPS_AT_ONCE_S = 5


def arrange_slow_campaign(db: psycopg.Connection[Any], topic: str) -> int:
    insert_users(db, COHORT)
    campaign_id = insert_campaign(db, name="slow", topic=topic, batch_size=BATCH)
    db.execute("UPDATE campaigns SET rate_limit = %s", [RATE_LIMIT])
    return campaign_id


def execute_again(
    database_url: str, kafka_bootstrap: str, *args: str
) -> tuple[int, str, str]:
    return run_cli(
        "execute",
        "--at",
        TICK_TEXT,
        *args,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        timeout=PROCESS_TIMEOUT_S,
    )


@pytest.mark.slow
def test_execute__killed_after_its_third_batch_is_resumed_by_the_next_execute(
    db: psycopg.Connection[Any],
    database_url: str,
    kafka_bootstrap: str,
    topic: str,
) -> None:
    campaign_id = arrange_slow_campaign(db, topic)
    worker = start_cli(
        "execute",
        "--at",
        TICK_TEXT,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
    )
    try:
        third_confirmed = wait_for(
            lambda: run_checkpoint(database_url) >= 3 * BATCH, timeout=60
        )
        worker.send_signal(signal.SIGKILL)
    finally:
        finish(worker, timeout=PROCESS_TIMEOUT_S)
    [killed] = run_rows(db)

    code, _, stderr = execute_again(database_url, kafka_bootstrap)

    messages = read_back(kafka_bootstrap, topic, expected=COHORT)
    copies = copies_by_user(messages)
    repeated = sorted(user for user, keys in copies.items() if len(keys) > 1)
    [resumed] = run_rows(db)
    print(
        f"\nkilled at checkpoint {killed['checkpoint']}: {len(messages)} messages,"
        f" {len(messages) - COHORT} repeats, user ids {repeated[:1]}..{repeated[-1:]}"
    )
    assert third_confirmed
    assert (worker.returncode, killed["status"]) == (-signal.SIGKILL, "running")
    assert (code, "its worker died" in stderr) == (0, True)
    assert sorted(copies) == list(range(1, COHORT + 1))
    assert [
        user
        for user, keys in copies.items()
        if set(keys) != {envelope.idempotency_key(campaign_id, TICK, user)}
    ] == []
    # Only what was on its way when the worker died is sent twice.
    assert len(messages) - COHORT <= IN_FLIGHT * BATCH
    assert [
        user
        for user in repeated
        if not killed["checkpoint"] < user <= killed["checkpoint"] + IN_FLIGHT * BATCH
    ] == []
    assert {
        key: resumed[key]
        for key in ("status", "matched", "produced", "checkpoint", "attempts")
    } == {
        "status": "succeeded",
        "matched": COHORT,
        "produced": COHORT,
        "checkpoint": COHORT,
        "attempts": 2,
    }


@pytest.mark.slow
def test_execute__stopped_worker_is_never_taken_over(
    db: psycopg.Connection[Any],
    database_url: str,
    kafka_bootstrap: str,
    topic: str,
) -> None:
    arrange_slow_campaign(db, topic)
    # Nothing of the stopped worker may time out on the broker's side while it is
    # stopped: only campaigner's takeover rules are under test.
    patient = {
        "CAMPAIGNER_KAFKA_TIMEOUT": "300",
        "CAMPAIGNER_KAFKA__REQUEST_TIMEOUT_MS": "300000",
    }
    worker = start_cli(
        "execute",
        "--at",
        TICK_TEXT,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        env=patient,
    )
    others = []
    try:
        first_confirmed = wait_for(
            lambda: run_checkpoint(database_url) >= BATCH, timeout=60
        )
        worker.send_signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        others.append(execute_again(database_url, kafka_bootstrap, "--json"))
        time.sleep(max(0.0, stopped_at + 61 - time.monotonic()))
        others.append(execute_again(database_url, kafka_bootstrap, "--json"))
        stopped_for = time.monotonic() - stopped_at
        worker.send_signal(signal.SIGCONT)
        _, worker_stderr = finish(worker, timeout=PROCESS_TIMEOUT_S)
    finally:
        worker.send_signal(signal.SIGCONT)
        finish(worker, timeout=PROCESS_TIMEOUT_S)

    messages = read_back(kafka_bootstrap, topic, expected=COHORT)
    assert (first_confirmed, stopped_for > 60) == (True, True)
    assert [
        (code, [o["status"] for o in json.loads(stdout)], stderr)
        for code, stdout, stderr in others
    ] == [(0, ["already_claimed"], ""), (0, ["already_claimed"], "")]
    assert (worker.returncode, worker_stderr) == (0, "")
    assert len(messages) == COHORT
    assert sorted(int(key) for key, _, _ in messages) == list(range(1, COHORT + 1))
    assert [(r["status"], r["produced"], r["attempts"]) for r in run_rows(db)] == [
        ("succeeded", COHORT, 1)
    ]


@pytest.mark.slow
def test_execute__interrupted_by_sigterm_is_finished_by_the_next_execute(
    db: psycopg.Connection[Any],
    database_url: str,
    kafka_bootstrap: str,
    topic: str,
) -> None:
    arrange_slow_campaign(db, topic)
    worker = start_cli(
        "execute",
        "--at",
        TICK_TEXT,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
    )
    try:
        first_confirmed = wait_for(
            lambda: run_checkpoint(database_url) >= BATCH, timeout=60
        )
        worker.send_signal(signal.SIGTERM)
    finally:
        finish(worker, timeout=PROCESS_TIMEOUT_S)
    [interrupted] = run_rows(db)

    code, _, _ = execute_again(database_url, kafka_bootstrap)

    messages = read_back(kafka_bootstrap, topic, expected=COHORT)
    [finished] = run_rows(db)
    assert (first_confirmed, worker.returncode, code) == (True, 75, 0)
    assert (
        interrupted["status"],
        interrupted["checkpoint"] == interrupted["produced"],
        BATCH <= interrupted["produced"] < COHORT,
    ) == ("interrupted", True, True)
    # A graceful stop confirms what is on its way: nothing is sent twice.
    assert len(messages) == COHORT
    assert sorted(int(key) for key, _, _ in messages) == list(range(1, COHORT + 1))
    assert (finished["status"], finished["produced"], finished["attempts"]) == (
        "succeeded",
        COHORT,
        2,
    )


def test_execute__rate_limit_is_kept_with_the_run(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 10)
    insert_campaign(db, name="quota", topic=topic)
    db.execute("UPDATE campaigns SET rate_limit = 7")

    runner.execute(settings, at=TICK)

    [run] = run_rows(db)
    assert (run["status"], run["settings"]["rate_limit"]) == ("succeeded", 7)


@pytest.mark.slow
def test_execute__second_sigterm_stops_at_once_while_the_first_waits_for_reports(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    broker = EmbeddedKafka(port=free_port())
    bootstrap = broker.bootstrap_servers
    with broker:
        create_topic(bootstrap, "slow")
        arrange_slow_campaign(db, "slow")
        # A graceful stop waits up to this long for the reports of what is on its way.
        patient = {"CAMPAIGNER_KAFKA_TIMEOUT": str(PATIENT_KAFKA_TIMEOUT_S)}
        worker = start_cli(
            "execute", "--at", TICK_TEXT, database_url=database_url,
            kafka_bootstrap=bootstrap, env=patient,
        )  # fmt: skip
        frozen = broker._proc
        assert frozen is not None
        try:
            first_confirmed = wait_for(
                lambda: run_checkpoint(database_url) >= BATCH, timeout=60
            )
            # The broker stops answering: what is produced from now on stays on
            # its way, and a graceful stop would wait for its reports.
            frozen.send_signal(signal.SIGSTOP)
            time.sleep(0.5)
            worker.send_signal(signal.SIGTERM)
            ended_on_first = wait_for(lambda: worker.poll() is not None, timeout=3)
            worker.send_signal(signal.SIGTERM)
            second_sent = time.monotonic()
            _, stderr = worker.communicate(timeout=PROCESS_TIMEOUT_S)
            took = time.monotonic() - second_sent
        finally:
            frozen.send_signal(signal.SIGCONT)
            finish(worker, timeout=PROCESS_TIMEOUT_S)
        [interrupted] = run_rows(db)
        code, _, _ = execute_again(database_url, bootstrap)
        messages = read_back(bootstrap, "slow", expected=COHORT)

    print(f"\nsecond SIGTERM: exited after {took:.1f}s")
    assert (first_confirmed, ended_on_first) == (True, False)
    assert worker.returncode == 75
    assert "error: stopped at once by a second signal" in stderr
    # Nothing more is waited for: neither the reports of what is on its way (up to
    # the Kafka timeout) nor the producer's final flush (up to 10 s).
    assert took < STOPS_AT_ONCE_S
    assert {key: interrupted[key] for key in ("status", "retryable", "error")} == {
        "status": "interrupted",
        "retryable": True,
        "error": "interrupted at once by a second signal",
    }
    assert interrupted["checkpoint"] == interrupted["produced"] >= BATCH
    assert code == 0
    assert sorted(copies_by_user(messages)) == list(range(1, COHORT + 1))
    assert [(r["status"], r["produced"], r["attempts"]) for r in run_rows(db)] == [
        ("succeeded", COHORT, 2)
    ]
