"""Sharded runs: a large run split into id ranges that several `execute` processes
share, each shard with its own checkpoint; what arrived is read back."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from campaigner import envelope, errors, runner, shards
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
    invoke_cli,
    read_back,
    run_cli,
    run_rows,
    start_cli,
    wait_for,
)

COHORT = 24_001
BATCH = 1_000
# Settings that split COHORT into 5 shards of about 4,800 recipients.
SHARDING = {"CAMPAIGNER_SHARD_THRESHOLD": "10000", "CAMPAIGNER_SHARD_SIZE": "5000"}
SHARDS = 5
# Messages per second over the whole run: long enough (about 10 s) to be hit in
# the middle, and no test hook is needed in the product.
RATE_LIMIT = 2_400
IN_FLIGHT = Settings().batches_in_flight
PROCESS_TIMEOUT_S = 120


def arrange(db: psycopg.Connection[Any], topic: str, *, rate_limit: int | None) -> int:
    insert_users(db, COHORT)
    # Sharding goes by the planner's estimate: statistics make it exact here.
    db.execute("ANALYZE user_data")
    campaign_id = insert_campaign(db, name="big", topic=topic, batch_size=BATCH)
    db.execute("UPDATE campaigns SET rate_limit = %s", [rate_limit])
    return campaign_id


def shard_rows(db: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    with db.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM campaign_run_shards ORDER BY shard_no")
        return cur.fetchall()


def wrong_keys(copies: dict[int, list[str]], campaign_id: int) -> list[int]:
    return [
        user
        for user, keys in copies.items()
        if set(keys) != {envelope.idempotency_key(campaign_id, TICK, user)}
    ]


def execute(
    database_url: str, kafka_bootstrap: str, *args: str
) -> subprocess.Popen[str]:
    return start_cli(
        "execute",
        "--at",
        TICK_TEXT,
        *args,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        env=SHARDING,
    )


def shards_done(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*) FROM campaign_run_shards WHERE status = 'done'"
        ).fetchone()
    return int(row[0]) if row else 0


def shard_progress(database_url: str) -> list[tuple[int, str, int | None, int | None]]:
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        return [
            (row[0], row[1], row[2], row[3])
            for row in conn.execute(
                "SELECT shard_no, status, pid, checkpoint FROM campaign_run_shards"
                " ORDER BY shard_no"
            )
        ]


def test_execute__large_run_is_sharded_and_each_recipient_arrives_once(
    db: psycopg.Connection[Any], settings: Settings, kafka_bootstrap: str, topic: str
) -> None:
    campaign_id = arrange(db, topic, rate_limit=None)
    sharded = dataclasses.replace(settings, shard_threshold=10_000, shard_size=5_000)

    [outcome] = runner.execute(sharded, at=TICK)

    messages = read_back(kafka_bootstrap, topic, expected=COHORT)
    copies = copies_by_user(messages)
    shard_list = shard_rows(db)
    [run] = run_rows(db)
    assert (outcome.status, outcome.produced, outcome.exit_code) == (
        "succeeded",
        COHORT,
        0,
    )
    assert (len(messages), sorted(copies)) == (COHORT, list(range(1, COHORT + 1)))
    assert wrong_keys(copies, campaign_id) == []
    assert [(s["shard_no"], s["status"], s["attempts"]) for s in shard_list] == [
        (number, "done", 1) for number in range(1, SHARDS + 1)
    ]
    # The ranges follow each other and cover every key.
    assert shard_list[0]["lower_key"] == -(2**63)
    assert shard_list[-1]["upper_key"] is None
    assert [s["lower_key"] for s in shard_list[1:]] == [
        s["upper_key"] for s in shard_list[:-1]
    ]
    assert sum(s["produced"] for s in shard_list) == COHORT
    assert {k: run[k] for k in ("status", "matched", "produced", "attempts")} == {
        "status": "succeeded",
        "matched": COHORT,
        "produced": COHORT,
        "attempts": 1,
    }


def test_runs__shows_a_sharded_runs_shards(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    arrange(db, topic, rate_limit=None)
    sharded = dataclasses.replace(settings, shard_threshold=10_000, shard_size=5_000)
    runner.execute(sharded, at=TICK)

    table = invoke_cli("runs", settings=settings)
    document = json.loads(invoke_cli("runs", "--json", settings=settings).stdout)

    [line] = [line for line in table.stdout.splitlines() if "succeeded" in line]
    [run] = document
    assert f"{SHARDS}/{SHARDS} done" in line
    assert (run["shards_total"], run["shards_done"]) == (SHARDS, SHARDS)
    assert [
        (shard["shard_no"], shard["status"], shard["attempts"])
        for shard in run["shards"]
    ] == [(number, "done", 1) for number in range(1, SHARDS + 1)]
    assert sum(shard["produced"] for shard in run["shards"]) == COHORT


def test_execute__run_below_the_threshold_stays_whole(
    db: psycopg.Connection[Any], settings: Settings, kafka_bootstrap: str, topic: str
) -> None:
    arrange(db, topic, rate_limit=None)
    just_above = dataclasses.replace(settings, shard_threshold=COHORT, shard_size=5_000)

    [outcome] = runner.execute(just_above, at=TICK)

    messages = read_back(kafka_bootstrap, topic, expected=COHORT)
    [run] = run_rows(db)
    assert (outcome.status, len(messages)) == ("succeeded", COHORT)
    assert shard_rows(db) == []
    assert (run["checkpoint"], run["produced"]) == (COHORT, COHORT)


@pytest.mark.slow
def test_execute__two_processes_started_together_share_the_shards(
    db: psycopg.Connection[Any],
    database_url: str,
    kafka_bootstrap: str,
    topic: str,
) -> None:
    campaign_id = arrange(db, topic, rate_limit=RATE_LIMIT)

    processes = [execute(database_url, kafka_bootstrap, "--json") for _ in range(2)]
    outputs = [finish(process, timeout=PROCESS_TIMEOUT_S) for process in processes]

    messages = read_back(kafka_bootstrap, topic, expected=COHORT)
    copies = copies_by_user(messages)
    shard_list = shard_rows(db)
    [run] = run_rows(db)
    statuses = sorted(json.loads(stdout)[0]["status"] for stdout, _ in outputs)
    print(f"\nshards by pid: {[(s['shard_no'], s['pid']) for s in shard_list]}")
    assert [process.returncode for process in processes] == [0, 0]
    # One process ends the run; the other left it while the last shard went on.
    assert statuses == ["running", "succeeded"]
    assert len({s["pid"] for s in shard_list}) == 2
    assert (len(messages), sorted(copies)) == (COHORT, list(range(1, COHORT + 1)))
    assert wrong_keys(copies, campaign_id) == []
    assert [s["status"] for s in shard_list] == ["done"] * SHARDS
    assert (run["status"], run["produced"], run["attempts"]) == (
        "succeeded",
        COHORT,
        1,
    )


@pytest.mark.slow
def test_execute__killed_in_a_shard_is_taken_over_by_the_next_execute(
    db: psycopg.Connection[Any],
    database_url: str,
    kafka_bootstrap: str,
    topic: str,
) -> None:
    campaign_id = arrange(db, topic, rate_limit=RATE_LIMIT)
    worker = execute(database_url, kafka_bootstrap)
    try:
        in_second_shard = wait_for(
            lambda: (
                shards_done(database_url) >= 1
                and any(
                    status == "running" and (checkpoint or 0) > 0
                    for _, status, _, checkpoint in shard_progress(database_url)
                )
            ),
            timeout=60,
        )
        worker.send_signal(signal.SIGKILL)
    finally:
        finish(worker, timeout=PROCESS_TIMEOUT_S)
    killed = shard_rows(db)
    [running] = [s for s in killed if s["status"] == "running"]

    code, _, stderr = run_cli(
        "execute",
        "--at",
        TICK_TEXT,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        env=SHARDING,
        timeout=PROCESS_TIMEOUT_S,
    )

    messages = read_back(kafka_bootstrap, topic, expected=COHORT)
    copies = copies_by_user(messages)
    repeated = sorted(user for user, keys in copies.items() if len(keys) > 1)
    shard_list = shard_rows(db)
    [run] = run_rows(db)
    print(
        f"\nkilled in shard {running['shard_no']} at {running['checkpoint']}:"
        f" {len(messages) - COHORT} repeats, user ids {repeated[:1]}..{repeated[-1:]}"
    )
    assert in_second_shard
    assert (code, "taken over (its worker died)" in stderr) == (0, True)
    assert sorted(copies) == list(range(1, COHORT + 1))
    assert wrong_keys(copies, campaign_id) == []
    # Only what was on its way in the killed shard is sent twice.
    assert len(messages) - COHORT <= IN_FLIGHT * BATCH
    assert [
        user
        for user in repeated
        if not running["checkpoint"]
        < user
        <= min(
            running["checkpoint"] + IN_FLIGHT * BATCH, running["upper_key"] or COHORT
        )
    ] == []
    assert [
        (s["status"], s["attempts"]) for s in shard_list if s["id"] == running["id"]
    ] == [("done", 2)]
    assert [s["status"] for s in shard_list] == ["done"] * SHARDS
    assert (run["status"], run["matched"], run["produced"], run["attempts"]) == (
        "succeeded",
        COHORT,
        COHORT,
        2,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "helper_args",
    [["--at", TICK_TEXT], ["--campaign", "big", "--at", TICK_TEXT]],
    ids=["cron", "back-fill"],
)
def test_execute__stopped_worker_keeps_its_shard_while_another_execute_helps(
    db: psycopg.Connection[Any],
    database_url: str,
    kafka_bootstrap: str,
    topic: str,
    helper_args: list[str],
) -> None:
    arrange(db, topic, rate_limit=RATE_LIMIT)
    # Nothing of the stopped worker may time out on the broker's side while it is
    # stopped: only campaigner's takeover rules are under test.
    patient = {
        **SHARDING,
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
    try:
        in_first_shard = wait_for(
            lambda: any(
                status == "running" and (checkpoint or 0) > 0
                for _, status, _, checkpoint in shard_progress(database_url)
            ),
            timeout=60,
        )
        worker.send_signal(signal.SIGSTOP)
        [stopped] = [s for s in shard_rows(db) if s["status"] == "running"]
        helper = run_cli(
            "execute",
            *helper_args,
            "--json",
            database_url=database_url,
            kafka_bootstrap=kafka_bootstrap,
            env=SHARDING,
            timeout=PROCESS_TIMEOUT_S,
        )
        while_stopped = shard_rows(db)
        worker.send_signal(signal.SIGCONT)
        _, worker_stderr = finish(worker, timeout=PROCESS_TIMEOUT_S)
    finally:
        worker.send_signal(signal.SIGCONT)
        finish(worker, timeout=PROCESS_TIMEOUT_S)

    messages = read_back(kafka_bootstrap, topic, expected=COHORT)
    code, stdout, _ = helper
    [run] = run_rows(db)
    assert in_first_shard
    assert (code, [o["status"] for o in json.loads(stdout)]) == (0, ["running"])
    # The helper sent every other shard, never the stopped worker's.
    assert [
        (s["shard_no"], s["status"], s["pid"] == stopped["pid"], s["attempts"])
        for s in while_stopped
    ] == [
        (s["shard_no"], "running", True, 1)
        if s["shard_no"] == stopped["shard_no"]
        else (s["shard_no"], "done", False, 1)
        for s in while_stopped
    ]
    assert (worker.returncode, worker_stderr) == (0, "")
    assert len(messages) == COHORT
    assert sorted(int(key) for key, _, _ in messages) == list(range(1, COHORT + 1))
    assert (run["status"], run["produced"], run["attempts"]) == (
        "succeeded",
        COHORT,
        1,
    )


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigterm", "pause"])
def test_execute__sharded_run_stopped_gracefully_is_finished_by_the_next_execute(
    db: psycopg.Connection[Any],
    database_url: str,
    kafka_bootstrap: str,
    topic: str,
    how: str,
) -> None:
    arrange(db, topic, rate_limit=RATE_LIMIT)
    worker = execute(database_url, kafka_bootstrap)
    try:
        in_second_shard = wait_for(
            lambda: (
                shards_done(database_url) >= 1
                and any(
                    status == "running" and (checkpoint or 0) > 0
                    for _, status, _, checkpoint in shard_progress(database_url)
                )
            ),
            timeout=60,
        )
        if how == "sigterm":
            worker.send_signal(signal.SIGTERM)
        else:
            db.execute("UPDATE campaigns SET status = 'paused'")
    finally:
        finish(worker, timeout=PROCESS_TIMEOUT_S)
    [stopped] = run_rows(db)
    stopped_shards = [s["status"] for s in shard_rows(db)]
    db.execute("UPDATE campaigns SET status = 'active'")

    code, _, _ = run_cli(
        "execute",
        "--at",
        TICK_TEXT,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        env=SHARDING,
        timeout=PROCESS_TIMEOUT_S,
    )

    messages = read_back(kafka_bootstrap, topic, expected=COHORT)
    [finished] = run_rows(db)
    assert in_second_shard
    assert (worker.returncode, code) == (75 if how == "sigterm" else 0, 0)
    assert (stopped["status"], stopped["retryable"]) == ("interrupted", True)
    assert stopped_shards[:2] == ["done", "interrupted"]
    assert set(stopped_shards[2:]) == {"pending"}
    # A graceful stop confirms what is on its way: nothing is sent twice.
    assert len(messages) == COHORT
    assert sorted(int(key) for key, _, _ in messages) == list(range(1, COHORT + 1))
    assert (finished["status"], finished["produced"], finished["attempts"]) == (
        "succeeded",
        COHORT,
        2,
    )
    assert [s["status"] for s in shard_rows(db)] == ["done"] * SHARDS


@pytest.mark.slow
def test_execute__sharded_run_past_its_deadline_expires_with_its_counts(
    db: psycopg.Connection[Any],
    database_url: str,
    kafka_bootstrap: str,
    topic: str,
) -> None:
    arrange(db, topic, rate_limit=RATE_LIMIT)
    # The deadline passes about four seconds from now, in the middle of the run.
    db.execute(
        "UPDATE campaigns SET deadline = now() + interval '4 seconds' - %s", [TICK]
    )

    worker = execute(database_url, kafka_bootstrap)
    _, stderr = finish(worker, timeout=PROCESS_TIMEOUT_S)

    messages = read_back(kafka_bootstrap, topic, expected=0)
    [run] = run_rows(db)
    statuses = [s["status"] for s in shard_rows(db)]
    assert worker.returncode == 6
    assert "passed before the end of the cohort" in stderr
    assert (run["status"], 0 < run["produced"] < COHORT) == ("expired", True)
    assert run["produced"] == len(messages) == len({k for k, _, _ in messages})
    assert "expired" in statuses and "pending" in statuses
    assert statuses[0] == "done"


@pytest.mark.slow
def test_execute__shard_failed_on_a_lost_broker_is_retried_once_it_is_back(
    db: psycopg.Connection[Any], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    insert_users(db, COHORT)
    db.execute("ANALYZE user_data")
    insert_campaign(db, name="big", topic="lost", batch_size=BATCH)
    broker = EmbeddedKafka(port=free_port())
    settings = Settings(
        database_url=database_url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        kafka_timeout=2,
        connect_timeout=3,
        shard_threshold=10_000,
        shard_size=5_000,
    )
    finish = shards.finish

    def finish_then_lose_the_broker(*args: Any, **kwargs: Any) -> None:
        finish(*args, **kwargs)
        broker.stop()

    with broker:
        create_topic(broker.bootstrap_servers, "lost")
        with monkeypatch.context() as patch:
            patch.setattr(shards, "finish", finish_then_lose_the_broker)
            lost = runner.execute(settings, at=TICK)
    failed = run_rows(db)
    failed_shards = [(s["status"], s["retryable"]) for s in shard_rows(db)]
    first_upper = shard_rows(db)[0]["upper_key"]
    with broker:  # it starts empty: the topic is created again
        create_topic(broker.bootstrap_servers, "lost")
        retried = runner.execute(settings, at=TICK)
        expected = COHORT - first_upper
        messages = read_back(broker.bootstrap_servers, "lost", expected=expected)

    assert [(o.status, o.exit_code) for o in lost] == [("failed", errors.EXIT_KAFKA)]
    assert [(r["status"], r["retryable"]) for r in failed] == [("failed", True)]
    assert failed_shards == [("done", False), ("failed", True)] + [
        ("pending", False)
    ] * (SHARDS - 2)
    assert [(o.status, o.produced) for o in retried] == [("succeeded", COHORT)]
    # The shard done before the broker was lost is not sent again.
    assert sorted(int(key) for key, _, _ in messages) == list(
        range(first_upper + 1, COHORT + 1)
    )
    assert [(r["status"], r["attempts"]) for r in run_rows(db)] == [("succeeded", 2)]
