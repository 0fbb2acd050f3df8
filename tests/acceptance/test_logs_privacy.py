"""Logs carry counts and ids, never a recipient's email address or phone number."""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest

from tests.conftest import TICK_TEXT, insert_campaign, insert_users, read_back, run_cli

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# International numbers as stored (+15550000042), and long runs of digits.
PHONE = re.compile(r"\+\d[\d ()-]{6,}\d|(?<![\d:.-])\d{9,}(?![\d:.-])")


def personal_data(text: str) -> list[str]:
    return [
        match.group(0) for pattern in (EMAIL, PHONE) for match in pattern.finditer(text)
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sent to user42@example.test", ["user42@example.test"]),
        ("call +15550000042 now", ["+15550000042"]),
        ("raw 15550000042", ["15550000042"]),
        (
            "2025-06-02T09:00:00+0000 INFO run 3, slot 2025-06-02T09:00:00+00:00: 25001 matched",
            [],
        ),
    ],
)
def test_personal_data__pattern(text: str, expected: list[str]) -> None:
    assert personal_data(text) == expected


@pytest.mark.parametrize("verbosity", ["-v", "-vv"])
def test_execute_stderr__no_email_or_phone(
    db: psycopg.Connection[Any],
    database_url: str,
    kafka_bootstrap: str,
    topic: str,
    verbosity: str,
) -> None:
    insert_users(db, 2_500)
    insert_campaign(
        db,
        name="contacts",
        topic=topic,
        channel="sms",
        batch_size=1_000,
        message_fields=("email", "phone", "first_name", "last_name", "push_token"),
    )
    insert_campaign(
        db, name="broken-cohort", topic=topic, cohort="no_such_column = 'x'"
    )
    insert_campaign(db, name="broken-topic", topic="campaigner-test-absent")

    code, stdout, stderr = run_cli(
        "execute",
        "--at",
        TICK_TEXT,
        verbosity,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
    )

    messages = read_back(kafka_bootstrap, topic, expected=2_500)
    assert code == 6
    assert "run 1" in stderr
    assert personal_data(stdout + stderr) == []
    assert len(messages) == 2_500
    assert personal_data(str(messages[0][1])) != []


@pytest.mark.parametrize(
    "cohort",
    [
        "email::int > 0",
        "phone::int > 0",
        "email::regclass IS NOT NULL",
        "replace(email, '@', '\"@')::date IS NOT NULL",
    ],
    ids=["email", "phone", "regclass", "quote-in-value"],
)
def test_execute_stderr__cohort_failing_on_a_value_shows_no_personal_data(
    db: psycopg.Connection[Any],
    database_url: str,
    kafka_bootstrap: str,
    topic: str,
    cohort: str,
) -> None:
    insert_users(db, 10)
    insert_campaign(db, name="cast-fails", topic=topic, cohort=cohort)

    code, stdout, stderr = run_cli(
        "execute",
        "--at",
        TICK_TEXT,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
    )

    assert code == 6
    assert "campaign 'cast-fails'" in stderr
    assert personal_data(stdout + stderr) == []
