"""A campaign that cannot run fails alone, by name, and the others are delivered."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from campaigner.config import Settings
from tests.conftest import (
    TICK_TEXT,
    insert_campaign,
    insert_users,
    invoke_cli,
    read_back,
    run_rows,
)

USERS = 2_000


@pytest.mark.parametrize(
    ("broken", "problem", "run_status"),
    [
        (
            {"schedule": "0 0 9 * * *"},
            "schedule '0 0 9 * * *' has 6 fields; cron expressions have exactly 5",
            None,
        ),
        (
            {"timezone": "Europe/Atlantis"},
            "unknown timezone 'Europe/Atlantis'",
            None,
        ),
        (
            {"timezone": "Europe"},
            "unknown timezone 'Europe'",
            None,
        ),
        (
            # Checked against the live columns before the slot is claimed.
            {"cohort": "no_such_column = 'DE'"},
            "column no_such_column is not a column of 'user_data' (position 1)",
            None,
        ),
        (
            # Inside the allow-list, but PostgreSQL refuses the types: the run fails.
            {"cohort": "country > 1"},
            "PostgreSQL rejected the cohort: operator does not exist: text > integer",
            "failed",
        ),
        (
            # Checked before the slot is claimed: once the topic exists, the slot
            # still fires within its grace.
            {"topic": "campaigner-test-no-such-topic"},
            "Kafka topic 'campaigner-test-no-such-topic' does not exist",
            None,
        ),
    ],
    ids=["cron", "timezone", "timezone-directory", "cohort", "cohort-types", "topic"],
)
def test_execute__invalid_campaign_fails_alone_and_the_valid_one_is_delivered(
    db: psycopg.Connection[Any],
    settings: Settings,
    topic: str,
    broken: dict[str, str],
    problem: str,
    run_status: str | None,
) -> None:
    insert_users(db, USERS)
    insert_campaign(db, **{"name": "broken", "topic": topic, **broken})  # type: ignore[arg-type]
    insert_campaign(db, name="healthy", topic=topic, batch_size=300)

    result = invoke_cli("execute", "--at", TICK_TEXT, settings=settings)

    messages = read_back(settings.kafka_bootstrap_servers, topic, expected=USERS)
    naming = [line for line in result.stderr.splitlines() if "'broken'" in line]
    assert result.exit_code == 6
    assert len(naming) == 1, result.stderr
    assert problem in naming[0]
    assert naming[0].split(" ", 2)[1] == "ERROR"
    assert "Traceback" not in result.stdout + result.stderr
    assert sorted(
        (value["campaign"]["name"], int(key)) for key, value, _ in messages
    ) == [("healthy", n) for n in range(1, USERS + 1)]
    runs = {
        row["campaign_id"]: (row["status"], row["produced"]) for row in run_rows(db)
    }
    expected_runs = {2: ("succeeded", USERS)}
    if run_status is not None:
        expected_runs[1] = (run_status, 0)
    assert runs == expected_runs


def test_execute__invalid_cohort_shape_fails_before_claiming(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 10)
    insert_campaign(db, name="sneaky", topic=topic, cohort="true) OR (true")

    result = invoke_cli("execute", "--at", TICK_TEXT, settings=settings)

    assert result.exit_code == 6
    assert "campaign 'sneaky': cohort is not valid SQL" in result.stderr
    assert run_rows(db) == []


def test_execute__unknown_message_field_fails_before_claiming(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 10)
    insert_campaign(db, name="typo", topic=topic, message_fields=("email", "emial"))

    result = invoke_cli("execute", "--at", TICK_TEXT, settings=settings)

    assert (result.exit_code, result.stderr.count("ERROR")) == (6, 1)
    assert (
        "campaign 'typo': message field(s) emial are not columns of 'user_data'"
        in result.stderr
    )
    assert run_rows(db) == []


def test_execute__unknown_campaign_name(
    db: psycopg.Connection[Any], settings: Settings
) -> None:
    result = invoke_cli("execute", "--campaign", "no-such-campaign", settings=settings)

    assert (result.exit_code, result.stderr) == (
        2,
        "error: no campaign named 'no-such-campaign' (see `campaigner list`)\n",
    )


def test_execute__paused_campaign_needs_force(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 30)
    insert_campaign(db, name="on-hold", topic=topic, status="paused")

    refused = invoke_cli("execute", "--campaign", "on-hold", settings=settings)
    forced = invoke_cli(
        "execute", "--campaign", "on-hold", "--force", settings=settings
    )

    messages = read_back(settings.kafka_bootstrap_servers, topic, expected=30)
    assert (refused.exit_code, refused.stderr) == (
        2,
        "error: campaign 'on-hold' is paused; add --force to run it anyway\n",
    )
    assert (forced.exit_code, len(messages)) == (0, 30)
