"""The message contract: one JSON envelope per recipient, keyed by user id.

The parts shared by every message of a run are serialised once; each recipient
only adds its id and fields. `envelope.schema.json` beside this module is the
contract senders can validate against.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from json.encoder import encode_basestring
from typing import Any, NamedTuple

SCHEMA_VERSION = 1


class Message(NamedTuple):
    # Text, not bytes: the producer writes str as UTF-8 itself, which saves
    # encoding three strings per message here.
    key: str  # the user id as decimal text
    value: str
    # Always str here; typed as the producer takes headers.
    headers: list[tuple[str, str | bytes | None]]


def format_instant(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with a Z, microseconds only when present."""
    utc = moment.astimezone(dt.UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}"
    return text + "Z"


def idempotency_key(campaign_id: int, scheduled_for: dt.datetime, user_id: int) -> str:
    """Stable across retries and resumes of the same run: consumers drop repeats by it."""
    return f"{campaign_id}:{format_instant(scheduled_for)}:{user_id}"


def json_default(value: Any) -> Any:
    """JSON for the PostgreSQL types json has no word for."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    # Decimal, UUID, inet, ranges, ...: their text form, as psql would print it.
    return str(value)


def dump_fields(fields: Any) -> str:
    """JSON text of `fields` (any value psycopg returns), compact, never NaN."""
    try:
        return json.dumps(
            fields,
            separators=(",", ":"),
            default=json_default,
            ensure_ascii=False,
            allow_nan=False,
        )
    except ValueError:
        # NaN and infinities are not JSON: send them as text, as PostgreSQL does.
        return json.dumps(
            without_nan(fields),
            separators=(",", ":"),
            default=json_default,
            ensure_ascii=False,
        )


def encode_field(value: Any) -> str:
    """One field's JSON text, the same as dump_fields writes it; the types of
    nearly every customer column take a shortcut past json.dumps's machinery."""
    kind = type(value)
    if kind is str:
        text: str = encode_basestring(value)
        return text
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    return dump_fields(value)


def without_nan(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return (
            "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        )
    if isinstance(value, dict):
        return {key: without_nan(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_nan(item) for item in value]
    return value


@dataclasses.dataclass(frozen=True)
class EnvelopeTemplate:
    """Everything a run's messages share, pre-serialised."""

    campaign_id: int
    campaign_name: str
    channel: str
    template: Any
    run_id: int
    scheduled_for: dt.datetime
    manual: bool
    expires_at: dt.datetime
    fields: Sequence[str]

    def render(
        self, rows: Sequence[Sequence[Any]], *, produced_at: dt.datetime
    ) -> list[Message]:
        """One message per row; each row is (user_id, *fields) as Python values."""
        names = [encode_basestring(name) + ":" for name in self.fields]
        encoded = [
            (
                str(row[0]),
                "{"
                + ",".join(
                    [
                        name + encode_field(value)
                        for name, value in zip(names, row[1:], strict=True)
                    ]
                )
                + "}",
            )
            for row in rows
        ]
        return list(self.messages(encoded, produced_at=produced_at))

    def messages(
        self, rows: Iterable[tuple[str, str]], *, produced_at: dt.datetime
    ) -> Iterator[Message]:
        """One message per row, made as it is asked for, so that a batch's messages
        are never all held at once; each row is (user id as decimal text, the
        message fields as a JSON object's text)."""
        slot = format_instant(self.scheduled_for)
        head = json.dumps(
            {
                "campaign": {
                    "id": self.campaign_id,
                    "name": self.campaign_name,
                    "channel": self.channel,
                    "template": self.template,
                },
                "run": {
                    "id": self.run_id,
                    "scheduled_for": slot,
                    "manual": self.manual,
                },
                "produced_at": format_instant(produced_at),
                "expires_at": format_instant(self.expires_at),
            },
            separators=(",", ":"),
        )[1:-1]
        # The ids a consumer routes and deduplicates by without parsing the value;
        # the user id is the message's key. Each header costs the producer about
        # a microsecond per message, a tenth of a message's whole cost here, so
        # what the value and the key already say is not repeated.
        shared_headers = [
            ("campaign_id", str(self.campaign_id)),
            ("run_id", str(self.run_id)),
        ]
        key_prefix = f"{self.campaign_id}:{slot}:"
        # The value around the user id (twice) and the fields, written once.
        before_key = (
            f'{{"schema_version":{SCHEMA_VERSION},"idempotency_key":"{key_prefix}'
        )
        before_user = f'",{head},"recipient":{{"user_id":'
        # tuple.__new__ straight, not the named tuple's own __new__ written in
        # Python: a third of the cost of a message here.
        make = tuple.__new__
        for user_id, fields in rows:
            value = f'{before_key}{user_id}{before_user}{user_id},"fields":{fields}}}}}'
            yield make(
                Message,
                (
                    user_id,
                    value,
                    [*shared_headers, ("idempotency_key", key_prefix + user_id)],
                ),
            )
