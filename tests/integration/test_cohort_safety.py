"""Cohorts are untrusted input: hostile ones are refused before anything runs,
realistic ones match what plain SQL matches, and a slow one fails alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from campaigner import cohort, cohort_stream, reports, runner
from campaigner.config import Settings
from tests.cohort_cases import ACCEPTED, ENRICH_USERS, HOSTILE
from tests.conftest import (
    TICK,
    insert_campaign,
    insert_users,
    read_back,
    run_rows,
    user_ids,
)

USERS = 600
# Where the hostile lo_export cohort would write, were it ever run.
EXPORTED = Path("/tmp/campaigner-exported")
# What a cohort could change if anything in it ran: the customer rows, the
# campaigns and their id sequence, large objects, the runs.
SIDE_EFFECTS = """
SELECT (SELECT md5(string_agg(u::text, ',' ORDER BY id)) FROM user_data u),
       (SELECT md5(string_agg(c::text, ',' ORDER BY id)) FROM campaigns c),
       (SELECT last_value FROM campaigns_id_seq),
       (SELECT count(*) FROM pg_largeobject_metadata),
       (SELECT count(*) FROM campaign_runs)
"""


def hostile_name(case_id: str) -> str:
    return f"hostile-{case_id}"


def expected_refusals() -> dict[str, str]:
    return {
        hostile_name(case_id): f"campaign {hostile_name(case_id)!r}: {message}"
        for case_id, _, message in HOSTILE
    }


def side_effects(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
    row = conn.execute(SIDE_EFFECTS).fetchone()
    assert row is not None
    return tuple(row)


@pytest.fixture
def hostile_campaigns(db: psycopg.Connection[Any], topic: str) -> None:
    insert_users(db, USERS)
    for case_id, text, _ in HOSTILE:
        insert_campaign(db, name=hostile_name(case_id), topic=topic, cohort=text)


def test_execute__hostile_cohorts_refused_before_the_claim_and_nothing_changes(
    db: psycopg.Connection[Any],
    settings: Settings,
    topic: str,
    hostile_campaigns: None,
) -> None:
    insert_campaign(db, name="healthy", topic=topic, cohort="country = 'DE'")
    expected_ids = user_ids(db, "country = 'DE'")
    before = side_effects(db)

    outcomes = runner.execute(settings, at=TICK)

    refused = {o.campaign: o.error for o in outcomes if o.campaign != "healthy"}
    messages = read_back(settings.kafka_bootstrap_servers, topic, len(expected_ids))
    assert refused == expected_refusals()
    assert {(o.status, o.exit_code) for o in outcomes if o.campaign != "healthy"} == {
        ("not_started", 6)
    }
    assert [(r["status"], r["matched"]) for r in run_rows(db)] == [
        ("succeeded", len(expected_ids))
    ]
    assert sorted(int(key) for key, _, _ in messages) == expected_ids
    assert side_effects(db)[:4] == before[:4]
    assert not EXPORTED.exists()


def test_dry_run__marks_hostile_cohorts_invalid_with_the_same_reasons(
    db: psycopg.Connection[Any], settings: Settings, hostile_campaigns: None
) -> None:
    before = side_effects(db)

    _, previews = reports.dry_run(settings, at=TICK)

    assert {p.campaign: (p.state, p.error) for p in previews} == {
        name: ("invalid", message) for name, message in expected_refusals().items()
    }
    assert side_effects(db) == before


def test_list__marks_hostile_cohorts_invalid(
    db: psycopg.Connection[Any], settings: Settings, hostile_campaigns: None
) -> None:
    # list checks the allow-list without reading the customer table's columns,
    # so an unknown column shows there only once dry-run or execute meets it.
    column_cases = {"unknown-column", "system-column", "whole-row"}
    expected = {
        name: message
        for name, message in expected_refusals().items()
        if name.removeprefix("hostile-") not in column_cases
    }

    listings = reports.list_campaigns(settings)

    errors = {listing.name: listing.error for listing in listings}
    assert {name: errors[name] for name in expected} == expected
    assert [errors[hostile_name(case)] for case in sorted(column_cases)] == [
        None
    ] * len(column_cases)


@pytest.fixture
def reader(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection as the runner reads cohorts with: READ ONLY, not autocommit."""
    with psycopg.connect(database_url, autocommit=False, connect_timeout=10) as conn:
        conn.read_only = True
        yield conn


@pytest.mark.parametrize(
    "text", [case[1] for case in ACCEPTED], ids=[case[0] for case in ACCEPTED]
)
def test_read_batches__realistic_cohort_matches_the_same_where_clause_in_sql(
    db: psycopg.Connection[Any],
    reader: psycopg.Connection[Any],
    settings: Settings,
    text: str,
) -> None:
    insert_users(db, USERS)
    db.execute(ENRICH_USERS)
    expected = user_ids(db, text)
    columns = cohort.customer_columns(reader, settings)

    cohort.check_cohort_shape("realistic", text, columns=columns)
    batches = cohort_stream.read_batches(
        reader,
        settings,
        campaign_name="realistic",
        cohort=text,
        encoder=cohort_stream.FieldEncoder(["email"], columns),
        after=0,
        batch_size=97,
    )
    read = [int(row[0]) for batch in batches for row in batch]
    size = cohort.count(reader, settings, campaign_name="realistic", cohort=text)

    assert (read, size) == (expected, len(expected))
    assert 0 < len(expected) < USERS


def test_count__builtins_cannot_be_shadowed_from_another_schema(
    db: psycopg.Connection[Any], reader: psycopg.Connection[Any], settings: Settings
) -> None:
    # upper(varchar) in public matches a varchar column better than
    # pg_catalog.upper(text), so plain SQL on the default search_path calls it.
    db.execute(
        "CREATE TABLE vip_customers (id bigint PRIMARY KEY, tier varchar(10));"
        "INSERT INTO vip_customers VALUES (1, 'silver');"
        "CREATE FUNCTION public.upper(varchar) RETURNS text"
        " LANGUAGE sql AS $$SELECT 'GOLD'$$"
    )
    text = "upper(tier) = 'GOLD'"
    vip = Settings(database_url=settings.database_url, customer_table="vip_customers")
    shadowed = db.execute(f"SELECT count(*) FROM vip_customers WHERE {text}")

    size = cohort.count(reader, vip, campaign_name="vip", cohort=text)

    assert (shadowed.fetchone(), size) == ((1,), 0)


def test_execute__cohort_timing_out_fails_its_run_and_the_next_campaign_runs(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    # 60 nested md5 over 100,000 customers take seconds; 0.3 s stops it, while
    # the healthy cohort is an index lookup of ten rows.
    db.execute(
        "INSERT INTO user_data (id, email) SELECT g, 'user' || g || '@example.test'"
        " FROM generate_series(1, 100000) AS g"
    )
    heavy = "md5(" * 60 + "email" + ")" * 60 + " = 'never'"
    insert_campaign(db, name="heavy", topic=topic, cohort=heavy)
    insert_campaign(db, name="healthy", topic=topic, cohort="id <= 10")
    bounded = Settings(
        database_url=settings.database_url,
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
        kafka_timeout=settings.kafka_timeout,
        statement_timeout=0.3,
    )

    outcomes = runner.execute(bounded, at=TICK)

    cancelled = (
        "campaign 'heavy': cohort query was cancelled (canceling statement due to"
        " statement timeout); simplify the cohort or raise"
        " CAMPAIGNER_STATEMENT_TIMEOUT"
    )
    assert [(o.campaign, o.status, o.error, o.exit_code) for o in outcomes] == [
        ("heavy", "failed", cancelled, 6),
        ("healthy", "succeeded", None, 0),
    ]
    assert [(r["status"], r["error"], r["produced"]) for r in run_rows(db)] == [
        ("failed", cancelled, 0),
        ("succeeded", None, 10),
    ]
