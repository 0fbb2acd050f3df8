"""Campaign definitions: parsing, field checks, comparison and file round trips,
without any server."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from campaigner import campaign_file
from campaigner.definitions import (
    Change,
    Definition,
    InvalidDefinition,
    differences,
    format_duration,
    from_mapping,
    parse_duration,
    problems_of,
    to_mapping,
)

BASE = Definition(
    name="welcome",
    schedule="0 9 * * *",
    cohort="country = 'DE'",
    channel="email",
    topic="campaigns.email",
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        (600, timedelta(minutes=10)),
        ("0s", timedelta(0)),
    ],
)
def test_parse_duration__units(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "15", "5x", "1m1h", "-5m", True, 1.5])
def test_parse_duration__refuses(text: object) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    "value",
    [
        timedelta(0),
        timedelta(seconds=59),
        timedelta(hours=4),
        timedelta(days=1, minutes=1),
    ],
)
def test_format_duration__reads_back(value: timedelta) -> None:
    assert parse_duration(format_duration(value)) == value


def test_from_mapping__lists_every_problem() -> None:
    raw = {"name": "x", "schedule": "@daily", "batch_size": "many", "colour": "red"}

    with pytest.raises(InvalidDefinition) as caught:
        from_mapping(raw, where="c.yaml")

    assert caught.value.problems == [
        "c.yaml: campaign 'x': unknown key(s) colour (known: name, schedule, cohort,"
        " channel, topic, timezone, status, template, message_fields, batch_size,"
        " active_from, active_until, grace, deadline, rate_limit)",
        "c.yaml: campaign 'x': missing cohort, channel, topic",
        "c.yaml: campaign 'x': batch_size: must be a whole number, got 'many'",
    ]


def test_problems_of__a_valid_definition_has_none() -> None:
    assert problems_of(BASE) == []


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"name": "-bad"}, "name must be 1 to 128"),
        ({"schedule": "0 9 * *"}, "has 4 fields"),
        ({"timezone": "Mars/Olympus"}, "unknown timezone 'Mars/Olympus'"),
        ({"cohort": "true; DROP TABLE user_data"}, "cohort"),
        ({"channel": "fax"}, "channel must be one of email, sms, whatsapp, push"),
        ({"topic": "has space"}, "is not a Kafka topic name"),
        ({"topic": "x" * 250}, "is not a Kafka topic name"),
        ({"topic": ".."}, "is not a Kafka topic name"),
        ({"batch_size": 0}, "batch_size must be 1 to 100,000, not 0"),
        ({"batch_size": 100_001}, "batch_size must be 1 to 100,000"),
        ({"rate_limit": 0}, "rate_limit must be 1 to 1,000,000"),
        ({"deadline": timedelta(0)}, "deadline must be longer than 0s"),
        ({"message_fields": ("email", "email")}, "lists a column twice"),
        ({"message_fields": ("e-mail",)}, "is not a column name"),
        (
            {
                "active_from": datetime(2026, 2, 1, tzinfo=UTC),
                "active_until": datetime(2026, 1, 1, tzinfo=UTC),
            },
            "active_from must be before active_until",
        ),
    ],
)
def test_problems_of__names_the_field(change: dict[str, object], fragment: str) -> None:
    problems = problems_of(dataclasses.replace(BASE, **change))  # type: ignore[arg-type]

    assert len(problems) == 1 and fragment in problems[0], problems


def test_topic__249_characters_is_legal() -> None:
    assert problems_of(dataclasses.replace(BASE, topic="t" * 249)) == []


def test_differences__field_level() -> None:
    wanted = dataclasses.replace(
        BASE, cohort="country = 'AT'", schedule="30 9 * * 1-5", rate_limit=100
    )

    assert differences(BASE, wanted) == [
        Change("schedule", "0 9 * * *", "30 9 * * 1-5"),
        Change("cohort", "country = 'DE'", "country = 'AT'"),
        Change("rate_limit", None, 100),
    ]


FULL = dataclasses.replace(
    BASE,
    timezone="Europe/Berlin",
    status="paused",
    template={"id": "winback-v3", "locale": ["de", "en"]},
    message_fields=("email", "first_name"),
    batch_size=250,
    active_from=datetime(2026, 1, 1, tzinfo=UTC),
    active_until=datetime(2026, 7, 1, 12, 30, tzinfo=UTC),
    grace=timedelta(minutes=5),
    deadline=timedelta(hours=1, minutes=30),
    rate_limit=40,
    cohort="country = 'DE'\n  AND email_consent -- a comment\n",
)


@pytest.mark.parametrize("kind", ["yaml", "toml"])
def test_dump_then_read__same_definitions(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"campaigns.{kind}"
    path.write_text(campaign_file.dump([FULL, BASE], kind), encoding="utf-8")

    assert campaign_file.read_definitions(path) == [FULL, BASE]


def test_read_definitions__a_folder_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "b.toml").write_text(campaign_file.dump([BASE], "toml"))
    (tmp_path / "a.yaml").write_text(campaign_file.dump([FULL], "yaml"))
    (tmp_path / "notes.txt").write_text("ignored")

    assert campaign_file.read_definitions(tmp_path) == [FULL, BASE]


def test_read_definitions__lists_problems_of_every_entry(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("campaigns:\n  - name: a\n  - 42\n")

    with pytest.raises(InvalidDefinition) as caught:
        campaign_file.read_definitions(path)

    assert caught.value.problems == [
        f"{path}: campaign 'a': missing schedule, cohort, channel, topic",
        f"{path}: campaign #2: must be a table of keys, not 42",
    ]


def test_to_mapping__defaults_left_out() -> None:
    assert to_mapping(BASE) == {
        "name": "welcome",
        "schedule": "0 9 * * *",
        "cohort": "country = 'DE'",
        "channel": "email",
        "topic": "campaigns.email",
        "status": "active",
    }
