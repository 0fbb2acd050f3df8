"""The transactions cohorts are read in, on a real server: READ ONLY on the runner's
own reader connection, and a customer table locked past the lock timeout."""

from __future__ import annotations

import collections
from contextlib import ExitStack
from typing import Any

import psycopg
import pytest

from campaigner import cohort, cohort_stream, errors
from campaigner.config import Settings
from campaigner.context import Context
from tests.conftest import (
    TICK_TEXT,
    insert_campaign,
    insert_users,
    read_back,
    run_checkpoint,
    run_cli,
    run_rows,
    start_cli,
    wait_for,
)

USERS = 1_200
# Long enough for the holder to keep its lock through a whole execute.
CLI_TIMEOUT_S = 90
IN_FLIGHT = Settings().batches_in_flight


def test_reader__cohorts_are_read_in_a_read_only_transaction(
    settings: Settings,
) -> None:
    with ExitStack() as stack:
        context = Context(settings, stack)
        with cohort.reading(
            context.reader, settings, campaign_name="probe", cohort="true"
        ):
            row = context.reader.execute(
                "SELECT current_setting('transaction_read_only')"
            ).fetchone()

    assert row == ("on",)


def test_reader__a_cohort_that_writes_is_refused_by_postgresql(
    db: psycopg.Connection[Any], settings: Settings
) -> None:
    # Only possible by getting past the allow-list, which is what READ ONLY guards.
    insert_users(db, 3)
    db.execute("CREATE TABLE written (id bigint)")
    db.execute(
        "CREATE FUNCTION public.writes(id bigint) RETURNS boolean LANGUAGE sql"
        " AS 'INSERT INTO public.written VALUES (id) RETURNING true'"
    )

    with ExitStack() as stack, pytest.raises(errors.InvalidCohort) as caught:
        context = Context(settings, stack)
        list(
            cohort_stream.read_batches(
                context.reader,
                settings,
                campaign_name="writer",
                cohort="public.writes(id)",
                encoder=cohort_stream.FieldEncoder(
                    ["email"], context.customer_columns()
                ),
                after=0,
                batch_size=10,
            )
        )

    assert caught.value.message == (
        "campaign 'writer': PostgreSQL rejected the cohort: cannot execute INSERT"
        " in a read-only transaction"
    )
    assert db.execute("SELECT count(*) FROM written").fetchone() == (0,)


@pytest.mark.slow
def test_execute__customer_table_locked_past_the_lock_timeout_exits_4_then_resumes(
    db: psycopg.Connection[Any], database_url: str, settings: Settings, topic: str
) -> None:
    insert_users(db, USERS)
    insert_campaign(db, name="locked-out", topic=topic, batch_size=500)
    bootstrap = settings.kafka_bootstrap_servers
    short = {"CAMPAIGNER_LOCK_TIMEOUT": "1"}

    with psycopg.connect(database_url, autocommit=False) as holder:
        holder.execute("LOCK TABLE user_data IN ACCESS EXCLUSIVE MODE")
        locked = run_cli(
            "execute", "--at", TICK_TEXT, database_url=database_url,
            kafka_bootstrap=bootstrap, env=short, timeout=CLI_TIMEOUT_S,
        )  # fmt: skip
        left = run_rows(db)
        holder.rollback()
    released = run_cli(
        "execute", "--at", TICK_TEXT, database_url=database_url,
        kafka_bootstrap=bootstrap, env=short, timeout=CLI_TIMEOUT_S,
    )  # fmt: skip

    messages = read_back(bootstrap, topic, expected=USERS)
    counts = collections.Counter(int(key) for key, _, _ in messages)
    [finished] = run_rows(db)
    # The lock is met when the cohort's size is estimated, before the claim:
    # nothing is claimed, and the slot fires at the next execute.
    assert locked[0] == errors.EXIT_DATABASE, locked[2]
    assert left == []
    assert "the customer table stayed locked longer than the lock timeout" in locked[2]
    assert released[0] == 0, released[2]
    assert sorted(counts.elements()) == list(range(1, USERS + 1))
    assert {
        key: finished[key]
        for key in ("status", "matched", "produced", "checkpoint", "attempts")
    } == {
        "status": "succeeded",
        "matched": USERS,
        "produced": USERS,
        "checkpoint": USERS,
        "attempts": 1,
    }


@pytest.mark.slow
def test_execute__customer_table_locked_in_the_middle_of_a_run_then_resumed(
    db: psycopg.Connection[Any], database_url: str, settings: Settings, topic: str
) -> None:
    # Four chunks: the first three are read (one ahead) before the lock is taken,
    # the fourth finds the table locked while the third is on its way.
    users, batch = 4 * cohort_stream.CHUNK_ROWS, 1_000
    insert_users(db, users)
    insert_campaign(db, name="locked-later", topic=topic, batch_size=batch)
    db.execute("UPDATE campaigns SET rate_limit = 10000")
    bootstrap = settings.kafka_bootstrap_servers
    short = {"CAMPAIGNER_LOCK_TIMEOUT": "1"}

    worker = start_cli(
        "execute", "--at", TICK_TEXT, database_url=database_url,
        kafka_bootstrap=bootstrap, env=short,
    )  # fmt: skip
    try:
        with psycopg.connect(database_url, autocommit=False) as holder:
            started = wait_for(
                lambda: run_checkpoint(database_url) >= 2 * batch, timeout=60
            )
            holder.execute("LOCK TABLE user_data IN ACCESS EXCLUSIVE MODE")
            _, stderr = worker.communicate(timeout=CLI_TIMEOUT_S)
            [left] = run_rows(db)
            holder.rollback()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    released = run_cli(
        "execute", "--at", TICK_TEXT, database_url=database_url,
        kafka_bootstrap=bootstrap, env=short, timeout=CLI_TIMEOUT_S,
    )  # fmt: skip

    messages = read_back(bootstrap, topic, expected=users)
    counts = collections.Counter(int(key) for key, _, _ in messages)
    repeated = sorted(user for user, n in counts.items() if n > 1)
    print(
        f"\nlocked at checkpoint {left['checkpoint']}: {len(messages) - users}"
        f" repeats, user ids {repeated[:1]}..{repeated[-1:]}"
    )
    assert (started, worker.returncode) == (True, errors.EXIT_DATABASE), stderr
    assert (left["status"], left["retryable"]) == ("failed", True)
    assert 2 * batch <= left["checkpoint"] < users
    assert "stayed locked longer than the lock timeout" in left["error"]
    assert released[0] == 0, released[2]
    assert sorted(counts) == list(range(1, users + 1))
    # The failed read stops the run only after the batches on their way are
    # confirmed and recorded: the database is up, so nothing is sent twice.
    assert repeated == []
    assert [(r["status"], r["produced"], r["attempts"]) for r in run_rows(db)] == [
        ("succeeded", users, 2)
    ]


@pytest.mark.parametrize(
    "table",
    [
        "CREATE TABLE crowd (grp bigint, email text)",
        "CREATE TABLE crowd (grp bigint UNIQUE, email text)",
        "CREATE TABLE crowd (grp bigint NOT NULL, email text);"
        " CREATE UNIQUE INDEX ON crowd (grp) WHERE grp > 0",
    ],
    ids=["no-index", "nullable", "partial-index"],
)
def test_customer_columns__key_must_be_unique_and_not_null(
    db: psycopg.Connection[Any], settings: Settings, table: str
) -> None:
    db.execute(table)
    crowd = Settings(
        database_url=settings.database_url, customer_table="crowd", customer_key="grp"
    )

    with pytest.raises(errors.ConfigurationError) as caught:
        cohort.customer_columns(db, crowd)

    assert caught.value.message == (
        "customer key 'grp' of 'crowd' must be NOT NULL and unique (a primary key,"
        " or a unique index on that column alone): otherwise recipients would be"
        " skipped (set CAMPAIGNER_CUSTOMER_KEY)"
    )


def test_reading__jit_is_off_for_cohorts(database_url: str, settings: Settings) -> None:
    with ExitStack() as stack:
        context = Context(settings, stack)
        with cohort.reading(context.reader, settings, campaign_name="c", cohort="true"):
            row = context.reader.execute("SELECT current_setting('jit')").fetchone()

    assert row == ("off",)
