"""The run's reading path against a real PostgreSQL: rows turned into the
message fields' JSON must say what the values say, whatever characters they hold,
and chunks must cover the cohort exactly once in key order."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from campaigner import cohort, cohort_stream
from campaigner.config import Settings
from tests.conftest import insert_users

# Values that COPY escapes or JSON must escape, and empty and missing ones.
AWKWARD_TEXTS = [
    "tab\there",
    "new\nline and carriage\rreturn",
    "back\\slash \\N \\t literally",
    "quote \" and apostrophe '",
    "ünïcödé ✓ 日本 🙂",
    "control \x01 \x1f \x08 \x0c \x0b",
    "",
]


@pytest.fixture
def reader(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=False, connect_timeout=10) as conn:
        conn.read_only = True
        yield conn


def read_all(
    reader: psycopg.Connection[Any],
    settings: Settings,
    *,
    cohort_text: str,
    fields: list[str],
    batch_size: int,
) -> list[cohort_stream.Rows]:
    encoder = cohort_stream.FieldEncoder(
        fields, cohort.customer_columns(reader, settings)
    )
    return list(
        cohort_stream.read_batches(
            reader,
            settings,
            campaign_name="stream",
            cohort=cohort_text,
            encoder=encoder,
            after=None,
            batch_size=batch_size,
        )
    )


def test_read_batches__fields_json_says_what_the_values_say(
    db: psycopg.Connection[Any], reader: psycopg.Connection[Any], settings: Settings
) -> None:
    for number, text in enumerate(AWKWARD_TEXTS, start=1):
        db.execute(
            "INSERT INTO user_data (id, first_name, city, email_consent,"
            " lifetime_value, attributes, last_active_at)"
            " VALUES (%s, %s, NULL, %s, %s, %s, %s)",
            [
                number,
                text,
                number % 2 == 0,
                Decimal("12.30") if number % 3 else Decimal("NaN"),
                json.dumps({"note": text, "score": number, "tags": [text, None]}),
                datetime.fromisoformat("2025-06-02T09:00:00.5+00:00"),
            ],
        )
    fields = [
        "first_name",
        "city",
        "email_consent",
        "lifetime_value",
        "attributes",
        "last_active_at",
        "id",
    ]

    [batch] = read_all(
        reader, settings, cohort_text="true", fields=fields, batch_size=100
    )

    stored = db.execute(
        f"SELECT id, {', '.join(fields)} FROM user_data ORDER BY id"
    ).fetchall()
    assert [int(user_id) for user_id, _ in batch] == [row[0] for row in stored]
    for (_, encoded), row in zip(batch, stored, strict=True):
        got = json.loads(encoded)
        assert list(got) == fields
        first_name, city, consent, value, attributes, active, user_id = row[1:]
        assert got["first_name"] == first_name
        assert (got["city"], city) == (None, None)
        assert got["email_consent"] is consent
        assert got["lifetime_value"] == str(value)
        assert got["attributes"] == attributes
        assert datetime.fromisoformat(got["last_active_at"]) == active
        assert got["id"] == user_id


def test_read_batches__chunks_cover_the_cohort_once_in_key_order(
    db: psycopg.Connection[Any],
    reader: psycopg.Connection[Any],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    insert_users(db, 1_000)
    # Chunks of 3 batches of 7: boundaries fall inside and between chunks.
    monkeypatch.setattr(cohort_stream, "CHUNK_ROWS", 21)
    expected = [
        row[0]
        for row in db.execute(
            "SELECT id FROM user_data WHERE id % 3 <> 0 ORDER BY id"
        ).fetchall()
    ]

    batches = read_all(
        reader, settings, cohort_text="id % 3 <> 0", fields=[], batch_size=7
    )

    assert [int(user_id) for batch in batches for user_id, _ in batch] == expected
    assert {len(batch) for batch in batches[:-1]} == {7}
    assert all(fields == "{}" for batch in batches for _, fields in batch)


def test_read_batches__from_the_smallest_to_the_largest_bigint(
    db: psycopg.Connection[Any], reader: psycopg.Connection[Any], settings: Settings
) -> None:
    extremes = [-(2**63), -5, 0, 2**63 - 1]
    for user_id in extremes:
        db.execute("INSERT INTO user_data (id) VALUES (%s)", [user_id])
    encoder = cohort_stream.FieldEncoder([], cohort.customer_columns(reader, settings))

    batches = cohort_stream.read_batches(
        reader,
        settings,
        campaign_name="stream",
        cohort="true",
        encoder=encoder,
        after=None,
        batch_size=3,
    )

    assert [int(user_id) for batch in batches for user_id, _ in batch] == extremes
