"""The message contract: envelopes valid against the JSON Schema, keys, headers."""

from __future__ import annotations

import decimal
import ipaddress
import json
import math
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import Any

import jsonschema
import pytest

from campaigner import envelope
from campaigner.envelope import EnvelopeTemplate, format_instant, idempotency_key

SLOT = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
PRODUCED_AT = datetime(2025, 6, 2, 9, 0, 3, 250_000, tzinfo=UTC)


def envelope_schema() -> dict[str, Any]:
    text = resources.files("campaigner").joinpath("envelope.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def make_template(**overrides: Any) -> EnvelopeTemplate:
    values: dict[str, Any] = {
        "campaign_id": 7,
        "campaign_name": "spring-sale",
        "channel": "email",
        "template": {"template_id": "spring-sale-v1", "locale": "de"},
        "run_id": 42,
        "scheduled_for": SLOT,
        "manual": False,
        "expires_at": SLOT + timedelta(hours=4),
        "fields": ("email", "country"),
    }
    values.update(overrides)
    return EnvelopeTemplate(**values)


def test_envelope_schema__is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(envelope_schema())


def test_render__matches_the_schema_and_carries_the_fields() -> None:
    template = make_template()

    [message] = template.render(
        [(1001, "user1001@example.test", "DE")], produced_at=PRODUCED_AT
    )

    value = json.loads(message.value)
    jsonschema.validate(value, envelope_schema())
    assert value == {
        "schema_version": 1,
        "idempotency_key": "7:2025-06-02T09:00:00Z:1001",
        "campaign": {
            "id": 7,
            "name": "spring-sale",
            "channel": "email",
            "template": {"template_id": "spring-sale-v1", "locale": "de"},
        },
        "run": {"id": 42, "scheduled_for": "2025-06-02T09:00:00Z", "manual": False},
        "produced_at": "2025-06-02T09:00:03.250000Z",
        "expires_at": "2025-06-02T13:00:00Z",
        "recipient": {
            "user_id": 1001,
            "fields": {"email": "user1001@example.test", "country": "DE"},
        },
    }


def test_render__key_is_the_decimal_user_id() -> None:
    template = make_template(fields=())

    messages = template.render(
        [(1,), (20,), (9_007_199_254_740_993,)], produced_at=PRODUCED_AT
    )

    assert [m.key for m in messages] == ["1", "20", "9007199254740993"]


def test_render__headers_repeat_the_ids() -> None:
    template = make_template(channel="sms", fields=())

    [message] = template.render([(1001,)], produced_at=PRODUCED_AT)

    assert dict(message.headers) == {
        "campaign_id": "7",
        "run_id": "42",
        "idempotency_key": "7:2025-06-02T09:00:00Z:1001",
    }


def test_render__idempotency_key_is_the_same_for_every_resend() -> None:
    first = make_template(fields=())
    resumed = make_template(fields=())

    one = first.render([(5,)], produced_at=PRODUCED_AT)[0]
    two = resumed.render([(5,)], produced_at=PRODUCED_AT + timedelta(minutes=30))[0]

    assert (
        json.loads(one.value)["idempotency_key"]
        == json.loads(two.value)["idempotency_key"]
    )


@pytest.mark.parametrize(
    ("campaign_id", "scheduled_for", "user_id", "expected"),
    [
        (7, SLOT, 1001, "7:2025-06-02T09:00:00Z:1001"),
        (
            7,
            datetime.fromisoformat("2025-06-02T11:00:00+02:00"),
            1001,
            "7:2025-06-02T09:00:00Z:1001",
        ),
        (
            3,
            datetime(2025, 6, 2, 9, 0, 0, 17, tzinfo=UTC),
            5,
            "3:2025-06-02T09:00:00.000017Z:5",
        ),
    ],
)
def test_idempotency_key__campaign_slot_user(
    campaign_id: int, scheduled_for: datetime, user_id: int, expected: str
) -> None:
    assert idempotency_key(campaign_id, scheduled_for, user_id) == expected


def test_render__idempotency_key_agrees_with_the_function() -> None:
    template = make_template()

    [message] = template.render(
        [(77, "user77@example.test", "FR")], produced_at=PRODUCED_AT
    )

    assert json.loads(message.value)["idempotency_key"] == idempotency_key(7, SLOT, 77)


def test_render__manual_run_with_microsecond_slot_matches_the_schema() -> None:
    slot = datetime(2025, 6, 2, 9, 17, 3, 123_456, tzinfo=UTC)
    template = make_template(
        manual=True, scheduled_for=slot, expires_at=slot + timedelta(hours=4)
    )

    [message] = template.render(
        [(3, "user3@example.test", "US")], produced_at=PRODUCED_AT
    )

    value = json.loads(message.value)
    jsonschema.validate(value, envelope_schema())
    assert (value["run"], value["idempotency_key"]) == (
        {"id": 42, "scheduled_for": "2025-06-02T09:17:03.123456Z", "manual": True},
        "7:2025-06-02T09:17:03.123456Z:3",
    )


def test_render__database_types_and_text_needing_escapes_stay_valid_json() -> None:
    template = make_template(
        campaign_name='quote"and\\slash',
        fields=(
            "first_name",
            "lifetime_value",
            "created_at",
            "birthday",
            "attributes",
            "push_token",
        ),
    )
    row = (
        9,
        'Zoë "the" \\ tester\n',
        decimal.Decimal("12.50"),
        datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        date(1990, 5, 17),
        {"segment": 2, "tags": ["a", "b"]},
        None,
    )

    [message] = template.render([row], produced_at=PRODUCED_AT)

    value = json.loads(message.value)
    jsonschema.validate(value, envelope_schema())
    assert (value["campaign"]["name"], value["recipient"]["fields"]) == (
        'quote"and\\slash',
        {
            "first_name": 'Zoë "the" \\ tester\n',
            "lifetime_value": "12.50",
            "created_at": "2024-01-02T03:04:05+00:00",
            "birthday": "1990-05-17",
            "attributes": {"segment": 2, "tags": ["a", "b"]},
            "push_token": None,
        },
    )


def test_render__one_message_per_row_in_order() -> None:
    template = make_template(fields=("country",))
    rows = [(n, "DE") for n in range(1, 1001)]

    messages = template.render(rows, produced_at=PRODUCED_AT)

    assert [int(m.key) for m in messages] == list(range(1, 1001))


def test_render__values_json_has_no_word_for_travel_as_text() -> None:
    template = make_template(fields=("ip", "score", "scores", "wait"))

    [message] = template.render(
        [
            (
                1,
                ipaddress.ip_address("192.0.2.7"),
                math.nan,
                [math.inf],
                timedelta(days=1),
            )
        ],
        produced_at=PRODUCED_AT,
    )

    assert json.loads(message.value)["recipient"]["fields"] == {
        "ip": "192.0.2.7",
        "score": "NaN",
        "scores": ["Infinity"],
        "wait": 86400.0,
    }


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (SLOT, "2025-06-02T09:00:00Z"),
        (datetime.fromisoformat("2025-06-02T10:00:00+01:00"), "2025-06-02T09:00:00Z"),
        (datetime(2025, 6, 2, 9, 0, 0, 5, tzinfo=UTC), "2025-06-02T09:00:00.000005Z"),
    ],
)
def test_format_instant__rfc3339_utc(moment: datetime, expected: str) -> None:
    assert format_instant(moment) == expected


def test_schema_version__matches_the_schema_constant() -> None:
    assert (
        envelope_schema()["properties"]["schema_version"]["const"]
        == envelope.SCHEMA_VERSION
    )


FIELD_VALUES: list[Any] = [
    "plain",
    "",
    'quote " backslash \\ slash /',
    "control \x00 \x1f \n \t",
    "ünïcödé ✓ 日本",
    0,
    -(2**63),
    2**70,
    True,
    False,
    None,
    1.5,
    float("nan"),
    float("-inf"),
    decimal.Decimal("12.30"),
    datetime(2025, 6, 2, 9, 0, tzinfo=UTC),
    date(2025, 6, 2),
    {"plan": "pro", "tags": ["a", "b"], "score": 3, "nested": {"x": None}},
    ["x", 1, None],
    ipaddress.ip_address("192.0.2.1"),
    b"\x00\xff",
]


@pytest.mark.parametrize("value", FIELD_VALUES, ids=lambda value: type(value).__name__)
def test_encode_field__writes_what_the_general_encoder_writes(value: Any) -> None:
    assert envelope.encode_field(value) == envelope.dump_fields(value)


def test_render__fields_are_the_json_object_of_the_row() -> None:
    names = tuple(f"f{index}" for index in range(len(FIELD_VALUES)))
    template = make_template(fields=names)

    [message] = template.render([(5, *FIELD_VALUES)], produced_at=PRODUCED_AT)

    fields = json.loads(message.value)["recipient"]["fields"]
    expected = json.loads(
        envelope.dump_fields(dict(zip(names, FIELD_VALUES, strict=True)))
    )
    assert fields == expected
